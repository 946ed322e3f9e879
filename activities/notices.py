"""Sending notices by SMTP (aiosmtplib), idempotently.

A delivery log row per Message-ID is claimed before sending and marked sent
right after the server accepts. A retry (or a second worker) that finds the row
marked sent does not send again, so a duplicate can only come from a crash in
the few milliseconds between the server's acceptance and that mark.
A permanent rejection (5xx) is returned as a result, not retried forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import aiosmtplib
from sqlalchemy import select, update
from temporalio import activity

from activities.contracts import SEND_NOTICE, NoticeRequest, NoticeResult
from activities.rendering import NoticeRenderer, build_message
from store.db import Database
from store.schema import notice_deliveries
from store.upsert import insert_ignore

log = logging.getLogger(__name__)


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


class NoticeActivities:
    def __init__(self, db: Database, smtp: SmtpSettings, renderer: NoticeRenderer | None = None) -> None:
        self.db = db
        self.smtp = smtp
        self.renderer = renderer or NoticeRenderer()

    @activity.defn(name=SEND_NOTICE)
    async def send_notice(self, request: NoticeRequest) -> NoticeResult:
        message_id = message_id_for(request.case_id, request.seq, self.smtp.message_domain)
        return await self.deliver([request], message_id)

    async def deliver(self, requests: Sequence[NoticeRequest], message_id: str) -> NoticeResult:
        first = requests[0]
        recipient = first.customer.email
        claim = await asyncio.to_thread(self._claim, message_id, first, recipient)
        if claim.status == "sent":
            return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, already_sent=True)
        if claim.status == "rejected":
            return NoticeResult(
                message_id=message_id, recipient=recipient, delivered=False, permanent=True, error=claim.error or ""
            )
        rendered = self.renderer.render(requests)
        message = build_message(
            rendered,
            message_id=message_id,
            sender=self.smtp.sender,
            recipient_name=first.customer.name,
            recipient_email=recipient,
            sent_at=claim.first_attempt_at,
        )
        try:
            await aiosmtplib.send(
                message,
                hostname=self.smtp.host,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                start_tls=self.smtp.starttls,
                timeout=self.smtp.timeout,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as error:
            code, text = _smtp_code(error)
            if code is not None and 500 <= code < 600:
                await asyncio.to_thread(self._finish, message_id, "rejected", f"{code} {text}")
                return NoticeResult(
                    message_id=message_id, recipient=recipient, delivered=False, permanent=True, error=f"{code} {text}"
                )
            await asyncio.to_thread(self._note_error, message_id, f"{code} {text}")
            raise
        except (aiosmtplib.SMTPException, OSError) as error:
            await asyncio.to_thread(self._note_error, message_id, repr(error))
            raise
        await asyncio.to_thread(self._finish, message_id, "sent", None)
        return NoticeResult(message_id=message_id, recipient=recipient, delivered=True)

    # -- delivery log ------------------------------------------------------------------
    @dataclass(frozen=True)
    class _Claim:
        status: str
        first_attempt_at: datetime
        error: str | None

    def _claim(self, message_id: str, request: NoticeRequest, recipient: str) -> NoticeActivities._Claim:
        now = datetime.now(timezone.utc)
        with self.db.transaction() as session:
            insert_ignore(
                session,
                notice_deliveries,
                [{
                    "message_id": message_id, "case_id": str(request.case_id), "seq": request.seq,
                    "recipient": recipient, "status": "sending", "attempts": 0, "first_attempt_at": now,
                }],
                ["message_id"],
            )
            row = session.execute(
                select(notice_deliveries).where(notice_deliveries.c.message_id == message_id)
            ).one()
            session.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.message_id == message_id)
                .values(attempts=notice_deliveries.c.attempts + 1)
            )
        return self._Claim(status=row.status, first_attempt_at=row.first_attempt_at, error=row.last_error)

    def _finish(self, message_id: str, status: str, error: str | None) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.message_id == message_id)
                .values(status=status, last_error=error, finished_at=datetime.now(timezone.utc))
            )

    def _note_error(self, message_id: str, error: str) -> None:
        log.warning("notice %s not sent yet: %s", message_id, error)
        with self.db.transaction() as session:
            session.execute(
                update(notice_deliveries).where(notice_deliveries.c.message_id == message_id).values(last_error=error[:2000])
            )


def _smtp_code(error: Exception) -> tuple[int | None, str]:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refused = error.recipients[0] if error.recipients else None
        return (refused.code, refused.message) if refused else (None, str(error))
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code, error.message
    return None, str(error)
