"""Application services: what the collections team can do, for the CLI and the API alike.

Reads come from projections and the event store; every change goes through
the case's workflow as a Temporal Update, so the workflow stays the single
writer of its stream and the reply is read back from durable events.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from sqlalchemy import func, select

from app.context import Context
from app.imports import ImportDefaults, parse_export, read_text
from app.waiting import execute_update
from domain import commands as cmd
from domain.decider import case_uuid
from domain.durations import parse_duration
from domain.errors import DomainError, shown
from domain.events import DisputeOutcome, EscalationDecision, OpenReason
from domain.inputs import (check_identifier, check_overdue_opening, check_received_on, check_same_payment, parse_date,
                           recorded_on_another_invoice, reversed_payment_id)
from domain.money import Money, positive_money
from domain.authority import Reduced, approver_role, reduced_of
from domain.policy import Policy, Role
from domain.state import CaseState, CaseStatus
from domain.users import Actor
from store.payments import RECOVERY_REVERSED
from store.schema import approvals, case_summary, payments
from workflows.messages import BUSY, CommandReply, case_workflow_id


def _money(minor: int, currency: str) -> str:
    return str(Money.from_minor(minor, currency).amount)


def summary_dict(row: Any) -> dict:
    m = row._mapping
    return {
        "case_id": m["case_id"],
        "invoice_id": m["invoice_id"],
        "customer_id": m["customer_id"],
        "customer_name": m["customer_name"],
        "status": m["status"],
        "balance": _money(m["balance_minor"], m["currency"]),
        "currency": m["currency"],
        "original_amount": _money(m["original_minor"], m["currency"]),
        "disputed": _money(m["disputed_minor"], m["currency"]),
        "level": m["level"],
        "risk_grade": m["risk_grade"],
        "due_date": m["due_date"].isoformat(),
        "next_action": m["next_action"],
        "next_action_at": m["next_action_at"].isoformat() if m["next_action_at"] else None,
        "waiting_for": m["waiting_for"],
        "assignee": m["assignee"],
        "contact_problem": m["contact_problem"],
        "credit_hold": m["credit_hold"],
        "policy_version": m["policy_version"],
        "opened_at": m["opened_at"].isoformat(),
        "closed_at": m["closed_at"].isoformat() if m["closed_at"] else None,
        "version": m["version"],
        "kind": m["kind"],  # invoice, or advance: an overdue advance request (invoice_id is the request id)
    }


# What `approvals list --status` and GET /api/approvals?status= take ("decided": an escalation's;
# "withdrawn": no longer waiting for a decision, e.g. closed with its case).
APPROVAL_STATUSES = ("pending", "approved", "rejected", "decided", "withdrawn", "all")


def approval_dict(row: Any) -> dict:
    m = row._mapping
    return {
        "approval_id": m["approval_id"],
        "case_id": m["case_id"],
        "invoice_id": m["invoice_id"],
        "customer_name": m["customer_name"],
        "kind": m["kind"],
        "amount": _money(m["amount_minor"], m["currency"]),
        "currency": m["currency"],
        "reason": m["reason"],
        "requested_by": m["requested_by"],
        "requested_at": m["requested_at"].isoformat(),
        "tier": m["tier"],
        "sla_due_at": m["sla_due_at"].isoformat() if m["sla_due_at"] else None,
        "status": m["status"],
        "decided_by": m["decided_by"],
        "decided_at": m["decided_at"].isoformat() if m["decided_at"] else None,
        "decision": m["decision"],
        # a reduction's: what the case had been reduced by alone before; it counted against the threshold
        "reduced_alone": _money(m["reduced_alone_minor"], m["currency"]) if m["reduced_alone_minor"] else None,
    }


def insurance_dict(state: CaseState) -> dict | None:
    """The case's credit insurance and its deadlines, or None for an uninsured invoice."""
    ins = state.insurance
    if ins is None:
        return None
    when = lambda v: v.isoformat() if v is not None else None  # noqa: E731
    if ins.claim_id is not None:
        stage = "indemnified" if ins.indemnity is not None else "claim filed"
    elif ins.cover_lost:
        stage = "cover lost (notified after the deadline)"
    elif ins.notified_at is not None:
        stage = "insurer notified"
    else:
        stage = "insured"
    return {
        "insurer": ins.insurer_name, "insurer_id": ins.insurer_id, "insurer_email": ins.insurer_email,
        "policy": ins.policy_number, "indemnity_percent": str(ins.indemnity_percent), "stage": stage,
        "notify_at": when(ins.notify_at), "notify_by": when(ins.notify_by), "notified_at": when(ins.notified_at),
        "notified_in_time": ins.notified_in_time, "extension_until": when(ins.extension_until),
        "claim_at": when(ins.claim_at), "claim_id": ins.claim_id,
        "claim_amount": str(ins.claim_amount.amount) if ins.claim_amount else None,
        "expected_indemnity": str(ins.expected_indemnity.amount) if ins.expected_indemnity else None,
        "indemnity": str(ins.indemnity.amount) if ins.indemnity else None,
    }


def reply_dict(reply: CommandReply) -> dict:
    return {
        "case_id": str(reply.case_id),
        "invoice_id": reply.invoice_id,
        "status": reply.status,
        "balance": str(reply.balance.amount),
        "currency": reply.balance.currency,
        "version": reply.version,
        "events": [e.model_dump() for e in reply.events],
    }


class _IdTaken(Exception):
    """A recovery's payment id found in the payments table inside its event's transaction (``row``:
    its invoice_id and status): recorded meanwhile by someone else."""

    def __init__(self, row) -> None:
        super().__init__(row)
        self.row = row


class CaseService:
    def __init__(self, context: Context) -> None:
        self.ctx = context

    # -- ledger ------------------------------------------------------------------------
    def import_invoices(self, path: Path, format: str = "standard", defaults: ImportDefaults | None = None,
                        actor: Actor | None = None, reason: str | None = None) -> dict:
        """A ledger load (tests, the demo, the backtest): refused when it would change an open
        case, which only ``sync_invoices`` (the CLI's and the API's import) can reach."""
        text = read_text(path)
        export = parse_export(text, format, defaults or ImportDefaults(), rules=self.ctx.policy().inputs)
        return self._import(export, text, str(path), actor, reason, None, cases=False)[0]

    def import_invoice_text(self, text: str, source: str = "upload", actor: Actor | None = None,
                            reason: str | None = None) -> dict:
        """The same import from CSV text already in memory."""
        export = parse_export(text, rules=self.ctx.policy().inputs)
        return self._import(export, text, source, actor, reason, None, cases=False)[0]

    async def sync_invoices(self, path: Path, format: str = "standard", defaults: ImportDefaults | None = None,
                            actor: Actor | None = None, reason: str | None = None,
                            sync_actor: Actor | None = None) -> dict:
        """`invoices import`: new invoices onto the ledger, and every change of a known invoice or
        customer recorded, on the ledger or as events of its open case (docs/IMPORT.md).
        ``sync_actor``: who the case events are recorded by (default ``erp-sync``)."""
        text = read_text(path)
        export = parse_export(text, format, defaults or ImportDefaults(), rules=self.ctx.policy().inputs)
        return await self._sync(export, text, str(path), actor, reason, sync_actor)

    async def sync_invoice_text(self, text: str, source: str = "upload", actor: Actor | None = None,
                                reason: str | None = None, sync_actor: Actor | None = None) -> dict:
        """The same from CSV text already in memory (an HTTP upload)."""
        export = parse_export(text, rules=self.ctx.policy().inputs)
        return await self._sync(export, text, source, actor, reason, sync_actor)

    async def _sync(self, export, text: str, source: str, actor: Actor | None, reason: str | None,
                    sync_actor: Actor | None) -> dict:
        from app.erp import touches_cases

        with self.ctx.db.read() as session:
            if touches_cases(session, export):
                await self.ctx.client()  # Temporal unreachable: refused before anything is written
        result, plan = self._import(export, text, source, actor, reason, sync_actor, cases=True)
        events, errors = 0, []
        for change in plan.cases:  # each case's changes, decided already on its state (app.erp)
            try:
                reply = await self._send(change.invoice_id, "erp_sync", lambda summary, c=change: c.command)
            except DomainError as error:  # the case changed since (closed by a payment...): the others go on
                errors.append({"line": change.line, "invoice_id": change.invoice_id, "error": str(error)})
                continue
            events += len(reply["events"])
        return {**result, "case_events": events, "case_errors": errors}

    def _import(self, export, text: str, source: str, actor: Actor | None, reason: str | None,
                sync_actor: Actor | None, cases: bool) -> tuple[dict, Any]:
        """The ledger's rows and ``InvoicesImported`` (who, when, why, what) in one transaction."""
        import hashlib

        from app.adminlog import default_actor, record
        from app.erp import ERP_ACTOR, apply_to_ledger, plan_sync
        from domain import admin

        reason = admin.check_reason(reason, required=False, default="invoice import")
        actor = actor or default_actor(self.ctx)
        now = datetime.now(timezone.utc)
        policies: dict[str, Policy] = {}

        def policy_of(version: str) -> Policy:
            if version not in policies:
                try:
                    policies[version] = self.ctx.policies.get(version)
                except DomainError:
                    policies[version] = self.ctx.policy()
            return policies[version]

        def planned(session):
            return plan_sync(session, export, sync_actor or ERP_ACTOR, Path(source).name, now, policy_of)

        with self.ctx.db.read() as session:
            plan = planned(session)
        if plan.cases and not cases:
            first = plan.cases[0]
            raise DomainError(f"line {first.line}: invoice {first.invoice_id} has an open case; its changes reach "
                              "the case through `invoices import` or POST /api/invoices/import", "file")

        def change(session) -> None:
            if planned(session).counts() != plan.counts():
                raise DomainError("another import changed these invoices meanwhile; run the import again", "file")
            apply_to_ledger(session, plan, source, now.date(), now)

        on_cases = {c.invoice_id for c in plan.cases}  # their ledger's due date follows the case's
        changed = on_cases | {c.invoice_id for c in plan.ledger}
        record(self.ctx, "ledger", "invoice-imports", admin.InvoicesImported, actor, reason, f"invoices from {source}",
               within=change, source=source, digest=hashlib.sha256(text.encode()).hexdigest(),
               rows=len(export.invoices) + len(export.credit_notes), invoices_added=len(plan.new),
               invoices_unchanged=plan.unchanged, customers=len(plan.customers),
               invoices_changed=len(changed))
        result = {
            "file": source, "rows": len(export.invoices) + len(export.credit_notes),
            "invoices_added": len(plan.new), "invoices_unchanged": plan.unchanged,
            "invoices_changed": len(changed),
            "credit_notes": len(export.credit_notes), "customers": len(plan.customers),
            "changes": sorted(
                [{"line": c.line, "invoice_id": c.invoice_id, "where": "case", "changes": c.changes} for c in plan.cases]
                + [{"line": c.line, "invoice_id": c.invoice_id, "where": "ledger", "changes": c.changes}
                   for c in plan.ledger if c.invoice_id not in on_cases], key=lambda c: (c["line"], c["invoice_id"], c["where"])),
            "closed_cases_not_changed": plan.closed,
        }
        return result, plan

    # -- reads ---------------------------------------------------------------------------
    def summary_row(self, ref: str):
        """A case by its id or by its invoice id."""
        column = case_summary.c.case_id if _is_uuid(ref) else case_summary.c.invoice_id
        with self.ctx.db.read() as session:
            row = session.execute(select(case_summary).where(column == ref)).first()
            if row is None and _is_uuid(ref):
                row = session.execute(select(case_summary).where(case_summary.c.invoice_id == ref)).first()
        if row is None:
            raise DomainError(f"unknown case {shown(ref)}", "case_id")
        return row

    def show(self, ref: str) -> dict:
        row = self.summary_row(ref)
        state = CaseState.model_validate_json(row.state)
        records = self.ctx.store.records(UUID(row.case_id))
        return {
            **summary_dict(row),
            "customer_email": state.customer.email,
            "advance": state.advance.model_dump(mode="json") if state.advance else None,  # a case of kind advance
            "totals": {
                "payments": str(state.payments.amount),
                "credits": str(state.credits.amount),
                "write_offs": str(state.write_offs.amount),
                "fees": str(state.fees.amount),
                # of which statutory interest and fixed compensation (domain/interest.py)
                "interest": str(state.interest.amount) if state.interest else "0",
                "compensation": str(state.compensation.amount) if state.compensation else "0",
                "interest_accrued_to": state.interest_accrued_to.isoformat() if state.interest_accrued_to else None,
                "customer_credit": str(state.customer_credit.amount),
                "credit_applied": str(state.credit_applied_total.amount),
                "indemnity": str(state.indemnity_total.amount),
                "discounts": str(state.discounts.amount) if state.discounts else "0",
                "factored": str(state.factored.amount) if state.factored else "0",
            },
            "dispute": state.dispute.model_dump(mode="json") if state.dispute else None,
            "promise": state.promise.model_dump(mode="json") if state.promise else None,
            "plan": state.plan.model_dump(mode="json") if state.plan else None,
            "escalation": state.escalation.model_dump(mode="json") if state.escalation else None,
            "approvals": [a.model_dump(mode="json") for a in state.approvals],
            "pause": state.pause.model_dump(mode="json") if state.pause else None,
            "pause_request": state.pause_request.model_dump(mode="json") if state.pause_request else None,
            "insurance": insurance_dict(state),
            # early-cash instruments (docs/FINANCING.md)
            "financing": state.financing.model_dump(mode="json") if state.financing else None,
            "discount_offer": state.discount_offer.model_dump(mode="json") if state.discount_offer else None,
            "events": [r.as_dict() for r in records],
            # money received after a write-off: administration events of the invoice (WriteOffRecovered)
            "recoveries": self.recoveries(row.invoice_id),
        }

    def list(self, status: str | None = None, limit: int = 1000) -> list[dict]:
        query = select(case_summary).order_by(case_summary.c.opened_at, case_summary.c.invoice_id).limit(limit)
        if status:
            if status not in CaseStatus.__members__:
                raise DomainError(f"{shown(status)} is not a status ({', '.join(CaseStatus.__members__)})", "status")
            query = query.where(case_summary.c.status == status)
        with self.ctx.db.read() as session:
            return [summary_dict(r) for r in session.execute(query)]

    def approvals(self, status: str | None = "pending", limit: int | None = None, offset: int = 0) -> list[dict]:
        """Oldest request first; ``limit``/``offset`` page through them (index ix_approvals_page)."""
        if status is not None and status not in APPROVAL_STATUSES:
            raise DomainError(f"{shown(status)} is not one of {', '.join(APPROVAL_STATUSES)}", "status")
        query = select(approvals).order_by(approvals.c.requested_at, approvals.c.approval_id)
        if status and status != "all":
            query = query.where(approvals.c.status == status)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        with self.ctx.db.read() as session:
            rows = [approval_dict(r) for r in session.execute(query)]
        return self._with_approver(rows)

    def _with_approver(self, rows: list[dict]) -> list[dict]:
        """Each pending item's ``approver``: the lowest role the policy lets approve it (a write-off
        by the case's total); None when only a rejection is possible."""
        for row, (policy, reduced) in zip(rows, self.approval_rules(rows)):
            if row["status"] == "pending":
                approver = approver_role(row["kind"], Role(row["tier"]), Money.of(row["amount"], row["currency"]),
                                         policy, reduced)
                row["approver"] = approver.value if approver else None
        return rows

    def approval_rules(self, rows: list[dict]) -> list[tuple[Policy, Reduced | None]]:
        """For each pending item, the policy its case runs under and what people already reduced
        the case by: what the decider judges a decision with."""
        pending = {r["case_id"] for r in rows if r["status"] == "pending" and r["case_id"]}
        pinned = self.pinned_policies(pending)
        with self.ctx.db.read() as session:
            states = dict(session.execute(select(case_summary.c.case_id, case_summary.c.state)
                                          .where(case_summary.c.case_id.in_(sorted(pending)))).all()) if pending else {}
        reduced = {case_id: reduced_of(CaseState.model_validate_json(state)) for case_id, state in states.items()}
        return [(pinned.get(r["case_id"]) or self.ctx.policy(), reduced.get(r["case_id"])) for r in rows]

    def approval(self, approval_id: str) -> dict:
        """One item of the approvals inbox, whatever its status."""
        with self.ctx.db.read() as session:
            row = session.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()
        if row is None:
            raise DomainError(f"unknown approval {shown(approval_id)}", "approval_id")
        return approval_dict(row)

    def pinned_policies(self, case_ids: set[str]) -> dict[str, Policy | None]:
        """The policy each case was opened under (None when its text is not stored)."""
        if not case_ids:
            return {}
        with self.ctx.db.read() as session:
            versions = dict(session.execute(select(case_summary.c.case_id, case_summary.c.policy_version)
                                            .where(case_summary.c.case_id.in_(sorted(case_ids)))).all())
        loaded: dict[str, Policy | None] = {}
        for version in set(versions.values()):
            try:
                loaded[version] = self.ctx.policies.get(version)
            except DomainError:
                loaded[version] = None
        return {case_id: loaded[version] for case_id, version in versions.items()}

    def recent_decisions(self, limit: int = 20) -> list[dict]:
        """The latest decided approvals and escalations, the last decided first (escalations
        decided before their decision time was kept show at their request's time)."""
        decided = func.coalesce(approvals.c.decided_at, approvals.c.requested_at)
        query = (select(approvals).where(approvals.c.status != "pending")
                 .order_by(decided.desc(), approvals.c.approval_id).limit(limit))
        with self.ctx.db.read() as session:
            return [approval_dict(r) for r in session.execute(query)]

    # -- opening -----------------------------------------------------------------------------
    async def open_case(self, invoice_id: str, reason: str = "overdue", actor: Actor | None = None,
                        today: date | None = None) -> dict:
        """Open the invoice's case; ``today`` (UTC by default) judges whether it is overdue."""
        try:
            open_reason = OpenReason(reason)
        except ValueError:
            raise DomainError(f"{shown(reason)} is not one of overdue, dispute, manual", "reason") from None
        facts = self.ctx.ledger.invoice(invoice_id)
        existing = self._existing(invoice_id)
        if existing is not None:
            return {**existing, "opened": False}
        check_overdue_opening(reason, invoice_id, facts.due_date, today or datetime.now(timezone.utc).date())
        policy = self.ctx.policy()
        case_id = case_uuid(invoice_id)
        from activities.opening import customer_pause

        opening = cmd.OpenCase(
            command_id=uuid4(), actor=actor or self.ctx.actor(None), case_id=case_id, invoice=facts, reason=open_reason,
            customer_pause=customer_pause(self.ctx.store, facts.customer.customer_id, datetime.now(timezone.utc)),
            reminders_after_due=True,
        )
        if not (facts.amount - facts.paid).is_positive:
            raise DomainError(f"invoice {invoice_id} is already paid", "invoice_id")
        from activities.opening import start_case

        client = await self.ctx.client()
        started = await start_case(
            client, task_queue=self.ctx.settings.task_queue, id_prefix=self.ctx.settings.workflow_id_prefix,
            policy=policy, opening=opening,
        )
        # Started now or moments ago by someone else: either way, wait until it is durable.
        handle = client.get_workflow_handle(self._workflow_id(invoice_id))
        if not started and (existing := self._existing(invoice_id)) is not None:
            return {**existing, "opened": False}
        reply = await self._answer(handle, self.opened(handle))
        return {**reply_dict(reply), "opened": started}

    @staticmethod
    def opened(handle):
        """The case's answer once it is open and durable (the Update ``opened``)."""
        return execute_update(handle, "opened", id=str(uuid4()), result_type=CommandReply)

    def _workflow_id(self, invoice_id: str) -> str:
        return case_workflow_id(invoice_id, self.ctx.settings.workflow_id_prefix)

    async def _answer(self, handle, call):
        """Await a workflow's answer; a missing worker or a failing workflow is an error, not a hang."""
        from app.waiting import await_workflow

        settings = self.ctx.settings
        return await await_workflow(await self.ctx.client(), handle.id, call, timeout=settings.command_timeout,
                                    task_queue=settings.task_queue)

    def _existing(self, invoice_id: str) -> dict | None:
        try:
            return summary_dict(self.summary_row(invoice_id))
        except DomainError:
            return None

    # -- commands ----------------------------------------------------------------------------
    async def _send(self, ref: str, update: str, build: Callable[[dict], cmd.Command]) -> dict:
        """Send a command to the case's workflow as the Update named ``update``."""
        from temporalio.client import WorkflowUpdateFailedError
        from temporalio.service import RPCError, RPCStatusCode

        row = self.summary_row(ref)
        summary = summary_dict(row)
        if row.status in ("paid", "resolved", "written_off", "cancelled"):
            raise DomainError(f"case is closed ({row.status}); it accepts no further commands", "case")
        command = build(summary)
        client = await self.ctx.client()
        handle = client.get_workflow_handle(self._workflow_id(row.invoice_id))
        # Temporal answers a known Update id with its first outcome, unvalidated: the id binds the
        # command's content, so the same id with other content reaches the decider (a conflict).
        update_id = str(uuid5(command.command_id, command.model_dump_json(exclude={"actor"})))
        deliver = execute_update(handle, update, command, id=update_id, result_type=CommandReply)
        try:
            reply = await self._answer(handle, deliver)
        except WorkflowUpdateFailedError as error:
            raise _domain_error(error.cause) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                if self._closed(row.case_id):
                    raise DomainError("case is closed; it accepts no further commands", "case") from None
                raise DomainError(f"case {row.case_id} is not running (it may have just closed)", "case") from None
            raise
        return reply_dict(reply)

    def _closed(self, case_id: str) -> bool:
        with self.ctx.db.read() as session:
            closed = session.execute(select(case_summary.c.closed_at).where(case_summary.c.case_id == case_id)).scalar()
        return closed is not None

    async def pay(self, invoice_id: str, amount: str, reference: str, actor: Actor,
                  payment_id: str | None = None, received_on: date | None = None,
                  matched_by: str = "direct", payer: str = "", today: date | None = None,
                  reason: str | None = None, within_tolerance: bool = False, split: bool = False) -> dict:
        """A payment to its invoice's open case, or (no case yet) onto the ledger. ``today``:
        the day it is recorded, for a replay of history on its own clock (the backtest).
        ``within_tolerance``: a bank receipt (what it leaves within the policy's tolerance is written
        off); ``split``: one share of a receipt that pays several invoices' cases under one payment id.
        A case of kind advance (its id is the request id) is paid as its advance request: the money is
        an advance held on the customer (``payments prepay --request``), and the case sees it."""
        dunned = self._existing(invoice_id)
        if dunned is not None and dunned["kind"] == "advance":
            from app.credit import CreditService

            paid = await CreditService(self).prepay(dunned["customer_id"], amount, dunned["currency"], actor,
                                                    payment_id, received_on, reference, request_id=invoice_id)
            case = paid["advance_case"] or {}
            return {**paid, "invoice_id": invoice_id, "case_id": dunned["case_id"], "applied_to": "advance request",
                    "status": case.get("status", dunned["status"]), "balance": case.get("balance", dunned["balance"])}
        facts = self.ctx.ledger.invoice(invoice_id)
        money = positive_money(amount, facts.amount.currency)
        today = today or datetime.now(timezone.utc).date()
        received = check_received_on(received_on or today, today, self.ctx.policy().inputs, facts.issue_date)
        pid = check_identifier(payment_id, "payment_id") if payment_id is not None else f"pay-{uuid4()}"
        cmd.check_text(reference, "reference")
        # the payments table's row of a client's payment id, read once: a repeat or a conflict
        seen = self._payment_row(pid) if payment_id and not split else None
        if seen is not None and seen.status in ("reversed", RECOVERY_REVERSED):
            raise reversed_payment_id(pid)
        # a recovery of this invoice sent again: its repeat (or conflict) is the recovery's to judge
        recovery_again = seen is not None and seen.status == "recovered" and seen.invoice_id == invoice_id
        known = None if recovery_again else self._known_payment(seen, invoice_id, money, received, reference)
        if known is not None:  # a repeat of a payment recorded on the ledger (no case then)
            return known
        if dunned is not None and dunned["status"] == "written_off" and not split:
            return self._recover(invoice_id, pid, money, received, reference, actor, reason, payer=payer)
        # Temporal answers a repeat with the first reply (its events): say it changed nothing.
        repeat = seen is not None
        if dunned is None:
            if split:
                raise DomainError(f"invoice {invoice_id} has no case to take a share of a split payment", "invoice_id")
            open_amount = facts.amount - facts.paid
            if not open_amount.is_positive:
                raise DomainError(f"invoice {invoice_id} is paid on the ledger (no case is open); record the "
                                  "money as a prepayment (`payments prepay`)", "invoice_id")
            # paid beyond the open amount: the invoice is settled, the rest is the customer's credit
            excess = money - open_amount if money > open_amount else None
            recorded = self._pay_on_ledger(invoice_id, pid, money, received, reference, payer, matched_by, actor,
                                           reason, excess)
            reply = {"invoice_id": invoice_id, "payment_id": pid, "case_id": None, "recorded": recorded,
                     "applied_to": "invoice", "amount": str(money.amount), "currency": money.currency,
                     "excess": (excess or Money.zero(money.currency)).model_dump(mode="json")["amount"]}
            if recorded and excess is not None and self.ctx.policy().credit.auto_apply:
                from app.credit import CreditService  # as a case's overpayment: to the customer's other cases

                reply["credit_applied"] = await CreditService(self).auto_apply(facts.customer.customer_id, actor)
            return reply
        # The payments table's row is written with the PaymentReceived event (store/payments.py).
        result = await self._send(
            invoice_id, "pay",
            lambda s: cmd.RecordPayment(command_id=_command_id(pid, invoice_id if split else None), actor=actor,
                                        payment_id=pid, amount=money, reference=reference, received_on=received,
                                        payer=payer[:300], matched_by=matched_by, within_tolerance=within_tolerance),
        )
        if result["status"] == "paid" and self.ctx.policy().credit.auto_apply:
            from app.credit import (
                CreditService,  # an overpayment's excess goes to the customer's other cases
            )

            result["credit_applied"] = await CreditService(self).auto_apply(facts.customer.customer_id, actor)
        if repeat:  # Temporal's first reply is the case as it was then: show it as it is now
            current = summary_dict(self.summary_row(invoice_id))
            result |= {key: current[key] for key in ("status", "balance", "currency", "version")} | {"recorded": False}
        return {**result, "payment_id": pid, "applied_to": "case"}

    def _pay_on_ledger(self, invoice_id: str, pid: str, money: Money, received: date, reference: str, payer: str,
                       matched_by: str, actor: Actor, reason: str | None, excess: Money | None = None) -> bool:
        """A payment on an invoice without a case: the ledger's rows and the administration
        event that records it (``LedgerPaymentRecorded``, or ``PaymentAssigned`` when a person
        assigned an unmatched payment) in one transaction. False: already recorded. ``excess``:
        paid beyond the open amount, recorded on the event as the customer's credit."""
        from app.adminlog import Unchanged, record
        from domain import admin
        from store.ledger import record_ledger_payment

        def change(connection) -> None:
            if not record_ledger_payment(connection, invoice_id, pid, money, received, reference, payer, matched_by,
                                         excess):
                raise Unchanged

        assigned = matched_by == "manual"
        default = f"payment received (matched by {matched_by})" + (f": {reference}" if reference else "")
        event = record(self.ctx, "payment", pid, admin.PaymentAssigned if assigned else admin.LedgerPaymentRecorded,
                       actor, admin.check_reason(reason, required=assigned, default=default[:500]),
                       f"payment {pid} (invoice {invoice_id})", within=change, payment_id=pid,
                       invoice_id=invoice_id, amount=money, excess=excess, received_on=received,
                       **({} if assigned else {"matched_by": matched_by}))
        return event is not None

    def _recover(self, invoice_id: str, pid: str, money: Money, received: date, reference: str, actor: Actor,
                 reason: str | None, payer: str | None = None) -> dict:
        """Money received on an invoice whose case was written off: bad debt recovered, an
        administration event (``WriteOffRecovered``) on the invoice's recovery stream; the case has
        ended and stays written off. At most what was written off on it, all recoveries together
        (more is refused naming ``amount``); a payment id recorded again with the same content is a
        repeat (nothing changes), with other content a conflict. ``payer`` (money recorded by `pay`,
        not a bank line that has its row): the payments table's row of the receipt, ``recovered``,
        written in the event's transaction, so that its id names this payment for every later
        payment, as a bank line's does."""
        from domain import admin
        from store.event_store import ConcurrencyError
        from store.payments import insert_payment

        row = self.summary_row(invoice_id)
        written = CaseState.model_validate_json(row.state).write_offs
        stream = admin.admin_stream_id("recovery", invoice_id)
        elsewhere = self.recovery_named(pid)
        if elsewhere is not None and elsewhere.invoice_id != invoice_id:
            raise recorded_on_another_invoice(pid, elsewhere.invoice_id)

        def receipt(session) -> None:  # in the event's transaction: the id is still free, or nothing is
            if not insert_payment(session, payment_id=pid, amount=money, received_on=received, payer=payer or "",
                                  reference=reference, status="recovered", invoice_id=invoice_id,
                                  case_id=row.case_id, matched_by="direct"):
                raise _IdTaken(session.execute(select(payments.c.invoice_id, payments.c.status)
                                               .where(payments.c.payment_id == pid)).one())

        name = actor.name
        command_id = uuid4()
        for attempt in range(8):
            records = self.ctx.store.records(stream)
            earlier = [r.event for r in records]  # its recoveries, and those the bank took back
            same = next((e for e in earlier if isinstance(e, admin.WriteOffRecovered) and e.payment_id == pid), None)
            if same is not None:
                if any(isinstance(e, admin.WriteOffRecoveryReversed) and e.payment_id == pid for e in earlier):
                    raise reversed_payment_id(pid)
                check_same_payment(pid, {"amount": same.amount, "received_on": same.received_on,
                                         "reference": same.reference},
                                   {"amount": money, "received_on": received, "reference": reference})
                return self._recovery_reply(row, written, earlier, same, recorded=False)
            admin.check_recovery(written, earlier, money)
            version = records[-1].event.version if records else 0
            default = "bad debt recovered on a written-off invoice" + (f": {reference}" if reference else "")
            event = admin.record(
                admin.WriteOffRecovered, stream, version, command_id, datetime.now(timezone.utc), name,
                admin.check_reason(reason, required=False, default=default[:500]),
                f"recovery {pid} (invoice {invoice_id})", payment_id=pid, invoice_id=invoice_id,
                case_id_ref=row.case_id, amount=money, received_on=received, reference=reference)
            try:
                self.ctx.store.append(stream, version, [event], {"command_id": str(command_id),
                                                                 "command": "WriteOffRecovered", "actor": name},
                                      within=None if payer is None else receipt)
            except ConcurrencyError:  # another recovery of this invoice meanwhile: judge again
                if attempt == 7:
                    raise
                continue
            except _IdTaken as taken:  # the id was recorded meanwhile: here, judged again; else refused
                if taken.row.invoice_id == invoice_id and taken.row.status == "recovered" and attempt < 7:
                    continue
                if taken.row.invoice_id:
                    raise recorded_on_another_invoice(pid, taken.row.invoice_id) from None
                raise DomainError(f"payment {shown(pid)} was already recorded as a bank line waiting to be assigned "
                                  "(`payments unmatched`); a payment id names one payment", "payment_id") from None
            return self._recovery_reply(row, written, [*earlier, event], event, recorded=True)
        raise AssertionError("unreachable")

    def recovery_named(self, pid: str):
        """The ``WriteOffRecovered`` recorded under payment id ``pid`` (one at most: ``_recover`` refuses
        the same id on another invoice), or None."""
        return next((r.event for r in self.ctx.store.read_types(("WriteOffRecovered",)) if r.event.payment_id == pid),
                    None)

    @staticmethod
    def _recovery_reply(row, written: Money, recoveries: list, event, recorded: bool) -> dict:
        from domain.admin import recovered_so_far

        recovered = recovered_so_far(written.currency, recoveries)
        return {"invoice_id": row.invoice_id, "case_id": row.case_id, "status": row.status,
                "payment_id": event.payment_id, "applied_to": "recovery", "recorded": recorded,
                "amount": str(event.amount.amount), "currency": event.amount.currency,
                "received_on": event.received_on.isoformat(), "written_off": str(written.amount),
                "recovered": str(recovered.amount), "recoverable": str((written - recovered).amount)}

    def recoveries(self, invoice_id: str) -> list[dict]:
        """The recoveries recorded on an invoice written off (``WriteOffRecovered``), oldest first."""
        from domain import admin

        return [r.as_dict() for r in self.ctx.store.records(admin.admin_stream_id("recovery", invoice_id))]

    def _payment_row(self, pid: str):
        """The payments table's row of ``pid`` once recorded (None: unknown, or held unmatched)."""
        from store.payments import PaymentLedger

        row = PaymentLedger(self.ctx.db).get(pid)
        return row if row is not None and row.status != "unmatched" else None

    def _known_payment(self, row, invoice_id: str, money: Money, received: date, reference: str) -> dict | None:
        """A client's payment id binds what it paid (``row``: its ``_payment_row``). Known on another
        invoice: a conflict. Known on this invoice's ledger (no case then) or on its case once closed
        (the payment that closed it, sent again): the same content is a repeat (its reply), other
        content a conflict. Applied to this invoice's open case: the case's decider judges (a repeat
        or a conflict)."""
        if row is None:
            return None
        pid = row.payment_id
        if row.invoice_id != invoice_id:
            raise recorded_on_another_invoice(pid, row.invoice_id)
        case = self.summary_row(invoice_id) if row.case_id is not None else None
        if case is not None and case.closed_at is None:
            return None
        check_same_payment(pid, {"amount": row.amount, "received_on": row.received_on, "reference": row.reference},
                           {"amount": money, "received_on": received, "reference": reference})
        if case is not None:
            shown_case = summary_dict(case)
            return {key: shown_case[key] for key in ("case_id", "invoice_id", "status", "balance", "currency",
                                                     "version")} | {"events": [], "payment_id": pid, "recorded": False}
        return {"invoice_id": invoice_id, "payment_id": pid, "case_id": None, "recorded": False,
                "applied_to": "invoice", "amount": str(row.amount.amount), "currency": row.amount.currency}

    async def open_dispute(self, ref: str, reason: str, actor: Actor, amount: str | None = None,
                           note: str = "", attachment=None) -> dict:
        cmd.check_text(note, "comment")
        return await self._send(ref, "open_dispute", lambda s: cmd.OpenDispute(
            command_id=uuid4(), actor=actor, reason=cmd.check_code(reason, "reason"), note=note, attachment=attachment,
            amount=positive_money(amount, s["currency"]) if amount is not None else None))

    async def resolve_dispute(self, ref: str, outcome: str, actor: Actor, credit: str | None = None, note: str = "") -> dict:
        try:
            resolved = DisputeOutcome(outcome)
        except ValueError:
            raise DomainError(f"{shown(outcome)} is not one of upheld, rejected", "outcome") from None
        return await self._send(ref, "resolve_dispute", lambda s: cmd.ResolveDispute(
            command_id=uuid4(), actor=actor, outcome=resolved, note=note,
            credit=positive_money(credit, s["currency"], "credit") if credit is not None else None))

    async def promise(self, ref: str, amount: str, on: str, actor: Actor) -> dict:
        promised = _parse_date(on, "date")
        return await self._send(ref, "promise", lambda s: cmd.MakePromise(
            command_id=uuid4(), actor=actor, amount=positive_money(amount, s["currency"]), promised_date=promised))

    async def report_payment(self, ref: str, amount: str, paid_on: str, reference: str, actor: Actor) -> dict:
        """The customer says it was paid: recorded on the case as a hint for the matcher."""
        day = _parse_date(paid_on, "paid_on")
        cmd.check_text(reference, "reference")
        return await self._send(ref, "report_payment", lambda s: cmd.ReportPayment(
            command_id=uuid4(), actor=actor, amount=positive_money(amount, s["currency"]), paid_on=day,
            reference=reference))

    async def correct_contact(self, ref: str, email: str, actor: Actor) -> dict:
        """A new billing contact e-mail for the case's customer: notices go there from now on."""
        from domain.inputs import check_email

        check_email((email or "").strip(), "email")
        return await self._send(ref, "correct_contact", lambda s: cmd.CorrectContact(
            command_id=uuid4(), actor=actor, email=email.strip()))

    async def propose_plan(self, ref: str, instalments: int, every: str, actor: Actor, first: str | None = None) -> dict:
        interval = parse_duration(every, "every")
        first_due = None
        if first:
            day = _parse_date(first, "first")
            first_due = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return await self._send(ref, "propose_plan", lambda s: cmd.ProposePlan(
            command_id=uuid4(), actor=actor, instalments=instalments, every=interval, first_due=first_due))

    async def accept_plan(self, ref: str, actor: Actor) -> dict:
        return await self._send(ref, "accept_plan",
                                lambda s: cmd.AcceptPlan(command_id=uuid4(), actor=actor))

    async def withdraw_plan(self, ref: str, reason: str, actor: Actor) -> dict:
        cmd.check_text(reason, "reason", required=True)
        return await self._send(ref, "withdraw_plan",
                                lambda s: cmd.WithdrawPlan(command_id=uuid4(), actor=actor, reason=reason))

    async def pause(self, ref: str, until: str, reason: str, actor: Actor, scope: str = "case") -> dict:
        """Stop notices until ``until`` (a date: dunning resumes at 00:00 UTC that day; or an ISO
        date-time with its offset)."""
        end = parse_until(until)
        return await self._send(ref, "pause", lambda s: cmd.PauseDunning(
            command_id=uuid4(), actor=actor, until=end, reason=cmd.check_code(reason, "reason"), scope=scope))

    async def resume(self, ref: str, reason: str, actor: Actor) -> dict:
        cmd.check_text(reason, "reason", required=True)
        return await self._send(ref, "resume",
                                lambda s: cmd.ResumeDunning(command_id=uuid4(), actor=actor, reason=reason))

    async def decide_escalation(self, ref: str, decision: str, actor: Actor, note: str = "") -> dict:
        try:
            chosen = EscalationDecision(decision)
        except ValueError:
            options = ", ".join(d.value for d in EscalationDecision)
            raise DomainError(f"{shown(decision)} is not one of {options}", "decision") from None
        return await self._send(ref, "decide_escalation", lambda s: cmd.DecideEscalation(
            command_id=uuid4(), actor=actor, decision=chosen, note=note))

    async def request_write_off(self, ref: str, amount: str, reason: str, actor: Actor) -> dict:
        return await self._send(ref, "request_write_off", lambda s: cmd.RequestWriteOff(
            command_id=uuid4(), actor=actor, amount=positive_money(amount, s["currency"]),
            reason=cmd.check_code(reason, "reason")))

    async def assign(self, ref: str, assignee: str, actor: Actor) -> dict:
        self.ctx.users.get(assignee)
        return await self._send(ref, "assign",
                                lambda s: cmd.AssignCase(command_id=uuid4(), actor=actor, assignee=assignee))

    async def cancel(self, ref: str, reason: str, actor: Actor) -> dict:
        return await self._send(ref, "cancel", lambda s: cmd.CancelCase(
            command_id=uuid4(), actor=actor, reason=cmd.check_code(reason, "reason")))

    def letter(self, ref: str, seq: int, out: str | None) -> dict:
        """The PDF letter of notice ``seq``, rendered again into ``out`` (app/letters.py)."""
        from pathlib import Path

        from app.letters import reproduce

        row = self.summary_row(ref)
        return reproduce(self.ctx, row.case_id, row.invoice_id, seq, Path(out) if out else None)

    async def waive_interest(self, ref: str, amount: str | None, reason: str, actor: Actor) -> dict:
        return await self._send(ref, "waive_interest", lambda s: cmd.WaiveInterest(
            command_id=uuid4(), actor=actor, amount=positive_money(amount, s["currency"]) if amount else None,
            reason=cmd.check_code(reason, "reason")))

    async def decide_approval(self, approval_id: str, approve: bool, actor: Actor, reason: str = "") -> dict:
        cmd.check_text(reason, "reason", required=True)  # approving, like rejecting, says why (audit trail)
        with self.ctx.db.read() as session:
            row = session.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()
        if row is None:
            raise DomainError(f"unknown approval {shown(approval_id)}", "approval_id")
        if row.kind == "escalation":
            raise DomainError("an escalation is decided with `escalation decide CASE_ID --decision ...`", "approval_id")
        if row.status != "pending":
            raise DomainError(f"approval {approval_id} was already {row.status}", "approval_id")
        if row.kind == "refund":  # an advance's refund (docs/ADVANCES.md): decided on the customer's stream
            from app.advances import AdvanceService

            refunds = AdvanceService(self)
            done = (refunds.approve_refund(approval_id, actor, reason) if approve
                    else refunds.reject_refund(approval_id, reason, actor))
            return {**done, "approval_id": approval_id, "invoice_id": row.invoice_id}
        return await self._send(row.case_id, "decide_approval", lambda s: cmd.DecideApproval(
            command_id=uuid4(), actor=actor, approval_id=approval_id, approve=approve, reason=reason))

    def rebuild_projections(self) -> dict:
        replayed = self.ctx.store.rebuild_projections()
        return {"events_replayed": replayed}


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def _command_id(payment_id: str, share_of: str | None = None) -> UUID:
    """A payment's command id is derived from its id: a retried `pay` is the same update (a share
    of a split payment: from its id and the invoice it goes to)."""
    return uuid5(NAMESPACE_URL, f"payment:{payment_id}" + (f":{share_of}" if share_of else ""))


def parse_until(text: str, field: str = "until") -> datetime:
    """A pause's end: YYYY-MM-DD (00:00 UTC that day) or an ISO 8601 date-time with its offset."""
    text = (text or "").strip()
    if len(text) == 10:
        day = parse_date(text, field)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(f"{shown(text)} is not a date (YYYY-MM-DD) or a date-time with its offset "
                          "(2026-12-31T09:00:00+00:00)", field) from None
    if moment.tzinfo is None:
        raise DomainError(f"{shown(text)} has no offset; add one, e.g. +00:00 or Z", field)
    parse_date(moment.date(), field)  # within the dates accepted
    return moment.astimezone(timezone.utc)


def _parse_date(text: str, field: str) -> date:
    return parse_date(text, field)


class TryAgain(RuntimeError):
    """The case did not take the command and nothing was applied; the same request may be sent
    again (API: 429 with Retry-After; CLI: exit 1)."""

    retry_after = 1


def _domain_error(cause: BaseException | None) -> Exception:
    from temporalio.exceptions import ApplicationError

    if isinstance(cause, ApplicationError) and cause.type == BUSY:
        return TryAgain(f"{cause.message} (retry in a moment)")
    if isinstance(cause, ApplicationError) and cause.type in ("DomainError", "NotReady"):
        field = cause.details[0] if cause.details else None
        message = cause.message
        if field and message.startswith(f"{field}: "):
            message = message[len(field) + 2:]
        return DomainError(message, field)
    return RuntimeError(f"command failed: {cause}")
