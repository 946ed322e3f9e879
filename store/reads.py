"""SQL for the screens that must stay fast with 100,000 cases (docs/PERFORMANCE.md).

The worklist ranks open cases by priority (domain/priority.py) in SQL from the partial index
of open cases in order of work (migration 0005) and fetches only the page it shows; the aging
report sums open amounts per currency and bucket in SQL from the partial index of open cases
(migration 0004). Neither reads a row's state JSON.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Mapping

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, select
from sqlalchemy.sql import ColumnElement

from domain.priority import day_number
from store.schema import case_summary, customer_exposure, invoices


def days_since(day: date, column: ColumnElement, dialect: str) -> ColumnElement:
    """Whole days from ``column`` (a date) to ``day``."""
    if dialect == "postgresql":
        return literal(day) - column
    return cast(func.julianday(day.isoformat()) - func.julianday(column), Integer)


def priority(today: date, dialect: str, rates: Mapping[str, Decimal] | None = None) -> ColumnElement:
    """domain.priority.priority in SQL, in the same order: the stored ``ranking_base`` (amount
    at risk in ten-thousandths of its major unit x risk weight) x the rate of its currency
    (``rates``: domain.priority.rate_to_compare for each currency not at 1) x max(days overdue, 1)."""
    c = case_summary.c
    days = literal(day_number(today)) - c.due_day
    # PostgreSQL would refuse a BIGINT overflow (amounts near the largest accepted, years overdue):
    # double precision keeps the order exact up to 2**53 and within 1e-16 beyond (SQLite does
    # the same by itself).
    base = cast(c.ranking_base, Float) if dialect == "postgresql" or rates else c.ranking_base
    if rates:
        base = base * case({code: float(rate) for code, rate in rates.items()}, value=c.currency, else_=1.0)
    return base * case((days > 1, days), else_=1)


def open_cases() -> ColumnElement:
    return case_summary.c.closed_at.is_(None)


def page_of_open_cases(today: date, dialect: str, where: list, limit: int, columns,
                       rates: Mapping[str, Decimal] | None = None):
    """The ``limit`` open cases of highest priority (ties: next action first, then invoice id)."""
    c = case_summary.c
    ranked = (select(c.case_id).where(open_cases(), *where)
              .order_by(priority(today, dialect, rates).desc(), c.next_action_at.is_(None), c.next_action_at, c.invoice_id)
              .limit(limit))
    return select(*columns).where(c.case_id.in_(ranked.scalar_subquery()))


def count_open_cases(where: list):
    """Open cases matching ``where``; with no filter, the sum of the customer exposure rows
    (kept in the same transactions as the case rows: the same number, from far fewer rows)."""
    if not where:
        return select(func.coalesce(func.sum(customer_exposure.c.open_cases), 0))
    return select(func.count()).select_from(case_summary).where(open_cases(), *where)


AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def _bucket(days: ColumnElement) -> ColumnElement:
    return case((days <= 0, "current"), (days <= 30, "1-30"), (days <= 60, "31-60"), (days <= 90, "61-90"),
                else_="90+")


def aging_sums(session, as_of: date, dialect: str) -> list[tuple[str, str, int]]:
    """(currency, bucket, open amount in minor units): open invoice cases' balances (an advance
    case is no receivable), and for invoices with no case, amount less what the ledger has
    recorded as paid."""
    c = case_summary.c
    bucket = _bucket(literal(day_number(as_of)) - c.due_day).label("bucket")  # from the index of open cases
    cases = (select(c.currency, bucket, func.sum(c.balance_minor))
             .where(open_cases(), c.balance_minor > 0, c.kind == "invoice").group_by(c.currency, bucket))
    i = invoices.c
    ledger_bucket = _bucket(days_since(as_of, i.due_date, dialect)).label("bucket")
    has_case = select(literal(1)).where(c.invoice_id == i.invoice_id).exists()
    ledger = (select(i.currency, ledger_bucket, func.sum(i.amount_minor - i.paid_minor))
              .where(and_(i.amount_minor > i.paid_minor, ~has_case)).group_by(i.currency, ledger_bucket))
    return [tuple(r) for r in session.execute(cases)] + [tuple(r) for r in session.execute(ledger)]
