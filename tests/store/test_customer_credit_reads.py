"""One customer's credit movements are read from that customer's streams alone (its cases and its
own stream: what a notice reads when it is sent), and are the same as those of a read of every
stream kept to that customer."""

from __future__ import annotations


import pytest

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
        reads = CustomerReads(db, store)
        everyone = reads.credit_movements()
        for customer in ("C-A", "C-B"):
            mine = reads.credit_movements(customer)
            assert mine == [m for m in everyone if m.customer_id == customer]
        assert sorted(m.amount for m in reads.credit_movements("C-A")) == [30, 50, 200]
        assert reads.credit_movements("C-NONE") == []
    finally:
        db.dispose()
