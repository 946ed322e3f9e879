"""No notice sent twice when Temporal times a notice activity out after the SMTP server took it.

The real notice activity runs on a real Temporal dev server with a start-to-close timeout
(1 s) shorter than the time the loopback SMTP sink takes to answer the end of DATA (2.5 s):
the first attempt is timed out while the server holds the message, Temporal retries it, and
the retry must find the delivery intent and wait for the answer instead of sending again.
A notice whose send really failed (451 at DATA) is still delivered by the retry.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from activities.contracts import SEND_NOTICE, NoticeRequest, NoticeResult
from activities.notices import NoticeActivities, SmtpSettings, message_id_for
from app.mailsink import MailSink, ReceivedMail, _Handler
from store.db import Database
from store.schema import notice_deliveries
from tests.activities.test_notice_windows import notice

REPLY_DELAY = 2.5  # seconds the sink holds its answer to the end of DATA, after keeping the message
ACTIVITY_TIMEOUT = timedelta(seconds=1)


@workflow.defn(sandboxed=False)
class SendOneNotice:
    """The notice activity as the case workflow calls it, with a start-to-close the sink outlasts."""

    @workflow.run
    async def run(self, request: NoticeRequest) -> NoticeResult:
        return await workflow.execute_activity(
            SEND_NOTICE, request, result_type=NoticeResult,
            start_to_close_timeout=ACTIVITY_TIMEOUT, schedule_to_close_timeout=timedelta(seconds=40),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300), backoff_coefficient=1.0),
        )


class _SlowHandler(_Handler):
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        if self.sink.refuse_first and envelope.rcpt_tos[0] not in self.sink.refused:
            self.sink.refused.add(envelope.rcpt_tos[0])
            return "451 4.3.0 try again later"
        reply = await super().handle_DATA(server, session, envelope)  # kept: the message is the server's now
        await asyncio.sleep(self.sink.reply_delay)
        return reply


class SlowSink(MailSink):
    """Keeps each message at the end of DATA, then answers 250 only after ``reply_delay``;
    with ``refuse_first`` it answers 451 to the first DATA for each recipient instead."""

    def __init__(self, reply_delay: float = 0.0, refuse_first: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reply_delay = reply_delay
        self.refuse_first = refuse_first
        self.refused: set[str] = set()

    def start(self) -> SlowSink:
        self._controller = Controller(_SlowHandler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def by_message_id(self) -> dict[str, list[ReceivedMail]]:
        found: dict[str, list[ReceivedMail]] = {}
        for mail in self.messages:
            found.setdefault(mail.message_id, []).append(mail)
        return found


def requests(count: int) -> list[NoticeRequest]:
    out = []
    for i in range(count):
        base = notice()
        customer = base.customer.model_copy(update={"customer_id": f"C-{i}", "email": f"ap{i}@acme.test"})
        out.append(base.model_copy(update={"customer": customer}))
    return out


async def run_notices(dev_env, db: Database, sink: SlowSink, batch: list[NoticeRequest]) -> list[NoticeResult]:
    sender = NoticeActivities(db, SmtpSettings(port=sink.port, message_domain="test.local", timeout=8.0))
    queue = f"notice-timeout-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[SendOneNotice], activities=[sender.send_notice]):
        return await asyncio.gather(*[
            dev_env.client.execute_workflow(SendOneNotice.run, r, id=f"{queue}-{i}", task_queue=queue,
                                            execution_timeout=timedelta(seconds=60))
            for i, r in enumerate(batch)
        ])


def delivery_rows(db: Database) -> dict[str, tuple[str, int]]:
    with db.read() as session:
        rows = session.execute(select(notice_deliveries.c.message_id, notice_deliveries.c.status,
                                      notice_deliveries.c.attempts)).all()
    return {r.message_id: (r.status, r.attempts) for r in rows}


async def test_timed_out_after_acceptance_is_sent_once(dev_env, database_url, tmp_path):
    db = Database(database_url)
    sink = SlowSink(reply_delay=REPLY_DELAY, directory=tmp_path / "mail").start()
    batch = requests(3)
    try:
        results = await run_notices(dev_env, db, sink, batch)
        ids = {message_id_for(r.case_id, r.seq, "test.local") for r in batch}
        assert all(r.delivered for r in results)
        received = sink.by_message_id()
        assert set(received) == ids
        assert {m: len(v) for m, v in received.items()} == {m: 1 for m in ids}  # exactly one message per notice
        rows = delivery_rows(db)
        assert {rows[m][0] for m in ids} == {"sent"}
        # each first attempt was timed out while the sink held the message, so Temporal did retry
        assert all(rows[m][1] >= 2 for m in ids), rows
    finally:
        sink.stop()
        db.dispose()


async def test_a_send_that_really_failed_is_delivered_by_the_retry(dev_env, sqlite_url, tmp_path):
    db = Database(sqlite_url)
    sink = SlowSink(refuse_first=True, directory=tmp_path / "mail").start()
    batch = requests(2)
    try:
        results = await run_notices(dev_env, db, sink, batch)
        assert all(r.delivered and not r.already_sent and not r.error for r in results)
        ids = {message_id_for(r.case_id, r.seq, "test.local") for r in batch}
        assert {m: len(v) for m, v in sink.by_message_id().items()} == {m: 1 for m in ids}
        assert len(sink.refused) == 2  # each notice was refused once (451 at DATA) before it went out
        rows = delivery_rows(db)
        assert {rows[m] for m in ids} == {("sent", 2)}
    finally:
        sink.stop()
        db.dispose()


async def test_an_intent_left_without_answer_waits_then_is_sent_once(sqlite_url, smtp):
    """The attempt that began DATA died (worker killed) before recording the server's answer.
    A retry inside the settle window waits (a live attempt could still answer); once the window
    is over the intent is released and the notice is sent, once."""
    db = Database(sqlite_url)
    sender = NoticeActivities(db, SmtpSettings(port=smtp.port, message_domain="test.local", timeout=1.0))
    settle = sender._settle_after()
    request = notice()
    message_id = message_id_for(request.case_id, request.seq, "test.local")
    handed_at = datetime.now(timezone.utc) - settle + timedelta(seconds=1.5)  # the window ends 1.5 s from now
    with db.transaction() as session:
        session.execute(insert(notice_deliveries).values(
            message_id=message_id, case_id=str(request.case_id), seq=request.seq, recipient=request.customer.email,
            status="handing", attempts=1, first_attempt_at=handed_at, handed_at=handed_at))
    try:
        waiting = asyncio.ensure_future(sender.send_notice(request))
        await asyncio.sleep(0.8)
        assert not waiting.done() and smtp.messages == []  # inside the window: it waits, it does not send
        result = await asyncio.wait_for(waiting, 10)
        assert datetime.now(timezone.utc) >= handed_at + settle
        assert result.delivered and not result.already_sent
        assert [m.message_id for m in smtp.messages] == [message_id]
        assert delivery_rows(db)[message_id] == ("sent", 2)
        again = await sender.send_notice(request)  # a later retry finds it sent
        assert again.already_sent and len(smtp.messages) == 1
    finally:
        db.dispose()


async def test_worker_frozen_after_acceptance_the_other_worker_does_not_send_again(tmp_path):
    """The overload case on the real stack (worker processes, case and mailbox workflows as they
    run, Temporal dev server, SMTP sink): the worker whose message the sink has just accepted is
    frozen (SIGSTOP, as if starved of CPU) for longer than the notice activity's heartbeat timeout
    (10 s). Temporal retries the activity on a second worker, which finds the delivery intent and
    waits; the first worker resumes, records the acceptance, and the notice was sent once."""
    import os
    import signal
    import threading
    import time

    from tests.faults.stack import FaultStack
    from tests.faults.wave import plan_wave, run_wave, verify

    stack = FaultStack.start(tmp_path / "stack")
    frozen = threading.Event()
    try:
        csv_text, cases = plan_wave(4, 0)
        first = stack.start_worker()
        keep = stack.sink.keep

        def keep_then_freeze(mail, raw) -> None:
            keep(mail, raw)
            if not frozen.is_set():  # the first accepted message: its sender stops before it reads the 250
                frozen.set()
                os.killpg(first.process.pid, signal.SIGSTOP)
                second = stack.start_worker("worker-2")
                threading.Thread(target=thaw_when_waiting, args=(second.log_path,), daemon=True).start()

        def thaw_when_waiting(second_log_path) -> None:
            # worker-1 thaws once worker-2 has taken the retry and waits on the intent (not after a fixed
            # time: on a loaded machine worker-2 may start late); at the latest after 90 s, well inside
            # the 120 s settle window, so a retry that never reached worker-2 fails the last assertion
            deadline = time.monotonic() + 90.0
            while time.monotonic() < deadline:
                if second_log_path.exists() and "waiting for its outcome" in second_log_path.read_text():
                    break
                time.sleep(0.25)
            os.killpg(first.process.pid, signal.SIGCONT)

        stack.sink.keep = keep_then_freeze
        await run_wave(stack, csv_text, cases, None, timeout=240)
        checks = verify(stack, cases)
        second_log = (stack.directory / "worker-2.log").read_text()
    finally:
        stack.close()
    assert frozen.is_set()
    assert checks["problems"] == [], checks["problems"]
    assert checks["notices_lost"] == 0 and checks["phantom_notices"] == 0
    assert checks["duplicate_notices"] == 0, checks["duplicate_detail"]
    assert "waiting for its outcome" in second_log  # the retry ran on worker-2 and found the intent


class _DroppingHandler(_Handler):
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        await super().handle_DATA(server, session, envelope)  # kept...
        server.transport.close()  # ...but the connection drops before the 250
        return "250 never seen"


class DroppingSink(MailSink):
    def start(self) -> DroppingSink:
        self._controller = Controller(_DroppingHandler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self


async def test_a_connection_lost_during_data_is_not_sent_again(sqlite_url, tmp_path):
    """The server kept the message but the connection dropped before its answer: the outcome is
    unknown; at most once, the notice is reported delivered (unknown) and a retry does not send."""
    from activities.notices import UNKNOWN_OUTCOME

    db = Database(sqlite_url)
    sink = DroppingSink(directory=tmp_path / "mail").start()
    try:
        sender = NoticeActivities(db, SmtpSettings(port=sink.port, message_domain="test.local", timeout=3.0))
        request = notice()
        message_id = message_id_for(request.case_id, request.seq, "test.local")
        result = await sender.send_notice(request)
        assert result.delivered and result.error == UNKNOWN_OUTCOME
        again = await sender.send_notice(request)
        assert again.delivered and again.already_sent
        assert [m.message_id for m in sink.messages] == [message_id]
        assert delivery_rows(db)[message_id] == ("unknown", 2)
    finally:
        sink.stop()
        db.dispose()
