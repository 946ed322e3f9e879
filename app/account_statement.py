"""`customer statement`: a customer's statement of account (every open item with its fees and
interest, the ageing, the credit the customer holds and the balance due net of it, how to pay),
as data and as a PDF letter (WeasyPrint, dated by the as-of date, so the same statement renders
to the same bytes)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select

from activities.letters import LetterRenderer
from activities.rendering import format_day, format_money
from app.context import Context
from app.credit import credit_dict
from app.kpis import KpiInvoice
from app.reports import AGING_BUCKETS, _amount, aging_bucket, settlements
from domain.agenda import accrued_interest
from domain.money import Money
from domain.priority import days_overdue
from domain.receivables import Standing, balances_due, settlements_of, standings_on
from domain.state import CaseState
from store.customers import CustomerReads
from store.schema import case_summary, customers, invoices

ZERO = Decimal(0)


def _item(invoice_id: str, issue: date, due: date, original: Money, open_: Money, as_of: date, **extra) -> dict:
    overdue = days_overdue(due, as_of)
    zero = Money.zero(original.currency)
    item = {"invoice_id": invoice_id, "currency": original.currency, "issue_date": issue.isoformat(),
            "due_date": due.isoformat(), "days_overdue": max(overdue, 0), "bucket": aging_bucket(overdue),
            "original": original, "late_fees": zero, "interest": zero, "compensation": zero,
            "settled": zero, "open": open_, "interest_to": None}
    item.update(extra)
    return item


def _interest_to(ctx: Context, state: CaseState | None, standing: Standing, as_of: date) -> Decimal:
    """Interest accrued on the case to ``as_of`` beyond what notices charged by then (none
    without a case or an interest regime)."""
    if state is None:
        return ZERO
    accrual = accrued_interest(state, ctx.policies.get(state.policy_version), as_of)
    if accrual is None or accrual.interest.amount <= standing.interest:
        return ZERO
    return accrual.interest.amount - standing.interest


def _standing_item(ctx: Context, standing: Standing, currency: str, issue: date, due: date,
                   state: CaseState | None, as_of: date) -> dict:
    def money(amount: Decimal) -> Money:
        return Money.of(amount, currency)

    uncharged = _interest_to(ctx, state, standing, as_of)  # accrued since the last notice charged it
    interest = standing.interest + uncharged
    return _item(standing.invoice_id, issue, due, money(standing.amount), money(standing.open + uncharged), as_of,
                 late_fees=money(standing.late_fees), interest=money(interest),
                 compensation=money(standing.compensation), waived=money(standing.waived),
                 settled=money(standing.settled), interest_to=as_of.isoformat() if interest > 0 else None)


def statement(ctx: Context, customer_id: str, as_of: date, instructions: str) -> dict:
    """The customer's open items as they stood at the end of ``as_of``: what was received by
    then (by its value date), the fees, interest and credits recorded by then; the same open
    amounts as ``report aging --to`` that day (domain/receivables.py), plus the interest
    accrued since the last notice."""
    with ctx.db.read() as session:
        customer = session.execute(select(customers).where(customers.c.customer_id == customer_id)).first()
        cases = list(session.execute(select(case_summary.c.case_id, case_summary.c.invoice_id, case_summary.c.kind,
                                            case_summary.c.state)
                                     .where(case_summary.c.customer_id == customer_id)))
        ledger = list(session.execute(select(invoices).where(invoices.c.customer_id == customer_id)
                                      .order_by(invoices.c.due_date, invoices.c.invoice_id)))
    if customer is None:
        from domain.errors import DomainError, shown

        raise DomainError(f"unknown customer {shown(customer_id)}", "customer_id")
    states = {r.invoice_id: CaseState.model_validate_json(r.state) for r in cases}
    found = settlements(ctx, customer_id)
    receivable = [KpiInvoice(r.invoice_id, r.currency, _amount(r.amount_minor, r.currency), r.issue_date, r.due_date)
                  for r in ledger]
    # an advance request dunned as a case: no invoice, but owed; it stands by its case's events the same way
    advances = [KpiInvoice(r.invoice_id, states[r.invoice_id].currency, states[r.invoice_id].original_amount.amount,
                           states[r.invoice_id].issue_date, states[r.invoice_id].due_date)
                for r in cases if r.kind == "advance"]
    for r in cases:
        if r.kind == "advance":
            found.extend(s for e in ctx.store.load(UUID(r.case_id)) for s in settlements_of(e, r.invoice_id))
    standing = standings_on(receivable + advances, found, as_of)
    items = [_standing_item(ctx, standing[i.invoice_id], i.currency, i.issue_date, i.due_date,
                            states.get(i.invoice_id), as_of)
             for i in receivable + advances if i.invoice_id in standing and standing[i.invoice_id].open > 0]
    items.sort(key=lambda i: (i["due_date"], i["invoice_id"]))
    totals: dict[str, dict] = {}
    for item in items:
        t = totals.setdefault(item["currency"], {"open": ZERO, **{b: ZERO for b in AGING_BUCKETS}})
        t["open"] += item["open"].amount
        t[item["bucket"]] += item["open"].amount
    language = next(iter(states.values())).customer.language if states else customer.language
    movements = CustomerReads(ctx.db, ctx.store).credit_movements(customer_id)
    due = balances_due({c: t["open"] for c, t in totals.items()}, movements, customer_id, as_of)
    return {
        "customer_id": customer_id, "name": customer.name, "email": customer.email, "country": customer.country,
        "language": language, "as_of": as_of.isoformat(), "payment_instructions": instructions,
        "items": [{k: (str(v.amount) if isinstance(v, Money) else v) for k, v in i.items()} for i in items],
        "totals": {c: {k: str(v) for k, v in t.items()} for c, t in totals.items()},
        "buckets": list(AGING_BUCKETS),
        # the credit the customer held that day (as `payments unapplied --as-of`), and what is due net of it
        "credit": [credit_dict(d.held) for d in due if d.held is not None],
        "balance_due": {d.currency: {k: str(Money.zero(d.currency).quantized(v)) for k, v in (
            ("total_open", d.open), ("credit", d.credit), ("balance_due", d.due), ("credit_left", d.credit_left))}
            for d in due},
    }


def statement_pdf(data: dict, sender_name: str = "Accounts Receivable") -> bytes:
    """The statement as a PDF letter, in the customer's language (templates/letters/statement.html.j2)."""
    from weasyprint import HTML

    renderer = LetterRenderer(sender_name=sender_name)
    language = renderer._language(data["language"])
    as_of = date.fromisoformat(data["as_of"])

    def money(amount: str, currency: str) -> str:
        return format_money(Money.of(amount, currency), language)

    rows = [{**i, "issue_date": format_day(date.fromisoformat(i["issue_date"]), language),
             "due_date": format_day(date.fromisoformat(i["due_date"]), language),
             **{k: money(i[k], i["currency"]) for k in ("original", "late_fees", "interest", "compensation",
                                                         "settled", "open")}}
            for i in data["items"]]
    totals = [{"currency": c, "open": money(t["open"], c), "buckets": [money(t[b], c) for b in data["buckets"]]}
              for c, t in data["totals"].items()]
    balance = [{"currency": c, **{k: money(v, c) for k, v in d.items()}, "in_favour": Decimal(d["credit_left"]) > 0,
                "has_credit": Decimal(d["credit"]) != 0}
               for c, d in data["balance_due"].items()]
    html = renderer.render(
        "statement.html.j2", language=language, sender_name=sender_name, created=f"{as_of.isoformat()}T00:00:00Z",
        letter_date=format_day(as_of, language), customer_name=data["name"], customer_id=data["customer_id"],
        rows=rows, totals=totals, balance=balance, buckets=data["buckets"],
        instructions=data["payment_instructions"])
    return HTML(string=html).write_pdf()
