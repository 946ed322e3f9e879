"""Credit insurance: insurer policies with their terms, insured invoices, indemnities.

An invoice is insured before its case opens; the case then carries the insurer's
deadlines as decided values (``CaseInsured``), notifies the insurer, files the claim
and records the indemnity (see docs/RISK.md).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from uuid import uuid4

from sqlalchemy import select

from app.adminlog import Unchanged, default_actor, record
from app.services import CaseService
from domain import commands as cmd
from domain.admin import InsurerPolicyAdded, InvoiceInsured, check_reason
from domain.durations import format_duration, parse_duration
from domain.errors import DomainError, shown
from domain.money import positive_money
from domain.users import Actor
from store.schema import case_summary, insurer_policies, invoice_insurance, invoices

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>\"'(),;:\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def _policy_dict(r) -> dict:
    return {"policy_id": r.policy_id, "insurer_id": r.insurer_id, "insurer_name": r.insurer_name,
            "insurer_email": r.insurer_email, "notify_within": r.notify_within, "max_extension": r.max_extension,
            "claim_waiting": r.claim_waiting, "indemnity_percent": r.indemnity_percent}


class InsuranceService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.db = cases.ctx.db

    def add_policy(self, policy_id: str, insurer_id: str, insurer_name: str, insurer_email: str,
                   notify_within: str, max_extension: str, claim_waiting: str, indemnity_percent: str,
                   actor: Actor | None = None, reason: str | None = None) -> dict:
        """A new insurer policy, recorded as ``InsurerPolicyAdded`` in the same transaction
        (adding the same terms again changes and records nothing)."""
        reason = check_reason(reason, required=False, default="insurer policy added")
        for value, field in ((policy_id, "policy_id"), (insurer_id, "insurer")):
            if not _ID.match(value or ""):
                raise DomainError(f"{shown(value)} is not a valid id (letters, digits, . _ / -; at most 64)", field)
        cmd.check_text(insurer_name, "name", required=True)
        if not _EMAIL.match(insurer_email or "") or len(insurer_email) > 320:
            raise DomainError(f"{shown(insurer_email)} is not an email address", "email")
        terms = {name: format_duration(parse_duration(text, name.replace("_", "-")))
                 for name, text in (("notify_within", notify_within), ("max_extension", max_extension),
                                    ("claim_waiting", claim_waiting))}
        try:
            percent = Decimal(str(indemnity_percent).strip())
        except InvalidOperation:
            raise DomainError(f"{shown(indemnity_percent)} is not a number", "indemnity") from None
        if not percent.is_finite() or not 0 < percent <= 100 or percent != percent.quantize(Decimal("0.01")):
            raise DomainError("must be a percentage above 0 and at most 100, with at most 2 decimals", "indemnity")
        row = {"policy_id": policy_id, "insurer_id": insurer_id, "insurer_name": insurer_name,
               "insurer_email": insurer_email, **terms, "indemnity_percent": str(percent)}

        def change(session) -> None:
            old = session.execute(select(insurer_policies).where(insurer_policies.c.policy_id == policy_id)).first()
            if old is not None:
                if _policy_dict(old) != row:
                    raise DomainError(f"insurer policy {policy_id} already exists with other terms; "
                                      "give changed terms a new policy id", "policy_id")
                raise Unchanged
            session.execute(insurer_policies.insert().values(**row, recorded_at=datetime.now(timezone.utc)))

        event = record(self.cases.ctx, "insurer-policy", policy_id, InsurerPolicyAdded,
                       actor or default_actor(self.cases.ctx), reason, f"insurer policy {policy_id}", within=change,
                       **{**row, "indemnity_percent": percent})
        return {**row, "added": event is not None}

    def policies(self) -> list[dict]:
        with self.db.read() as session:
            return [_policy_dict(r) for r in session.execute(select(insurer_policies).order_by(insurer_policies.c.policy_id))]

    def cover(self, invoice_id: str, policy_id: str, actor: Actor | None = None, reason: str | None = None) -> dict:
        """Insure an invoice under a policy (before its case opens: a case keeps the terms it opened with),
        recorded as ``InvoiceInsured`` in the same transaction."""
        reason = check_reason(reason, required=False, default="invoice insured")

        def change(session) -> None:
            if session.execute(select(invoices.c.invoice_id).where(invoices.c.invoice_id == invoice_id)).first() is None:
                raise DomainError(f"unknown invoice {shown(invoice_id)}", "invoice_id")
            if session.execute(select(insurer_policies.c.policy_id)
                               .where(insurer_policies.c.policy_id == policy_id)).first() is None:
                raise DomainError(f"unknown insurer policy {shown(policy_id)}", "policy")
            if session.execute(select(case_summary.c.case_id)
                               .where(case_summary.c.invoice_id == invoice_id)).first() is not None:
                raise DomainError(f"invoice {invoice_id} already has a case; insure invoices before their case opens",
                                  "invoice_id")
            current = session.execute(select(invoice_insurance.c.policy_id)
                                      .where(invoice_insurance.c.invoice_id == invoice_id)).scalar_one_or_none()
            if current is not None and current != policy_id:
                raise DomainError(f"invoice {invoice_id} is already insured under {current}", "invoice_id")
            if current is not None:
                raise Unchanged
            session.execute(invoice_insurance.insert().values(invoice_id=invoice_id, policy_id=policy_id,
                                                              recorded_at=datetime.now(timezone.utc)))

        event = record(self.cases.ctx, "invoice-insurance", invoice_id, InvoiceInsured,
                       actor or default_actor(self.cases.ctx), reason, f"invoice {invoice_id}", within=change,
                       invoice_id=invoice_id, policy_id=policy_id)
        return {"invoice_id": invoice_id, "policy_id": policy_id, "insured": True, "added": event is not None}

    async def record_indemnity(self, ref: str, amount: str, actor: Actor, reference: str = "") -> dict:
        cmd.check_text(reference, "reference")
        return await self.cases._send(ref, "record_indemnity", lambda s: cmd.RecordIndemnity(
            command_id=uuid4(), actor=actor, amount=positive_money(amount, s["currency"]), reference=reference))
