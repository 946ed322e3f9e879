"""What a notice and a final notice's letter say about factoring and an early-payment discount
(docs/FINANCING.md), in English and Chinese; nothing changes for a notice without either."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import uuid4

import pytest

from activities.contracts import NoticeRequest
from activities.letters import LetterRenderer
from activities.rendering import NoticeRenderer
from domain.events import Customer, DiscountTerms, FactorTerms
from domain.money import Money

USD = "USD"
FACTOR = FactorTerms(assignment_id="FA-1", factor="northbank", account_name="Northbank Factoring Ltd",
                     iban="GB33BUKB20201555555555", bic="BUKBGB22", factor_email="factoring@northbank.test",
                     recourse=True, assigned=Money.of("1000.00", USD), advance_rate=Decimal("0.9"),
                     advanced=Money.of("900.00", USD), fee_rate=Decimal("0"), fee=Money.of("0", USD))


def notice(language: str, final: bool = False, **extra) -> NoticeRequest:
    return NoticeRequest(
        case_id=uuid4(), seq=1, level=3 if final else 1, step="final" if final else "friendly", final=final,
        invoice_id="INV-7", customer=Customer(customer_id="C-1", name="Acme", email="ap@acme.test", language=language),
        amount_due=Money.of("1000.00", USD), balance=Money.of("1000.00", USD), fee=None,
        due_date=date(2026, 11, 1), issue_date=date(2026, 10, 1), issued_on=date(2026, 12, 4), **extra)


@pytest.mark.parametrize(("language", "sentence", "offer"), [
    ("en", "This invoice has been assigned to Northbank Factoring Ltd; pay only to Northbank Factoring Ltd, "
           "IBAN GB33BUKB20201555555555, BIC BUKBGB22",
     "Early-payment discount: pay $980.00 by December 14, 2026 and we waive the remaining $20.00 (2 %)."),
    ("zh-CN", "本发票已转让给 Northbank Factoring Ltd；请仅向 Northbank Factoring Ltd 付款（IBAN GB33BUKB20201555555555",
     "提前付款折扣：请于 2026年12月14日 前支付 US$980.00，余下的 US$20.00（2%）予以免除。"),
])
def test_the_notice_states_the_assignment_and_the_offer(language, sentence, offer):
    renderer = NoticeRenderer()
    discount = DiscountTerms(percent=Decimal("2"), discount=Money.of("20.00", USD), pay=Money.of("980.00", USD),
                             pay_by=datetime(2026, 12, 15, tzinfo=timezone.utc))
    rendered = renderer.render([notice(language, factor=FACTOR, discount=discount)])
    assert sentence in rendered.text and offer in rendered.text, rendered.text
    assert "GB33BUKB20201555555555" in rendered.html and "980.00" in rendered.html
    plain = renderer.render([notice(language)])
    assert "GB33" not in plain.text and "980" not in plain.text


def test_an_offer_ending_within_the_day_names_the_time():
    discount = DiscountTerms(percent=Decimal("2"), discount=Money.of("20.00", USD), pay=Money.of("980.00", USD),
                             pay_by=datetime(2026, 12, 4, 10, 0, 20, tzinfo=timezone.utc))
    text = NoticeRenderer().render([notice("en", discount=discount)]).text
    assert "pay $980.00 by December 4, 2026 10:00:20 UTC" in text


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_final_letter_carries_the_factors_instructions_and_is_unchanged_without(language):
    letters = LetterRenderer()
    assigned = letters.html(notice(language, final=True, factor=FACTOR))
    assert "Northbank Factoring Ltd" in assigned and "GB33BUKB20201555555555" in assigned
    plain = letters.html(notice(language, final=True))
    assert "Northbank" not in plain
    assert plain == letters.html(notice(language, final=True).model_copy(update={"factor": None}))
