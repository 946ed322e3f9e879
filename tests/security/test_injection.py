"""Hostile customer data in notices: no header injection, no markup, through real SMTP.

Names, invoice ids and amounts come from imported ledgers; a notice renders them
into headers, a text part and an HTML part. Whatever they contain, the message
must reach exactly the customer's address, carry no extra header, keep every
header on one line, and show the HTML-looking data as text.
"""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from activities.contracts import NoticeRequest
from activities.rendering import header_safe
from domain.events import Customer
from domain.money import Money

NAMES = [
    "Evil\r\nBcc: victim@example.com",
    "Evil\nCc: victim@example.com",
    "Evil\rTo: victim@example.com",
    "Evil\u2028Bcc: victim@example.com",
    "Evil\x85Bcc: victim@example.com",
    "Evil\r\n\r\n<html>body replaced</html>",
    "=?utf-8?q?Evil=0D=0ABcc=3A_victim=40example=2Ecom?=",
    '"Quoted" <victim@example.com>, other@example.com',
    "<script>alert(document.cookie)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>&amp;",
    "Müller & Söhne <b>GmbH</b>",
]
INVOICE_IDS = ["INV-1\r\nBcc: victim@example.com", "<script>x</script>", "INV-\u2029-2"]


def request(name: str = "Acme GmbH", invoice_id: str = "INV-1001") -> NoticeRequest:
    return NoticeRequest(
        case_id=uuid4(), seq=1, level=3, step="final", final=True, invoice_id=invoice_id,
        customer=Customer(customer_id="C-1", name=name, email="ap@acme.test", country="DE"),
        amount_due=Money.of("1240.00", "EUR"), balance=Money.of("1200.00", "EUR"), fee=Money.of("40.00", "EUR"),
        due_date=date(2026, 2, 4), issue_date=date(2026, 1, 5),
    )


def check_message(smtp) -> None:
    [mail] = smtp.messages
    assert mail.recipients == ("ap@acme.test",)
    headers = {k.lower() for k in mail.message.keys()}
    assert not headers & {"bcc", "cc"}, headers
    assert list(mail.message.keys()).count("To") == 1
    for key, value in mail.message.items():
        assert "\n" not in str(value) and "\r" not in str(value), (key, value)
    assert "victim@example.com" not in {a.addr_spec for a in mail.message["To"].addresses}
    html = mail.body("html")
    for tag in ("<script", "<img", "<svg", "<b>GmbH", "<html>body"):
        assert tag not in html, tag


@pytest.mark.parametrize("name", NAMES)
async def test_hostile_customer_names(sender, smtp, name):
    result = await sender.send_notice(request(name=name))
    assert result.delivered
    check_message(smtp)


@pytest.mark.parametrize("invoice_id", INVOICE_IDS)
async def test_hostile_invoice_ids(sender, smtp, invoice_id):
    result = await sender.send_notice(request(invoice_id=invoice_id))
    assert result.delivered
    check_message(smtp)
    [mail] = smtp.messages
    assert "Bcc" not in mail.subject or "\n" not in mail.subject


def test_header_safe_removes_every_kind_of_line_break():
    for brk in ("\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
        assert header_safe(f"a{brk}Bcc: x") == "a Bcc: x"
    # an RFC 2047 encoded word would be decoded (CR LF included) when the header is folded
    assert "=?" not in header_safe("=?utf-8?q?Evil=0D=0ABcc=3A_victim=40example=2Ecom?=")
