"""No silent stall (issue 13, item 6): the stuck-case report and customer-wide dunning pauses.

A case is stuck when it is open and waits on nobody: no timer in its agenda and no pending
human item with an owner (``domain.agenda.stuck_reason``). A customer pause is an event on the
customer's stream (a case opened while it lasts opens paused) and a pause of each open case of the
customer, each an event on its case with the same reason and end date.
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

from sqlalchemy import select

from app.services import CaseService, parse_until
from domain import commands as cmd
from domain import customer as cu
from domain.agenda import stuck_reason
from domain.errors import DomainError, shown
from domain.state import CaseState
from domain.users import Actor
from store.reads import open_cases
from store.schema import case_summary, customers


def stuck_cases(service: CaseService) -> list[dict]:
    """Every open case that waits on nobody, oldest first."""
    query = (select(case_summary.c.case_id, case_summary.c.invoice_id, case_summary.c.customer_id,
                    case_summary.c.status, case_summary.c.waiting_for, case_summary.c.state)
             .where(open_cases()).order_by(case_summary.c.opened_at, case_summary.c.invoice_id))
    found = []
    with service.ctx.db.read() as session:
        for row in session.execute(query):
            state = CaseState.model_validate_json(row.state)
            why = stuck_reason(state)
            if why is not None:
                found.append({"case_id": row.case_id, "invoice_id": row.invoice_id, "customer_id": row.customer_id,
                              "status": row.status, "waiting_for": row.waiting_for, "reason": why,
                              "since": state.updated_at.isoformat()})
    return found


def _open_case_refs(service: CaseService, customer_id: str) -> list[str]:
    with service.ctx.db.read() as session:
        refs = list(session.execute(select(case_summary.c.invoice_id)
                                    .where(open_cases(), case_summary.c.customer_id == customer_id)
                                    .order_by(case_summary.c.invoice_id)).scalars())
    return refs


def _customer_known(service: CaseService, customer_id: str) -> None:
    with service.ctx.db.read() as session:
        known = session.execute(select(customers.c.customer_id).where(customers.c.customer_id == customer_id)).first()
    if known is None:
        raise DomainError(f"unknown customer {shown(customer_id)}", "customer_id")


def _customers(service: CaseService):
    from app.customers import CustomerService

    return CustomerService(service.ctx)


async def pause_customer(service: CaseService, customer_id: str, until: str, reason: str, actor: Actor,
                         now: datetime | None = None) -> dict:
    """Record the pause on the customer's stream (cases opened while it lasts open paused), then
    pause every open case of the customer (each checked by its own decider: limits, approval).
    ``now``: the customer stream's clock (default the wall clock; a test on a skipped clock)."""
    end = parse_until(until)
    cmd.check_code(reason, "reason")
    _customer_known(service, customer_id)
    _customers(service).execute(customer_id, lambda state: cu.PauseCustomerDunning(
        command_id=uuid4(), actor=actor, customer_id=customer_id, until=end, reason=reason), now)
    cases = []
    for ref in _open_case_refs(service, customer_id):
        try:
            reply = await service.pause(ref, until, reason, actor, scope="customer")
        except DomainError as error:  # e.g. already paused, or closed meanwhile: the others are still paused
            cases.append({"invoice_id": ref, "outcome": "not_paused", "paused": False, "error": error.message})
            continue
        events = [e["type"] for e in reply["events"]]
        approval_id = None
        if "PauseRequested" in events:  # a collector's pause beyond their maximum waits for a supervisor
            request = CaseState.model_validate_json(service.summary_row(ref).state).pause_request
            approval_id = request.approval_id if request else None  # (written with the event)
        cases.append({"invoice_id": ref, "status": reply["status"], "paused": "DunningPaused" in events,
                      "outcome": "awaiting_approval" if "PauseRequested" in events else "paused",
                      "approval_id": approval_id, "events": events})
    return {"customer_id": customer_id, "until": parse_until(until).isoformat(), "reason": reason, "cases": cases}


async def resume_customer(service: CaseService, customer_id: str, reason: str, actor: Actor,
                          now: datetime | None = None) -> dict:
    cmd.check_text(reason, "reason", required=True)
    _customer_known(service, customer_id)
    now = now or datetime.now(timezone.utc)
    stream = cu.fold_customer(service.ctx.store.load(cu.customer_stream_id(customer_id)))
    if stream is not None and stream.pause_in_force(now) is not None:
        _customers(service).execute(customer_id, lambda state: cu.ResumeCustomerDunning(
            command_id=uuid4(), actor=actor, customer_id=customer_id, reason=reason), now)
    cases = []
    for ref in _open_case_refs(service, customer_id):
        state = CaseState.model_validate_json(service.summary_row(ref).state)
        if state.pause is None:
            continue
        reply = await service.resume(ref, reason, actor)
        cases.append({"invoice_id": ref, "status": reply["status"], "outcome": "resumed", "resumed": True})
    return {"customer_id": customer_id, "reason": reason, "cases": cases}

