"""The advances register: list advances (with those that linger), apply one to an invoice
with or without a case, refund one (four eyes above the policy's threshold).

Rules are in ``domain.customer`` (decide) and ``domain.advances`` (the register). Applying
to an invoice that has an open case goes through ``CreditService.apply`` (the case sees
``CustomerCreditApplied``); to an invoice without a case, the allocation is final and the
ledger's payment row (``matched_by`` ``advance``, id = the allocation id) is written in the
same transaction as the event, so the invoice's open amount goes down with it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import NAMESPACE_URL, uuid4, uuid5

from sqlalchemy import update

from app.credit import CreditService
from app.services import CaseService
from domain import customer as cu
from domain.advances import AdvanceRow, RequestRow, held, register, requests
from domain.errors import DomainError, shown
from domain.inputs import check_identifier, check_report_day, within
from domain.money import Money, payable_currency, positive_money
from domain.users import Actor
from store.payments import PaymentLedger, insert_payment
from store.schema import invoices


def _today() -> date:
    return datetime.now(timezone.utc).date()


def row_dict(r: AdvanceRow) -> dict:
    return {"advance_id": r.advance_id, "customer_id": r.customer_id, "source": r.source, "reference": r.reference,
            "currency": r.currency, "amount": str(r.amount), "applied": str(r.applied), "refunded": str(r.refunded),
            "pending_refund": str(r.pending_refund), "held": str(r.remaining),
            "received_on": r.received_on.isoformat(), "age_days": r.age_days, "status": r.status,
            "lingering": r.lingering}


def request_dict(r: RequestRow) -> dict:
    return {"request_id": r.request_id, "customer_id": r.customer_id, "reference": r.reference, "order_id": r.order_id,
            "currency": r.currency, "amount": str(r.amount), "paid": str(r.paid), "outstanding": str(r.outstanding),
            "due_date": r.due_date.isoformat(), "days_overdue": r.days_overdue, "status": r.status}


class AdvanceService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.credit = CreditService(cases)
        self.customers = self.credit.customers
        self.reads = self.customers.reads

    # -- the register ------------------------------------------------------------------------------
    def states(self, as_of: date | None = None) -> list[cu.CustomerState]:
        """The state of every customer who paid an advance, from the events recorded by the end
        of ``as_of`` (default: all)."""
        found = []
        paid = {r.event.customer_id for r in self.cases.ctx.store.read_types(("PrepaymentReceived", "AdvanceRequested"))}
        for customer_id in sorted(paid):
            events = self.cases.ctx.store.load(cu.customer_stream_id(customer_id))
            if as_of is not None:
                events = [e for e in events if e.occurred_at.date() <= as_of]
            state = cu.fold_customer(events)
            if state is not None and (state.advances or state.requests):
                found.append(state)
        return found

    def report(self, as_of: date | None = None, lingering: bool = False) -> dict:
        """The register (or only the advances that linger), with what they hold per currency."""
        check_report_day(as_of, "as-of", _today(), self.cases.ctx.policy().inputs)
        states = self.states(as_of)
        rows = register(states, as_of or _today(), self.cases.ctx.policy().advances.linger_after)
        shown_rows = [r for r in rows if r.lingering] if lingering else rows
        currencies = sorted({r.currency for r in rows})
        return {"as_of": (as_of or _today()).isoformat(),
                "linger_after_days": self.cases.ctx.policy().advances.linger_after.days,
                "advances": [row_dict(r) for r in shown_rows],
                "held": {c: str(held(rows, c)) for c in currencies},
                "lingering_held": {c: str(held([r for r in rows if r.lingering], c)) for c in currencies},
                "requests": [request_dict(r) for r in requests(states, as_of or _today())]}

    def request(self, customer_id: str, amount: str, currency: str, due: date, reference: str, actor: Actor,
                order_id: str | None = None, request_id: str | None = None) -> dict:
        """Ask the customer for an advance (a deposit before delivery), due on ``due``."""
        self.reads.customer(customer_id)
        money = positive_money(amount, payable_currency(currency))
        rules = self.cases.ctx.policy().inputs
        within(due, "due", rules.earliest_date, _today() + rules.latest_ahead,
               f"an advance falls due between {rules.earliest_date} and today + {rules.latest_ahead.days} days")
        rid = check_identifier(request_id, "request_id") if request_id else f"RQ-{uuid4().hex[:12]}"
        if order_id is not None:
            check_identifier(order_id, "order")
        _, events = self.customers.execute(customer_id, lambda s: cu.RequestAdvance(
            command_id=uuid5(NAMESPACE_URL, f"advance-request:{customer_id}:{rid}"), actor=actor,
            customer_id=customer_id, request_id=rid, amount=money, due_date=due, reference=reference,
            order_id=order_id))
        return {"request_id": rid, "customer_id": customer_id, "amount": str(money.amount),
                "currency": money.currency, "due_date": due.isoformat(), "reference": reference, "order_id": order_id,
                "recorded": bool(events)}

    def find(self, advance_id: str) -> tuple[str, cu.Advance]:
        for state in self.states():
            if advance_id in state.advances:
                return state.customer_id, state.advances[advance_id]
        raise DomainError(f"unknown advance {shown(advance_id)}", "advance_id")

    # -- applying --------------------------------------------------------------------------------------
    async def apply(self, advance_id: str, invoice_id: str, amount: str | None, actor: Actor,
                    allocation_id: str | None = None) -> dict:
        """Apply an advance to an invoice of its customer, with or without a case."""
        customer_id, advance = self.find(advance_id)
        invoice = PaymentLedger(self.cases.ctx.db).open_invoice(invoice_id)
        if invoice.customer_id != customer_id:
            raise DomainError(f"invoice {invoice_id} is customer {invoice.customer_id}'s, advance {advance_id} "
                              f"customer {customer_id}'s", "invoice_id")
        if invoice.currency != advance.amount.currency:
            raise DomainError(f"invoice {invoice_id} is in {invoice.currency}, advance {advance_id} in "
                              f"{advance.amount.currency}", "currency")
        if invoice.case_id is not None:
            reply = await self.credit.apply(invoice_id, amount, actor, allocation_id, advance_id=advance_id)
            return {**reply, "advance_id": advance_id, "invoice_id": invoice_id}
        if invoice.case_closed or invoice.open_minor <= 0:
            raise DomainError(f"invoice {invoice_id} owes nothing", "invoice_id")
        owed = Money.from_minor(invoice.open_minor, invoice.currency)
        money = advance.refundable.min(owed) if amount is None else positive_money(amount, invoice.currency)
        if not money.is_positive:
            raise DomainError(f"advance {advance_id} holds nothing to apply", "advance_id")
        allocation = check_identifier(allocation_id, "allocation_id") if allocation_id else f"AL-{uuid4().hex[:16]}"
        today = _today()

        def ledger_row(session) -> None:  # the invoice's payment row, in the event's transaction
            if insert_payment(session, payment_id=allocation, amount=money, received_on=today, payer=customer_id,
                              reference=f"advance {advance_id}", status="applied", invoice_id=invoice_id,
                              matched_by="advance"):
                session.execute(update(invoices).where(invoices.c.invoice_id == invoice_id)
                                .values(paid_minor=invoices.c.paid_minor + money.to_minor()))

        _, events = self.customers.execute(customer_id, lambda s: cu.AllocateCredit(
            command_id=uuid5(NAMESPACE_URL, f"allocation:{allocation}"), actor=actor, customer_id=customer_id,
            allocation_id=allocation, invoice_id=invoice_id, target_case_id="", amount=money,
            held_on_cases=self.reads.held_on_cases(customer_id, invoice.currency), owed=owed,
            advance_id=advance_id), within=ledger_row)
        return {"advance_id": advance_id, "invoice_id": invoice_id, "case_id": None, "allocation_id": allocation,
                "applied": str(money.amount), "currency": money.currency, "customer_id": customer_id,
                "invoice_open": str((owed - money).amount), "recorded": bool(events)}

    # -- refunds -----------------------------------------------------------------------------------------
    def refund(self, advance_id: str, amount: str, reason: str, actor: Actor, refund_id: str | None = None) -> dict:
        customer_id, advance = self.find(advance_id)
        money = positive_money(amount, advance.amount.currency)
        rid = check_identifier(refund_id, "refund_id") if refund_id else f"RF-{uuid4().hex[:12]}"
        _, events = self.customers.execute(customer_id, lambda s: cu.RequestAdvanceRefund(
            command_id=uuid5(NAMESPACE_URL, f"advance-refund:{rid}"), actor=actor, customer_id=customer_id,
            refund_id=rid, advance_id=advance_id, amount=money, reason=reason))
        done = any(isinstance(e, cu.AdvanceRefunded) for e in events)
        return {"refund_id": rid, "advance_id": advance_id, "customer_id": customer_id, "amount": str(money.amount),
                "currency": money.currency, "status": "refunded" if done else "awaiting approval",
                "recorded": bool(events)}

    def _customer_of_refund(self, refund_id: str) -> str:
        for state in self.states():
            if (refund_id in state.pending_refunds or refund_id in state.refund_ids
                    or refund_id in state.rejected_refunds):
                return state.customer_id
        raise DomainError(f"no refund {shown(refund_id)} waits for approval", "refund_id")

    def approve_refund(self, refund_id: str, actor: Actor, reason: str = "") -> dict:
        customer_id = self._customer_of_refund(refund_id)
        _, events = self.customers.execute(customer_id, lambda s: cu.ApproveAdvanceRefund(
            command_id=uuid5(NAMESPACE_URL, f"advance-refund-approve:{refund_id}"), actor=actor,
            customer_id=customer_id, refund_id=refund_id, reason=reason))
        return {"refund_id": refund_id, "customer_id": customer_id, "status": "refunded", "approved_by": actor.name,
                "recorded": bool(events)}

    def reject_refund(self, refund_id: str, reason: str, actor: Actor) -> dict:
        """Turn down a refund waiting for a second person: its amount is held on the advance again."""
        customer_id = self._customer_of_refund(refund_id)
        _, events = self.customers.execute(customer_id, lambda s: cu.RejectAdvanceRefund(
            command_id=uuid5(NAMESPACE_URL, f"advance-refund-reject:{refund_id}"), actor=actor,
            customer_id=customer_id, refund_id=refund_id, reason=reason))
        return {"refund_id": refund_id, "customer_id": customer_id, "status": "rejected", "rejected_by": actor.name,
                "recorded": bool(events)}

    def pending_refunds(self) -> list[dict]:
        return [{"refund_id": p.refund_id, "advance_id": p.advance_id, "customer_id": s.customer_id,
                 "amount": str(p.amount.amount), "currency": p.amount.currency, "reason": p.reason,
                 "requested_by": p.requested_by, "at": p.at.isoformat()}
                for s in self.states() for p in s.pending_refunds.values()]
