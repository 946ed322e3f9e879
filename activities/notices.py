"""Sending notices by SMTP (aiosmtplib), idempotently.

A delivery log row per Message-ID is claimed before sending. Right before the DATA command
(MAIL and RCPT accepted) the row is set to ``handing`` with ``handed_at``: the delivery
intent, taken by one attempt at a time. It is marked sent right after the server accepts,
before the SMTP session is even closed (QUIT). A retry (or a second worker) that finds the
row marked sent does not send again, and neither does one that finds the notice's outcome
already in the case's event stream. One that finds ``handing`` waits for the answer of the
attempt that began DATA: that session is not cancelled with its activity (Temporal timing
out an activity starved of CPU), it runs on and records the answer. Only when no answer came
within the settle window (the attempt's SMTP timeout + ``MARK_PATIENCE`` + a margin: its
worker died during DATA) is the intent released and the notice sent again. A definite
refusal at DATA (4xx) withdraws the intent; a connection lost during DATA records the
outcome ``unknown`` (presumed delivered, not sent again). If the database is away right
after acceptance, the mark is retried for up to ``MARK_PATIENCE``; if it still cannot be
written the activity reports the notice as delivered all the same (it was).
A permanent rejection (5xx) is returned as a result, not retried forever.
See docs/RELIABILITY.md ("Timed out after acceptance").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from temporalio import activity

from activities import metrics
from activities.contracts import SEND_DIGEST, SEND_NOTICE, DigestRequest, NoticeRequest, NoticeResult
from activities.letters import LetterRenderer, letter_name, sha256
from activities.rendering import NoticeRenderer, build_message
from domain import events as ev
from domain.money import Money
from store.customers import CustomerReads
from store.db import Database
from store.event_store import EventStore
from store.schema import notice_deliveries

log = logging.getLogger(__name__)

_OUTCOMES = ("ReminderSent", "ReminderFailed")  # the events that record a notice's outcome
MARK_PATIENCE = 45.0  # seconds to keep trying to record an accepted message (< the activity's 60 s timeout)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "Accounts Receivable <ar@collections.local>"
    message_domain: str = "collections.local"
    timeout: float = 30.0


def message_id_for(case_id: object, seq: int, domain: str) -> str:
    """Stable per case and notice: a retry re-sends the very same message."""
    return f"<case-{case_id}-n{seq}@{domain}>"


_DIGEST_NAMESPACE = uuid.UUID("2b0b8f5e-6a55-5c6e-9d1f-4f3c1e7a9b20")


def digest_message_id(notices: Sequence[NoticeRequest], domain: str) -> str:
    """Stable per set of notices (case and seq of each, in any order)."""
    key = ",".join(sorted(f"{n.case_id}:{n.seq}" for n in notices))
    return f"<notices-{uuid.uuid5(_DIGEST_NAMESPACE, key)}@{domain}>"


SETTLE_POLL = 0.25  # seconds between looks at an intent whose answer is awaited
SETTLE_MARGIN = 15.0  # seconds added to an attempt's own bounds before its intent is given up as unknown
UNKNOWN_OUTCOME = "outcome unknown: the server may have accepted it; not sent again"
DEAD_INTENT = "the attempt that began DATA died without an answer; sent again"


class _Superseded(Exception):
    """Another attempt at the same message recorded its intent first."""


@dataclass
class _Handover:
    begun: bool = False  # the session has begun (or is about to begin) DATA


class _IntentSMTP(aiosmtplib.SMTP):
    """An SMTP client that runs a hook right before the DATA command: the delivery intent is
    recorded there, after MAIL and RCPT were accepted (a refusal of either sends nothing)."""

    def __init__(self, before_data, **kwargs) -> None:
        super().__init__(**kwargs)
        self._before_data = before_data

    async def data(self, message, /, **kwargs):
        await self._before_data()
        return await super().data(message, **kwargs)


HEARTBEAT_EVERY = 2.0  # seconds; the workflows give these activities a 10 s heartbeat timeout


@contextlib.asynccontextmanager
async def heartbeating():
    """Heartbeat while a delivery runs, so a notice on a worker that died is retried
    within the heartbeat timeout instead of the whole start-to-close timeout."""
    if not activity.in_activity():  # called directly (tests, tools)
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class NoticeActivities:
    def __init__(self, db: Database, smtp: SmtpSettings, renderer: NoticeRenderer | None = None,
                 store: EventStore | None = None) -> None:
        self.db = db
        self.smtp = smtp
        self.renderer = renderer or NoticeRenderer()
        self.letters = LetterRenderer(sender_name=self.renderer.sender_name)
        self.store = store
        # Marks of accepted messages get threads of their own: they must not queue behind
        # claims and stream loads, since every millisecond here is a window for a duplicate.
        self._marks = ThreadPoolExecutor(max_workers=16, thread_name_prefix="notice-mark")
        self._settling: set[asyncio.Future] = set()  # sessions that outlived their (cancelled) activity

    @activity.defn(name=SEND_DIGEST)
    async def send_digest(self, request: DigestRequest) -> NoticeResult:
        """One message listing every notice of a customer's batch.

        Its Message-ID derives from the notices it carries, not from the batch: a mailbox
        that is handed the same notice again (a retried enqueue arriving after the first
        batch went out) builds another batch of the same notices, and the delivery log
        then recognises it as sent instead of sending it twice."""
        async with heartbeating():
            return await self.deliver(request.notices, digest_message_id(request.notices, self.smtp.message_domain))

    @activity.defn(name=SEND_NOTICE)
    async def send_notice(self, request: NoticeRequest) -> NoticeResult:
        message_id = message_id_for(request.case_id, request.seq, self.smtp.message_domain)
        async with heartbeating():
            return await self.deliver([request], message_id)

    async def deliver(self, requests: Sequence[NoticeRequest], message_id: str) -> NoticeResult:
        first = requests[0]
        recipient = first.customer.email
        where = {"case_id": str(first.case_id), "message_id": message_id, "seq": first.seq}
        claim = await asyncio.to_thread(self._claim, message_id, first, recipient)
        while True:
            if claim.status == "handing":  # an earlier attempt began DATA: wait for the server's answer to it
                claim = await self._await_outcome(message_id, where)
            if claim.status in ("sent", "unknown"):
                metrics.NOTICES.labels("already_sent").inc()
                return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, already_sent=True,
                                    error="" if claim.status == "sent" else UNKNOWN_OUTCOME)
            if claim.status == "rejected":
                return NoticeResult(
                    message_id=message_id, recipient=recipient, delivered=False, permanent=True, error=claim.error or ""
                )
            recorded = await asyncio.to_thread(self._recorded_outcome, requests)
            if recorded is not None:  # the cases already hold this message's outcome: never send it again
                log.info("notice already recorded in the event store; not sending", extra=where)
                metrics.NOTICES.labels("already_sent").inc()
                await asyncio.to_thread(self._finish, message_id, "sent" if recorded.delivered else "rejected", None)
                return recorded.model_copy(update={"message_id": message_id, "already_sent": True})
            handover = _Handover()
            # The session runs as a task of its own: once it has begun DATA it is not cancelled with the
            # activity (a timeout while the server holds the message), it runs on to record the answer,
            # which is what a retry of this notice waits for.
            session = asyncio.ensure_future(self._session(requests, message_id, claim, where, handover))
            try:
                return await asyncio.shield(session)
            except _Superseded:  # another attempt began DATA (or finished) between our claim and our DATA
                claim = await asyncio.to_thread(self._claim, message_id, first, recipient)
            except asyncio.CancelledError:
                if handover.begun and not session.done():
                    log.warning("activity cancelled while the server holds the message; recording its answer",
                                extra=where)
                    self._settling.add(session)
                    session.add_done_callback(self._settled)
                else:
                    session.cancel()
                raise

    def _settled(self, session: asyncio.Future) -> None:
        self._settling.discard(session)
        if not session.cancelled() and session.exception() is not None:
            log.warning("a delivery that outlived its activity ended with %r", session.exception())

    async def _session(self, requests: Sequence[NoticeRequest], message_id: str, claim: NoticeActivities._Claim,
                       where: dict, handover: _Handover) -> NoticeResult:
        first = requests[0]
        recipient = first.customer.email

        async def before_data() -> None:
            handover.begun = True  # from here the session runs to its end even if the activity is cancelled
            if not await asyncio.to_thread(self._hand_over, message_id):
                handover.begun = False
                raise _Superseded(message_id)

        client = _IntentSMTP(
            before_data,
            hostname=self.smtp.host,
            port=self.smtp.port,
            username=self.smtp.username,
            password=self.smtp.password,
            start_tls=self.smtp.starttls,
            timeout=self.smtp.timeout,
        )
        accepted = False
        withdrawn: list[str] = []
        # rendered (and the customer's credit read) before the session: the read of the cases below stays
        # one round trip from acceptance
        credit = await asyncio.to_thread(self._credit, requests)
        rendered = await asyncio.to_thread(self._letters, requests, credit)
        try:
            async with client:
                # No demand after payment: the cases are read again once the server is ready to
                # take the message, so a case paid (closed) meanwhile gets no notice. What is left
                # is the moment between this read and the server's acceptance (one round trip).
                live, withdrawn = await asyncio.to_thread(self._still_due, requests)
                if not live:
                    log.info("notice withdrawn: the case closed before it was sent", extra=where)
                    metrics.NOTICES.labels("withdrawn").inc()
                    await asyncio.to_thread(self._finish, message_id, "withdrawn", None)
                    return NoticeResult(message_id=message_id, recipient=recipient, delivered=False,
                                        error="the case closed before it was sent", withdrawn=withdrawn)
                letters = {case: letter for case, letter in rendered.items()
                           if case in {str(r.case_id) for r in live}}
                message = build_message(
                    self.renderer.render(live, credit),
                    message_id=message_id,
                    sender=self.smtp.sender,
                    recipient_name=first.customer.name,
                    recipient_email=recipient,
                    sent_at=claim.first_attempt_at,
                    attachments=[(name, data) for name, data, _ in letters.values()],
                )
                await message.send(client)
                accepted = True
                accepted_at = time.monotonic()
                # Recorded before QUIT: the window for a duplicate is this one database write.
                await self._mark_sent(message_id, where)
                log.info("notice sent", extra={**where, "mark_ms": round((time.monotonic() - accepted_at) * 1000, 1)})
        except _Superseded:
            raise
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as error:
            # The server answered with a code: whatever the stage (MAIL, RCPT or DATA), it did not take the message.
            code, text = _smtp_code(error)
            if accepted:  # only the goodbye failed; the message is the server's
                log.info("SMTP session ended uncleanly after acceptance: %s %s", code, text, extra=where)
            elif code is not None and 500 <= code < 600:
                metrics.NOTICES.labels("rejected").inc()
                log.warning("notice rejected permanently: %s %s", code, text, extra=where)
                await asyncio.to_thread(self._finish, message_id, "rejected", f"{code} {text}")
                return NoticeResult(
                    message_id=message_id, recipient=recipient, delivered=False, permanent=True, error=f"{code} {text}"
                )
            else:
                metrics.NOTICES.labels("failed").inc()
                await asyncio.to_thread(self._note_error, message_id, f"{code} {text}", where, handover.begun)
                raise
        except (aiosmtplib.SMTPException, OSError) as error:
            if accepted:  # the server has the message; a failed QUIT changes nothing
                log.info("SMTP session ended uncleanly after acceptance: %r", error, extra=where)
            elif handover.begun:
                # The connection broke or timed out during DATA: the server may have taken the message.
                # At most once: it is not sent again; recorded as unknown (presumed delivered) for review.
                log.error("notice outcome unknown (connection lost during DATA); not sending it again: %r", error,
                          extra=where)
                metrics.NOTICES.labels("unknown").inc()
                await asyncio.to_thread(self._finish, message_id, "unknown", f"{UNKNOWN_OUTCOME}: {error!r}"[:2000])
                return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, error=UNKNOWN_OUTCOME,
                                    withdrawn=withdrawn)
            else:
                metrics.NOTICES.labels("failed").inc()
                await asyncio.to_thread(self._note_error, message_id, repr(error), where)
                raise
        metrics.NOTICES.labels("sent").inc()
        return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, withdrawn=withdrawn,
                            letters={case: digest for case, (_, _, digest) in letters.items()},
                            credit=[c for c in credit if c.is_positive])

    def _letters(self, requests: Sequence[NoticeRequest], credit: Sequence[Money]) -> dict[str, tuple[str, bytes, str]]:
        """The PDF letter of each final notice (dated, stating the customer's ``credit`` as the e-mail
        does): case id -> (file name, bytes, SHA-256)."""
        found = {}
        for request in requests:
            if request.final and request.issued_on is not None and request.advance is None:  # no letter for a deposit
                data = self.letters.pdf(request, credit)
                found[str(request.case_id)] = (letter_name(request), data, sha256(data))
        return found

    def _credit(self, requests: Sequence[NoticeRequest]) -> list[Money]:
        """The customer's unapplied credit per currency today (the rule of `payments unapplied`), which the
        notice states beside the invoices it demands; none for a deposit request (credit pays invoices)."""
        if self.store is None or all(r.advance is not None for r in requests):
            return []
        return CustomerReads(self.db, self.store).credit_on_account(requests[0].customer.customer_id,
                                                                    datetime.now(timezone.utc).date())

    def _settle_after(self) -> timedelta:
        """How long an intent may stay without an answer: the attempt that recorded it has its SMTP
        timeout for the server's answer, then MARK_PATIENCE to record it, plus a margin."""
        return timedelta(seconds=self.smtp.timeout + MARK_PATIENCE + SETTLE_MARGIN)

    async def _await_outcome(self, message_id: str, where: dict) -> NoticeActivities._Claim:
        """An earlier attempt recorded its intent (began DATA) and has not recorded the answer yet: it is
        still running (starved, or timed out by Temporal while its session goes on) or it died. Wait for
        its answer. Past the settle window no live attempt can still be holding it (its SMTP timeout and
        its MARK_PATIENCE are both over): the attempt died during DATA (worker killed), the intent is
        released and this attempt sends (the one case that may send a message twice, see RELIABILITY.md)."""
        logged = False
        while True:
            row = await asyncio.to_thread(self._row, message_id)
            if row.status != "handing":
                return row
            if not logged:
                log.info("an earlier attempt is handing this notice over; waiting for its outcome", extra=where)
                logged = True
            if datetime.now(timezone.utc) >= row.handed_at + self._settle_after():
                if await asyncio.to_thread(self._release_dead, message_id, row.handed_at):
                    log.error("the attempt that began DATA left no answer within %s (its worker died); "
                              "sending the notice again", self._settle_after(), extra=where)
                    metrics.NOTICES.labels("released").inc()
                continue
            await asyncio.sleep(SETTLE_POLL)

    def _still_due(self, requests: Sequence[NoticeRequest]) -> tuple[list[NoticeRequest], list[str]]:
        """The notices whose case is still open (to send), and the cases closed since (withdrawn)."""
        if self.store is None:
            return list(requests), []
        live, withdrawn = [], []
        for request in requests:
            state = self.store.state(request.case_id)
            if state is not None and state.closed:
                withdrawn.append(str(request.case_id))
            else:
                live.append(request)
        return live, withdrawn

    async def _mark_sent(self, message_id: str, where: dict) -> None:
        """Record an accepted message, patiently: failing here would mean sending it twice."""
        deadline = time.monotonic() + MARK_PATIENCE
        delay = 0.2
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(self._marks, self._finish, message_id, "sent", None)
                return
            except Exception as error:  # the database is away (restart, dropped connection...)
                if time.monotonic() + delay > deadline:
                    log.error("message accepted but not recorded in the delivery log: %r", error, extra=where)
                    return  # reported delivered all the same; the case's event will say so
                log.warning("recording an accepted message failed, retrying: %r", error, extra=where)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _recorded_outcome(self, requests: Sequence[NoticeRequest]) -> NoticeResult | None:
        """The outcome the case streams already hold for these notices, if every one of them
        holds the same one (a digest is re-sent unless all its notices are recorded)."""
        if self.store is None:
            return None
        outcomes = []
        for request in requests:
            found = None
            for event in reversed(self.store.load_types(request.case_id, _OUTCOMES)):
                if isinstance(event, (ev.ReminderSent, ev.ReminderFailed)) and event.seq == request.seq:
                    delivered = isinstance(event, ev.ReminderSent)
                    found = NoticeResult(
                        message_id=event.message_id, recipient=event.recipient, delivered=delivered,
                        permanent=not delivered and event.permanent, error="" if delivered else event.error,
                    )
                    break
            if found is None:
                return None
            outcomes.append(found)
        if len({(o.delivered, o.permanent) for o in outcomes}) != 1:
            return None
        return outcomes[0]

    # -- delivery log ------------------------------------------------------------------
    @dataclass(frozen=True)
    class _Claim:
        status: str
        first_attempt_at: datetime
        error: str | None
        handed_at: datetime | None = None

    def _claim(self, message_id: str, request: NoticeRequest, recipient: str) -> NoticeActivities._Claim:
        """Claims the message (or counts another attempt at it) in one statement:
        INSERT ... ON CONFLICT DO UPDATE attempts + 1 ... RETURNING the row as it now is."""
        now = datetime.now(timezone.utc)
        dialect = self.db.dialect
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(notice_deliveries).values(
            message_id=message_id, case_id=str(request.case_id), seq=request.seq, recipient=recipient,
            status="sending", attempts=1, first_attempt_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["message_id"], set_={"attempts": notice_deliveries.c.attempts + 1},
        ).returning(notice_deliveries.c.status, notice_deliveries.c.first_attempt_at, notice_deliveries.c.last_error,
                    notice_deliveries.c.handed_at)
        with self.db.transaction() as session:
            row = session.execute(statement).one()
        return self._Claim(status=row.status, first_attempt_at=row.first_attempt_at, error=row.last_error,
                           handed_at=row.handed_at)

    def _row(self, message_id: str) -> NoticeActivities._Claim:
        with self.db.read() as session:
            row = session.execute(
                select(notice_deliveries.c.status, notice_deliveries.c.first_attempt_at, notice_deliveries.c.last_error,
                       notice_deliveries.c.handed_at).where(notice_deliveries.c.message_id == message_id)
            ).one()
        return self._Claim(status=row.status, first_attempt_at=row.first_attempt_at, error=row.last_error,
                           handed_at=row.handed_at)

    def _hand_over(self, message_id: str) -> bool:
        """Records the delivery intent just before DATA, if no other attempt has (compare and set)."""
        with self.db.transaction() as session:
            result = session.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.message_id == message_id,
                       notice_deliveries.c.status.in_(("sending", "withdrawn")))
                .values(status="handing", handed_at=datetime.now(timezone.utc))
            )
        return result.rowcount == 1

    def _release_dead(self, message_id: str, handed_at: datetime) -> bool:
        """An intent left without an answer past the settle window is released (compare and set on its
        ``handed_at``, so only one waiting attempt does it): the next attempt sends."""
        with self.db.transaction() as session:
            result = session.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.message_id == message_id, notice_deliveries.c.status == "handing",
                       notice_deliveries.c.handed_at == handed_at)
                .values(status="sending", last_error=DEAD_INTENT)
            )
        return result.rowcount == 1

    def _finish(self, message_id: str, status: str, error: str | None) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.message_id == message_id)
                .values(status=status, last_error=error, finished_at=datetime.now(timezone.utc))
            )

    def _note_error(self, message_id: str, error: str, where: dict | None = None, release: bool = False) -> None:
        """A send that failed for sure. ``release``: this attempt recorded the intent (began DATA) and the
        server refused the message there, so the intent is withdrawn and the next attempt sends."""
        log.warning("notice %s not sent yet: %s", message_id, error, extra=where or {})
        values = {"last_error": error[:2000]}
        if release:
            values["status"] = "sending"
        with self.db.transaction() as session:
            session.execute(update(notice_deliveries).where(notice_deliveries.c.message_id == message_id).values(**values))


def _smtp_code(error: Exception) -> tuple[int | None, str]:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refused = error.recipients[0] if error.recipients else None
        return (refused.code, refused.message) if refused else (None, str(error))
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code, error.message
    return None, str(error)
