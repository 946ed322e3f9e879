"""The duplicate windows of notice delivery, closed or shrunk (real SMTP, real PostgreSQL).

* the database goes away right after the SMTP server accepted a message: the
  activity must not fail (Temporal would retry and send the message twice), it
  waits for the database and records the message;
* a notice whose outcome is already in the case's event stream is not sent again,
  even when the delivery log has no row for it (e.g. a restored or new database).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, datetime, timezone
from uuid import uuid4

import pytest
from sqlalchemy import select

from activities.contracts import NoticeRequest
from activities.notices import NoticeActivities, SmtpSettings
from app.mailsink import MailSink
from domain import events as ev
from domain.events import Customer, OpenReason
from domain.money import Money
from domain.policy import RiskGrade
from store.db import Database
from store.event_store import EventStore
from store.schema import notice_deliveries
from tests.faults.stack import PrivatePostgres


def notice(case_id=None, seq: int = 1) -> NoticeRequest:
    return NoticeRequest(
        case_id=case_id or uuid4(), seq=seq, level=1, step="friendly", final=False, invoice_id="INV-1001",
        customer=Customer(customer_id="C-1", name="Acme GmbH", email="ap@acme.test", country="DE"),
        amount_due=Money.of("1200.00", "EUR"), balance=Money.of("1200.00", "EUR"), fee=None,
        due_date=date(2026, 2, 4), issue_date=date(2026, 1, 5),
    )


@pytest.fixture(scope="module")
def postgres():
    try:
        server = PrivatePostgres()
    except Exception as error:  # no server binaries or not allowed to run them
        pytest.skip(f"cannot start a private PostgreSQL cluster: {error}")
    yield server
    server.close()


class CrashingSink(MailSink):
    """Accepts the message, then crashes PostgreSQL before answering 250; it is back 2 s later."""

    def __init__(self, postgres: PrivatePostgres, **kwargs) -> None:
        super().__init__(**kwargs)
        self.postgres = postgres
        self.crashed = threading.Event()

    def keep(self, mail, raw) -> None:
        super().keep(mail, raw)
        if not self.crashed.is_set():
            self.crashed.set()
            self.postgres.stop("immediate")
            threading.Timer(2.0, self.postgres.start).start()


async def test_database_down_after_acceptance_does_not_send_twice(postgres, tmp_path):
    db = Database(postgres.create_database(f"notices_{uuid.uuid4().hex[:8]}"))
    sink = CrashingSink(postgres, directory=tmp_path / "mail").start()
    try:
        sender = NoticeActivities(db, SmtpSettings(port=sink.port, message_domain="test.local"))
        request = notice()
        started = time.monotonic()
        first = await sender.send_notice(request)  # before the fix: OperationalError here, so Temporal retried
        assert sink.crashed.is_set() and first.delivered
        assert time.monotonic() - started >= 1.5  # it waited for the database to come back
        retry = await sender.send_notice(request)  # what a Temporal retry would do
        assert retry.delivered and retry.already_sent
        assert len(sink.messages) == 1
        with db.read() as session:
            assert session.execute(select(notice_deliveries.c.status)).scalar_one() == "sent"
    finally:
        sink.stop()
        db.dispose()


async def test_outcome_already_in_the_event_stream_is_not_sent_again(sqlite_url, smtp):
    db = Database(sqlite_url)
    store = EventStore(db)
    case_id = uuid4()
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    eur = Money.of("1200.00", "EUR")
    opened = ev.CaseOpened(
        event_id=uuid4(), case_id=case_id, version=1, occurred_at=now, actor="system", invoice_id="INV-1001",
        customer=Customer(customer_id="C-1", name="Acme GmbH", email="ap@acme.test", country="DE"),
        risk_grade=RiskGrade.B, original_amount=eur, opening_balance=eur, issue_date=date(2026, 1, 5),
        due_date=date(2026, 2, 4), reason=OpenReason.overdue, policy_version="p1", ladder_steps=3,
        first_reminder_at=now,
    )
    sent = ev.ReminderSent(
        event_id=uuid4(), case_id=case_id, version=2, occurred_at=now, actor="system", seq=1, level=1,
        step="friendly", message_id="<earlier@test.local>", recipient="ap@acme.test", next_reminder_at=None,
        escalate_at=None,
    )
    store.append(case_id, 0, [opened, sent])
    try:
        sender = NoticeActivities(db, SmtpSettings(port=smtp.port, message_domain="test.local"), store=store)
        result = await sender.send_notice(notice(case_id, seq=1))
        assert result.delivered and result.already_sent
        assert smtp.messages == []
        fresh = await sender.send_notice(notice(case_id, seq=2))  # the next notice does go out
        assert fresh.delivered and not fresh.already_sent and len(smtp.messages) == 1
    finally:
        db.dispose()


async def test_the_same_notices_in_another_batch_are_not_sent_twice(sqlite_url, smtp):
    """A mailbox handed the same notice again after its batch went out (a retried enqueue)
    builds a new batch of the same notices: the digest's Message-ID must be the same."""
    from activities.contracts import DigestRequest

    db = Database(sqlite_url)
    try:
        sender = NoticeActivities(db, SmtpSettings(port=smtp.port, message_domain="test.local"))
        a, b = notice(), notice()
        first = await sender.send_digest(DigestRequest(batch_id=str(uuid4()), notices=[a, b]))
        again = await sender.send_digest(DigestRequest(batch_id=str(uuid4()), notices=[b, a]))
        assert first.delivered and again.delivered and again.already_sent
        assert again.message_id == first.message_id and len(smtp.messages) == 1
        other = await sender.send_digest(DigestRequest(batch_id=str(uuid4()), notices=[a]))
        assert other.message_id != first.message_id and len(smtp.messages) == 2
    finally:
        db.dispose()
