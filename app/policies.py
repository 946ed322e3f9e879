"""Policy versions and notice previews: what the rules are, and what a customer would read."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

from activities.contracts import NoticeRequest
from activities.rendering import NoticeRenderer
from app.adminlog import Unchanged, default_actor, record
from app.services import CaseService
from domain.admin import PolicyPinned, check_reason
from domain.policy import parse_policy
from store.customers import CustomerReads
from store.policies import digest_of, pin_policy
from domain import commands as cmd
from domain.agenda import notice_due
from domain.errors import DomainError
from domain.state import CaseState
from domain.users import Actor


def pin_file(service: CaseService, path: Path, actor: Actor | None = None, reason: str | None = None) -> dict:
    if not path.is_file():
        raise DomainError(f"{path} does not exist or is not a file", "file")
    return {**pin_text(service, path.read_text(encoding="utf-8"), str(path), actor, reason), "file": str(path)}


def pin_text(service: CaseService, text: str, source: str, actor: Actor | None = None,
             reason: str | None = None) -> dict:
    """Validate a policy and keep it under its version (it does not become the active one).
    A new version is recorded as ``PolicyPinned`` (who, when, why) in the same transaction;
    pinning the same text again changes nothing and records nothing."""
    reason = check_reason(reason)
    policy = parse_policy(text, source)
    actor = actor or default_actor(service.ctx)

    def change(session) -> None:
        if not pin_policy(session, policy, text, source):
            raise Unchanged

    event = record(service.ctx, "policy", policy.version, PolicyPinned, actor, reason, f"policy {policy.version}",
                   within=change, policy_version=policy.version, digest=digest_of(text), source=source)
    return {"version": policy.version, "description": policy.description, "pinned": event is not None}


def versions(service: CaseService) -> list[dict]:
    active = service.ctx.policy().version
    return [{"version": v, "active": v == active} for v in service.ctx.policies.versions()]


async def migrate(service: CaseService, ref: str, version: str, reason: str, actor: Actor) -> dict:
    policy = service.ctx.policies.get(version)
    return await service._send(ref, "migrate_policy", lambda s: cmd.MigratePolicy(
        command_id=uuid4(), actor=actor, policy=policy, reason=reason))


def preview(service: CaseService, ref: str, level: int | None = None) -> dict:
    """The notice the case would send now (or at ``level``), rendered as the customer gets it."""
    row = service.summary_row(ref)
    state = CaseState.model_validate_json(row.state)
    policy = service.ctx.policies.get(state.policy_version).for_case(state.advance is not None)
    steps = len(policy.ladder(state.risk_grade))
    if level is not None and not 1 <= level <= steps:
        raise DomainError(f"must be between 1 and {steps} for this case's ladder", "level")
    today = datetime.now(timezone.utc).date()
    notice = notice_due(state, policy, level, on=today)
    request = NoticeRequest(
        case_id=state.case_id, seq=notice.seq, level=notice.level, step=notice.step, final=notice.final,
        invoice_id=state.invoice_id, customer=state.customer, amount_due=notice.amount_due, balance=state.balance,
        fee=notice.fee, due_date=state.due_date, issue_date=state.issue_date, interest=notice.interest,
        issued_on=today, advance=state.advance, respond_within=notice.respond_within,
    )
    # the customer's credit as the notice would state it if sent now (none for a deposit request)
    credit = [] if state.advance is not None else \
        CustomerReads(service.ctx.db, service.ctx.store).credit_on_account(state.customer.customer_id, today)
    rendered = NoticeRenderer().render([request], credit)
    return {"case_id": str(state.case_id), "invoice_id": state.invoice_id, "level": notice.level,
            "step": notice.step, "language": rendered.language, "to": state.customer.email,
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html}
