"""Notifying a credit insurer of an overdue insured invoice, and a factor of a default on an
invoice assigned to it with recourse, by e-mail, idempotently.

The notice has a Message-ID derived from the case, and a row in the delivery log
(``notice_deliveries``, seq 0) is claimed before sending and marked sent once the
server accepted it: a retried activity finds it sent and does not send it again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
from sqlalchemy import select, update
from temporalio import activity

from activities.contracts import (
    NOTIFY_FACTOR,
    NOTIFY_INSURER,
    FactorNoticeRequest,
    InsurerNoticeRequest,
    NoticeResult,
)
from activities.notices import SmtpSettings, heartbeating
from activities.rendering import header_safe
from store.db import Database
from store.schema import notice_deliveries
from store.upsert import insert_ignore

log = logging.getLogger(__name__)
SEQ = 0  # the insurer notice's row in the delivery log (case notices count from 1)
FACTOR_SEQ = -1  # the default report to a factor


def insurer_message_id(case_id: object, domain: str) -> str:
    return f"<insurer-{case_id}@{domain}>"


def render_insurer_notice(r: InsurerNoticeRequest) -> tuple[str, str]:
    subject = f"Notification of overdue account - policy {r.policy_number} - invoice {r.invoice_id}"
    text = (
        f"To {r.insurer_name},\n\n"
        f"Under credit insurance policy {r.policy_number} we notify you that the following insured "
        f"receivable is overdue.\n\n"
        f"Buyer: {r.customer.name} (customer {r.customer.customer_id}, {r.customer.country})\n"
        f"Invoice: {r.invoice_id}, issued {r.issue_date.isoformat()}, due {r.due_date.isoformat()}\n"
        f"Invoice amount: {r.original_amount}\n"
        f"Amount overdue: {r.amount_due}\n"
        f"Notification deadline under the policy: {r.notify_by.isoformat()}\n\n"
        f"Collection continues; we will file a claim if the amount remains unpaid at the end of the "
        f"waiting period.\n"
    )
    return header_safe(subject), text


def factor_message_id(case_id: object, domain: str) -> str:
    return f"<factor-default-{case_id}@{domain}>"


def render_factor_notice(r: FactorNoticeRequest) -> tuple[str, str]:
    """The default report to the factor: which assigned invoice, why, and what is open."""
    why = {"escalated": "has gone through our whole reminder ladder unpaid and is escalated",
           "written_off": "has been written off as uncollectable"}[r.trigger]
    subject = f"Default report - assignment {r.assignment_id} - invoice {r.invoice_id}"
    text = (
        f"To {r.factor_name},\n\n"
        f"Invoice {r.invoice_id} of {r.customer.name} (customer {r.customer.customer_id}), assigned to you "
        f"with recourse under assignment {r.assignment_id} ({r.assigned} assigned), {why}.\n\n"
        f"Invoice issued {r.issue_date.isoformat()}, due {r.due_date.isoformat()}.\n"
        f"Amount in default: {r.amount}\n\n"
        f"We report this default under the recourse terms of the assignment.\n"
    )
    return header_safe(subject), text


class InsuranceActivities:
    def __init__(self, db: Database, smtp: SmtpSettings) -> None:
        self.db = db
        self.smtp = smtp

    @activity.defn(name=NOTIFY_INSURER)
    async def notify_insurer(self, request: InsurerNoticeRequest) -> NoticeResult:
        message_id = insurer_message_id(request.case_id, self.smtp.message_domain)
        subject, text = render_insurer_notice(request)
        result = await self._send_once(request.case_id, SEQ, message_id, request.insurer_email, subject, text)
        log.info("insurer notified", extra={"case_id": str(request.case_id), "message_id": message_id})
        return result

    @activity.defn(name=NOTIFY_FACTOR)
    async def notify_factor(self, request: FactorNoticeRequest) -> NoticeResult:
        """Report a default to the factor an invoice was assigned to with recourse (docs/FINANCING.md)."""
        message_id = factor_message_id(request.case_id, self.smtp.message_domain)
        subject, text = render_factor_notice(request)
        result = await self._send_once(request.case_id, FACTOR_SEQ, message_id, request.factor_email, subject, text)
        log.info("factor notified", extra={"case_id": str(request.case_id), "message_id": message_id})
        return result

    async def _send_once(self, case_id, seq: int, message_id: str, recipient: str, subject: str,
                         text: str) -> NoticeResult:
        """Send one message under its delivery-log row: a retry finds it sent and does not send again."""
        async with heartbeating():
            status = await asyncio.to_thread(self._claim, message_id, case_id, seq, recipient)
            if status == "sent":
                return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, already_sent=True)
            message = EmailMessage()
            message["Message-ID"] = message_id
            message["Date"] = format_datetime(datetime.now(timezone.utc))
            message["From"] = header_safe(self.smtp.sender)
            message["To"] = header_safe(recipient)
            message["Subject"] = subject
            message.set_content(text)
            try:
                async with aiosmtplib.SMTP(hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                                           password=self.smtp.password, start_tls=self.smtp.starttls,
                                           timeout=self.smtp.timeout) as client:
                    await client.send_message(message)
                    await asyncio.to_thread(self._finish, message_id, "sent")
            except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as error:
                code = getattr(error, "code", None)
                if code is not None and 500 <= code < 600:
                    await asyncio.to_thread(self._finish, message_id, "rejected")
                    return NoticeResult(message_id=message_id, recipient=recipient, delivered=False, permanent=True,
                                        error=f"{code} {getattr(error, 'message', error)}")
                raise
        return NoticeResult(message_id=message_id, recipient=recipient, delivered=True)

    def _claim(self, message_id: str, case_id, seq: int, recipient: str) -> str:
        now = datetime.now(timezone.utc)
        with self.db.transaction() as session:
            insert_ignore(session, notice_deliveries, [{
                "message_id": message_id, "case_id": str(case_id), "seq": seq,
                "recipient": recipient, "status": "sending", "attempts": 0, "first_attempt_at": now,
            }], ["message_id"])
            session.execute(update(notice_deliveries).where(notice_deliveries.c.message_id == message_id)
                            .values(attempts=notice_deliveries.c.attempts + 1))
            return session.execute(select(notice_deliveries.c.status)
                                   .where(notice_deliveries.c.message_id == message_id)).scalar_one()

    def _finish(self, message_id: str, status: str) -> None:
        with self.db.transaction() as session:
            session.execute(update(notice_deliveries).where(notice_deliveries.c.message_id == message_id)
                            .values(status=status, finished_at=datetime.now(timezone.utc)))
