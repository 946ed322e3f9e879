"""Collection KPIs over a period: aging, DSO (standard and countback), CEI, AR turnover,
promise-kept rate, average days to collect, write-off ratio, collector performance.

Each figure is a pure function of plain records (invoices, settlements, promise
outcomes, closed cases), fed by ``gather`` from the ledger and the event store.
Formulas and a worked example: docs/KPIS.md. Amounts are per currency; nothing adds
amounts in different currencies.

The period is ``[start, end]``, both days included. "Receivables on day d" means at
the end of day d: invoices issued by then, less what settled them by then, plus fees.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from sqlalchemy import select

from app.context import Context
from app.reports import AGING_BUCKETS, Settlement, aging_bucket, currencies, settlements
from domain import admin
from domain.advances import held_changes
from domain.customer import customer_stream_id
from domain.errors import DomainError
from domain.inputs import check_report_day
from domain.money import Money, currency_exponent
from domain.receivables import open_amounts, write_offs
from store.schema import case_summary, invoices

ZERO = Decimal(0)
TENTH = Decimal("0.1")
# Settlements that are money collected on the invoice (as opposed to credit notes, write-offs, fees).
COLLECTED = ("payment", "credit_applied", "indemnity")


@dataclass(frozen=True)
class KpiInvoice:
    invoice_id: str
    currency: str
    amount: Decimal
    issue_date: date
    due_date: date


@dataclass(frozen=True)
class PromiseOutcome:
    on: date
    kept: bool


@dataclass(frozen=True)
class ClosedCase:
    case_id: str
    collector: str  # the case's assignee, "unassigned" when none
    currency: str
    opened_on: date
    closed_on: date | None  # None: still open
    outcome: str | None


@dataclass(frozen=True)
class CollectorEvent:
    case_id: str
    on: date
    kind: str  # collected (cash received) | applied (settled the invoice) | promise_broken
    amount: Decimal = ZERO
    currency: str = ""


def _q(value: Decimal) -> Decimal:
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


# -- receivables -------------------------------------------------------------------------------


def receivables(invoices_: list[KpiInvoice], found: list[Settlement], day: date,
                amounts: dict[str, Decimal] | None = None) -> Decimal:
    """``amounts``: ``open_amounts`` of the same day, when the caller has them already."""
    return sum((open_amounts(invoices_, found, day) if amounts is None else amounts).values(), ZERO)


def current_receivables(invoices_: list[KpiInvoice], found: list[Settlement], day: date,
                        amounts: dict[str, Decimal] | None = None) -> Decimal:
    """Receivables not yet past due at the end of ``day`` (due on or after it)."""
    due = {i.invoice_id: i.due_date for i in invoices_}
    amounts = open_amounts(invoices_, found, day) if amounts is None else amounts
    return sum((v for k, v in amounts.items() if due[k] >= day), ZERO)


def aging_on(invoices_: list[KpiInvoice], found: list[Settlement], day: date,
             amounts: dict[str, Decimal] | None = None) -> dict[str, Decimal]:
    buckets = {b: ZERO for b in AGING_BUCKETS}
    due = {i.invoice_id: i.due_date for i in invoices_}
    amounts = open_amounts(invoices_, found, day) if amounts is None else amounts
    for invoice_id, amount in amounts.items():
        if amount > 0:
            buckets[aging_bucket((day - due[invoice_id]).days)] += amount
    return buckets


def credit_sales(invoices_: list[KpiInvoice], start: date, end: date) -> Decimal:
    return sum((i.amount for i in invoices_ if start <= i.issue_date <= end), ZERO)


# -- the KPIs --------------------------------------------------------------------------------------


def dso_standard(ar_end: Decimal, sales: Decimal, days: int) -> Decimal | None:
    """DSO = receivables at the end / credit sales of the period x days in the period."""
    if sales <= 0:
        return None
    return _q(ar_end / sales * days)


def _month_slices(end: date, months: int) -> list[tuple[date, date]]:
    """``end``'s month up to ``end``, then whole calendar months backwards."""
    slices = [(end.replace(day=1), end)]
    year, month = end.year, end.month
    for _ in range(months - 1):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        slices.append((date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])))
    return slices


def dso_countback(invoices_: list[KpiInvoice], ar_end: Decimal, end: date, max_months: int = 24) -> Decimal | None:
    """Countback DSO: walk back month by month from ``end``, taking each month's credit
    sales off the ending receivables; each month fully used counts all its days, the
    month where the receivables run out counts its days pro rata."""
    if ar_end <= 0:
        return _q(ZERO)
    left, days = ar_end, ZERO
    for first, last in _month_slices(end, max_months):
        span = (last - first).days + 1
        sales = credit_sales(invoices_, first, last)
        if sales <= 0:
            days += span
            continue
        if left > sales:
            left -= sales
            days += span
            continue
        return _q(days + left / sales * span)
    return None  # more receivables than two years of sales: not meaningful


def cei(ar_begin: Decimal, sales: Decimal, ar_end: Decimal, current_end: Decimal) -> Decimal | None:
    """Collection effectiveness index, percent:
    (begin + sales - end) / (begin + sales - current at the end) x 100."""
    collectible = ar_begin + sales - current_end
    if collectible <= 0:
        return None
    return _q((ar_begin + sales - ar_end) / collectible * 100)


def ar_turnover(sales: Decimal, ar_begin: Decimal, ar_end: Decimal, days: int) -> tuple[Decimal | None, Decimal | None]:
    """(turnover, turnover in days): sales / average receivables, and days / turnover."""
    average = (ar_begin + ar_end) / 2
    if average <= 0 or sales <= 0:
        return None, None
    turnover = sales / average
    return turnover.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), _q(days / turnover)


def promise_kept_rate(outcomes: Iterable[PromiseOutcome], start: date, end: date) -> tuple[int, int, Decimal | None]:
    """(kept, broken, kept / (kept + broken) in percent) for promises that came due in the period."""
    kept = broken = 0
    for o in outcomes:
        if start <= o.on <= end:
            kept += o.kept
            broken += not o.kept
    total = kept + broken
    return kept, broken, _q(Decimal(kept) / total * 100) if total else None


def collection_days(invoices_: list[KpiInvoice], found: list[Settlement], start: date, end: date,
                    settled: dict[str, tuple[date, bool]] | None = None) -> dict[str, date]:
    """Invoices fully settled within the period, at least partly by money collected: the day.
    ``settled``: ``settled_days`` of the same records, when the caller has them already."""
    settled = settled_days(invoices_, found) if settled is None else settled
    return {k: on for k, (on, collected) in settled.items() if collected and start <= on <= end}


def settled_days(invoices_: list[KpiInvoice], found: list[Settlement]) -> dict[str, tuple[date, bool]]:
    """Each invoice fully settled (on any day) and still settled after everything recorded: the
    day, and whether money collected was part of it. A reversed payment settles nothing: the
    invoice counts only once paid again, on the day that payment settled it; anything else that
    makes it owed again (an amendment up) un-settles it likewise. Money collected counts only
    if a collected part still stands."""
    # a reversed receipt settled nothing, on no day: left out with its reversal and the small-balance
    # write-off it left (so a new payment settles on its own day, even one received before the reversal)
    reversed_ = {(s.invoice_id, s.payment_id) for s in found if s.payment_id and s.kind == "payment" and s.amount < 0}
    by_invoice: dict[str, list[Settlement]] = defaultdict(list)
    for s in found:
        if s.kind != "excess" and (s.invoice_id, s.payment_id) not in reversed_:
            by_invoice[s.invoice_id].append(s)
    done: dict[str, tuple[date, bool]] = {}
    for invoice in invoices_:
        total, standing = ZERO, defaultdict(lambda: ZERO)  # kind -> what still stands of it
        settled_on: date | None = None
        for s in sorted(by_invoice.get(invoice.invoice_id, []), key=lambda s: (s.on, s.kind == "fee")):
            total += s.amount
            standing[s.kind] += s.amount
            if total < invoice.amount:
                settled_on = None  # owed again
            elif settled_on is None:
                settled_on = s.on
        if settled_on is not None:
            done[invoice.invoice_id] = (settled_on, any(standing[k] > 0 for k in COLLECTED))
    return done


def average_days_to_collect(invoices_: list[KpiInvoice], found: list[Settlement], start: date, end: date,
                            settled: dict[str, tuple[date, bool]] | None = None) -> tuple[int, Decimal | None]:
    """(invoices collected in the period, mean days from issue to the day they were fully settled)."""
    issued = {i.invoice_id: i.issue_date for i in invoices_}
    done = collection_days(invoices_, found, start, end, settled)
    if not done:
        return 0, None
    return len(done), _q(Decimal(sum((day - issued[k]).days for k, day in done.items())) / len(done))


@dataclass(frozen=True)
class WrittenOff:
    total: Decimal  # every write-off of the period
    principal: Decimal  # of it, invoice amounts: bad debt
    charges: Decimal  # of it, late fees, interest and compensation
    ratio: Decimal | None  # principal / credit sales of the period, percent


def write_off_ratio(invoices_: list[KpiInvoice], found: Iterable[Settlement], sales: Decimal, start: date,
                    end: date) -> WrittenOff:
    """Written off in the period, split into principal and charges by the rule of
    ``domain.receivables.write_offs`` (principal first); the ratio is the principal written off
    (bad debt) over the credit sales of the period: charges were never sales."""
    mine = [w for w in write_offs(invoices_, found) if start <= w.settlement.on <= end]
    principal = sum((w.principal for w in mine), ZERO)
    charges = sum((w.charges for w in mine), ZERO)
    return WrittenOff(principal + charges, principal, charges, _q(principal / sales * 100) if sales > 0 else None)


def collector_performance(cases: list[ClosedCase], facts: list[CollectorEvent], currency: str,
                          start: date, end: date) -> list[dict]:
    """Per collector, among the cases in ``currency`` (a row of the report is one currency's):
    cases closed in the period, cash collected in the period on their cases (payments in full,
    an overpayment's excess included, as the dashboard counts it), the amount applied in the
    period to their cases' invoices (the payments' applied part and customer credit applied),
    average days from opening to closing of those cases, promises broken in the period. A
    collector with none of these (a payment reversed in the same period nets to nothing) has no row."""
    cases = [c for c in cases if c.currency == currency]
    owner = {c.case_id: c.collector for c in cases}
    table: dict[str, dict] = {}

    def row(name: str) -> dict:
        return table.setdefault(name, {"collector": name, "cases_closed": 0, "collected": ZERO, "applied": ZERO,
                                       "_days": 0, "broken_promises": 0})

    for c in cases:
        if c.closed_on is not None and start <= c.closed_on <= end:
            r = row(c.collector)
            r["cases_closed"] += 1
            r["_days"] += (c.closed_on - c.opened_on).days
    for f in facts:
        if f.case_id not in owner or not start <= f.on <= end:
            continue
        r = row(owner[f.case_id])
        if f.kind in ("collected", "applied") and f.currency == currency:
            r[f.kind] += f.amount
        elif f.kind == "promise_broken":
            r["broken_promises"] += 1
    out = []
    for name in sorted(table):
        r = table[name]
        if not (r["cases_closed"] or r["collected"] or r["applied"] or r["broken_promises"]):
            continue  # only a payment and its reversal: as if never paid, nothing to show
        days = r.pop("_days")
        r["average_days_to_close"] = _q(Decimal(days) / r["cases_closed"]) if r["cases_closed"] else None
        out.append(r)
    return out


# -- gathering and the whole set ---------------------------------------------------------------------


@dataclass
class KpiInputs:
    invoices: list[KpiInvoice]
    settlements: list[Settlement]
    promises: list[PromiseOutcome]
    cases: list[ClosedCase]
    facts: list[CollectorEvent]
    advances: list[tuple[date, Decimal]] = field(default_factory=list)  # dated changes of what advances hold
    # bad debt recovered (WriteOffRecovered): the day received, the amount (negative: taken back on
    # that day, WriteOffRecoveryReversed); it settles no invoice
    recoveries: list[tuple[date, Decimal]] = field(default_factory=list)
    # settled_days of these records, computed once for the several periods a report computes
    settled: dict[str, tuple[date, bool]] | None = field(default=None, repr=False, compare=False)


def gather(ctx: Context, currency: str) -> KpiInputs:
    with ctx.db.read() as session:
        rows = session.execute(select(invoices.c.invoice_id, invoices.c.currency, invoices.c.amount_minor,
                                      invoices.c.issue_date, invoices.c.due_date).where(invoices.c.currency == currency))
        ledger = [KpiInvoice(r.invoice_id, r.currency, Money.from_minor(r.amount_minor, r.currency).amount,
                             r.issue_date, r.due_date) for r in rows]
        summaries = list(session.execute(select(case_summary.c.case_id, case_summary.c.assignee, case_summary.c.currency,
                                                case_summary.c.opened_at, case_summary.c.closed_at,
                                                case_summary.c.status).where(case_summary.c.kind == "invoice")))
    found = [s for s in settlements(ctx) if s.currency == currency]
    cases = [ClosedCase(r.case_id, r.assignee or "unassigned", r.currency, r.opened_at.date(),
                        r.closed_at.date() if r.closed_at else None, r.status if r.closed_at else None)
             for r in summaries]
    promises: list[PromiseOutcome] = []
    facts: list[CollectorEvent] = []
    for record in ctx.store.read_types(("PromiseKept", "PromiseBroken", "PaymentReceived", "PaymentReversed",
                                        "CustomerCreditApplied")):
        e = record.event
        name = type(e).__name__
        day = e.occurred_at.date()
        if name in ("PromiseKept", "PromiseBroken"):
            promises.append(PromiseOutcome(day, name == "PromiseKept"))
            if name == "PromiseBroken":
                facts.append(CollectorEvent(str(record.stream_id), day, "promise_broken"))
        elif name == "CustomerCreditApplied":  # money collected before (an overpayment, an advance): applied now
            facts.append(CollectorEvent(str(record.stream_id), day, "applied", e.amount.amount, e.amount.currency))
        else:
            facts.extend(payment_facts(str(record.stream_id), e))
    return KpiInputs(ledger, found, promises, cases, facts, _advance_changes(ctx, currency),
                     recoveries(ctx, currency))


def recoveries(ctx: Context, currency: str) -> list[tuple[date, Decimal]]:
    """Money received on written-off invoices (``WriteOffRecovered``): on the day received; less
    what the bank took back (``WriteOffRecoveryReversed``), on the day taken back."""
    return [(e.received_on, e.amount.amount) if isinstance(e, admin.WriteOffRecovered)
            else (e.occurred_at.date(), -e.amount.amount)
            for e in (r.event for r in ctx.store.read_types(("WriteOffRecovered", "WriteOffRecoveryReversed")))
            if e.amount.currency == currency]


def cash_received(found: Iterable[Settlement], start: date, end: date) -> Decimal:
    """Payments received in the period, in full (an overpayment's excess included, a reversal
    taken back on the day reversed). `report kpis`' ``collected`` adds the bad debt recovered."""
    return sum((s.amount for s in found if s.kind in ("payment", "excess") and start <= s.on <= end), ZERO)


def payment_facts(case_id: str, e) -> list[CollectorEvent]:
    """A payment (``PaymentReceived``) or its reversal (``PaymentReversed``, the money never
    arrived) on a case: the cash collected (all of it, an overpayment's excess included) and
    the part applied to the invoice, on the day the money was received, or for a reversal the
    day it was reversed, taken back."""
    if type(e).__name__ == "PaymentReversed":
        day, sign = e.occurred_at.date(), -1
    else:
        day, sign = e.received_on, 1
    cash = e.applied + e.excess
    return [CollectorEvent(case_id, day, "collected", sign * cash.amount, cash.currency),
            CollectorEvent(case_id, day, "applied", sign * e.applied.amount, e.applied.currency)]


def _advance_changes(ctx: Context, currency: str) -> list[tuple[date, Decimal]]:
    """What advances held, as dated changes over the streams of customers who paid one (a
    liability: never part of receivables, DSO or CEI)."""
    ids = sorted({r.event.customer_id for r in ctx.store.read_types(("PrepaymentReceived",))})
    return [c for customer_id in ids for c in held_changes(ctx.store.load(customer_stream_id(customer_id)), currency)]


def compute(data: KpiInputs, currency: str, start: date, end: date) -> dict:
    """Every KPI for the period, JSON-ready (amounts as strings)."""
    if end < start:
        raise DomainError(f"the period ends ({end}) before it starts ({start})", "from")
    days = (end - start).days + 1
    inv, found = data.invoices, data.settlements
    ar_begin = receivables(inv, found, start - timedelta(days=1))
    open_end = open_amounts(inv, found, end)
    ar_end = receivables(inv, found, end, open_end)
    current_end = current_receivables(inv, found, end, open_end)
    sales = credit_sales(inv, start, end)
    turnover, turnover_days = ar_turnover(sales, ar_begin, ar_end, days)
    kept, broken, kept_rate = promise_kept_rate(data.promises, start, end)
    if data.settled is None:
        data.settled = settled_days(inv, found)
    collected_n, adc = average_days_to_collect(inv, found, start, end, data.settled)
    written = write_off_ratio(inv, found, sales, start, end)
    recovered = sum((amount for day, amount in data.recoveries if start <= day <= end), ZERO)
    money = lambda v: _money(v, currency)  # noqa: E731
    text = lambda v: str(v) if v is not None else None  # noqa: E731
    return {
        "currency": currency, "from": start.isoformat(), "to": end.isoformat(), "days": days,
        "receivables_begin": money(ar_begin), "receivables_end": money(ar_end),
        "current_receivables_end": money(current_end), "credit_sales": money(sales),
        "aging": {b: money(v) for b, v in aging_on(inv, found, end, open_end).items()},
        "dso_standard": text(dso_standard(ar_end, sales, days)),
        "dso_countback": text(dso_countback(inv, ar_end, end)),
        "cei_percent": text(cei(ar_begin, sales, ar_end, current_end)),
        "ar_turnover": text(turnover), "ar_turnover_days": text(turnover_days),
        "promises_kept": kept, "promises_broken": broken, "promise_kept_rate_percent": text(kept_rate),
        "invoices_collected": collected_n, "average_days_to_collect": text(adc),
        "written_off": money(written.total), "write_off_ratio_percent": text(written.ratio),
        "principal_written_off": money(written.principal), "fees_written_off": money(written.charges),
        "recovered": money(recovered), "net_written_off": money(written.total - recovered),
        "collected": money(cash_received(found, start, end) + recovered),  # cash, recoveries included
        "advances_held_end": money(sum((d for day, d in data.advances if day <= end), ZERO)),
        "collectors": [{**r, "collected": money(r["collected"]), "applied": money(r["applied"]),
                        "average_days_to_close": text(r["average_days_to_close"])}
                       for r in collector_performance(data.cases, data.facts, currency, start, end)],
    }


def _money(value: Decimal, currency: str) -> str:
    return str(value.quantize(Decimal(1).scaleb(-currency_exponent(currency))))


def period(start: date | None, end: date | None, days: int = 90) -> tuple[date, date]:
    end = end or datetime.now(timezone.utc).date()
    return start or end - timedelta(days=days - 1), end


def kpis(ctx: Context, start: date | None = None, end: date | None = None, currency: str | None = None) -> dict:
    if currency:
        currency = currency.strip().upper()
        currency_exponent(currency)
    else:
        known = currencies(ctx)
        currency = known[0] if known else "USD"
    today = datetime.now(timezone.utc).date()
    rules = ctx.policy().inputs
    check_report_day(start, "from", today, rules)
    check_report_day(end, "to", today, rules)
    first, last = period(start, end)
    figures = compute(gather(ctx, currency), currency, first, last)
    return {**figures, "notes": notes(figures)}


def report_view(name: str, figures: dict) -> dict:
    """One report of the figures: every KPI (``kpis``), or one report's rows and its notes."""
    if name == "kpis":
        return figures
    return {"report": name, "rows": report_rows(name, figures), "notes": notes(figures, name)}


# -- report views: one table per report, for the CLI's table / --json / --csv --------------------------

REPORTS = ("kpis", "aging", "dso", "cei", "turnover", "promises", "collect", "write-offs", "collectors")


def notes(figures: dict, report: str = "kpis") -> list[str]:
    """Why a figure of ``report`` is outside the range a reader expects, from the figures the
    report shows beside it (docs/KPIS.md)."""
    f, out = figures, []
    if report in ("kpis", "cei"):
        if f["cei_percent"] is None:
            out.append(f"no CEI: the receivables at the start ({f['receivables_begin']}) and the period's credit sales "
                       f"({f['credit_sales']}) are no more than the current receivables at the end "
                       f"({f['current_receivables_end']}): nothing in the period was due to be collected")
        elif Decimal(f["cei_percent"]) < 0:
            out.append(f"CEI is negative: the receivables at the end ({f['receivables_end']}) are more than those at "
                       f"the start ({f['receivables_begin']}) and the period's credit sales ({f['credit_sales']}) "
                       "together; late fees, interest and reversed payments add to receivables without being sales")
    ratio = f["write_off_ratio_percent"]
    if report in ("kpis", "write-offs") and ratio is not None and Decimal(ratio) > 100:
        out.append(f"write-off ratio above 100 %: the principal written off in the period ({f['principal_written_off']}) "
                   f"is more than its credit sales ({f['credit_sales']}), so some of it was sold in earlier periods")
    return out


def report_rows(name: str, figures: dict) -> list[dict]:
    """The rows one report shows (its CSV), from the whole set of figures."""
    f = figures
    base = {"currency": f["currency"], "from": f["from"], "to": f["to"]}
    if name == "aging":
        return [{**base, "bucket": b, "amount": v} for b, v in f["aging"].items()]
    if name == "dso":
        return [{**base, "receivables_end": f["receivables_end"], "credit_sales": f["credit_sales"], "days": f["days"],
                 "dso_standard": f["dso_standard"], "dso_countback": f["dso_countback"]}]
    if name == "cei":
        return [{**base, "receivables_begin": f["receivables_begin"], "credit_sales": f["credit_sales"],
                 "receivables_end": f["receivables_end"], "current_receivables_end": f["current_receivables_end"],
                 "cei_percent": f["cei_percent"]}]
    if name == "turnover":
        return [{**base, "credit_sales": f["credit_sales"], "receivables_begin": f["receivables_begin"],
                 "receivables_end": f["receivables_end"], "ar_turnover": f["ar_turnover"],
                 "ar_turnover_days": f["ar_turnover_days"]}]
    if name == "promises":
        return [{**base, "kept": f["promises_kept"], "broken": f["promises_broken"],
                 "promise_kept_rate_percent": f["promise_kept_rate_percent"]}]
    if name == "collect":
        return [{**base, "invoices_collected": f["invoices_collected"],
                 "average_days_to_collect": f["average_days_to_collect"]}]
    if name == "write-offs":
        return [{**base, "written_off": f["written_off"], "credit_sales": f["credit_sales"],
                 "write_off_ratio_percent": f["write_off_ratio_percent"],
                 "principal_written_off": f["principal_written_off"], "fees_written_off": f["fees_written_off"],
                 "recovered": f["recovered"], "net_written_off": f["net_written_off"]}]
    if name == "collectors":
        return [{**base, **r} for r in f["collectors"]]
    if name == "kpis":
        keys = ("dso_standard", "dso_countback", "cei_percent", "ar_turnover", "ar_turnover_days",
                "promise_kept_rate_percent", "average_days_to_collect", "write_off_ratio_percent",
                "receivables_end", "credit_sales", "collected", "written_off", "recovered", "net_written_off",
                "principal_written_off", "fees_written_off", "advances_held_end")
        return [{**base, "kpi": k, "value": f[k]} for k in keys]
    raise DomainError(f"{name!r} is not a report ({', '.join(REPORTS)})", "report")


def to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
