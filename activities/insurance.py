"""Notifying a credit insurer of an overdue insured invoice, by e-mail, idempotently.

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

from activities.contracts import NOTIFY_INSURER, InsurerNoticeRequest, NoticeResult
from activities.notices import SmtpSettings, heartbeating
from activities.rendering import header_safe
from store.db import Database
from store.schema import notice_deliveries
from store.upsert import insert_ignore

log = logging.getLogger(__name__)
SEQ = 0  # the insurer notice's row in the delivery log (case notices count from 1)


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


class InsuranceActivities:
    def __init__(self, db: Database, smtp: SmtpSettings) -> None:
        self.db = db
        self.smtp = smtp

    @activity.defn(name=NOTIFY_INSURER)
    async def notify_insurer(self, request: InsurerNoticeRequest) -> NoticeResult:
        message_id = insurer_message_id(request.case_id, self.smtp.message_domain)
        recipient = request.insurer_email
        async with heartbeating():
            status = await asyncio.to_thread(self._claim, message_id, request)
            if status == "sent":
                return NoticeResult(message_id=message_id, recipient=recipient, delivered=True, already_sent=True)
            subject, text = render_insurer_notice(request)
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
        log.info("insurer notified", extra={"case_id": str(request.case_id), "message_id": message_id})
        return NoticeResult(message_id=message_id, recipient=recipient, delivered=True)

    def _claim(self, message_id: str, request: InsurerNoticeRequest) -> str:
        now = datetime.now(timezone.utc)
        with self.db.transaction() as session:
            insert_ignore(session, notice_deliveries, [{
                "message_id": message_id, "case_id": str(request.case_id), "seq": SEQ,
                "recipient": request.insurer_email, "status": "sending", "attempts": 0, "first_attempt_at": now,
            }], ["message_id"])
            session.execute(update(notice_deliveries).where(notice_deliveries.c.message_id == message_id)
                            .values(attempts=notice_deliveries.c.attempts + 1))
            return session.execute(select(notice_deliveries.c.status)
                                   .where(notice_deliveries.c.message_id == message_id)).scalar_one()

    def _finish(self, message_id: str, status: str) -> None:
        with self.db.transaction() as session:
            session.execute(update(notice_deliveries).where(notice_deliveries.c.message_id == message_id)
                            .values(status=status, finished_at=datetime.now(timezone.utc)))
