"""The customer risk scorecard: a transparent score from a customer's history. Pure.

Each factor gives ``points = weight x min(value, cap) / cap`` (the weights and caps
are the policy's ``[risk.factors]``); the score is their sum, and the grade is read
from the policy's ``grade_from`` bounds. Every factor keeps the figure it came from,
so a grade can always be explained ("paid 9 of 20 invoices late").

See docs/RISK.md for the factors, the defaults and a worked example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

from domain.policy import RISK_FACTORS, RiskGrade, RiskPolicy

GRADE_RANK = {RiskGrade.A: 0, RiskGrade.B: 1, RiskGrade.C: 2, RiskGrade.D: 3}
ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceRecord:
    """One invoice of the customer as the scorecard sees it."""

    invoice_id: str
    due_date: date
    settled_on: date | None  # fully paid (or written off) on; None while open
    outcome: str | None = None  # paid | written_off | resolved | cancelled | None (open or paid on the ledger)


@dataclass(frozen=True)
class CustomerHistory:
    customer_id: str
    invoices: list[InvoiceRecord] = field(default_factory=list)
    disputes: int = 0
    broken_promises: int = 0
    defaulted_plans: int = 0
    exposure: Decimal = ZERO  # open receivables in the credit limit's currency
    credit_limit: Decimal | None = None
    currency: str = ""


class FactorScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    value: Decimal
    points: Decimal
    detail: str


class Assessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    as_of: date
    score: Decimal
    grade: RiskGrade
    invoices: int  # matured invoices the score is based on
    settled: int = 0  # of which settled: the payment history the grade rests on
    factors: tuple[FactorScore, ...]  # highest points first
    exposure: Decimal
    credit_limit: Decimal | None
    currency: str

    @property
    def over_limit(self) -> bool:
        return self.credit_limit is not None and self.exposure > self.credit_limit

    def top(self, n: int = 3) -> tuple[FactorScore, ...]:
        return tuple(f for f in self.factors if f.points > 0)[:n]


def days_late(invoice: InvoiceRecord, as_of: date) -> int:
    """Days past the due date when settled, or so far when still open (never negative)."""
    end = invoice.settled_on if invoice.settled_on is not None else as_of
    return max((end - invoice.due_date).days, 0)


def matured(history: CustomerHistory, as_of: date) -> list[InvoiceRecord]:
    """Invoices that count: due before ``as_of`` (or settled by then), except those a credit
    note or a cancellation closed (the customer owed nothing after all)."""
    return [i for i in history.invoices
            if i.outcome not in ("resolved", "cancelled")
            and (i.due_date < as_of or (i.settled_on is not None and i.settled_on <= as_of))]


def _points(policy: RiskPolicy, name: str, value: Decimal) -> Decimal:
    factor = policy.factors.get(name)
    if factor is None:
        return ZERO
    return (factor.weight * min(value, factor.cap) / factor.cap).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole) if whole else ZERO


def score(history: CustomerHistory, as_of: date, policy: RiskPolicy) -> Assessment:
    counted = matured(history, as_of)
    n = len(counted)
    lates = [days_late(i, as_of) for i in counted]
    avg = _ratio(Decimal(sum(lates)), Decimal(n)).quantize(CENT, rounding=ROUND_HALF_UP)
    worst = Decimal(max(lates, default=0))
    late_count = sum(1 for d in lates if d > 0)
    late_share = _ratio(Decimal(late_count), Decimal(n))
    dispute_share = _ratio(Decimal(history.disputes), Decimal(n))
    exposure_ratio = _ratio(history.exposure, history.credit_limit) if history.credit_limit else ZERO
    limit_text = (f"exposure {history.exposure} {history.currency} is {_pct(exposure_ratio)} of the "
                  f"{history.credit_limit} limit" if history.credit_limit else "no credit limit set")
    values = {
        "avg_days_late": (avg, f"{avg} days late on average over {n} invoice(s)"),
        "max_days_late": (worst, f"at most {worst} days late"),
        "late_share": (late_share, f"paid {late_count} of {n} invoice(s) late ({_pct(late_share)})"),
        "dispute_share": (dispute_share, f"{history.disputes} dispute(s) on {n} invoice(s)"),
        "broken_promises": (Decimal(history.broken_promises), f"{history.broken_promises} broken promise(s) to pay"),
        "defaulted_plans": (Decimal(history.defaulted_plans), f"{history.defaulted_plans} defaulted payment plan(s)"),
        "exposure_ratio": (exposure_ratio, limit_text),
    }
    factors = [FactorScore(name=name, value=value.quantize(Decimal("0.0001")), points=_points(policy, name, value),
                           detail=detail)
               for name, (value, detail) in values.items() if name in RISK_FACTORS]
    factors.sort(key=lambda f: (-f.points, RISK_FACTORS.index(f.name)))
    total = sum((f.points for f in factors), ZERO)
    return Assessment(
        customer_id=history.customer_id, as_of=as_of, score=total, grade=policy.grade(total), invoices=n,
        settled=sum(1 for i in counted if i.settled_on is not None),
        factors=tuple(factors), exposure=history.exposure, credit_limit=history.credit_limit,
        currency=history.currency,
    )


def worse(new: RiskGrade, old: RiskGrade | None) -> bool:
    return old is not None and GRADE_RANK[new] > GRADE_RANK[old]


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('1'), rounding=ROUND_HALF_UP)}%"
