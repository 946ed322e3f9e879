"""The notice's message as the recipient's software reads it: built (activities/rendering.py's
build_message, the standard library's email.mime classes) and parsed back with the standard
library's parser, for names and subjects in German, Chinese and French."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from uuid import UUID

import pytest

from activities.contracts import NoticeRequest
from activities.mime import boundaries
from activities.notices import message_id_for
from activities.rendering import NoticeRenderer, build_message
from domain.events import Customer
from domain.money import Money

SENDER = "Accounts Receivable <ar@collections.local>"
SENT_AT = datetime(2026, 2, 10, 9, 30, tzinfo=timezone.utc)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


def notice(name: str, language: str, step: str = "friendly", currency: str = "EUR") -> NoticeRequest:
    return NoticeRequest(
        case_id=UUID(int=7), seq=1, level=1, step=step, final=step == "final", invoice_id="INV-1001",
        customer=Customer(customer_id="C-1", name=name, email="ap@kunde.test", language=language),
        amount_due=Money.of("1200.00", currency), balance=Money.of("1200.00", currency), fee=None,
        due_date=date(2026, 2, 4), issue_date=date(2026, 1, 5))


def built(request: NoticeRequest, attachments=(), sender: str = SENDER):
    rendered = NoticeRenderer().render([request])
    mail = build_message(rendered, message_id=message_id_for(request.case_id, request.seq, "collections.local"),
                         sender=sender, recipient_name=request.customer.name,
                         recipient_email=request.customer.email, sent_at=SENT_AT, attachments=attachments)
    return rendered, mail, message_from_bytes(mail.data, policy=policy.default)


def content(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def to_name(mail) -> str:
    """The To's display name read as RFC 2047 (6.2) says: the white space between two adjacent
    encoded words is not part of the text. Python 3.11's header registry reads a space there
    (CPython gh-128110), so a name long enough for two encoded words is read by the legacy decoder."""
    [to] = message_from_bytes(mail.data, policy=policy.default)["To"].addresses
    raw = message_from_bytes(mail.data)["To"]  # compat32: the header as it came
    if "?= =?" not in " ".join(raw.split()):  # no two encoded words side by side: the registry reads it
        return to.display_name
    decoded = str(make_header(decode_header(raw)))
    assert decoded.endswith(f" <{to.addr_spec}>")
    return decoded.removesuffix(f" <{to.addr_spec}>")


@pytest.mark.parametrize(("name", "language", "currency", "subject"), [
    ("Müller & Söhne GmbH", "de", "EUR", "Zahlungserinnerung: Rechnung INV-1001 ist fällig"),
    ("深圳华强电子有限公司", "zh-CN", "CNY", "付款提醒：发票 INV-1001已逾期"),
    ("Société Générale d'Équipement", "fr", "EUR", None),  # one encoded word, the address on the next line
    ("Dr. Jürgen Weißmüller-Lüdenscheid und Partner mbB", "de", "EUR", None),  # two encoded words
    # folded at its spaces, in its quotes (Python 3.11's registry dropped them: the To read "Acme")
    ("Acme, Inc. (Accounts Payable Department) Attn: Jane Doe, Building 4, Floor 2", "en", "USD", None),
])
def test_a_notice_reads_back_with_its_headers_and_bodies(name, language, currency, subject):
    rendered, mail, message = built(notice(name, language, currency=currency))
    assert mail.data.isascii() and not mail.utf8  # 7-bit clean: encoded words, base64 bodies
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 78
    assert b"\n" not in mail.data.replace(b"\r\n", b"")  # CRLF line ends only
    assert (mail.sender, mail.recipients) == ("ar@collections.local", ("ap@kunde.test",))
    [to] = message["To"].addresses
    assert (to_name(mail), to.addr_spec) == (name, "ap@kunde.test")
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Accounts Receivable", "ar@collections.local")
    assert str(message["Subject"]) == (subject or rendered.subject)
    assert str(message["Message-ID"]) == "<case-00000000-0000-0000-0000-000000000007-n1@collections.local>"
    assert message["Date"].datetime == SENT_AT
    assert str(message["Content-Language"]) == language
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_payload()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert content(plain) == rendered.text and content(html) == rendered.html
    assert name in rendered.text and rendered.subject in rendered.html


def test_a_final_notice_carries_its_letters_after_the_text_and_html():
    rendered, mail, message = built(notice("Müller GmbH", "de", step="final"),
                                    attachments=[("final-notice-INV-1001-1.pdf", PDF), ("Mahnung für Müller.pdf", PDF[:99])])
    assert message.get_content_type() == "multipart/mixed"
    alternative, letter, other = message.get_payload()
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert content(alternative.get_payload()[0]) == rendered.text
    assert (letter.get_content_type(), letter.get_content_disposition()) == ("application/pdf", "attachment")
    assert (letter.get_filename(), letter.get_content()) == ("final-notice-INV-1001-1.pdf", PDF)
    assert (other.get_filename(), other.get_content()) == ("Mahnung für Müller.pdf", PDF[:99])
    assert b"filename*=utf-8''Mahnung%20f%C3%BCr%20M%C3%BCller.pdf" in mail.data  # RFC 2231
    assert letter["Content-Transfer-Encoding"] == other["Content-Transfer-Encoding"] == "base64"
    assert mail.data.isascii()
    assert str(message["Content-Language"]) == "de"


def test_customer_text_cannot_end_a_part_or_add_a_header():
    """A name holding this message's own boundary line and an encoded line break: the boundary
    never occurs in an encoded body, and the header gets neither a Bcc nor a new line."""
    request = notice("x", "en")
    alternative = boundaries(message_id_for(request.case_id, request.seq, "collections.local"))[0]
    name = f"Evil\n--{alternative}\nContent-Type: text/html\nBcc: victim@example.com =?utf-8?q?=0D=0ABcc:_v@x?="
    rendered, mail, message = built(request.model_copy(update={"customer": request.customer.model_copy(
        update={"name": name})}))
    assert mail.recipients == ("ap@kunde.test",) and "Bcc" not in message.keys()
    [to] = message["To"].addresses
    assert to.addr_spec == "ap@kunde.test" and "\n" not in to.display_name
    plain, html = message.get_payload()
    assert f"--{alternative}" in content(plain) and content(plain) == rendered.text
    assert content(html) == rendered.html


def test_every_attempt_at_a_notice_sends_the_same_bytes():
    """The Message-ID and the Date are the claim's, and the boundaries derive from the Message-ID."""
    assert built(notice("Müller GmbH", "de"))[1] == built(notice("Müller GmbH", "de"))[1]


def test_an_address_that_is_not_ascii_needs_smtputf8():
    """As aiosmtplib's send_message did: the headers in UTF-8, the server asked for SMTPUTF8."""
    request = notice("Müller GmbH", "de")
    _, mail, message = built(request.model_copy(update={"customer": request.customer.model_copy(
        update={"email": "ap@bücher.de"})}))
    assert mail.utf8 and mail.recipients == ("ap@bücher.de",)
    assert "To: Müller GmbH <ap@bücher.de>".encode() in mail.data
    assert message.get_content_type() == "multipart/alternative"
