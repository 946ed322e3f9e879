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


def written_off_invoice(ctx) -> None:
    """INV-W's ledger row (its case, written off, is not needed by the recovery path)."""
    with ctx.db.transaction() as session:
        session.execute(customers.insert().values(customer_id="C-W", name="Written Off GmbH", email="ap@w.test",
                                                  country="DE", language="de", timezone="Europe/Berlin",
                                                  risk_grade="D"))
        session.execute(invoices.insert().values(invoice_id="INV-W", customer_id="C-W", currency="EUR",
                                                 amount_minor=1_200_000, paid_minor=0, issue_date=date(2026, 1, 1),
                                                 due_date=date(2026, 2, 1), imported_at=datetime.now(timezone.utc)))


def test_a_recovered_bank_line_is_taken_back_once_and_marked(database_url, make_context):
    ctx = make_context(database_url)
    recovered(ctx, "BANK-1")
    written_off_invoice(ctx)
    with ctx.db.transaction() as session:
        insert_payment(session, payment_id="BANK-1", amount=Money.of("1500.00", "EUR", "amount"),
                       received_on=date(2026, 11, 30), payer="Administrator", reference="dividend INV-W",
                       status="recovered", invoice_id="INV-W", case_id="case-w", matched_by="manual")
    replies = reverse_at_once(PaymentService(CaseService(ctx)), "BANK-1")
    assert sorted(r["reversed"] for r in replies) == [False, False, False, True], replies
    assert taken_back(ctx) == ["BANK-1"]
    with ctx.db.read() as session:
        status = session.execute(select(payments.c.status).where(payments.c.payment_id == "BANK-1")).scalar_one()
    assert status == "recovery_reversed"


def mt940(statement: str, line: str, start: str, end: str) -> str:
    day = date.today().strftime("%y%m%d")
    return (f":20:{statement}\n:25:DE89370400440532013000\n:28C:00001/001\n:60F:C{day}EUR{start}\n"
            f":61:{day}{day[2:]}{line}\n"
            ":86:166?00GUTSCHRIFT?20EREF+E2E-W-1?21SVWZ+administrator dividend?32ADMINISTRATOR\n"
            f":62F:C{day}EUR{end}\n-\n")


async def test_a_bank_statement_reversing_a_recovered_line_takes_the_recovery_back(dev_env, sqlite_url, make_context):
    """The line came in on a statement (held unmatched, then assigned as a recovery: the recovery
    path of `payments assign`, tests/acceptance/test_kpis.py); the bank's next statement reverses it
    (MT940 RC, naming the line's end-to-end id). Before, that reversal matched no receipt."""
    ctx = make_context(sqlite_url, client=dev_env.client)
    written_off_invoice(ctx)
    service = PaymentService(CaseService(ctx))
    first = await service.import_statements(mt940("STMT-W1", "C1500,00NTRFNONREF//B-W1", "0,00", "1500,00"),
                                            SUPERVISOR, "w1.sta", "bank file")
    assert first["unmatched"] == 1, first
    [line] = service.ledger.unmatched()
    recovered(ctx, line.payment_id)  # as `payments assign` records it, then marks the line
    service.ledger.mark_recovered(line.payment_id, "INV-W", "case-w")
    back = await service.import_statements(mt940("STMT-W2", "RC1500,00NTRFNONREF//B-W2", "1500,00", "0,00"),
                                           SUPERVISOR, "w2.sta", "bank file")
    assert (back["reversed"], back["reversals_unmatched"]) == (1, []), back
    assert taken_back(ctx) == [line.payment_id]
    assert service.ledger.get(line.payment_id).status == "recovery_reversed"
