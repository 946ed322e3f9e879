"""The agenda's English wording (domain/agenda.py) in the console's languages (api/i18n.py)."""

from __future__ import annotations

import pytest

from api.i18n import agenda_text

# one text of each form the agenda writes: the next action, then what a case waits for
AGENDA = ["send reminder 2", "escalate to supervisor", "supervisor decision due", "finance_manager dispute decision due",
          "write-off approval due", "promise to pay due", "instalment 3 due", "dispute resolution due",
          "plan offer expires", "paused (customer_request): dunning resumes", "notify the insurer",
          "file the insurance claim", "report the default to Factor AG", "closed (paid)", "with factor Factor AG",
          "paused until 2026-12-20T00:00 (customer_request)", "plan approval by a supervisor",
          "finance_manager decision", "with agency", "with legal", "customer to accept the plan", "collector"]


@pytest.mark.parametrize("lang", ["de", "fr", "es", "ja", "zh"])
def test_every_form_the_agenda_writes_is_translated(lang):
    for text in AGENDA:
        shown = agenda_text(text, lang)
        assert shown != text and "{" not in shown and "_" not in shown.replace("customer_request", ""), (lang, text, shown)


def test_english_reads_as_before_and_an_unknown_text_is_shown_as_it_is():
    assert agenda_text("send reminder 2", "en") == "send reminder 2"
    assert agenda_text("closed (written_off)", "en") == "closed (written off)"
    assert agenda_text("something new", "de") == "something new" and agenda_text(None, "de") is None


def _refusals() -> list:
    """The domain's own refusals for the inputs a person types most (the patterns of
    api/i18n.py must keep matching the domain's wording)."""
    from datetime import date

    from domain.commands import check_text
    from domain.errors import DomainError
    from domain.inputs import parse_date
    from domain.money import Money, parse_amount, positive_money
    from tests.domain.scenario import COLLECTOR, Case, invoice, usd
    from domain import commands as cmd

    case = Case().open(invoice())
    tries = [lambda: positive_money("-5", "USD"), lambda: check_text(" ", "reason", required=True),
             lambda: parse_amount("abc"), lambda: parse_date("31/12/2026", "date"),
             lambda: Money.of("10.123", "USD"),
             lambda: case.when(cmd.MakePromise, COLLECTOR, amount=usd("99999"), promised_date=date(2026, 3, 5)),
             lambda: case.when(cmd.MakePromise, COLLECTOR, amount=usd("10"), promised_date=date(2026, 3, 1)),
             lambda: case.when(cmd.MakePromise, COLLECTOR, amount=usd("10"), promised_date=date(2027, 3, 1)),
             lambda: case.when(cmd.RecordPayment, COLLECTOR, payment_id="P", amount=usd("1"), reference="",
                               received_on=date(2027, 1, 1))]
    found = []
    for attempt in tries:
        with pytest.raises(DomainError) as refused:
            attempt()
        found.append(refused.value)
    return found


@pytest.mark.parametrize("lang", ["de", "fr", "es", "ja", "zh"])
def test_the_refusals_people_meet_most_read_in_their_language(lang):
    from api.i18n import refusal_sentence

    for error in _refusals():
        shown = refusal_sentence(error.message, lang)
        assert shown != error.message and "{" not in shown, (lang, error.message, shown)
        assert refusal_sentence(error.message, "en") == error.message  # English reads as the domain wrote it
