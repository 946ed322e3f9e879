"""Notice delivery against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import aiosmtplib
import pytest
from sqlalchemy import select

from activities.contracts import NoticeRequest
from activities.notices import message_id_for
from domain.events import Customer
from domain.money import Money
from store.schema import notice_deliveries


def notice(email: str = "ap@acme.test", name: str = "Acme GmbH", language: str = "en", seq: int = 1) -> NoticeRequest:
    return NoticeRequest(
        case_id=uuid4(), seq=seq, level=1, step="friendly", final=False, invoice_id="INV-1001",
        customer=Customer(customer_id="C-1", name=name, email=email, country="DE", language=language),
        amount_due=Money.of("1200.00", "EUR"), balance=Money.of("1200.00", "EUR"), fee=None,
        due_date=date(2026, 2, 4), issue_date=date(2026, 1, 5),
    )


async def test_notice_reaches_the_customer_with_invoice_and_amount(sender, smtp):
    request = notice()
    result = await sender.send_notice(request)
    assert result.delivered and not result.already_sent
    [mail] = smtp.messages
    assert mail.recipients == ("ap@acme.test",)
    assert mail.subject == "Friendly reminder: invoice INV-1001 past due"
    assert mail.message_id == message_id_for(request.case_id, 1, "test.local")
    assert "INV-1001" in mail.body() and "€1,200.00" in mail.body()
    assert "INV-1001" in mail.body("html") and "€1,200.00" in mail.body("html")


async def test_a_retry_never_sends_a_second_message(sender, smtp):
    request = notice()
    first = await sender.send_notice(request)
    second = await sender.send_notice(request)
    assert first.delivered and second.delivered and second.already_sent
    assert len(smtp.messages) == 1
    with sender.db.read() as session:
        row = session.execute(select(notice_deliveries)).one()
    assert row.status == "sent" and row.attempts == 2


async def test_permanent_rejection_is_a_result_not_a_retry(sender, smtp):
    smtp.rejected_recipients.add("gone@acme.test")
    result = await sender.send_notice(notice(email="gone@acme.test"))
    assert not result.delivered and result.permanent and result.error.startswith("550")
    again = await sender.send_notice(notice(email="gone@acme.test"))  # another notice, same bad mailbox
    assert again.permanent
    assert smtp.messages == []


async def test_server_down_raises_so_temporal_retries_then_it_goes_through(sender, smtp):
    request = notice()
    smtp.stop()
    with pytest.raises((aiosmtplib.SMTPException, OSError)):
        await sender.send_notice(request)
    smtp.start()
    result = await sender.send_notice(request)
    assert result.delivered and len(smtp.messages) == 1


async def test_customer_data_cannot_inject_headers_and_is_escaped_in_html(sender, smtp):
    await sender.send_notice(notice(name="Evil <script>alert(1)</script>\r\nBcc: victim@example.com"))
    [mail] = smtp.messages
    assert mail.recipients == ("ap@acme.test",)
    assert "Bcc" not in mail.message.keys()
    assert "<script>" not in mail.body("html") and "&lt;script&gt;" in mail.body("html")


async def test_chinese_customer_gets_a_chinese_notice(sender, smtp):
    request = notice(language="zh-CN").model_copy(update={"amount_due": Money.of("12345.60", "CNY")})
    await sender.send_notice(request)
    [mail] = smtp.messages
    assert mail.subject == "付款提醒：发票 INV-1001已逾期"
    assert "¥12,345.60" in mail.body() and "2026年2月4日" in mail.body()
