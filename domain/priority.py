"""Worklist priority: which open case a collector should work first. Pure.

priority = amount at risk x days overdue x risk weight

* amount at risk is the balance the customer does not dispute (a disputed amount
  is on hold, so chasing it is not the collector's next step);
* days overdue count from the due date; a case not yet overdue counts as one day,
  so among those the bigger risk still comes first;
* the risk weight grows with the customer's risk grade (A 1, B 2, C 3, D 4).

Amounts in different currencies are compared in the policy's approval currency, at the rates
it pins ([approval.rates]): 1,000,000 JPY at risk weighs 6,700 USD, not a million. A currency
the policy has no rate for is taken at face value (``rate_to_compare``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.policy import ApprovalPolicy, RiskGrade

RISK_WEIGHT = {RiskGrade.A: 1, RiskGrade.B: 2, RiskGrade.C: 3, RiskGrade.D: 4}


def days_overdue(due_date: date, today: date) -> int:
    """Whole days past the due date; 0 when not yet due."""
    return max((today - due_date).days, 0)


def amount_at_risk(balance: Decimal, disputed: Decimal) -> Decimal:
    """The part of the balance that is not under dispute (never negative)."""
    return max(balance - disputed, Decimal(0))


def rate_to_compare(currency: str, rules: ApprovalPolicy) -> Decimal:
    """What one unit of ``currency`` weighs in the policy's approval currency (1 for that currency,
    for a policy without one, and for a currency it has no rate for)."""
    if rules.currency is None or currency == rules.currency:
        return Decimal(1)
    return rules.rates.get(currency, Decimal(1))


def priority(at_risk: Decimal, overdue_days: int, grade: RiskGrade | str, rate: Decimal = Decimal(1)) -> Decimal:
    """The worklist score; higher comes first. ``rate``: ``rate_to_compare`` of the amount's currency."""
    weight = RISK_WEIGHT[RiskGrade(grade)]
    return at_risk * rate * max(overdue_days, 1) * weight


EPOCH = date(1970, 1, 1)


def ranking_base(at_risk: Decimal, grade: RiskGrade | str) -> int:
    """``priority`` without its time part, as a whole number: the amount at risk in
    ten-thousandths of its major unit (exact for every currency) x the risk weight. Stored
    with each case, so the worklist ranks by ``ranking_base x max(days overdue, 1)`` from an
    index instead of working out amounts and weights for every open case."""
    return int(at_risk.scaleb(4)) * RISK_WEIGHT[RiskGrade(grade)]


def day_number(day: date) -> int:
    """Days since 1970-01-01: days overdue are ``day_number(today) - day_number(due_date)``."""
    return (day - EPOCH).days
