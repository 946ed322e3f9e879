"""What a person may do with an item of the approvals inbox. Pure.

The decider enforces these rules when a decision is made; the console uses this
to show items beyond the viewer's authority as visible but not actionable, with
the reason. Keep the two in step: tests compare them on the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.decider import ROLE_RANK
from domain.policy import APPROVER_ROLES, Role
from domain.users import Actor


@dataclass(frozen=True)
class Authority:
    approve: bool
    reject: bool
    reason: str = ""  # why not, in English
    code: str = ""  # machine-readable: not_approver | tier | own_request | limit
    limit: Decimal | None = None  # the authority that was too small (code "limit")


def approval_authority(actor: Actor, kind: str, tier: Role, requested_by: str, amount: Decimal,
                       role_cap: Decimal) -> Authority:
    """``kind`` is write_off, plan or escalation; ``role_cap`` is the policy's write-off
    limit for the actor's role (the lower of it and the actor's own limit applies)."""
    if actor.role not in APPROVER_ROLES:
        return Authority(False, False, "only a supervisor or finance_manager may decide", "not_approver")
    if ROLE_RANK[actor.role] < ROLE_RANK[tier]:
        return Authority(False, False, f"needs a {tier.value}", "tier")
    if kind != "escalation" and actor.name == requested_by:
        return Authority(False, False, "four eyes: your own request", "own_request")
    if kind == "write_off":
        limit = min(actor.write_off_limit, role_cap)
        if amount > limit:
            return Authority(False, True, f"beyond your write-off authority ({limit})", "limit", limit)
    return Authority(True, True)
