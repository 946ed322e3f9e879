"""The console's words, per request language, from the gettext catalogues (translations/), and
the event timeline in plain words.

``translator(lang)("nav.worklist", **values)`` looks a key up in the catalogue of the console
language ``lang`` (``en``, ``zh``, ``de``, ``fr``, ``es``, ``ja``; English when a key is missing)
and fills in its ``str.format`` placeholders. Adding a word: add the key to
``translations/en/LC_MESSAGES/messages.po`` and run ``make messages`` (docs/LANGUAGES.md).
Amounts are formatted with Babel for the language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency, format_decimal

from activities import catalogue
from domain.errors import DomainError

# Console language codes (the base language: the session and the language buttons use them) and
# the catalogue each one reads: every shipped catalogue (``zh`` -> ``zh-CN``).
CATALOGUE = {language.split("-")[0].lower(): language for language in catalogue.LANGUAGES}
LANGUAGES = tuple(CATALOGUE)
BABEL_LOCALE = {"en": "en_US", "zh": "zh_CN", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "ja": "ja_JP"}


class _Messages(Mapping[str, Mapping[str, str]]):
    """``MESSAGES[lang][key]``: a read-only view of the catalogues, per console language."""

    def __getitem__(self, lang: str) -> Mapping[str, str]:
        return catalogue.messages(CATALOGUE[lang])

    def __iter__(self):
        return iter(LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


MESSAGES = _Messages()


def html_lang(lang: str) -> str:
    """The ``lang`` attribute of a page in console language ``lang``."""
    return CATALOGUE.get(lang, "en")


def pick_language(value: str | None, accept_language: str | None = None) -> str:
    """A console language code: an explicit choice, else the browser's preference, else ``en``."""
    if value in LANGUAGES:
        return value
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower().split("-")[0]
        if tag in LANGUAGES:
            return tag
    return "en"


def translator(lang: str) -> Callable[..., str]:
    return catalogue.translator(CATALOGUE.get(lang, "en"))


def _locale(lang: str) -> str:
    return BABEL_LOCALE.get(lang) or catalogue.directory_name(CATALOGUE.get(lang, "en_US"))


def money(amount: Decimal | str, currency: str, lang: str) -> str:
    return format_currency(Decimal(str(amount)), currency, locale=_locale(lang))


def number(value: Decimal | int | str, lang: str) -> str:
    return format_decimal(Decimal(str(value)), locale=_locale(lang))


def when(value: datetime | str | None) -> str:
    """Timestamps are shown in UTC, to the minute, the same in both languages."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def age(delta: timedelta, lang: str) -> str:
    t = translator(lang)
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return t("age.days", d=days, h=hours)
    if hours:
        return t("age.hours", h=hours, m=mins)
    return t("age.minutes", m=mins)


# The refusals a person meets most on the console's forms and the customer page, each with its
# catalogue key: the domain words them in English (the API's and the CLI's one line); a sentence
# no pattern knows is shown as it is.
_REFUSALS = [(re.compile(pattern), key) for pattern, key in (
    (r"must be positive, got (?P<value>.+)", "refusal.positive"),
    (r"must not be empty", "refusal.empty"),
    (r"(?P<value>.+) is not a number", "refusal.not_a_number"),
    (r"(?P<value>.+) is not a date \(YYYY-MM-DD\)", "refusal.not_a_date"),
    (r"(?P<value>.+) has more decimal places than (?P<currency>[A-Z]{3}) allows \((?P<places>\d+)\)",
     "refusal.decimals"),
    (r"(?P<value>.+) exceeds the open balance (?P<balance>.+)", "refusal.above_balance"),
    (r"(?P<value>\S+) is in the past", "refusal.past"),
    (r"(?P<value>\S+) is in the future", "refusal.future"),
    (r"(?P<value>\S+) is beyond the longest promise allowed \((?P<latest>\S+)\)", "refusal.promise_too_far"),
)]


def refusal_sentence(message: str, lang: str) -> str:
    """A domain refusal's sentence in the reader's language, when the catalogue words it."""
    for pattern, key in _REFUSALS:
        found = pattern.fullmatch(message)
        if found:
            return translator(lang)(key, **found.groupdict())
    return message


def refusal_text(error: DomainError, lang: str) -> str:
    """A refused command's message for a person: the input it names by the form's words
    ('Amount: must be positive', ``field.amount``), or the sentence alone when the field is no
    input a person typed ('as' is who acts, 'case' the case's state: 'four eyes: ...'). Never
    the internal field name that ``str(error)`` starts with (the API's and the CLI's one line).
    The sentence is the reader's language where the catalogue has it (``_REFUSALS``)."""
    key = f"field.{error.field}"
    message = refusal_sentence(error.message, lang)
    if error.field and catalogue.known(key):
        t = translator(lang)
        return t("error.field", field=t(key), message=message)
    return message


def reason_text(code: str, lang: str) -> str:
    """A reason code in words when the catalogue knows it (``ladder_exhausted``), else as given."""
    key = f"reason.{code}"
    return translator(lang)(key) if catalogue.known(key) else code


def role_name(role: str | None, lang: str) -> str:
    return translator(lang)(f"role.{role or 'system'}")


# -- what a case waits for, and its next action ---------------------------------------------------------
# The agenda (domain/agenda.py) words them in English for the read models and the CLI; the console
# shows them in the reader's language. Each pattern names its catalogue key; a text no pattern
# knows is shown as it is.
_AGENDA = [(re.compile(pattern), key) for pattern, key in (
    (r"send reminder (?P<n>\d+)", "agenda.send_reminder"),
    (r"escalate to supervisor", "agenda.escalate"),
    (r"(?P<role>supervisor|finance_manager) decision due", "agenda.decision_due"),
    (r"(?P<role>supervisor|finance_manager) dispute decision due", "agenda.dispute_decision_due"),
    (r"(?P<kind>[a-z-]+) approval due", "agenda.approval_due"),
    (r"promise to pay due", "agenda.promise_due"),
    (r"instalment (?P<n>\d+) due", "agenda.instalment_due"),
    (r"dispute resolution due", "agenda.dispute_due"),
    (r"plan offer expires", "agenda.offer_expires"),
    (r"paused \((?P<reason>.*)\): dunning resumes", "agenda.pause_ends"),
    (r"notify the insurer", "agenda.notify_insurer"),
    (r"file the insurance claim", "agenda.file_claim"),
    (r"report the default to (?P<factor>.+)", "agenda.report_default"),
    (r"closed \((?P<status>\w+)\)", "agenda.closed"),
    (r"with factor (?P<factor>.+)", "agenda.with_factor"),
    (r"paused until (?P<until>\S+) \((?P<reason>.*)\)", "agenda.paused_until"),
    (r"(?P<kind>[a-z-]+) approval by a (?P<role>\w+)", "agenda.approval_by"),
    (r"(?P<role>supervisor|finance_manager) decision", "agenda.decision"),
    (r"with agency", "agenda.with_agency"),
    (r"with legal", "agenda.with_legal"),
    (r"customer to accept the plan", "agenda.customer_accepts"),
    (r"collector", "role.collector"),
)]


def agenda_text(text: str | None, lang: str) -> str | None:
    """A case's next action or what it waits for, in the reader's language."""
    if not text:
        return text
    t = translator(lang)
    for pattern, key in _AGENDA:
        found = pattern.fullmatch(text)
        if found:
            values = found.groupdict()
            if "role" in values:
                values["role"] = role_name(values["role"], lang)
            if "kind" in values:
                kind = f"kind.{values['kind'].replace('-', '_')}"
                values["kind"] = t(kind) if catalogue.known(kind) else values["kind"]
            if "status" in values:
                values["status"] = t(f"status.{values['status']}")
            if "reason" in values:
                values["reason"] = reason_text(values["reason"], lang)
            return t(key, **values)
    return text


# -- the timeline -----------------------------------------------------------------------------------


def _value(key: str, value: Any, lang: str) -> str:
    t = translator(lang)
    if isinstance(value, dict) and {"amount", "currency"} <= value.keys():
        return money(value["amount"], value["currency"], lang)
    if value is None:
        return "—"
    if key in ("tier", "from_tier", "to_tier"):
        return role_name(value, lang)
    if key == "decision":
        return t(f"decision.{value}")
    if key == "outcome":
        return t(f"outcome.{value}") if catalogue.known(f"outcome.{value}") else t(f"status.{value}")
    if key == "step":
        return t(f"step.{value}") if catalogue.known(f"step.{value}") else str(value)
    if isinstance(value, str) and (key.endswith("_at") or key == "resolve_by"):
        try:
            return when(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


_WHY_FIELDS = ("note", "reason", "error", "reference")


def describe_event(event: dict, lang: str) -> dict:
    """One timeline row in plain words: who, when, what, why.

    ``event`` is a record as ``CaseService.show`` returns it. Event types this
    module does not know yet are still shown, by name and details."""
    t = translator(lang)
    kind = event["type"]
    data = event.get("data") or {}
    values = {k: _value(k, v, lang) for k, v in data.items()}
    key = f"event.{kind}"
    if kind == "PaymentReceived" and _positive(data.get("excess")):
        key += ".excess"
    elif kind == "InterestCharged" and data.get("compensation"):
        key += ".compensation"
    elif kind == "DisputeResolved" and data.get("credit"):
        key += ".credit"
    elif kind.startswith("Reduction") and data.get("kind") in ("credit", "cancellation", "waiver"):
        key += f".{data['kind']}"
    elif kind == "PaymentPlanProposed":
        values["count"] = str(len(data.get("instalments") or []))
        if data.get("requires_approval"):
            key += ".approval"
    if catalogue.known(key):
        what = t(key, **values)
    else:
        details = ", ".join(f"{k}={v}" for k, v in values.items() if v not in ("", "—"))
        what = f"{kind}: {details}" if details else kind
    why = ""
    for name in _WHY_FIELDS:
        raw = data.get(name)
        if raw:
            why = reason_text(str(raw), lang)
            break
    actor = event.get("actor") or "system"
    return {
        "when": when(event.get("occurred_at")),
        "who": role_name(None, lang) if actor == "system" else actor,
        "what": what,
        "why": why,
        "type": kind,
        "version": event.get("version"),
    }


def _positive(value: Any) -> bool:
    if isinstance(value, dict):
        try:
            return Decimal(str(value.get("amount", "0"))) > 0
        except ArithmeticError:
            return False
    return False
