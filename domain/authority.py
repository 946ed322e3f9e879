"""Authority over money: who may reduce a receivable without cash, and who may decide an
item of the approvals inbox. Pure.

One rule for every reduction made in the engine (a write-off, an upheld dispute's credit,
cancelling an open balance, waiving interest): up to the policy's single-person threshold one
person acts alone, counting what the case was already reduced by alone (splitting a reduction
into small pieces does not avoid the second person); above it the reduction waits for a second person (four eyes: never the requester)
whose authority covers it. Authority is the lower of the user's own limit and the policy's
cap for the role. A write-off's approver needs authority for the case's total: everything
already written off on it (by whoever approved it) with the write-off they approve, so splitting
a write-off does not avoid the authority the whole needs. Limits and the threshold are in the policy's approval currency; an amount
in another currency is converted at the rate pinned in the policy, which the event states.

The decider enforces ``approval_authority`` when a decision is made; the console uses the
same function to show items beyond the viewer's authority as visible but not actionable.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from domain.errors import DomainError
from domain.money import Money
from domain.policy import APPROVER_ROLES, ApprovalPolicy, Policy, Role
from domain.users import Actor

if TYPE_CHECKING:
    from domain.state import CaseState

ROLE_RANK = {Role.integration: -1, Role.collector: 0, Role.supervisor: 1, Role.finance_manager: 2}
# Approval kinds that reduce the receivable: the money rules apply to them.
REDUCTIONS = ("write_off", "credit", "cancellation", "waiver")
# Money paid out: the same authority limits apply (an advance's refund).
PAY_OUTS = ("refund",)


@dataclass(frozen=True)
class Converted:
    """An amount in the policy's approval currency, and the rate it took (1 when the same)."""

    amount: Money
    rate: Decimal


@dataclass(frozen=True)
class Authority:
    approve: bool
    reject: bool
    reason: str = ""  # why not, in English
    code: str = ""  # machine-readable: not_approver | tier | own_request | limit | no_rate
    limit: Decimal | None = None  # the authority that was too small (code "limit")
    limit_currency: str | None = None  # the currency that limit is written in (the policy's approval currency)
    before: Money | None = None  # what the case was already reduced by, counted with it (code "limit")


def in_approval_currency(rules: ApprovalPolicy, amount: Money) -> Converted:
    """``amount`` in the currency the limits are written in, at the policy's pinned rate."""
    if rules.currency is None or amount.currency == rules.currency:  # None: a policy before rates
        return Converted(amount, Decimal(1))
    rate = rules.rates.get(amount.currency)
    if rate is None:
        raise DomainError(f"the policy has no rate from {amount.currency} to {rules.currency}, so no authority "
                          f"limit can be checked; add it under [approval.rates]", "currency")
    value = (amount.amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return Converted(Money.of(value, rules.currency), rate)


def may_act_alone(policy: Policy, amount: Money, made_alone: Money | None = None) -> bool:
    """A reduction this small needs no second person (any, under a policy before the threshold).
    ``made_alone``: what the case was already reduced by without a second person; it counts
    with ``amount``, so ten credits of 90 need the approval one credit of 900 would."""
    if policy.approval.alone_up_to is None:
        return True
    counted = counted_alone(policy, made_alone)
    if counted is not None:
        amount = amount + counted
    return in_approval_currency(policy.approval, amount).amount.amount <= policy.approval.alone_up_to


def counted_alone(policy: Policy, made_alone: Money | None) -> Money | None:
    """What of the reductions already made alone counts with the next one (``alone_adds_up``);
    None when nothing does. A request for a second person records it, so the approver sees why."""
    if made_alone is None or not made_alone.is_positive or not policy.approval.alone_adds_up:
        return None
    return made_alone


@dataclass(frozen=True)
class Reduced:
    """What people already reduced a case by without cash: written off, and otherwise (dispute
    credits, a cancellation, interest waived). ERP documents and payments are not in it."""

    written_off: Money
    otherwise: Money

    @property
    def total(self) -> Money:
        return self.written_off + self.otherwise


def reduced_of(state: CaseState) -> Reduced:
    """A case's ``Reduced`` from its state's totals (credits holds dispute credits and cancellations)."""
    credits, waived = state.credits, state.interest_waived
    return Reduced(state.write_offs, credits + waived if waived is not None else credits)


def reduced_before(policy: Policy, kind: str, reduced: Reduced | None) -> tuple[Money, str] | None:
    """What of the case's earlier reductions counts with a reduction to approve, and in words;
    None when nothing does. All of them, whatever their kind (``reductions_add_up``): a write-off,
    then a dispute credit, then another, each within a supervisor's authority, reduced one invoice
    by more than it; before that rule (runs recorded then), a write-off's earlier write-offs only
    (``write_offs_add_up``)."""
    if kind not in REDUCTIONS or reduced is None:
        return None
    if policy.approval.reductions_add_up:
        before = reduced.total
        words = "already written off" if not reduced.otherwise.is_positive else "already written off or credited"
    elif kind == "write_off" and policy.approval.write_offs_add_up:
        before, words = reduced.written_off, "already written off"
    else:
        return None
    return (before, words) if before.is_positive else None


def counted_total(policy: Policy, kind: str, amount: Money,
                  reduced: Reduced | None) -> tuple[Money, tuple[Money, str] | None]:
    """The amount an approver's authority is judged by: ``amount`` with what the case was already
    reduced by when that counts (``reduced_before``), and that earlier part (None: nothing)."""
    before = reduced_before(policy, kind, reduced)
    return (amount + before[0] if before is not None else amount), before


def authority_limit(actor: Actor, policy: Policy) -> Decimal:
    return min(actor.write_off_limit, policy.write_off_cap(actor.role)) if actor.role else Decimal(0)


def approver_role(kind: str, tier: Role, amount: Money | None, policy: Policy,
                  reduced: Reduced | None = None) -> Role | None:
    """The lowest role that may approve the item, by its tier and the policy's caps (a user's own
    limit may be lower); None when no role's cap covers it (it can then only be rejected)."""
    roles = sorted((r for r in APPROVER_ROLES if ROLE_RANK[r] >= ROLE_RANK[tier]), key=ROLE_RANK.__getitem__)
    if kind not in REDUCTIONS + PAY_OUTS or amount is None:
        return roles[0] if roles else None
    try:
        total = in_approval_currency(policy.approval, counted_total(policy, kind, amount, reduced)[0])
    except DomainError:
        return tier  # no rate to judge by: the decision says so
    return next((r for r in roles if total.amount.amount <= policy.write_off_cap(r)), None)


def approval_authority(actor: Actor, kind: str, tier: Role, requested_by: str, amount: Money | None,
                       policy: Policy, reduced: Reduced | None = None) -> Authority:
    """May ``actor`` approve (or reject) an item of ``kind`` (write_off, credit, cancellation,
    plan, escalation) asked at ``tier`` by ``requested_by`` for ``amount``? ``reduced``: what
    the case was already reduced by; a reduction is checked with it, as one total (``reduced_before``)."""
    if actor.role not in APPROVER_ROLES:
        return Authority(False, False, "only a supervisor or finance_manager may decide", "not_approver")
    if ROLE_RANK[actor.role] < ROLE_RANK[tier]:
        return Authority(False, False, f"needs a {tier.value}", "tier")
    if kind != "escalation" and actor.name == requested_by:
        return Authority(False, False, "four eyes: the requester cannot decide their own request", "own_request")
    if kind in REDUCTIONS + PAY_OUTS and amount is not None:
        total, before = counted_total(policy, kind, amount, reduced)
        try:
            converted = in_approval_currency(policy.approval, total)
        except DomainError as error:
            return Authority(False, True, str(error), "no_rate")
        limit = authority_limit(actor, policy)
        if converted.amount.amount > limit:
            shown = f" (= {converted.amount} at {converted.rate})" if converted.rate != 1 else ""
            asked = f"{amount}{shown}" if before is None else \
                f"{amount} + {before[0]} {before[1]} on this case = {total}{shown}"
            unit = f" {policy.approval.currency}" if policy.approval.currency else ""
            what = {"write_off": "write-off", "credit": "dispute credit", "cancellation": "cancellation",
                    "waiver": "interest waiver", "refund": "refund"}[kind]
            return Authority(False, True, f"{asked} exceeds {actor.name}'s {what} authority ({limit}{unit})",
                             "limit", limit, policy.approval.currency or amount.currency,
                             before[0] if before is not None else None)
    return Authority(True, True)
