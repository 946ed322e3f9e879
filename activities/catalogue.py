"""The message catalogues: gettext ``.po`` files under ``translations/``, one per language.

Every text a customer or a console user reads (notices, letters, the self-service page, the
console) is looked up here by a stable key (``notice.final.request``, ``nav.worklist``), and
filled in with ``str.format`` placeholders (``{invoice}``). The English catalogue is the source
wording; the other languages translate it (docs/LANGUAGES.md). A key missing in a language
falls back to English, and a key missing in English shows as itself (the catalogue test
fails on both).

``make install`` compiles the ``.po`` files to ``.mo`` (``pybabel compile``); a ``.mo`` that is
missing or older than its ``.po`` is compiled in memory from the ``.po`` on first use, so a
fresh checkout works before the compile step has run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
# The order languages are offered in; a catalogue directory not listed here comes after them.
ORDER = ("en", "zh-CN", "de", "fr", "es", "ja")


def directory_name(language: str) -> str:
    """``zh-CN`` -> ``zh_CN``: the catalogue directory (and Babel locale) of a language code."""
    return language.replace("-", "_")


def po_path(language: str) -> Path:
    return TRANSLATIONS / directory_name(language) / "LC_MESSAGES" / f"{DOMAIN}.po"


def _shipped() -> tuple[str, ...]:
    found = {p.parents[1].name.replace("_", "-") for p in TRANSLATIONS.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return tuple([lang for lang in ORDER if lang in found] + sorted(found - set(ORDER)))


# The languages that ship (a catalogue each), as customers' ``language`` codes (BCP 47).
LANGUAGES = _shipped()


def supported(wanted: str | None) -> str:
    """The shipped language for a customer's code: exact (``de``), else by its base language
    (``de-AT`` -> ``de``, ``zh`` -> ``zh-CN``), else English."""
    code = (wanted or "").strip().replace("_", "-")
    for language in LANGUAGES:
        if language.lower() == code.lower():
            return language
    base = code.split("-")[0].lower()
    return next((lang for lang in LANGUAGES if lang.split("-")[0].lower() == base), SOURCE_LANGUAGE)


@cache
def translations(language: str) -> NullTranslations:
    po = po_path(language)
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    from io import BytesIO
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=directory_name(language))
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@cache
def messages(language: str) -> dict[str, str]:
    """Every key of a language's catalogue with its text (empty translations left out)."""
    with po_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=directory_name(language))
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def translator(language: str) -> Callable[..., str]:
    """``t(key, **values)``: the text of ``key`` in ``language`` (English when missing), with
    ``{placeholders}`` filled in from ``values``."""
    own = translations(supported(language))
    source = translations(SOURCE_LANGUAGE)

    def t(key: str, **values: Any) -> str:
        text = own.gettext(key)
        if text == key:
            text = source.gettext(key)
        return text.format_map(_Lenient(values)) if values else text

    return t


def known(key: str) -> bool:
    return key in messages(SOURCE_LANGUAGE)


def template(used_pot: Path, output: Path) -> list[str]:
    """Write the catalogue template (``messages.pot``) from the English catalogue: every key, its
    English wording as a comment for the translator, no translation. Returns the keys the code
    uses (``used_pot``, from ``pybabel extract``) that the English catalogue lacks."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    with used_pot.open("rb") as handle:
        used = {str(m.id) for m in read_po(handle) if m.id}
    english = messages(SOURCE_LANGUAGE)
    pot = Catalog(project="collections-engine", fuzzy=False)
    for key, text in english.items():
        pot.add(key, "", auto_comments=[f"en: {text}"])
    with output.open("wb") as handle:
        write_po(handle, pot, width=0, no_location=True)
    return sorted(used - english.keys())


if __name__ == "__main__":  # make messages
    import sys

    if sys.argv[1:2] != ["template"] or len(sys.argv) != 4:
        sys.exit("usage: python -m activities.catalogue template USED.pot MESSAGES.pot")
    missing = template(Path(sys.argv[2]), Path(sys.argv[3]))
    if missing:
        sys.exit("keys used in the code but missing in translations/en/LC_MESSAGES/messages.po: "
                 + ", ".join(missing))
