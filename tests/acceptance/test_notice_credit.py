"""Acceptance: a notice states the customer's unapplied credit, through the command line on the real
stack (Temporal dev server, worker, SMTP sink, SQLite). A customer prepays 50.00 EUR and 20.00 USD
(`payments prepay`: customer credit, not applied) before its overdue invoice's case opens; every
notice of the ladder (friendly, firm, final) that reaches the SMTP sink says, in its text and its
HTML, that the customer has that credit on account and may ask for it to be applied, and so does
`template preview`. Another customer, with no credit, gets the same notices without that sentence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.acceptance.stack import eventually

TODAY = datetime.now(timezone.utc).date()
CREDIT = "You have €50.00 + $20.00 of credit on account with us. You may ask us to apply it to these invoices."


def invoice(invoice_id: str, customer: str) -> str:
    return (f"{invoice_id},{customer},{customer} Ltd,ap@{customer.lower()}.test,IE,en,EUR,800.00,"
            f"{TODAY - timedelta(days=50)},{TODAY - timedelta(days=20)},A")


@pytest.fixture(scope="module")
def ledger(ledger_for):
    ledger = ledger_for()
    ledger.import_invoices([invoice("NC-CREDIT-1", "C-CREDIT"), invoice("NC-NONE-1", "C-NOCREDIT")])
    ledger.ok("payments", "prepay", "C-CREDIT", "50.00", "--currency", "EUR", "--payment-id", "PP-NC-EUR")
    ledger.ok("payments", "prepay", "C-CREDIT", "20.00", "--currency", "USD", "--payment-id", "PP-NC-USD")
    shown = {c["currency"]: c["balance"] for c in ledger.ok("customer", "show", "C-CREDIT")["credit"]}
    assert shown == {"EUR": "50.00", "USD": "20.00"}, shown
    assert ledger.ok("customer", "show", "C-NOCREDIT")["credit"] == []
    for ref in ("NC-CREDIT-1", "NC-NONE-1"):
        ledger.ok("case", "open", ref)
    return ledger


def notices(ledger, address: str):
    found = eventually(lambda: (lambda mails: mails if len(mails) >= 3 else None)(ledger.mails(address)), 120,
                       f"three notices to {address}")
    return sorted(found, key=lambda m: m.path.name)[:3]


def test_every_notice_states_the_customers_unapplied_credit(ledger):
    for mail in notices(ledger, "ap@c-credit.test"):
        assert "NC-CREDIT-1" in mail.text and CREDIT in mail.text, mail.text
        html = mail.message.get_body(("html",)).get_content()
        assert f"<p>{CREDIT}</p>" in html, html


def test_a_customer_without_credit_gets_no_credit_sentence(ledger):
    for mail in notices(ledger, "ap@c-nocredit.test"):
        html = mail.message.get_body(("html",)).get_content()
        assert "NC-NONE-1" in mail.text and "credit on account" not in mail.text, mail.text
        assert "credit on account" not in html, html


def test_the_preview_states_the_credit_as_the_notice_will(ledger):
    """`template preview`, what a collector reads before a notice goes out, says what it will say."""
    preview = ledger.ok("template", "preview", "NC-CREDIT-1", "--level", "3")
    assert CREDIT in preview["text"] and f"<p>{CREDIT}</p>" in preview["html"], preview
    html = ledger.cli("template", "preview", "NC-CREDIT-1", "--html", json=False)
    assert html.code == 0 and CREDIT in html.stdout, str(html)
    assert "credit on account" not in ledger.ok("template", "preview", "NC-NONE-1")["text"]


def letter_of(ledger, address: str) -> bytes:
    final = next(m for m in notices(ledger, address) if m.subject.startswith("Final notice"))
    pdfs = [part for part in final.message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1, final.message
    return pdfs[0].get_content()


def pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def test_the_final_notices_letter_states_the_credit_and_case_letter_reproduces_it(ledger):
    """The PDF letter attached to the final notice says what its e-mail says, and `case letter` renders
    it again byte for byte from what the notice recorded (the credit as it was when it was sent)."""
    attached = letter_of(ledger, "ap@c-credit.test")
    assert "NC-CREDIT-1" in pdf_text(attached) and CREDIT in pdf_text(attached), pdf_text(attached)
    sent = [e for e in ledger.case("NC-CREDIT-1")["events"] if e["type"] == "ReminderSent"]
    stated = {c["currency"]: c["amount"] for c in sent[2]["data"]["letter"]["credit"]}
    assert stated == {"EUR": "50.00", "USD": "20.00"}, sent[2]["data"]["letter"]
    out = ledger.dir / "NC-CREDIT-1-3.pdf"
    again = ledger.ok("case", "letter", "NC-CREDIT-1", "--seq", "3", "--out", str(out))
    assert again["same"] is True and out.read_bytes() == attached, again

    without = letter_of(ledger, "ap@c-nocredit.test")
    assert "NC-NONE-1" in pdf_text(without) and "credit on account" not in pdf_text(without), pdf_text(without)
    sent = [e for e in ledger.case("NC-NONE-1")["events"] if e["type"] == "ReminderSent"]
    assert "credit" not in sent[2]["data"]["letter"], sent[2]["data"]["letter"]
    assert ledger.ok("case", "letter", "NC-NONE-1", "--seq", "3", "--out", str(ledger.dir / "none.pdf"))["same"]
