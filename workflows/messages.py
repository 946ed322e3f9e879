"""Workflow inputs and replies (pydantic, carried by the pydantic data converter)."""

from __future__ import annotations

from threading import Lock
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidatorFunctionWrapHandler, WrapValidator

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

_SHARED_POLICIES: dict[str, tuple[dict, Policy]] = {}  # version -> (a payload's policy, validated)
_SHARED_LIMIT = 64  # distinct policies kept; a worker pins a handful of versions
_SHARED_LOCK = Lock()  # workflow activations run on several threads


def _shared_policy(value: Any, validate: ValidatorFunctionWrapHandler) -> Policy:
    """The instance this worker already holds of a policy equal to the payload's, else the
    payload's policy, validated.

    Every case carries its pinned policy in its input, and a worker holds hundreds of cases at
    once, each decoded from its own payload: without this each held its own copy of the same
    policy (31 KB of a cached case's memory, docs/PERFORMANCE.md), and validated it again. The
    payload's policy is compared whole, not by version alone, so a case never gets another
    case's rules; policies are frozen, so sharing one is safe."""
    if not isinstance(value, dict):
        return validate(value)
    with _SHARED_LOCK:
        known = _SHARED_POLICIES.get(value.get("version"))
    if known is not None and known[0] == value:
        return known[1]
    policy = validate(value)
    with _SHARED_LOCK:
        if len(_SHARED_POLICIES) >= _SHARED_LIMIT:
            _SHARED_POLICIES.pop(next(iter(_SHARED_POLICIES)))
        _SHARED_POLICIES[policy.version] = (value, policy)
    return policy


class CaseInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: UUID
    # pinned: editing the policy file never changes a running case
    policy: Annotated[Policy, WrapValidator(_shared_policy)]
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
