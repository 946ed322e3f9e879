"""SQL for the screens that must stay fast with 100,000 cases (docs/PERFORMANCE.md).

The worklist ranks open cases by priority (domain/priority.py) in SQL and fetches only the
page it shows; the aging report sums open amounts per currency and bucket in SQL. Both read
the partial index of open cases (migration 0004) instead of every row with its state JSON.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from babel.numbers import get_currency_precision, list_currencies
from sqlalchemy import Integer, Numeric, and_, case, cast, func, literal, select
from sqlalchemy.sql import ColumnElement

from domain.policy import RiskGrade
from domain.priority import RISK_WEIGHT
from store.schema import case_summary, invoices

# Amounts are compared at face value across currencies (domain/priority.py): minor units are
# scaled to thousandths of the major unit, exactly (no currency has more than 3 decimals but
# the rare 4-decimal units, which scale by a tenth).
_BY_EXPONENT: dict[int, list[str]] = defaultdict(list)
for _code in sorted(list_currencies()):
    _BY_EXPONENT[get_currency_precision(_code)].append(_code)


def _scale(currency: ColumnElement, dialect: str) -> ColumnElement:
    numeric = dialect == "postgresql"
    whens = [(currency.in_(codes), literal(10 ** (3 - exp)) if exp <= 3 else literal(0.1))
             for exp, codes in sorted(_BY_EXPONENT.items()) if exp != 2]
    scaled = case(*whens, else_=literal(10))
    return cast(scaled, Numeric) if numeric else scaled


def days_since(day: date, column: ColumnElement, dialect: str) -> ColumnElement:
    """Whole days from ``column`` (a date) to ``day``."""
    if dialect == "postgresql":
        return literal(day) - column
    return cast(func.julianday(day.isoformat()) - func.julianday(column), Integer)


def priority(today: date, dialect: str) -> ColumnElement:
    """domain.priority.priority in SQL: amount at risk x max(days overdue, 1) x risk weight
    (amount in thousandths of the major unit: the same order, exactly)."""
    c = case_summary.c
    at_risk = case((c.balance_minor > c.disputed_minor, c.balance_minor - c.disputed_minor), else_=0)
    if dialect == "postgresql":
        at_risk = cast(at_risk, Numeric)  # no BIGINT overflow, however large the product
    weight = case(*[(c.risk_grade == g.value, RISK_WEIGHT[g]) for g in RiskGrade], else_=1)
    days = days_since(today, c.due_date, dialect)
    return at_risk * _scale(c.currency, dialect) * weight * case((days > 1, days), else_=1)


def open_cases() -> ColumnElement:
    return case_summary.c.closed_at.is_(None)


def page_of_open_cases(today: date, dialect: str, where: list, limit: int, columns):
    """The ``limit`` open cases of highest priority (ties: next action first, then invoice id)."""
    c = case_summary.c
    ranked = (select(c.case_id).where(open_cases(), *where)
              .order_by(priority(today, dialect).desc(), c.next_action_at.is_(None), c.next_action_at, c.invoice_id)
              .limit(limit))
    return select(*columns).where(c.case_id.in_(ranked.scalar_subquery()))


def count_open_cases(where: list):
    return select(func.count()).select_from(case_summary).where(open_cases(), *where)


AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def _bucket(days: ColumnElement) -> ColumnElement:
    return case((days <= 0, "current"), (days <= 30, "1-30"), (days <= 60, "31-60"), (days <= 90, "61-90"),
                else_="90+")


def aging_sums(session, as_of: date, dialect: str) -> list[tuple[str, str, int]]:
    """(currency, bucket, open amount in minor units): open cases' balances, and for invoices
    with no case, amount less what the ledger has recorded as paid."""
    c = case_summary.c
    bucket = _bucket(days_since(as_of, c.due_date, dialect)).label("bucket")
    cases = (select(c.currency, bucket, func.sum(c.balance_minor))
             .where(open_cases(), c.balance_minor > 0).group_by(c.currency, bucket))
    i = invoices.c
    ledger_bucket = _bucket(days_since(as_of, i.due_date, dialect)).label("bucket")
    has_case = select(literal(1)).where(c.invoice_id == i.invoice_id).exists()
    ledger = (select(i.currency, ledger_bucket, func.sum(i.amount_minor - i.paid_minor))
              .where(and_(i.amount_minor > i.paid_minor, ~has_case)).group_by(i.currency, ledger_bucket))
    return [tuple(r) for r in session.execute(cases)] + [tuple(r) for r in session.execute(ledger)]
