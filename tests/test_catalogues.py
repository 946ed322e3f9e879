"""The message catalogues (translations/*/LC_MESSAGES/messages.po, docs/LANGUAGES.md): complete in
every language, placeholders intact, compilable with pybabel, and read back by the code."""

from __future__ import annotations

import gettext
import string
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from activities import catalogue

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("en", "zh-CN", "de", "fr", "es", "ja")
TRANSLATED = [language for language in SHIPPED if language != "en"]


def read(language: str):
    with catalogue.po_path(language).open("rb") as handle:
        return read_po(handle)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture(scope="module")
def english() -> dict[str, str]:
    return {str(m.id): str(m.string) for m in read("en") if m.id}


def test_the_six_languages_ship():
    assert catalogue.LANGUAGES == SHIPPED


def test_every_key_the_code_and_templates_use_is_in_the_english_catalogue(english):
    """What ``make messages`` extracts (t("...") in Python and Jinja2, babel.cfg) has English words."""
    method_map = [("**.py", "python"), ("**.j2", "jinja2")]
    used = set()
    for folder in ("api", "app", "activities", "cli", "templates"):
        for _filename, _line, key, _comments, _context in extract_from_dir(ROOT / folder, method_map, keywords={"t": None}):
            used.add(key)
    assert len(used) > 200, len(used)  # the console, the customer page, notices and letters (others by prefix)
    missing = sorted(used - english.keys())
    assert not missing, f"used but not in translations/en/LC_MESSAGES/messages.po: {missing}"
    assert all(english[key].strip() for key in english), [k for k, v in english.items() if not v.strip()]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_key_is_translated_with_the_same_placeholders(english, language):
    catalog = read(language)
    entries = {str(m.id): m for m in catalog if m.id}
    assert sorted(english.keys() - entries.keys()) == [], f"{language}: keys missing"
    assert sorted(entries.keys() - english.keys()) == [], f"{language}: keys not in English (obsolete?)"
    empty = [key for key, m in entries.items() if not str(m.string).strip()]
    assert empty == [], f"{language}: not translated: {empty}"
    fuzzy = [key for key, m in entries.items() if m.fuzzy]
    assert fuzzy == [], f"{language}: fuzzy (to be checked by a translator): {fuzzy}"
    wrong = {key: (sorted(placeholders(english[key])), sorted(placeholders(str(m.string))))
             for key, m in entries.items() if placeholders(english[key]) != placeholders(str(m.string))}
    assert wrong == {}, f"{language}: placeholders differ from English: {wrong}"


def test_the_check_fails_for_a_missing_key_and_a_broken_placeholder(tmp_path, english):
    """The checks above are not vacuous: a catalogue lacking a key or with a renamed placeholder fails."""
    from babel.messages.catalog import Catalog

    broken = Catalog(locale="de")
    for key, text in english.items():
        if key == "nav.worklist":
            continue
        broken.add(key, "Zahlung über {betrag}" if key == "event.PaymentReceived" else "x")
    entries = {str(m.id): m for m in broken if m.id}
    assert english.keys() - entries.keys() == {"nav.worklist"}
    assert placeholders(english["event.PaymentReceived"]) != placeholders(str(entries["event.PaymentReceived"].string))


def test_pybabel_compiles_every_catalogue_and_gettext_reads_it(tmp_path):
    import shutil

    shutil.copytree(catalogue.TRANSLATIONS, tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    compiled = subprocess.run([str(Path(sys.executable).with_name("pybabel")), "compile", "--domain", "messages",
                               "--directory", str(tmp_path / "translations"), "--statistics"],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    statistics = [line for line in (compiled.stdout + compiled.stderr).splitlines() if "translated in" in line]
    assert len(statistics) == len(SHIPPED) and all("(100%)" in line for line in statistics), statistics
    for language in SHIPPED:
        mo = tmp_path / "translations" / catalogue.directory_name(language) / "LC_MESSAGES" / "messages.mo"
        with mo.open("rb") as handle:
            translated = gettext.GNUTranslations(handle)
        expected = {str(m.id): str(m.string) for m in read(language) if m.id}
        assert all(translated.gettext(key) == text for key, text in expected.items()), language


def test_the_code_reads_the_catalogue_with_english_as_the_fallback(tmp_path):
    de = catalogue.translator("de")
    assert de("nav.worklist") == "Arbeitsliste"
    assert de("event.PaymentReceived", amount="5,00 €") == "Zahlung über 5,00 € eingegangen"
    assert catalogue.translator("ja")("customer.greeting", name="Acme") == "Acme 様"
    assert catalogue.translator("zh-CN")("nav.worklist") == "工作清单"
    assert catalogue.translator("pt-BR")("nav.worklist") == "Worklist"  # not shipped: English
    assert catalogue.translator("de-AT")("nav.worklist") == "Arbeitsliste"  # the base language
    assert de("no.such.key") == "no.such.key"


def test_the_console_languages_and_their_formats():
    from api.i18n import LANGUAGES, money, pick_language, translator

    assert LANGUAGES == ("en", "zh", "de", "fr", "es", "ja")
    assert pick_language(None, "fr-CH,fr;q=0.9,en;q=0.5") == "fr"
    assert pick_language("ja", "de") == "ja"
    assert translator("es")("nav.approvals") == "Aprobaciones"
    assert money("1234.56", "EUR", "de") == "1.234,56\u00a0€"
    assert money("1234.56", "EUR", "fr") == "1\u202f234,56\u00a0€"
    assert money("123456", "JPY", "ja") == "￥123,456"
    assert money("1234.56", "USD", "en") == "$1,234.56"


def test_notice_dates_and_money_follow_the_language():
    from activities.rendering import format_day, format_money
    from domain.money import Money

    assert format_day(date(2026, 3, 1), "de") == "1. März 2026"
    assert format_day(date(2026, 3, 1), "ja") == "2026年3月1日"
    assert format_money(Money.of(Decimal("40.00"), "EUR"), "es") == "40,00\u00a0€"
