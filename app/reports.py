"""Reports: the collector worklist and the dashboard's figures.

Computed from the projections (``case_summary``, ``approvals``), the ledger
(``invoices``, ``payments``) and the event store. Amounts are ``Decimal`` and
kept per currency: no report adds amounts in different currencies together.

Each figure has a small query function and, where there is arithmetic, a pure
function next to it that tests feed with hand-computed numbers. Add new KPIs
the same way.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping
from uuid import UUID

from sqlalchemy import func, or_, select

from app.context import Context
from app.services import summary_dict
from domain.errors import DomainError
from domain.inputs import check_report_day
from domain.money import Money, currency_exponent
from domain.policy import RiskGrade
from domain.priority import amount_at_risk, days_overdue, priority, rate_to_compare
from domain.receivables import Settlement, settlements_of
from domain.state import CaseStatus
from store.reads import aging_sums, count_open_cases, page_of_open_cases
from store.schema import approvals, case_summary, invoices, payments

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
APPROVAL_KINDS = ("escalation", "plan", "write_off")
ZERO = Decimal(0)


def _amount(minor: int, currency: str) -> Decimal:
    return Money.from_minor(minor, currency).amount


def _text(value: Decimal, currency: str) -> str:
    """An amount as a string with the currency's decimal places ("0.00", not "0")."""
    return str(value.quantize(Decimal(1).scaleb(-currency_exponent(currency))))


# -- worklist ----------------------------------------------------------------------------------


def worklist(ctx: Context, today: date, *, status: str | None = None, assignee: str | None = None,
             risk_grade: str | None = None, currency: str | None = None, q: str | None = None,
             limit: int = 200) -> dict:
    """Open cases, highest priority first (see ``domain.priority``), with the filters
    a collector uses. ``assignee`` may be a user name or ``unassigned``."""
    where: list = []  # besides "open"
    if status:
        if status not in CaseStatus.__members__:
            raise DomainError(f"{status!r} is not a status ({', '.join(CaseStatus.__members__)})", "status")
        where.append(case_summary.c.status == status)
    if assignee == "unassigned":
        where.append(case_summary.c.assignee.is_(None))
    elif assignee:
        where.append(case_summary.c.assignee == assignee)
    if risk_grade:
        if risk_grade not in RiskGrade.__members__:
            raise DomainError(f"{risk_grade!r} is not a risk grade (A, B, C or D)", "risk_grade")
        where.append(case_summary.c.risk_grade == risk_grade)
    if currency:
        where.append(case_summary.c.currency == currency.upper())
    if q:
        where.append(_naming(q))
    # Ranked and cut in SQL over the index of open cases (store/reads.py): only the page is read.
    columns = [c for c in case_summary.c if c.name != "state"]
    dialect = ctx.db.dialect
    rules = ctx.policy().approval  # amounts of different currencies compared at its pinned rates
    rates = {code: rate for code in rules.rates if (rate := rate_to_compare(code, rules)) != 1}
    with ctx.db.read() as session:
        total = session.execute(count_open_cases(where)).scalar_one()
        rows = list(session.execute(page_of_open_cases(today, dialect, where, limit, columns, rates)))
    items = [worklist_item(row, today, rates) for row in rows]
    items.sort(key=lambda i: (-Decimal(i["priority"]), i["next_action_at"] or "9999", i["invoice_id"]))
    return {"total": total, "items": items[:limit]}


def _naming(q: str):
    """Cases whose invoice id or customer name holds ``q`` (any case)."""
    needle = f"%{q.strip().lower()}%"
    return or_(func.lower(case_summary.c.invoice_id).like(needle), func.lower(case_summary.c.customer_name).like(needle))


def closed_matching(ctx: Context, q: str, limit: int = 20) -> list[dict]:
    """Closed cases whose invoice id or customer name holds ``q``, the last closed first: the
    worklist holds open cases only, and a customer calls about a paid invoice too."""
    query = (select(case_summary.c.case_id, case_summary.c.invoice_id, case_summary.c.customer_name,
                    case_summary.c.status, case_summary.c.original_minor, case_summary.c.currency,
                    case_summary.c.closed_at)
             .where(case_summary.c.closed_at.is_not(None), _naming(q))
             .order_by(case_summary.c.closed_at.desc(), case_summary.c.invoice_id).limit(limit))
    with ctx.db.read() as session:
        return [{"case_id": r.case_id, "invoice_id": r.invoice_id, "customer_name": r.customer_name, "status": r.status,
                 "original": _amount(r.original_minor, r.currency), "currency": r.currency, "closed_at": r.closed_at}
                for r in session.execute(query)]


def worklist_item(row, today: date, rates: Mapping[str, Decimal] | None = None) -> dict:
    """A case summary with the figures its priority is made of (``rate``: what one unit of its
    currency weighs against the others, the policy's pinned rate)."""
    m = row._mapping
    balance = _amount(m["balance_minor"], m["currency"])
    at_risk = amount_at_risk(balance, _amount(m["disputed_minor"], m["currency"]))
    overdue = days_overdue(m["due_date"], today)
    rate = (rates or {}).get(m["currency"], Decimal(1))
    return {
        **summary_dict(row),
        "amount_at_risk": str(at_risk),
        "days_overdue": overdue,
        "rate": str(rate),
        "priority": str(priority(at_risk, overdue, m["risk_grade"], rate)),
    }


# -- aging ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenItem:
    invoice_id: str
    currency: str
    amount: Decimal
    due_date: date


def aging_bucket(overdue_days: int) -> str:
    """current (not yet due), 1-30, 31-60, 61-90 or 90+ days past due."""
    if overdue_days <= 0:
        return "current"
    if overdue_days <= 30:
        return "1-30"
    if overdue_days <= 60:
        return "31-60"
    if overdue_days <= 90:
        return "61-90"
    return "90+"


def open_receivables(ctx: Context) -> list[OpenItem]:
    """Every invoice's open amount: its case's balance when it has a case, otherwise
    the invoice amount less payments recorded on the ledger."""
    with ctx.db.read() as session:
        cases = {r.invoice_id: r for r in session.execute(
            select(case_summary.c.invoice_id, case_summary.c.currency, case_summary.c.balance_minor,
                   case_summary.c.due_date, case_summary.c.closed_at).where(case_summary.c.kind == "invoice"))}
        ledger = list(session.execute(
            select(invoices.c.invoice_id, invoices.c.currency, invoices.c.amount_minor, invoices.c.paid_minor,
                   invoices.c.due_date)))
    items = [OpenItem(r.invoice_id, r.currency, _amount(r.balance_minor, r.currency), r.due_date)
             for r in cases.values() if r.closed_at is None and r.balance_minor > 0]
    items += [OpenItem(r.invoice_id, r.currency, _amount(r.amount_minor - r.paid_minor, r.currency), r.due_date)
              for r in ledger if r.invoice_id not in cases and r.amount_minor > r.paid_minor]
    return items


def aging_report(ctx: Context, as_of: date) -> dict[str, dict[str, Decimal]]:
    """``aging(open_receivables(ctx), as_of)``, summed in SQL (store/reads.py) instead of
    reading every case and invoice into Python."""
    table: dict[str, dict[str, Decimal]] = {}
    with ctx.db.read() as session:
        sums = aging_sums(session, as_of, ctx.db.dialect)
    for currency, bucket, minor in sums:
        buckets = table.setdefault(currency, {b: ZERO for b in AGING_BUCKETS})
        buckets[bucket] += _amount(int(minor), currency)
    return table


def aging(items: Iterable[OpenItem], as_of: date) -> dict[str, dict[str, Decimal]]:
    """Open amounts per currency and aging bucket on ``as_of``."""
    table: dict[str, dict[str, Decimal]] = {}
    for item in items:
        buckets = table.setdefault(item.currency, {b: ZERO for b in AGING_BUCKETS})
        buckets[aging_bucket(days_overdue(item.due_date, as_of))] += item.amount
    return table


# -- cases and approvals ----------------------------------------------------------------------------


def cases_by_status(ctx: Context, currency: str | None = None) -> dict[str, int]:
    """How many cases are in each status (every status listed, zero included), of one currency
    when given."""
    query = select(case_summary.c.status, func.count()).group_by(case_summary.c.status)
    if currency is not None:
        query = query.where(case_summary.c.currency == currency)
    with ctx.db.read() as session:
        counts = dict(session.execute(query).all())
    return {s: int(counts.get(s, 0)) for s in CaseStatus.__members__}


def approvals_sla(ctx: Context, now: datetime) -> dict[str, dict[str, int]]:
    """Pending escalations, plans and write-offs: how many wait, and how many of
    those are past their SLA deadline at ``now``."""
    table = {kind: {"waiting": 0, "overdue": 0} for kind in APPROVAL_KINDS}
    with ctx.db.read() as session:
        rows = session.execute(select(approvals.c.kind, approvals.c.sla_due_at).where(approvals.c.status == "pending"))
        for kind, due in rows:
            counts = table.setdefault(kind, {"waiting": 0, "overdue": 0})
            counts["waiting"] += 1
            if due is not None and due < now:
                counts["overdue"] += 1
    return table


# -- cash and DSO ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    currency: str
    amount: Decimal
    issue_date: date


_SETTLING_EVENTS = ("PaymentReceived", "DisputeResolved", "WriteOffApproved", "SmallBalanceWrittenOff", "CaseCancelled",
                    "SmallBalanceWriteOffReversed", "LateFeeCharged", "InterestCharged", "InterestWaived",
                    "CustomerCreditApplied", "IndemnityReceived", "PaymentReversed", "InvoiceAmended",
                    "CreditNoteApplied", "PaidOutsideEngine",
                    "EarlyPaymentDiscountGranted", "FactorCollected", "FactorDefaulted")


def ledger_invoices(ctx: Context, currency: str | None = None) -> list[Invoice]:
    query = select(invoices.c.invoice_id, invoices.c.currency, invoices.c.amount_minor, invoices.c.issue_date)
    if currency:
        query = query.where(invoices.c.currency == currency)
    with ctx.db.read() as session:
        return [Invoice(r.invoice_id, r.currency, _amount(r.amount_minor, r.currency), r.issue_date)
                for r in session.execute(query)]


def settlements(ctx: Context, customer_id: str | None = None) -> list[Settlement]:
    """Every settlement with its date, each from one source of truth: a case's events for
    what happened on a case, the payments table only for payments on invoices without a
    case (whose row is their only record). The payments table also lists payments applied
    to cases; counting those rows too would count such a payment twice.
    A payment counts in full as cash collected; only the applied part settles the invoice
    (the excess becomes customer credit), see ``kind``: payment vs. excess.
    ``customer_id``: that customer's invoices only (read from their cases' streams)."""
    # an advance case's events settle no invoice: a deposit asked before delivery is no receivable
    cases = select(case_summary.c.case_id, case_summary.c.invoice_id).where(case_summary.c.kind == "invoice")
    paid = select(payments).where(payments.c.invoice_id.is_not(None), payments.c.case_id.is_(None),
                                  payments.c.status.in_(("applied", "reversed")))
    if customer_id is not None:
        cases = cases.where(case_summary.c.customer_id == customer_id)
        paid = paid.where(payments.c.invoice_id.in_(select(invoices.c.invoice_id)
                                                    .where(invoices.c.customer_id == customer_id)))
    with ctx.db.read() as session:
        invoice_of = dict(session.execute(cases).all())
        ledger = list(session.execute(paid))
    found: list[Settlement] = []
    if customer_id is None:
        for record in ctx.store.read_types(_SETTLING_EVENTS):
            invoice_id = invoice_of.get(str(record.stream_id))
            if invoice_id is not None:
                found.extend(settlements_of(record.event, invoice_id))
    else:
        for case_id, invoice_id in sorted(invoice_of.items()):
            for event in ctx.store.load(UUID(case_id)):
                found.extend(settlements_of(event, invoice_id))
    found.extend(ledger_settlements(ledger, ledger_excess(ctx) if ledger else {}))
    return found


def ledger_excess(ctx: Context) -> dict[str, Decimal]:
    """Payment id -> what a payment on an invoice without a case paid beyond its open amount (the
    customer's credit; the payments table keeps the receipt in full, the event its excess)."""
    return {r.event.payment_id: r.event.excess.amount
            for r in ctx.store.read_types(("LedgerPaymentRecorded", "PaymentAssigned"))
            if getattr(r.event, "excess", None) is not None}


def ledger_settlements(rows, excess: Mapping[str, Decimal]) -> list[Settlement]:
    """Payments table rows (of invoices without a case) as settlements: received on their value
    date, and taken back off their invoice on the day a reversed one was reversed. What a payment
    paid beyond the open amount (``excess``, by payment id) is cash that settles nothing: the
    customer's credit, kind ``excess`` as on a case."""
    found: list[Settlement] = []
    for r in rows:
        extra = excess.get(r.payment_id, ZERO)
        amount = _amount(r.amount_minor, r.currency) - extra
        found.append(Settlement(r.invoice_id, r.currency, amount, r.received_on, "payment", payment_id=r.payment_id))
        if extra:
            found.append(Settlement(r.invoice_id, r.currency, extra, r.received_on, "excess"))
        if r.status == "reversed":  # taken back off its invoice on the day it was reversed
            day = r.reversed_at.date()
            found.append(Settlement(r.invoice_id, r.currency, -amount, day, "payment", payment_id=r.payment_id))
            if extra:
                found.append(Settlement(r.invoice_id, r.currency, -extra, day, "excess"))
    return found


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def collected_per_week(found: Iterable[Settlement], currency: str, as_of: date, weeks: int = 12) -> list[tuple[date, Decimal]]:
    """Cash received (payments, including any overpayment) per week, for the ``weeks``
    weeks up to and including ``as_of``'s week; each week named by its Monday."""
    last = week_start(as_of)
    starts = [last - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    totals = {s: ZERO for s in starts}
    for s in found:
        if s.currency == currency and s.kind in ("payment", "excess") and s.on <= as_of:
            monday = week_start(s.on)
            if monday in totals:
                totals[monday] += s.amount
    return [(s, totals[s]) for s in starts]


def outstanding_on(invoices_: Iterable[Invoice], found: Iterable[Settlement], day: date) -> Decimal:
    """Receivables on ``day``: for each invoice issued by then, its amount plus fees less
    what settled it by then (never below zero)."""
    settled: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for s in found:
        if s.on <= day and s.kind != "excess":
            settled[s.invoice_id] += s.amount
    return sum((max(i.amount - settled[i.invoice_id], ZERO) for i in invoices_ if i.issue_date <= day), ZERO)


def dso_on(invoices_: list[Invoice], found: list[Settlement], day: date, window_days: int = 90) -> Decimal | None:
    """Days sales outstanding on ``day``: receivables / sales invoiced in the
    ``window_days`` up to ``day`` x ``window_days``, to one decimal. None without sales."""
    start = day - timedelta(days=window_days)
    sales = sum((i.amount for i in invoices_ if start < i.issue_date <= day), ZERO)
    if sales <= 0:
        return None
    dso = outstanding_on(invoices_, found, day) / sales * window_days
    return dso.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def trend_dates(as_of: date, points: int = 12) -> list[date]:
    """Month ends before ``as_of``, then ``as_of`` itself: ``points`` dates in all."""
    dates = [as_of]
    year, month = as_of.year, as_of.month
    while len(dates) < points:
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        dates.append(date(year, month, calendar.monthrange(year, month)[1]))
    return sorted(dates)


def dso_trend(invoices_: list[Invoice], found: list[Settlement], currency: str, as_of: date,
              points: int = 12, window_days: int = 90) -> list[tuple[date, Decimal | None]]:
    mine = [i for i in invoices_ if i.currency == currency]
    settling = [s for s in found if s.currency == currency]
    return [(d, dso_on(mine, settling, d, window_days)) for d in trend_dates(as_of, points)]


# -- the dashboard --------------------------------------------------------------------------------------


def currencies(ctx: Context) -> list[str]:
    """Ledger currencies, the one with the most invoices first."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(invoices.c.currency, func.count().label("n")).group_by(invoices.c.currency)
            .order_by(func.count().desc(), invoices.c.currency))
        return [r.currency for r in rows]


def dashboard(ctx: Context, currency: str | None = None, now: datetime | None = None, as_of: date | None = None) -> dict:
    """Every figure of the dashboard, JSON-ready, for one currency (default: the ledger's most
    used): amounts, and cases by status; the approvals waiting cover every currency (one inbox)."""
    now = now or datetime.now(timezone.utc)
    as_of = check_report_day(as_of, "as_of", now.date(), ctx.policy().inputs) or now.date()
    known = currencies(ctx)
    if currency:
        currency = currency.strip().upper()
        currency_exponent(currency)  # an ISO 4217 code, or a DomainError naming the field
    else:
        currency = known[0] if known else "USD"
    found = settlements(ctx)
    ledger = ledger_invoices(ctx, currency)
    aged = aging_report(ctx, as_of)
    buckets = aged.get(currency, {b: ZERO for b in AGING_BUCKETS})
    return {
        "as_of": as_of.isoformat(),
        "currency": currency,
        "currencies": known,
        "aging": {b: _text(v, currency) for b, v in buckets.items()},
        "aging_by_currency": {c: {b: _text(v, c) for b, v in t.items()} for c, t in sorted(aged.items())},
        "cases_by_status": cases_by_status(ctx, currency),
        "approvals": approvals_sla(ctx, now),
        "collected_per_week": [{"week": w.isoformat(), "amount": _text(a, currency)}
                               for w, a in collected_per_week(found, currency, as_of)],
        "dso": [{"date": d.isoformat(), "days": str(v) if v is not None else None}
                for d, v in dso_trend(ledger, found, currency, as_of)],
        "kpis": _kpi_figures(ctx, currency, as_of),
        "advance_cases": advance_cases(ctx),
    }


def advance_cases(ctx: Context) -> dict:
    """Overdue advance requests being dunned (cases of kind advance), on their own: a deposit
    asked before delivery is no receivable, so none of it is in the aging, DSO or CEI above."""
    c = case_summary.c
    with ctx.db.read() as session:
        rows = list(session.execute(select(c.currency, func.count(), func.sum(c.balance_minor))
                                    .where(c.kind == "advance", c.closed_at.is_(None)).group_by(c.currency)))
    return {"open": sum(int(n) for _, n, _ in rows),
            "outstanding": {cur: _text(_amount(int(minor or 0), cur), cur) for cur, _, minor in sorted(rows)}}


DASHBOARD_KPIS = ("dso_standard", "dso_countback", "cei_percent", "ar_turnover_days", "promise_kept_rate_percent",
                  "average_days_to_collect", "write_off_ratio_percent", "advances_held_end")


def _kpi_figures(ctx: Context, currency: str, as_of: date) -> dict:
    """The collection KPIs of the 90 days up to ``as_of`` (app/kpis.py, docs/KPIS.md)."""
    from app import kpis

    start, end = kpis.period(None, as_of)
    figures = kpis.compute(kpis.gather(ctx, currency), currency, start, end)
    return {"from": figures["from"], "to": figures["to"], **{k: figures[k] for k in DASHBOARD_KPIS}}
