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
