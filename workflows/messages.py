"""Workflow inputs and replies (pydantic, carried by the pydantic data converter)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.commands import OpenCase, ReversePayment
from domain.events import Event, Outcome
from domain.money import Money
from domain.policy import Policy
from domain.state import CaseState


WORKFLOW_NAME = "CollectionCase"


def case_workflow_id(invoice_id: str, prefix: str = "") -> str:
    """One workflow per invoice: opening a case twice finds the running one."""
    return f"{prefix}case-{invoice_id}"


BUSY = "CaseBusy"  # an Update failure type: nothing was applied, the caller may send it again

class CaseInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: UUID
    policy: Policy  # pinned: editing the policy file never changes a running case
    open: OpenCase | None = None  # first run: the command that opens the case
    state: CaseState | None = None  # carried over by continue-as-new
    resume_with: ReversePayment | None = None  # restarting a closed case to apply this
    continue_as_new_after: int | None = None  # history length; None = when Temporal suggests
    id_prefix: str = ""  # workflow-id prefix of this deployment (for the customer's mailbox)


class CaseResult(BaseModel):
    case_id: UUID
    outcome: Outcome | None
    version: int


class EventBrief(BaseModel):
    type: str
    version: int


class CommandReply(BaseModel):
    case_id: UUID
    invoice_id: str
    status: str
    balance: Money
    version: int
    events: list[EventBrief]


def reply_for(state: CaseState, events: list[Event]) -> CommandReply:
    return CommandReply(
        case_id=state.case_id,
        invoice_id=state.invoice_id,
        status=state.status.value,
        balance=state.balance,
        version=state.version,
        events=[EventBrief(type=type(e).__name__, version=e.version) for e in events],
    )
