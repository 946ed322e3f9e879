"""One customer's credit movements are read from that customer's streams alone (its cases and its
own stream: what a notice reads when it is sent), and are the same as those of a read of every
stream kept to that customer."""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import uuid4

import pytest

from domain.admin import LedgerPaymentRecorded, admin_stream_id
from store.ledger import Ledger, record_ledger_payment

from domain.customer import customer_stream_id
from domain.events import Customer
from domain.money import Money
from store import event_store
from store.customers import CustomerReads
from store.db import Database
from store.event_store import EventStore
from tests.domain.scenario import Case, invoice, prepayment


def overpaid_case(store: EventStore, customer_id: str, invoice_id: str, paid: str) -> None:
    facts = invoice(invoice_id=invoice_id).model_copy(update={"customer": Customer(
        customer_id=customer_id, name=customer_id, email=f"ap@{customer_id.lower()}.test", country="US")})
    case = Case().open(facts)
    case.pay(paid)
    store.append(case.state.case_id, 0, case.events)


def overpaid_on_ledger(db: Database, store: EventStore, customer_id: str, invoice_id: str, paid: str) -> None:
    """A payment beyond the open amount of an invoice without a case: its excess is credit."""
    facts = invoice(invoice_id=invoice_id).model_copy(update={"customer": Customer(
        customer_id=customer_id, name=customer_id, email=f"ap@{customer_id.lower()}.test", country="US")})
    Ledger(db).import_invoices([(facts.customer, "B", facts)])
    payment_id, amount = f"P-{invoice_id}", Money.of(paid, "USD")
    excess = amount - facts.amount
    with db.transaction() as session:
        record_ledger_payment(session, invoice_id, payment_id, amount, date(2026, 3, 1), "ref", excess=excess)
    stream = admin_stream_id("payment", payment_id)
    store.append(stream, 0, [LedgerPaymentRecorded(
        event_id=uuid4(), stream_id=stream, version=1, occurred_at=datetime.now(timezone.utc), actor="test",
        subject=f"payment {payment_id}", reason="test", payment_id=payment_id, invoice_id=invoice_id, amount=amount,
        received_on=date(2026, 3, 1), matched_by="direct", excess=excess)])


def prepaid(store: EventStore, customer_id: str, amount: str) -> None:
    store.append(customer_stream_id(customer_id), 0, [prepayment(customer_id, Money.of(amount, "USD"))])


@pytest.mark.parametrize("per_query", [500, 1])  # 1: every stream its own query, merged in global order
def test_one_customers_movements_are_the_full_reads_kept_to_that_customer(database_url, monkeypatch, per_query):
    monkeypatch.setattr(event_store, "STREAMS_PER_QUERY", per_query)
    db = Database(database_url)
    try:
        store = EventStore(db)
        overpaid_case(store, "C-A", "INV-A1", "1200.00")
        prepaid(store, "C-A", "50.00")
        overpaid_case(store, "C-B", "INV-B1", "1100.00")
        prepaid(store, "C-B", "70.00")
        overpaid_case(store, "C-A", "INV-A2", "1030.00")
        overpaid_on_ledger(db, store, "C-B", "INV-LB", "1015.00")
        overpaid_on_ledger(db, store, "C-A", "INV-LA", "1005.00")
        reads = CustomerReads(db, store)
        everyone = reads.credit_movements()
        for customer in ("C-A", "C-B"):
            mine = reads.credit_movements(customer)
            assert mine == [m for m in everyone if m.customer_id == customer]
        assert sorted(m.amount for m in reads.credit_movements("C-A")) == [5, 30, 50, 200]
        assert [m.amount for m in reads.ledger_excess("C-B")] == [15]
        assert reads.credit_movements("C-NONE") == []
    finally:
        db.dispose()
