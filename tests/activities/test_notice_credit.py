"""A notice states the customer's unapplied credit (prepayments, overpayment excess, credit from
amendments) beside the invoices it demands, so the customer can ask for it to be applied."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest

from activities.contracts import NoticeRequest
from activities.letters import LetterRenderer
from activities.rendering import NoticeRenderer
from domain.customer import customer_stream_id
from domain.events import AdvanceFacts, Customer
from domain.money import Money
from store.event_store import EventStore
from tests.domain.scenario import prepayment


def notice(language: str = "en", step: str = "firm", **extra) -> NoticeRequest:
    return NoticeRequest(
        case_id=uuid4(), seq=2, level=2, step=step, final=step == "final", invoice_id="INV-9",
        customer=Customer(customer_id="C-9", name="Acme", email="ap@acme.test", language=language),
        amount_due=Money.of("500.00", "EUR"), balance=Money.of("500.00", "EUR"), fee=None,
        due_date=date(2026, 10, 1), issue_date=date(2026, 9, 1), issued_on=date(2026, 11, 2),
        respond_within=timedelta(days=10), **extra)


@pytest.mark.parametrize(("language", "line"), [
    ("en", "You have €50.00 of credit on account with us."),
    ("de", "Sie haben bei uns ein Guthaben von 50,00\u00a0€."),
    ("fr", "Vous disposez chez nous d'un avoir de 50,00\u00a0€."),
    ("es", "Tienen a su favor un saldo de 50,00\u00a0€"),
    ("ja", "€50.00の未充当の入金残高"),
    ("zh-CN", "有€50.00的未冲销余额"),
])
@pytest.mark.parametrize("step", ["friendly", "firm", "final"])
def test_a_notice_states_the_customers_credit_in_text_and_html(language, line, step):
    rendered = NoticeRenderer().render([notice(language, step)], [Money.of("50.00", "EUR")])
    assert line in rendered.text, rendered.text
    assert line.replace("'", "&#39;") in rendered.html, rendered.html


@pytest.mark.parametrize("step", ["friendly", "firm", "final"])
def test_without_credit_the_notice_is_the_same_as_before(step):
    renderer = NoticeRenderer()
    plain = renderer.render([notice(step=step)])
    for credit in ([], [Money.of("0.00", "EUR")], [Money.of("-5.00", "EUR")]):
        rendered = renderer.render([notice(step=step)], credit)
        assert (rendered.text, rendered.html, rendered.subject) == (plain.text, plain.html, plain.subject)
    assert "credit on account" not in plain.text and "credit on account" not in plain.html


@pytest.mark.parametrize(("language", "line"), [
    ("en", "You have €50.00 of credit on account with us."),
    ("de", "Sie haben bei uns ein Guthaben von 50,00\u00a0€."),
    ("ja", "€50.00の未充当の入金残高"),
])
def test_a_final_notices_letter_states_the_credit_and_without_it_reads_as_before(language, line):
    letters, final = LetterRenderer(), notice(language, "final")
    stated = letters.html(final, [Money.of("50.00", "EUR"), Money.of("0.00", "USD")])
    assert line in stated, stated
    plain = letters.html(final)
    assert letters.html(final, [Money.of("0.00", "EUR")]) == plain and line not in plain


def test_credit_in_each_currency_is_stated_and_the_empty_ones_left_out():
    credit = [Money.of("50.00", "EUR"), Money.of("0.00", "GBP"), Money.of("12.50", "USD")]
    rendered = NoticeRenderer().render([notice()], credit)
    assert "You have €50.00 + $12.50 of credit on account with us." in rendered.text
    assert "£" not in rendered.text


def test_the_credit_line_stands_apart_from_the_invoices():
    text = NoticeRenderer().render([notice()], [Money.of("50.00", "EUR")]).text
    assert "\n\nYou have €50.00 of credit on account with us. You may ask us to apply it to these invoices.\n\n" in text


def test_a_deposit_request_does_not_offer_credit():
    """Credit is applied to invoices, not to an advance request (``payments apply-credit`` refuses)."""
    advance = AdvanceFacts(order_id="SO-1", reference="ADV-1")
    rendered = NoticeRenderer().render([notice(advance=advance)], [Money.of("50.00", "EUR")])
    assert "50.00" not in rendered.text and "50.00" not in rendered.html


# -- the activity reads the credit from the store when it sends ------------------------------------

def prepaid(store: EventStore, customer_id: str, amount: str) -> None:
    store.append(customer_stream_id(customer_id), 0, [prepayment(customer_id, Money.of(amount, "EUR"))])


async def test_the_sent_notice_states_the_credit_the_store_holds_and_a_resend_keeps_its_message_id(stored, smtp):
    store, sender = stored
    prepaid(store, "C-9", "50.00")
    request = notice()
    first = await sender.send_notice(request)
    [mail] = smtp.messages
    assert first.delivered and "You have €50.00 of credit on account with us." in mail.body()
    again = await sender.send_notice(request)
    assert again.already_sent and again.message_id == first.message_id and len(smtp.messages) == 1


async def test_a_customer_without_credit_gets_the_notice_without_the_sentence(stored, smtp):
    store, sender = stored
    prepaid(store, "C-OTHER", "50.00")  # another customer's credit is not this one's
    assert (await sender.send_notice(notice())).delivered
    [mail] = smtp.messages
    assert "INV-9" in mail.body() and "credit on account" not in mail.body()
