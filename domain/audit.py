"""What the audit trail shows of an event's money: the amount and currency columns of
`audit export` (app/audit.py, docs/CONTROLS.md), and the value date of a payment.

One table for every event type of every stream (cases: domain/events.py; customers:
domain/customer.py; administration: domain/admin.py) that carries ``Money``: either the
fields whose sum is the event's amount, or why it shows none. tests/domain/test_audit.py
fails when an event type carrying Money is in neither, so a new one cannot be left out.
"""

from __future__ import annotations

from domain.money import Money

# The fields (of the event's data) whose sum is the amount the audit trail shows: what the event
# moves (a fee, a payment, a credit, a write-off...) or, for a request, promise, claim or limit,
# the amount it names. A field that is None (no compensation, a rejected dispute's credit) adds nothing.
LEDGER_AMOUNT: dict[str, tuple[str, ...]] = {
    # cases (domain/events.py)
    "CaseOpened": ("opening_balance",),  # what the case collects from its first day
    "LateFeeCharged": ("fee",),
    "InterestCharged": ("interest", "compensation"),  # what it adds to what is owed (its `fee`)
    "InterestWaived": ("amount",),
    "PaymentReceived": ("amount",),  # the receipt: applied to the invoice, the excess to customer credit
    "PaymentReversed": ("applied", "excess"),  # the receipt taken back
    "SmallBalanceWrittenOff": ("amount",),
    "SmallBalanceWriteOffReversed": ("amount",),
    "DisputeOpened": ("amount",),  # disputed
    "DisputeResolved": ("credit",),  # the credit of an upheld dispute (none: nothing credited)
    "PromiseMade": ("amount",),  # promised
    "PaymentReported": ("amount",),  # what the customer says they paid
    "InstalmentPaid": ("amount",),
    "WriteOffRequested": ("amount",),  # asked for
    "WriteOffApproved": ("amount",),
    "ReductionRequested": ("amount",),  # asked for
    "ReductionApproved": ("amount",),
    "CaseCancelled": ("amount",),
    "InvoiceAmended": ("amount",),  # the invoice's new amount (`change`: what the balance moved by)
    "CreditNoteApplied": ("amount",),  # the credit note's amount (`applied`: what it took off)
    "PaidOutsideEngine": ("amount",),  # newly booked by the ERP (`applied`: what it took off)
    "ClaimFiled": ("amount",),  # claimed
    "IndemnityReceived": ("amount",),
    "CustomerCreditApplied": ("amount",),
    "InvoiceAssignedToFactor": ("assigned",),  # the balance assigned to the factor
    "FactorCollected": ("amount",),
    "FactorDefaulted": ("amount",),  # the balance at that moment
    "FactorDefaultReported": ("amount",),
    "EarlyPaymentDiscountGranted": ("amount",),
    # customers (domain/customer.py)
    "CreditLimitSet": ("limit",),  # none: the limit was removed
    "PrepaymentReceived": ("amount",),
    "AdvanceRequested": ("amount",),  # asked for
    "CustomerCreditAllocated": ("amount",),
    "AdvanceRefundRequested": ("amount",),  # asked for
    "AdvanceRefunded": ("amount",),
    "AdvanceRefundRejected": ("amount",),
    # administration (domain/admin.py)
    "LedgerPaymentRecorded": ("amount",),  # the receipt in full: `excess`, what it paid beyond, is credit
    "LedgerPaymentReversed": ("amount",),  # the receipt taken back (`excess`: its credit with it)
    "UnmatchedPaymentReversed": ("amount",),
    "PaymentAssigned": ("amount",),
    "WriteOffRecovered": ("amount",),  # bad debt recovered on a written-off invoice
    "WriteOffRecoveryReversed": ("amount",),  # a recovery the bank took back
    "PaymentHeldUnmatched": ("amount",),
}

# Event types that carry Money but show no amount: what they carry moves nothing of its own.
NO_LEDGER_AMOUNT: dict[str, str] = {
    "CaseClosed": "the case's totals, each already shown on the events that moved them",
    "PromiseBroken": "what was paid towards the promise, shown on the payments themselves",
    "PaymentPlanProposed": "a schedule offered: the instalments paid are shown by InstalmentPaid",
    "EarlyPaymentDiscountOffered": "an offer: the discount granted is shown by EarlyPaymentDiscountGranted",
}

# The value date of a payment (the day the bank received it, which may be before it was recorded).
VALUE_DATE_FIELD = "received_on"


def ledger_amount(event_type: str, data: dict) -> Money | None:
    """The amount the audit trail shows for an event of ``event_type`` with ``data`` (its facts as
    JSON), or None (no amount: not in the table, or every field of it None)."""
    total: Money | None = None
    for name in LEDGER_AMOUNT.get(event_type, ()):
        value = data.get(name)
        if value is None:
            continue
        money = value if isinstance(value, Money) else Money.model_validate(value)
        total = money if total is None else total + money
    return total


def value_date(data: dict) -> str | None:
    """A payment's value date (ISO), or None for an event that is not a payment received."""
    value = data.get(VALUE_DATE_FIELD)
    return None if value is None else str(value)


# Fields every row shows in columns of their own (or that name the stream): not repeated in details.
SHOWN_ELSEWHERE = frozenset({"reason", "note", "decision", "outcome", "subject", "invoice_id", "customer_id",
                             "received_on", "event_id", "stream_id", "case_id", "version", "occurred_at", "actor",
                             "type"})
DETAILS_MAX = 300


def details(event_type: str, data: dict) -> str:
    """What else the event says, for a reader of the trail: its plain values (``role=supervisor;
    write_off_limit=2500``, ``cron=0 6 * * *; timezone=UTC``, ``assignee=demo-collector``), not
    the money of the amount column, nor nested records (see ``events tail`` for the whole event).
    Cut at DETAILS_MAX characters with '…'."""
    money_fields = set(LEDGER_AMOUNT.get(event_type, ()))
    parts = [f"{key}={value}" for key, value in data.items()
             if key not in SHOWN_ELSEWHERE and key not in money_fields and value not in (None, "")
             and isinstance(value, (str, int, float, bool))]
    text = "; ".join(parts)
    return text if len(text) <= DETAILS_MAX else text[:DETAILS_MAX - 1] + "…"
