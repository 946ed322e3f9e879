"""A recovery of bad debt the bank took back is reversed once, however many ask at the same time.

The recovery path needs no workflow (the case has ended), so these run on the store alone, on
SQLite and PostgreSQL; the user's path (`payments reverse` on the CLI, the KPIs) is in
tests/acceptance/test_kpis.py."""

from __future__ import annotations

import asyncio
import threading
from datetime import date, datetime, timezone

from sqlalchemy import select

from app.adminlog import record
from app.payments import PaymentService
from app.services import CaseService
from domain import admin
from domain.money import Money
from domain.users import Actor
from store.payments import insert_payment
from store.schema import customers, invoices, payments

SUPERVISOR = Actor(name="demo-supervisor")


def recovered(ctx, payment_id: str, amount: str = "1500.00") -> None:
    record(ctx, "recovery", "INV-W", admin.WriteOffRecovered, "demo-manager", "administrator's dividend",
           f"recovery {payment_id} (invoice INV-W)", payment_id=payment_id, invoice_id="INV-W", case_id_ref="case-w",
           amount=Money.of(amount, "EUR", "amount"), received_on=date(2026, 11, 30))


def reverse_at_once(service: PaymentService, payment_id: str, people: int = 4) -> list[dict]:
    replies: list[dict] = []
    start = threading.Barrier(people)

    def one() -> None:
        start.wait()
        replies.append(asyncio.run(service.reverse(payment_id, "dividend cheque returned unpaid", SUPERVISOR)))

    threads = [threading.Thread(target=one) for _ in range(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return replies


def taken_back(ctx) -> list[str]:
    return [r.event.payment_id for r in ctx.store.records(admin.admin_stream_id("recovery", "INV-W"))
            if isinstance(r.event, admin.WriteOffRecoveryReversed)]


def test_a_recovery_recorded_with_pay_is_taken_back_once(database_url, make_context):
    ctx = make_context(database_url)
    recovered(ctx, "REC-1")
    recovered(ctx, "REC-2", "500.00")
    replies = reverse_at_once(PaymentService(CaseService(ctx)), "REC-1")
    assert sorted(r["reversed"] for r in replies) == [False, False, False, True], replies
    assert taken_back(ctx) == ["REC-1"]
    events = [r.event for r in ctx.store.records(admin.admin_stream_id("recovery", "INV-W"))]
    assert admin.recovered_so_far("EUR", events) == Money.of("500.00", "EUR", "amount")


def test_a_recovered_bank_line_is_taken_back_once_and_marked(database_url, make_context):
    ctx = make_context(database_url)
    recovered(ctx, "BANK-1")
    with ctx.db.transaction() as session:
        session.execute(customers.insert().values(customer_id="C-W", name="Written Off GmbH", email="ap@w.test",
                                                  country="DE", language="de", timezone="Europe/Berlin",
                                                  risk_grade="D"))
        session.execute(invoices.insert().values(invoice_id="INV-W", customer_id="C-W", currency="EUR",
                                                 amount_minor=1_200_000, paid_minor=0, issue_date=date(2026, 1, 1),
                                                 due_date=date(2026, 2, 1), imported_at=datetime.now(timezone.utc)))
        insert_payment(session, payment_id="BANK-1", amount=Money.of("1500.00", "EUR", "amount"),
                       received_on=date(2026, 11, 30), payer="Administrator", reference="dividend INV-W",
                       status="recovered", invoice_id="INV-W", case_id="case-w", matched_by="manual")
    replies = reverse_at_once(PaymentService(CaseService(ctx)), "BANK-1")
    assert sorted(r["reversed"] for r in replies) == [False, False, False, True], replies
    assert taken_back(ctx) == ["BANK-1"]
    with ctx.db.read() as session:
        status = session.execute(select(payments.c.status).where(payments.c.payment_id == "BANK-1")).scalar_one()
    assert status == "recovery_reversed"
