"""The customer's self-service page: what one customer sees and may do through the signed link
in a notice (app/links.py). Every action goes through the case's workflow and the same decider as
a collector's, with the actor ``customer:<customer_id>``; only the customer's own cases are reachable.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from sqlalchemy import select

from app.links import CustomerLinks, LinkRefused
from app.services import CaseService, summary_dict
from domain.decider import check_attachment
from domain.errors import DomainError, shown
from domain.events import Attachment
from domain.state import CaseState
from domain.users import Actor
from store.schema import case_summary

# What the customer's history shows: what was sent to them, what they paid or said, and the
# outcome; never the team's internal steps (escalations, approvals, assignments).
CUSTOMER_EVENTS = frozenset({
    "CaseOpened", "ReminderSent", "LateFeeCharged", "PaymentReceived", "PaymentReversed", "DisputeOpened",
    "DisputeResolved", "PromiseMade", "PromiseKept", "PromiseBroken", "PaymentPlanProposed", "PaymentPlanAccepted",
    "InstalmentPaid", "PaymentPlanDefaulted", "PaymentReported", "CustomerCreditApplied", "DunningPaused",
    "DunningResumed", "CaseClosed", "ContactCorrected", "PaymentPlanApproved", "PaymentPlanRejected",
})


# What a document is, from its first bytes (never from the name or the browser's word for it).
SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def sniff(data: bytes) -> str:
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), "application/octet-stream")


def customer_actor(customer_id: str) -> Actor:
    return Actor(name=f"customer:{customer_id}"[:100])


class SelfService:
    def __init__(self, service: CaseService) -> None:
        self.service = service
        self.ctx = service.ctx
        self.links = CustomerLinks(self.ctx.settings)

    @property
    def link_valid_for(self) -> timedelta:
        return self.ctx.policy().self_service.link_valid_for

    @property
    def requests_per_minute(self) -> int:
        return self.ctx.policy().self_service.requests_per_minute

    def customer_of(self, token: str) -> str:
        """The customer a link names (``LinkRefused`` when altered, expired or revoked)."""
        from domain.customer import customer_stream_id, fold_customer

        customer_id, issued = self.links.opened(token, None)  # signed by us: then revoked? then expired?
        state = fold_customer(self.ctx.store.load(customer_stream_id(customer_id)))
        if state is not None and state.links_revoked_at is not None and issued <= state.links_revoked_at:
            raise LinkRefused("this link was withdrawn; use the link in our latest message", "revoked", customer_id)
        return self.links.opened(token, self.link_valid_for)[0]

    def _rows(self, customer_id: str) -> list:
        query = (select(case_summary).where(case_summary.c.customer_id == customer_id)
                 .order_by(case_summary.c.due_date, case_summary.c.invoice_id))
        with self.ctx.db.read() as session:
            return list(session.execute(query))

    def page(self, customer_id: str) -> dict:
        """The customer's open items with their balances, and the history that concerns them."""
        rows = self._rows(customer_id)
        if not rows:
            raise DomainError("there is nothing open on this account", "link")
        states = {row.case_id: CaseState.model_validate_json(row.state) for row in rows}
        # the customer as their open cases know them (a corrected contact reaches open cases only)
        current = [states[row.case_id] for row in rows if row.closed_at is None] or list(states.values())
        customer = max(current, key=lambda s: s.updated_at).customer
        items, history = [], []
        for row in rows:
            summary = summary_dict(row)
            if summary["closed_at"] is None:
                items.append(summary)
            for record in self.ctx.store.records(UUID(row.case_id)):
                event = record.as_dict()
                if event["type"] in CUSTOMER_EVENTS:
                    history.append({**event, "invoice_id": row.invoice_id})
        history.sort(key=lambda e: e.get("occurred_at") or "")
        return {"customer_id": customer_id, "name": customer.name, "language": customer.language,
                "email": customer.email, "items": items, "history": history}

    def _own_case(self, customer_id: str, invoice_id: str) -> str:
        for row in self._rows(customer_id):
            if row.invoice_id == invoice_id:
                if row.closed_at is not None:
                    raise DomainError(f"invoice {shown(invoice_id)} is settled; nothing to do", "invoice_id")
                return row.invoice_id
        raise DomainError(f"invoice {shown(invoice_id)} is not one of your open invoices", "invoice_id")

    async def promise(self, customer_id: str, invoice_id: str, amount: str, on: str) -> dict:
        ref = self._own_case(customer_id, invoice_id)
        return await self.service.promise(ref, amount, on, customer_actor(customer_id))

    async def dispute(self, customer_id: str, invoice_id: str, reason: str, amount: str | None,
                      comment: str, attachment: tuple[str, bytes] | None = None) -> dict:
        """A dispute of the invoice (or of ``amount`` of it), with a reason of the policy's list and
        at most one document (``(file name, bytes)``): its kind is read from its first bytes, its
        size and kind checked against the policy, and it is kept by its SHA-256 once recorded."""
        ref = self._own_case(customer_id, invoice_id)
        described = None
        if attachment is not None and attachment[1]:
            name, data = attachment
            described = Attachment(name=(name or "attachment")[-120:], content_type=sniff(data), size=len(data),
                                   sha256=hashlib.sha256(data).hexdigest())
            check_attachment(described, self.ctx.policy())
        reply = await self.service.open_dispute(ref, reason, customer_actor(customer_id), amount or None, comment,
                                                attachment=described)
        if described is not None:
            self.keep(described.sha256, attachment[1])
        return reply

    def keep(self, sha256: str, data: bytes) -> Path:
        """The document under ``<data dir>/attachments/<sha256>`` (content-addressed: a repeat is a no-op)."""
        folder = Path(self.ctx.settings.data_dir) / "attachments"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / sha256
        if not path.exists():
            partial = folder / f".{sha256}.part"
            partial.write_bytes(data)
            partial.replace(path)
        return path

    @property
    def dispute_reasons(self) -> tuple[str, ...]:
        return self.ctx.policy().self_service.dispute_reasons

    async def correct_contact(self, customer_id: str, email: str) -> dict:
        """The billing contact's e-mail: ``ContactCorrected`` on each open case of the customer
        (notices go there from now on), and on the ledger for the cases opened later."""
        from domain.inputs import check_email

        address = check_email((email or "").strip(), "email")
        rows = [row for row in self._rows(customer_id) if row.closed_at is None]
        if not rows:
            raise DomainError("there is no open invoice on this account", "email")
        replies = []
        for row in rows:
            replies.append(await self.service.correct_contact(row.invoice_id, address, customer_actor(customer_id)))
        self.ctx.ledger.set_customer_email(customer_id, address)
        return {**replies[0], "cases": [r["case_id"] for r in replies], "email": address}

    # the intervals the page offers for a plan (within the policy's plan.min_interval..max_interval)
    PLAN_INTERVALS = ("P7D", "P14D", "P30D")

    async def request_plan(self, customer_id: str, invoice_id: str, instalments: str, every: str) -> dict:
        """A payment plan the customer asks for: within a collector's authority (policy
        ``plan.collector_max_instalments``) it is offered and accepted at once; beyond, it waits for
        a supervisor's approval and is accepted when approved."""
        ref = self._own_case(customer_id, invoice_id)
        if every not in self.PLAN_INTERVALS:
            raise DomainError(f"{shown(every)} is not one of {', '.join(self.PLAN_INTERVALS)}", "every")
        try:
            count = int(instalments)
        except ValueError:
            raise DomainError(f"{shown(instalments)} is not a whole number", "instalments") from None
        return await self.service.propose_plan(ref, count, every, customer_actor(customer_id))

    async def report_payment(self, customer_id: str, invoice_id: str, amount: str, paid_on: str,
                             reference: str) -> dict:
        ref = self._own_case(customer_id, invoice_id)
        return await self.service.report_payment(ref, amount, paid_on, reference, customer_actor(customer_id))
