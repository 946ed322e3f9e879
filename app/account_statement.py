"""`customer statement`: a customer's statement of account (every open item with its fees and
interest, the ageing, how to pay), as data and as a PDF letter (WeasyPrint, dated by the
as-of date, so the same statement renders to the same bytes)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from activities.letters import LetterRenderer
from activities.rendering import format_day, format_money
from app.context import Context
from app.reports import AGING_BUCKETS, _amount, aging_bucket
from domain.priority import days_overdue
from domain.agenda import accrued_interest
from domain.money import Money
from domain.state import CaseState
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


def _case_item(ctx: Context, state: CaseState, as_of: date) -> dict:
    zero = Money.zero(state.currency)
    interest, compensation = state.interest or zero, state.compensation or zero
    waived = state.interest_waived or zero
    uncharged = zero
    policy = ctx.policies.get(state.policy_version)
    accrual = accrued_interest(state, policy, as_of) if state.interest_accrued_to is None or \
        state.interest_accrued_to < as_of else None
    if accrual is not None and accrual.interest > interest:  # accrued since the last notice charged it
        uncharged = accrual.interest - interest
    # paid, credited or waived: the fees on the case are net of waivers
    settled = state.original_amount + state.fees + waived - state.balance
    return _item(state.invoice_id, state.issue_date, state.due_date, state.original_amount, state.balance + uncharged,
                 as_of, late_fees=state.fees - interest - compensation + waived, interest=interest + uncharged,
                 compensation=compensation, waived=waived, settled=settled,
                 interest_to=as_of.isoformat() if (interest + uncharged).is_positive else None)


def statement(ctx: Context, customer_id: str, as_of: date, instructions: str) -> dict:
    with ctx.db.read() as session:
        customer = session.execute(select(customers).where(customers.c.customer_id == customer_id)).first()
        cases = list(session.execute(select(case_summary.c.invoice_id, case_summary.c.state, case_summary.c.closed_at)
                                     .where(case_summary.c.customer_id == customer_id)))
        ledger = list(session.execute(select(invoices).where(invoices.c.customer_id == customer_id)
                                      .order_by(invoices.c.due_date, invoices.c.invoice_id)))
    if customer is None:
        from domain.errors import DomainError, shown

        raise DomainError(f"unknown customer {shown(customer_id)}", "customer_id")
    with_case = {r.invoice_id for r in cases}
    states = [CaseState.model_validate_json(r.state) for r in cases if r.closed_at is None]
    items = [_case_item(ctx, s, as_of) for s in states if s.balance.is_positive]
    for r in ledger:
        if r.invoice_id not in with_case and r.amount_minor > r.paid_minor:
            original = Money.of(_amount(r.amount_minor, r.currency), r.currency)
            items.append(_item(r.invoice_id, r.issue_date, r.due_date, original,
                               Money.of(_amount(r.amount_minor - r.paid_minor, r.currency), r.currency), as_of,
                               settled=Money.of(_amount(r.paid_minor, r.currency), r.currency)))
    items.sort(key=lambda i: (i["due_date"], i["invoice_id"]))
    totals: dict[str, dict] = {}
    for item in items:
        t = totals.setdefault(item["currency"], {"open": ZERO, **{b: ZERO for b in AGING_BUCKETS}})
        t["open"] += item["open"].amount
        t[item["bucket"]] += item["open"].amount
    language = states[0].customer.language if states else "en"
    return {
        "customer_id": customer_id, "name": customer.name, "email": customer.email, "country": customer.country,
        "language": language, "as_of": as_of.isoformat(), "payment_instructions": instructions,
        "items": [{k: (str(v.amount) if isinstance(v, Money) else v) for k, v in i.items()} for i in items],
        "totals": {c: {k: str(v) for k, v in t.items()} for c, t in totals.items()},
        "buckets": list(AGING_BUCKETS),
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
    html = renderer.render(
        "statement.html.j2", language=language, sender_name=sender_name, created=f"{as_of.isoformat()}T00:00:00Z",
        letter_date=format_day(as_of, language), customer_name=data["name"], customer_id=data["customer_id"],
        rows=rows, totals=totals, buckets=data["buckets"], instructions=data["payment_instructions"])
    return HTML(string=html).write_pdf()
