"""What a notice tells the customer about time: the wait the policy gives before its next step
(not a fixed "7 days"), and dates as each language writes them (French: « le 1er octobre »)."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest

from activities.contracts import NoticeRequest
from activities.letters import LetterRenderer
from activities.rendering import NoticeRenderer, format_day
from domain.events import Customer
from domain.money import Money


def notice(language: str, final: bool, respond_within: timedelta | None) -> NoticeRequest:
    return NoticeRequest(
        case_id=uuid4(), seq=2, level=3 if final else 2, step="final" if final else "firm", final=final,
        invoice_id="INV-8", customer=Customer(customer_id="C-8", name="Acme", email="ap@acme.test", language=language),
        amount_due=Money.of("500.00", "EUR"), balance=Money.of("500.00", "EUR"), fee=None,
        due_date=date(2026, 10, 1), issue_date=date(2026, 9, 1), issued_on=date(2026, 11, 2),
        respond_within=respond_within)


@pytest.mark.parametrize(("language", "firm", "final"), [
    ("en", "within 10 days", "within 14 days"),
    ("de", "innerhalb der nächsten 10 Tage", "innerhalb der nächsten 14 Tage"),
    ("fr", "sous 10\u00a0jours", "sous 14\u00a0jours"),
    ("es", "en un plazo de 10 días", "en un plazo de 14 días"),
    ("ja", "10 日以内", "14 日以内"),
    ("zh-CN", "10天内", "14天内"),
])
def test_a_notice_gives_the_time_the_policy_gives(language, firm, final):
    renderer = NoticeRenderer()
    assert firm in renderer.render([notice(language, False, timedelta(days=10))]).text
    text = renderer.render([notice(language, True, timedelta(days=14))]).text
    assert final in text and "7" not in text.replace("2026", ""), text
    assert final in LetterRenderer().html(notice(language, True, timedelta(days=14)))


def test_a_letter_recorded_before_the_wait_was_stated_still_says_7_days():
    """Its request carries no wait: rendered again (``case letter``), it reads as it was sent."""
    assert "within 7 days" in LetterRenderer().html(notice("en", True, None))


def test_french_writes_the_first_of_the_month_as_an_ordinal():
    assert format_day(date(2026, 10, 1), "fr") == "1er octobre 2026"
    assert format_day(date(2026, 10, 2), "fr") == "2 octobre 2026"
    assert format_day(date(2026, 10, 1), "en") == "October 1, 2026"
