"""Internal notifications: who on the team is e-mailed about what (pure; no I/O, no clock).

Three kinds (docs/CONTROLS.md, "Internal notifications"):

- ``waiting``: an approval or escalation (or a dispute escalated past its resolution deadline)
  waiting for a role goes to the users of that role
  (not to the person who requested it: they may not decide it). Once per item, tier and
  recipient: keyed by the day it was requested.
- ``lapsed``: an item still pending longer than its kind's SLA in the policy (approval.sla for
  write-offs, plans, credits, cancellations...; escalation.sla for escalations) goes to the next
  tier of the ladder collector -> supervisor -> finance_manager (the top tier hears of it itself).
  Once per item and recipient: keyed by the day the SLA lapsed. It replaces ``waiting`` for
  that item.
- ``digest``: each collector with open cases assigned to them gets one list of those cases
  per day.

Every notification carries the key of the sent log, (kind, item, recipient, day): delivery
sends each key at most once, however often the planner runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence

from domain.policy import Policy, Role
from domain.users import User

KINDS = ("waiting", "lapsed", "digest")
LADDER: tuple[Role, ...] = (Role.collector, Role.supervisor, Role.finance_manager)


def next_tier(role: Role) -> Role:
    """The tier above ``role`` on the ladder; the top tier is its own next tier."""
    index = LADDER.index(role)
    return LADDER[min(index + 1, len(LADDER) - 1)]


ESCALATED_KINDS = ("escalation", "dispute")  # a dispute past its deadline is escalated like a case


def sla_for(kind: str, policy: Policy) -> timedelta:
    """The SLA of an item of ``kind``: escalations (and overdue disputes, escalated with the
    escalation SLA) have their own, every approval kind the approval SLA."""
    return policy.escalation.sla if kind in ESCALATED_KINDS else policy.approval.sla


@dataclass(frozen=True)
class PendingItem:
    """An approval or escalation waiting for a decision (a row of the approvals inbox), or a
    dispute escalated past its resolution deadline (kind ``dispute``: decided by resolving it)."""

    item_id: str
    kind: str  # escalation | dispute | write_off | plan | credit | cancellation | ...
    case_id: str
    invoice_id: str
    customer_name: str
    amount: str
    currency: str
    tier: Role
    requested_by: str
    requested_at: datetime
    sla_due_at: datetime | None


@dataclass(frozen=True)
class DigestCase:
    case_id: str
    invoice_id: str
    customer_name: str
    status: str
    balance: str
    currency: str
    next_action: str
    next_action_at: datetime | None


@dataclass(frozen=True)
class Notification:
    kind: str
    item: str  # item id (with the tier for ``waiting``), or the collector's name for ``digest``
    recipient: str  # user name
    email: str
    language: str
    day: date
    role: Role  # the role the recipient is told as
    items: tuple[PendingItem, ...] = ()
    cases: tuple[DigestCase, ...] = ()
    lapsed_tier: Role | None = None  # for ``lapsed``: the tier that let the SLA pass
    sla: timedelta | None = None

    @property
    def key(self) -> tuple[str, str, str, date]:
        return (self.kind, self.item, self.recipient, self.day)


@dataclass(frozen=True)
class Plan:
    notifications: tuple[Notification, ...]
    skipped: tuple[str, ...] = field(default=())  # why someone who should hear could not (no e-mail...)


def _reachable(users: Iterable[User], role: Role, skipped: list[str], why: str) -> list[User]:
    found = []
    for user in users:
        if user.role != role:
            continue
        if not user.email:
            skipped.append(f"{user.name} ({role.value}) has no e-mail address: not told of {why}")
            continue
        found.append(user)
    return found


def lapsed(item: PendingItem, policy: Policy, now: datetime) -> bool:
    return now >= item.requested_at + sla_for(item.kind, policy)


def plan_notifications(items: Sequence[PendingItem], cases: Sequence[tuple[str, DigestCase]],
                       users: Sequence[User], policy: Policy, now: datetime, day: date) -> Plan:
    """Every notification due at ``now`` (``day``: the digest's day). ``cases`` pairs each open
    case with its assignee."""
    out: list[Notification] = []
    skipped: list[str] = []
    for item in sorted(items, key=lambda i: (i.requested_at, i.item_id)):
        language_of = lambda u: u.language  # noqa: E731
        if lapsed(item, policy, now):
            sla = sla_for(item.kind, policy)
            # Not yet raised by the case (its timer has not fired, or it sits at the top): the
            # tier above it must hear. Already raised: the tier it sits at now is the next one.
            still_due = item.sla_due_at is not None and item.sla_due_at <= now
            was_at = item.tier if still_due or item.sla_due_at is None else _below(item.tier)
            target = next_tier(item.tier) if still_due else item.tier
            lapse_day = (item.requested_at + sla).date()
            for user in _reachable(users, target, skipped, f"lapsed {item.kind} {item.item_id}"):
                if user.name == item.requested_by:
                    continue
                out.append(Notification(kind="lapsed", item=item.item_id, recipient=user.name, email=user.email,
                                        language=language_of(user), day=lapse_day, role=target, items=(item,),
                                        lapsed_tier=was_at, sla=sla))
            continue
        for user in _reachable(users, item.tier, skipped, f"{item.kind} {item.item_id}"):
            if user.name == item.requested_by:  # four eyes: the requester may not decide it
                continue
            out.append(Notification(kind="waiting", item=f"{item.item_id}@{item.tier.value}", recipient=user.name,
                                    email=user.email, language=language_of(user), day=item.requested_at.date(),
                                    role=item.tier, items=(item,), sla=sla_for(item.kind, policy)))
    by_assignee: dict[str, list[DigestCase]] = {}
    for assignee, case in cases:
        by_assignee.setdefault(assignee, []).append(case)
    for user in users:
        if user.role != Role.collector or user.name not in by_assignee:
            continue
        if not user.email:
            skipped.append(f"{user.name} (collector) has no e-mail address: no digest")
            continue
        mine = sorted(by_assignee[user.name], key=lambda c: (c.next_action_at is None, c.next_action_at or now,
                                                             c.invoice_id))
        out.append(Notification(kind="digest", item=user.name, recipient=user.name, email=user.email,
                                language=user.language, day=day, role=Role.collector, cases=tuple(mine)))
    return Plan(tuple(out), tuple(skipped))


def _below(role: Role) -> Role:
    index = LADDER.index(role)
    return LADDER[max(index - 1, 0)]
