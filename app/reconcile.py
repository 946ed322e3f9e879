"""`report reconcile`: recompute from the event store alone what every report and read
model shows, and name each difference.

The recomputation is deliberately independent of the code it checks: it does not fold
events with ``domain.state`` nor sum with ``app.reports.settlements``; it reads each
money-moving event's own fields. What it compares:

* every case's open balance, open/closed status and the customer credit it left (overpayment
  excess net of reversals, the part paid beyond an ERP amendment) with ``case_summary``; and
  that what was paid on a case and still settles it (payments, customer credit applied, what
  the ERP booked as paid outside the engine) is no more than its invoice can owe (the amount as
  amended plus its fees): more is money paid that is nobody's credit;
* every customer's open cases and open balance with ``customer_exposure``;
* the approvals inbox with the cases' open/closed status: nothing still waits for a decision
  (``pending``) on a case the events have closed;
* the payments table with the case events (each payment applied to a case has one
  ``PaymentReceived``, a reversed one a ``PaymentReversed``) and, for invoices without a
  case, the invoice's paid amount with its payment rows, less what each paid beyond the open
  amount (its ``LedgerPaymentRecorded.excess``: the customer's credit, cash but not applied);
* per currency, receivables at the end of the period and the period's cash collected,
  credits, write-offs and fees with ``report kpis`` and the settlements the dashboard sums,
  and what the collectors collected (cash) and applied on cases with ``report collectors``;
* per currency, the period's bad debt recovered on written-off invoices (``WriteOffRecovered``,
  on the day received, less ``WriteOffRecoveryReversed`` on the day taken back) with
  ``report kpis``'s ``recovered``; it settles no invoice (the case stays
  written off), so it is in no receivable and in no collector's figure.

The figures (docs/KPIS.md): ``collected`` is cash received (payments in full, an overpayment's
excess included), ``applied`` what payments and customer credit settled on invoices; both
include ``collected_without_case``, the payments on invoices without a case (no collector's).

A case of kind advance (an overdue advance request, ``CaseOpened.advance``) is checked with
``case_summary`` like any case, and nowhere else: a deposit asked is no receivable, and its
payment is the advance on the customer's register.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app.context import Context
from app.reports import _amount  # minor units -> Decimal, as every report reads them
from store.payments import RECOVERY_REVERSED
from store.schema import approvals, case_summary, customer_exposure, invoices, payments

ZERO = Decimal(0)

# The events that change what a case's invoice still owes, with the sign they move it by.
_BALANCE_MOVES = {
    "LateFeeCharged": ("fee", +1),
    "InterestCharged": ("fee", +1),  # interest and compensation
    "InterestWaived": ("amount", -1),
    "PaymentReceived": ("applied", -1),
    "PaymentReversed": ("applied", +1),
    "DisputeResolved": ("credit", -1),
    "WriteOffApproved": ("amount", -1),
    "SmallBalanceWrittenOff": ("amount", -1),
    "SmallBalanceWriteOffReversed": ("amount", +1),
    "CaseCancelled": ("amount", -1),
    "CustomerCreditApplied": ("amount", -1),
    "IndemnityReceived": ("amount", -1),
    "InvoiceAmended": ("change", +1),  # signed: an amendment down is negative; its credit (paid beyond it) added
    "CreditNoteApplied": ("applied", -1),
    "PaidOutsideEngine": ("applied", -1),
    # early-cash instruments (docs/FINANCING.md); a default with recourse moves nothing (derecognized None)
    "EarlyPaymentDiscountGranted": ("amount", -1),
    "FactorCollected": ("amount", -1),
    "FactorDefaulted": ("derecognized", -1),
}
# What each moves in the period's totals (cash counts the whole payment, excess included).
_PERIOD_KIND = {
    "LateFeeCharged": "fees", "InterestCharged": "fees", "InterestWaived": "fees", "DisputeResolved": "credits", "WriteOffApproved": "write_offs",
    "SmallBalanceWrittenOff": "write_offs", "SmallBalanceWriteOffReversed": "write_offs",
    "CaseCancelled": "cancelled", "CustomerCreditApplied": "credit_applied", "IndemnityReceived": "indemnity",
    "InvoiceAmended": "erp_adjustments", "CreditNoteApplied": "erp_adjustments", "PaidOutsideEngine": "paid_outside",
    "EarlyPaymentDiscountGranted": "discounts", "FactorCollected": "factored", "FactorDefaulted": "factored",
}


@dataclass
class CaseFacts:
    invoice_id: str
    customer_id: str
    currency: str
    original: Decimal  # the invoice amount
    balance: Decimal
    open: bool = True
    moves: list[tuple[date, Decimal]] = field(default_factory=list)  # dated changes of what is owed
    payments: dict[str, Decimal] = field(default_factory=dict)  # payment id -> amount received
    reversed: set[str] = field(default_factory=set)
    advance: bool = False  # a case of kind advance: a deposit asked, in no receivable, exposure nor cash total
    credit: Decimal = ZERO  # left with the customer as credit: overpayment excess, paid beyond an amendment
    paid: Decimal = ZERO  # what was paid and still settles it: payments, credit applied, paid outside, net
    owed: Decimal = ZERO  # the most it could owe: the invoice amount (as amended) plus its fees


@dataclass
class Recomputed:
    cases: dict[str, CaseFacts]
    period: dict[str, dict[str, Decimal]]  # currency -> kind -> total in the period
    # payment id -> what a payment on an invoice without a case paid beyond its open amount: the
    # customer's credit, not on the invoice (its event's excess)
    ledger_excess: dict[str, Decimal] = field(default_factory=dict)
    # payment id -> (invoice id, amount) of bad debt recovered on a written-off invoice (WriteOffRecovered)
    recoveries: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    # payment ids of those recoveries the bank took back (WriteOffRecoveryReversed)
    recoveries_reversed: set[str] = field(default_factory=set)


def recompute(ctx: Context, start: date, end: date) -> Recomputed:
    """Every case's balance and the period's totals, from the events alone."""
    cases: dict[str, CaseFacts] = {}
    period: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    ledger_excess: dict[str, Decimal] = {}
    recoveries: dict[str, tuple[str, Decimal]] = {}
    recoveries_reversed: set[str] = set()
    for record in ctx.store.read_all():
        e = record.event
        name = type(e).__name__
        case_id = str(record.stream_id)
        if name in ("LedgerPaymentRecorded", "PaymentAssigned") and getattr(e, "excess", None) is not None:
            ledger_excess[e.payment_id] = e.excess.amount
            continue
        if name == "WriteOffRecovered":
            recoveries[e.payment_id] = (e.invoice_id, e.amount.amount)
            continue
        if name == "WriteOffRecoveryReversed":
            recoveries_reversed.add(e.payment_id)
            continue
        if name == "CaseOpened":
            cases[case_id] = CaseFacts(e.invoice_id, e.customer.customer_id, e.opening_balance.currency,
                                       e.original_amount.amount, e.opening_balance.amount,
                                       advance=e.advance is not None)
            cases[case_id].owed = e.original_amount.amount
            cases[case_id].paid = e.original_amount.amount - e.opening_balance.amount  # paid before the case
            continue
        facts = cases.get(case_id)
        if facts is None:
            continue  # a customer stream, not a case
        if name == "CaseClosed":
            facts.open = False
        elif name == "CaseReopened":
            facts.open = True
        move = _BALANCE_MOVES.get(name)
        if move is None:
            continue
        attribute, sign = move
        value = getattr(e, attribute)
        if value is None:  # a dispute resolved without a credit
            continue
        _paid_and_owed(facts, name, e, sign * value.amount)
        day = e.received_on if name == "PaymentReceived" else e.occurred_at.date()
        moved = sign * value.amount
        if name == "InvoiceAmended" and e.credit is not None:  # paid beyond the new amount: the customer's credit
            moved += e.credit.amount
            facts.credit += e.credit.amount
        elif name in ("PaymentReceived", "PaymentReversed"):
            facts.credit += (1 if name == "PaymentReceived" else -1) * e.excess.amount
        facts.balance += moved
        facts.moves.append((day, moved))
        if facts.advance:
            continue  # its payment is the advance on the customer's register (PrepaymentReceived)
        if name in ("PaymentReceived", "PaymentReversed"):
            cash = e.applied.amount + e.excess.amount
            if name == "PaymentReceived":
                facts.payments[e.payment_id] = cash
            else:
                facts.reversed.add(e.payment_id)
            if start <= day <= end:
                sign = 1 if name == "PaymentReceived" else -1
                period[facts.currency]["collected"] += sign * cash
                period[facts.currency]["applied"] += sign * e.applied.amount  # what settled invoices
        elif name == "CustomerCreditApplied" and start <= day <= end:
            period[facts.currency]["credit_applied"] += value.amount
            period[facts.currency]["applied"] += value.amount  # collected before, applied now
        elif start <= day <= end:
            # what reduced the balance; a waiver takes back what interest added to the fees, and an
            # ERP amendment up and an undone small-balance write-off are negative
            sign = -1 if name in ("InterestWaived", "InvoiceAmended", "SmallBalanceWriteOffReversed") else 1
            period[facts.currency][_PERIOD_KIND[name]] += sign * value.amount
    return Recomputed(cases, period, ledger_excess, recoveries, recoveries_reversed)


def _paid_and_owed(facts: CaseFacts, name: str, e, moved: Decimal) -> None:
    """What was paid on the case and still settles it, and the most the invoice can owe."""
    if name in ("LateFeeCharged", "InterestCharged", "InterestWaived"):
        facts.owed += moved
    elif name == "InvoiceAmended":
        facts.owed += e.amount.amount - e.previous.amount
        facts.paid -= e.credit.amount if e.credit is not None else ZERO
    elif name in ("PaymentReceived", "PaymentReversed", "CustomerCreditApplied", "PaidOutsideEngine"):
        facts.paid -= moved  # a payment lowers the balance (negative move)


def reconcile(ctx: Context, start: date | None = None, end: date | None = None) -> dict:
    from app import kpis
    from app.reports import settlements

    first, last = kpis.period(start, end)
    found = recompute(ctx, first, last)
    differences: list[str] = []
    with ctx.db.read() as session:
        summaries = {r.case_id: r for r in session.execute(select(case_summary))}
        exposure = {(r.customer_id, r.currency): r for r in session.execute(select(customer_exposure))}
        payment_rows = list(session.execute(select(payments)))
        ledger = {r.invoice_id: r for r in session.execute(select(invoices))}
        waiting = list(session.execute(select(approvals.c.approval_id, approvals.c.kind, approvals.c.case_id)
                                       .where(approvals.c.status == "pending")))

    _compare_cases(found, summaries, differences)
    _compare_exposure(found, exposure, differences)
    _compare_inbox(found, waiting, differences)
    _compare_payments(found, payment_rows, ledger, differences)
    _compare_advance_rows(ctx, payment_rows, differences)
    ledger_paid = _ledger_payments(payment_rows, first, last, found.ledger_excess)
    recovered = _recovered(ctx, first, last)
    receivables = _receivables(found, ledger, ledger_paid, last)
    shown = settlements(ctx)
    currencies = sorted({r.currency for r in ledger.values()} | set(found.period))
    figures: dict[str, dict] = {}
    for currency in currencies:
        expected = {k: v for k, v in found.period.get(currency, {}).items()}
        on_cases = {k: expected.get(k, ZERO) for k in ("collected", "applied")}  # the collectors' figures
        without_case = ledger_paid["period"].get(currency, ZERO)  # no case, no collector: cash applied as paid
        expected["collected"] = on_cases["collected"] + without_case
        # what settled invoices without a case: the receipts less what they paid beyond (customer credit)
        expected["applied"] = on_cases["applied"] + ledger_paid["applied"].get(currency, ZERO)
        expected["collected_without_case"] = without_case
        expected["receivables_end"] = receivables.get(currency, ZERO)
        expected["recovered"] = recovered.get(currency, ZERO)
        figures[currency] = {k: str(v) for k, v in sorted(expected.items())}
        report = kpis.kpis(ctx, first, last, currency)
        if Decimal(report["receivables_end"]) != expected["receivables_end"]:
            differences.append(f"{currency}: report kpis shows receivables at the end {report['receivables_end']}, "
                               f"the events give {expected['receivables_end']}")
        if Decimal(report["recovered"]) != expected["recovered"]:
            differences.append(f"{currency}: report kpis shows {report['recovered']} recovered after write-offs, "
                               f"the events give {expected['recovered']}")
        for key in ("collected", "applied"):
            by_collectors = sum((Decimal(r[key]) for r in report["collectors"]), ZERO)
            if by_collectors != on_cases[key]:
                differences.append(f"{currency}: report collectors shows {by_collectors} {key} on cases, "
                                   f"the events give {on_cases[key]}")
        _compare_settlements(currency, shown, expected, first, last, differences)
    return {
        "from": first.isoformat(), "to": last.isoformat(), "cases": len(found.cases),
        "payments": len(payment_rows), "figures": figures, "differences": differences, "agree": not differences,
    }


def _compare_cases(found: Recomputed, summaries: dict, differences: list[str]) -> None:
    for case_id, facts in found.cases.items():
        row = summaries.get(case_id)
        if row is None:
            differences.append(f"case {case_id} ({facts.invoice_id}) has events but no case_summary row")
            continue
        balance = _amount(row.balance_minor, row.currency)
        if balance != facts.balance:
            differences.append(f"case {case_id} ({facts.invoice_id}): case_summary balance {balance}, "
                               f"the events give {facts.balance}")
        credit = _amount(row.credit_minor, row.currency)
        if credit != facts.credit:
            differences.append(f"case {case_id} ({facts.invoice_id}): case_summary customer credit {credit}, "
                               f"the events give {facts.credit}")
        if facts.paid > facts.owed and not facts.advance:
            differences.append(f"case {case_id} ({facts.invoice_id}): {facts.paid} paid on it settles an invoice "
                               f"that owes at most {facts.owed} ({facts.currency}); the {facts.paid - facts.owed} "
                               "paid beyond it is not the customer's credit")
        if (row.closed_at is None) != facts.open:
            differences.append(f"case {case_id} ({facts.invoice_id}): case_summary says "
                               f"{'open' if row.closed_at is None else 'closed'}, the events say "
                               f"{'open' if facts.open else 'closed'}")
    for case_id in summaries.keys() - found.cases.keys():
        differences.append(f"case_summary row {case_id} has no CaseOpened event")


def _compare_exposure(found: Recomputed, exposure: dict, differences: list[str]) -> None:
    expected: dict[tuple[str, str], list] = defaultdict(lambda: [0, ZERO])
    for facts in found.cases.values():
        totals = expected[(facts.customer_id, facts.currency)]
        if facts.open and not facts.advance:
            totals[0] += 1
            totals[1] += facts.balance
    for key in expected.keys() | exposure.keys():
        cases, balance = expected.get(key, [0, ZERO])
        row = exposure.get(key)
        shown_cases = row.open_cases if row else 0
        shown_balance = _amount(row.open_balance_minor, key[1]) if row else ZERO
        if (shown_cases, shown_balance) != (cases, balance):
            differences.append(f"customer {key[0]} ({key[1]}): customer_exposure shows {shown_cases} open case(s), "
                               f"{shown_balance} open; the events give {cases}, {balance}")


def _compare_inbox(found: Recomputed, waiting: list, differences: list[str]) -> None:
    """A closed case accepts no decision: a pending item of one would wait for nobody. (A refund's
    row is on a customer's stream, not a case: not checked here.)"""
    for row in waiting:
        facts = found.cases.get(row.case_id)
        if facts is not None and not facts.open:
            differences.append(f"approval {row.approval_id} ({row.kind}) of case {row.case_id} ({facts.invoice_id}) "
                               "is pending in the approvals inbox; the events have closed the case")


def _compare_payments(found: Recomputed, rows: list, ledger: dict, differences: list[str]) -> None:
    shares: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)  # a split receipt: a share on each case
    for case_id, f in found.cases.items():
        for pid, amount in f.payments.items():
            shares[pid].append((case_id, amount))
    on_cases = {pid: (found_cases, sum((a for _, a in found_cases), Decimal(0))) for pid, found_cases in shares.items()}
    reversed_on_cases = {pid for f in found.cases.values() for pid in f.reversed}
    paid_without_case: dict[str, Decimal] = defaultdict(Decimal)  # the excess is credit, not on the invoice
    for r in rows:
        if r.status in ("recovered", RECOVERY_REVERSED):  # a bank line assigned to a written-off invoice
            recovered = found.recoveries.get(r.payment_id)
            if recovered != (r.invoice_id, _amount(r.amount_minor, r.currency)):
                differences.append(f"payment {r.payment_id}: the payments table records {_amount(r.amount_minor, r.currency)} "
                                   f"recovered on invoice {r.invoice_id}, the events "
                                   + (f"{recovered[1]} on invoice {recovered[0]}" if recovered else "no recovery"))
            if (r.status == RECOVERY_REVERSED) != (r.payment_id in found.recoveries_reversed):
                differences.append(f"payment {r.payment_id}: the payments table says {r.status}, the events "
                                   f"{'took the recovery back' if r.payment_id in found.recoveries_reversed else 'do not'}")
            continue
        if r.case_id is None:
            if r.invoice_id is not None and r.status == "applied":
                paid_without_case[r.invoice_id] += (_amount(r.amount_minor, r.currency)
                                                    - found.ledger_excess.get(r.payment_id, ZERO))
            continue
        event = on_cases.pop(r.payment_id, None)
        amount = _amount(r.amount_minor, r.currency)
        if event is None:
            differences.append(f"payment {r.payment_id}: the payments table applies it to case {r.case_id}, "
                               "which has no PaymentReceived for it")
        elif r.case_id not in {c for c, _ in event[0]} or event[1] != amount:
            where = ", ".join(c for c, _ in event[0])
            differences.append(f"payment {r.payment_id}: the payments table has {amount} on case {r.case_id}, "
                               f"the events {event[1]} on case {where}")
        if (r.status == "reversed") != (r.payment_id in reversed_on_cases):
            differences.append(f"payment {r.payment_id}: the payments table says {r.status}, the events "
                               f"{'reversed' if r.payment_id in reversed_on_cases else 'not reversed'}")
    for pid, (found_cases, _) in sorted(on_cases.items()):
        differences.append(f"payment {pid}: PaymentReceived on case {found_cases[0][0]} has no row in the payments table")
    cased = {f.invoice_id for f in found.cases.values() if not f.advance}
    for invoice_id, row in ledger.items():
        if invoice_id in cased:
            continue
        if _amount(row.paid_minor, row.currency) != paid_without_case.get(invoice_id, ZERO):
            differences.append(f"invoice {invoice_id}: paid {_amount(row.paid_minor, row.currency)} on the "
                               f"ledger, its payment rows add up to {paid_without_case.get(invoice_id, ZERO)} "
                               "(less what they paid beyond it, the customer's credit)")


def _compare_advance_rows(ctx: Context, rows: list, differences: list[str]) -> None:
    """An advance applied to an invoice without a case is a ``CustomerCreditAllocated`` with no
    target case and the ledger's payment row of the same id (docs/ADVANCES.md): each needs the other."""
    events = {e.allocation_id: e for e in (r.event for r in ctx.store.read_types(("CustomerCreditAllocated",)))
              if not e.target_case_id}
    shown = {r.payment_id: r for r in rows if r.matched_by == "advance"}
    for allocation_id, e in sorted(events.items()):
        row = shown.get(allocation_id)
        if row is None:
            differences.append(f"advance {e.advance_id} applied to invoice {e.invoice_id} ({allocation_id}) has no "
                               "payment row")
        elif (row.invoice_id, row.currency, row.amount_minor, row.status) != (
                e.invoice_id, e.amount.currency, e.amount.to_minor(), "applied"):
            differences.append(f"payment {allocation_id}: the payments table has {_amount(row.amount_minor, row.currency)}"
                               f" {row.currency} on {row.invoice_id} ({row.status}), the events {e.amount} on "
                               f"{e.invoice_id}")
    for payment_id in sorted(shown.keys() - events.keys()):
        differences.append(f"payment {payment_id} says it applies an advance; no event records that")


def _recovered(ctx: Context, start: date, end: date) -> dict[str, Decimal]:
    """Bad debt recovered in the period, per currency, from the ``WriteOffRecovered`` events' own fields
    (on the day received), less the ``WriteOffRecoveryReversed`` (on the day the bank took it back)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for record in ctx.store.read_types(("WriteOffRecovered", "WriteOffRecoveryReversed")):
        e = record.event
        taken_back = type(e).__name__ == "WriteOffRecoveryReversed"
        if start <= (e.occurred_at.date() if taken_back else e.received_on) <= end:
            totals[e.amount.currency] += -e.amount.amount if taken_back else e.amount.amount
    return totals


def _ledger_payments(rows: list, start: date, end: date, excess: dict[str, Decimal]) -> dict[str, dict]:
    """Payments on invoices without a case: dated changes per invoice (what settled it: a receipt
    less its ``excess``, the customer's credit), and the period's cash and what it applied."""
    per_invoice: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    in_period: dict[str, Decimal] = defaultdict(Decimal)
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.case_id is not None or r.invoice_id is None or r.status not in ("applied", "reversed"):
            continue
        amount = _amount(r.amount_minor, r.currency)
        settled = amount - excess.get(r.payment_id, ZERO)
        dated = [(r.received_on, amount, settled)]
        if r.status == "reversed":
            dated.append((r.reversed_at.date(), -amount, -settled))
        per_invoice[r.invoice_id] += [(day, s) for day, _, s in dated]
        in_period[r.currency] += sum((a for day, a, _ in dated if start <= day <= end), ZERO)
        applied[r.currency] += sum((s for day, _, s in dated if start <= day <= end), ZERO)
    return {"invoice": per_invoice, "period": in_period, "applied": applied}


def _receivables(found: Recomputed, ledger: dict, ledger_paid: dict, end: date) -> dict[str, Decimal]:
    """What customers owe at the end of ``end`` for invoices issued by then: the invoice
    amount, plus the case's fees less what settled it by that day, less payments on the
    ledger before any case."""
    by_invoice = {f.invoice_id: f for f in found.cases.values() if not f.advance}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice_id, row in ledger.items():
        if row.issue_date > end:
            continue
        owed = _amount(row.amount_minor, row.currency)
        owed -= sum((a for day, a in ledger_paid["invoice"].get(invoice_id, []) if day <= end), ZERO)
        facts = by_invoice.get(invoice_id)
        if facts is not None:
            owed += sum((a for day, a in facts.moves if day <= end), ZERO)
        totals[row.currency] += owed
    return totals


def _compare_settlements(currency: str, shown: list, expected: dict, start: date, end: date,
                         differences: list[str]) -> None:
    """The settlements the dashboard and the KPIs sum, against the events, per kind."""
    kinds = {"payment": "collected", "excess": "collected", "credit": "credits", "write_off": "write_offs",
             "cancelled": "cancelled", "credit_applied": "credit_applied", "indemnity": "indemnity", "fee": "fees",
             "erp_adjustment": "erp_adjustments", "paid_outside": "paid_outside",
             "discount": "discounts", "factored": "factored"}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for s in shown:
        if s.currency == currency and start <= s.on <= end:
            totals[kinds[s.kind]] += -s.amount if s.kind == "fee" else s.amount
    for kind in sorted(set(kinds.values())):
        if totals.get(kind, ZERO) != expected.get(kind, ZERO):
            differences.append(f"{currency}: the reports count {totals.get(kind, ZERO)} {kind.replace('_', ' ')} "
                               f"from {start} to {end}, the events give {expected.get(kind, ZERO)}")
