"""Early-cash instruments (docs/FINANCING.md): assigning invoices to a factor, the factor's report
(paid to it, or defaulted), and the financing report (financed amounts, fees, discounts granted)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from uuid import NAMESPACE_URL, uuid4, uuid5

from app.services import CaseService
from domain import commands as cmd
from domain.decider import decide
from domain.errors import DomainError, shown
from domain.state import CaseState
from domain.users import Actor

_TERMINAL = ("paid", "resolved", "written_off", "cancelled")
_EVENTS = ("InvoiceAssignedToFactor", "FactorCollected", "FactorDefaulted", "FactorDefaultReported",
           "EarlyPaymentDiscountGranted")


def parse_rate(text: str | None, field: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise DomainError(f"{shown(text)} is not a number", field) from None
    if not value.is_finite():
        raise DomainError(f"{shown(text)} is not a number", field)
    return value


def parse_recourse(text: str) -> bool:
    answer = {"yes": True, "no": False}.get(str(text).strip().lower())
    if answer is None:
        raise DomainError(f"{shown(text)} is not yes or no", "recourse")
    return answer


def _quarter(day) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


class FinancingService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.ctx = cases.ctx

    async def assign(self, invoice_ids: list[str], factor: str, recourse: str, advance_rate: str,
                     fee_rate: str | None, reason: str, actor: Actor, assignment_id: str | None = None) -> dict:
        """Assign each invoice's open case to the factor. Every invoice is checked first (on its
        case's state, under its pinned policy): one refused invoice and none is assigned."""
        if not invoice_ids:
            raise DomainError("name at least one invoice", "invoice_id")
        if len(set(invoice_ids)) != len(invoice_ids):
            raise DomainError("an invoice is named twice", "invoice_id")
        with_recourse = parse_recourse(recourse)
        rate = parse_rate(advance_rate, "advance_rate")
        fee = parse_rate(fee_rate if fee_rate is not None else "0", "fee_rate")
        cmd.check_text(reason, "reason", required=True)
        base = assignment_id or f"FA-{uuid4().hex[:12]}"
        commands: list[tuple[str, cmd.AssignToFactor]] = []
        now = datetime.now(timezone.utc)
        for invoice_id in invoice_ids:
            row = self._open_case(invoice_id)
            policy = self.cases.pinned_policies({row.case_id})[row.case_id] or self.ctx.policy()
            one = base if len(invoice_ids) == 1 else f"{base}-{invoice_id}"
            command = cmd.AssignToFactor(
                command_id=uuid5(NAMESPACE_URL, f"factor-assign/{one}/{invoice_id}"), actor=actor,
                assignment_id=one, factor=factor, recourse=with_recourse, advance_rate=rate, fee_rate=fee,
                reason=reason)
            try:
                decide(CaseState.model_validate_json(row.state), command, now, policy)
            except DomainError as error:
                raise DomainError(f"invoice {invoice_id}: {error.message}", error.field) from None
            commands.append((invoice_id, command))
        replies = [await self.cases._send(invoice_id, "assign_to_factor", lambda s, c=command: c)
                   for invoice_id, command in commands]
        return {"factor": factor, "recourse": with_recourse, "advance_rate": str(rate), "fee_rate": str(fee),
                "assigned": [{"invoice_id": i, "assignment_id": c.assignment_id, "status": r["status"],
                              "balance": r["balance"]} for (i, c), r in zip(commands, replies)]}

    async def outcome(self, invoice_id: str, outcome: str, reason: str, actor: Actor) -> dict:
        """The factor reports the invoice paid to it (``collected``) or defaulted."""
        cmd.check_text(reason, "reason", required=True)
        self._open_case(invoice_id)
        return await self.cases._send(invoice_id, "factor_outcome", lambda s: cmd.RecordFactorOutcome(
            command_id=uuid4(), actor=actor, outcome=outcome, reason=reason))

    def _open_case(self, invoice_id: str):
        try:
            row = self.cases.summary_row(invoice_id)
        except DomainError:
            self.ctx.ledger.invoice(invoice_id)  # unknown invoice: its own error
            raise DomainError(f"invoice {invoice_id} has no case; open one first (`case open`)", "invoice_id") from None
        if row.status in _TERMINAL:
            raise DomainError(f"invoice {invoice_id}: its case is closed ({row.status})", "invoice_id")
        return row

    def report(self) -> dict:
        """Per factor and recourse: invoices assigned, what was assigned, advanced (advance rate x
        assigned) and charged, and what is still with the factor; and early-payment discounts per
        quarter. From the events alone."""
        groups: dict[tuple, dict] = {}
        status: dict[str, str] = {}
        key_of: dict[str, tuple] = {}
        discounts: dict[tuple[str, str], dict] = {}
        zero = Decimal(0)
        for record in self.ctx.store.read_types(_EVENTS):
            e = record.event
            name = type(e).__name__
            if name == "InvoiceAssignedToFactor":
                key = (e.factor, e.recourse, e.assigned.currency)
                g = groups.setdefault(key, {"invoices": 0, "assigned": zero, "advanced": zero, "fees": zero,
                                            "outstanding": zero, "collected": zero, "defaulted": zero,
                                            "reported_defaults": 0})
                g["invoices"] += 1
                for field, money in (("assigned", e.assigned), ("advanced", e.advanced), ("fees", e.fee)):
                    g[field] += money.amount
                status[e.assignment_id] = "assigned"
                key_of[e.assignment_id] = (key, e.assigned.amount)
            elif name in ("FactorCollected", "FactorDefaulted") and e.assignment_id in key_of:
                key, _ = key_of[e.assignment_id]
                groups[key]["collected" if name == "FactorCollected" else "defaulted"] += e.amount.amount
                status[e.assignment_id] = name
            elif name == "FactorDefaultReported" and e.assignment_id in key_of:
                groups[key_of[e.assignment_id][0]]["reported_defaults"] += 1
            elif name == "EarlyPaymentDiscountGranted":
                d = discounts.setdefault((_quarter(e.occurred_at.date()), e.amount.currency),
                                         {"count": 0, "amount": zero})
                d["count"] += 1
                d["amount"] += e.amount.amount
        for assignment, state in status.items():
            if state == "assigned":
                key, assigned = key_of[assignment]
                groups[key]["outstanding"] += assigned
        factors = [{"factor": f, "recourse": r, "currency": c, **{k: str(v) if isinstance(v, Decimal) else v
                                                                   for k, v in g.items()}}
                   for (f, r, c), g in sorted(groups.items(), key=lambda i: (i[0][0], not i[0][1], i[0][2]))]
        totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for (_, _, c), g in groups.items():
            for field in ("assigned", "advanced", "fees", "outstanding"):
                totals[c][field] += g[field]
        return {
            "factors": factors,
            "totals": {c: {k: str(v) for k, v in t.items()} for c, t in sorted(totals.items())},
            "discounts": [{"quarter": q, "currency": c, "count": d["count"], "amount": str(d["amount"])}
                          for (q, c), d in sorted(discounts.items())],
        }
