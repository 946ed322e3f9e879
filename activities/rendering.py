"""Notice rendering: one Jinja2 template per ladder step, its words from the customer's language's
message catalogue (activities/catalogue.py), dates and money in Babel's formats for that language.

Customer data is escaped in HTML (autoescape), and nothing from a customer can
reach a mail header with a line break in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_timedelta
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from markupsafe import Markup, escape

from activities import catalogue
from activities.contracts import NoticeRequest
from activities.mime import Mail, address_header, boundaries, flatten
from domain.money import Money

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "notices"
FALLBACK_LANGUAGE = "en"
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def header_safe(value: str) -> str:
    """Collapse every line break so a value can never start a new header, and defuse RFC 2047
    encoded words (``=?utf-8?q?...=0D=0A...?=``): Python's email package decodes them when it
    folds a header, so an encoded CR LF would start a new header (Bcc:, Reply-To:...) on the wire."""
    return _LINE_BREAKS.sub(" ", value).replace("=?", "= ?").strip()


# The HTML notice's typeface per language (the default for the rest).
FONTS = {
    "zh-CN": "'Microsoft YaHei', 'PingFang SC', sans-serif",
    "ja": "'Hiragino Kaku Gothic ProN', 'Yu Gothic', Meiryo, sans-serif",
}
DEFAULT_FONT = "Arial, sans-serif"
# Languages whose sentences run into a link with no space (after a full-width colon).
NO_SPACE_BEFORE_LINK = ("zh-CN", "ja")


def lines(text: str) -> Markup:
    """A filter for HTML: the text escaped, its line breaks as ``<br>``."""
    return Markup("<br>").join(escape(line) for line in str(text).split("\n"))


def language_context(language: str) -> dict:
    """What every notice and letter template gets for its language: ``t`` (the catalogue)."""
    return {
        "t": catalogue.translator(language),
        "html_lang": language,
        "font": Markup(FONTS.get(language, DEFAULT_FONT)),
        "gap": "" if language in NO_SPACE_BEFORE_LINK else " ",
    }


@lru_cache(maxsize=64)  # Locale.parse was a tenth of rendering a notice (five calls each)
def babel_locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(FALLBACK_LANGUAGE)


def format_money(amount: Money, language: str) -> str:
    return format_currency(amount.amount, amount.currency, locale=babel_locale(language))


def credit_stated(credit: Sequence[Money], language: str) -> str | None:
    """The customer's unapplied credit as a notice or its letter states it: the positive amounts per
    currency, joined (None: no credit to state)."""
    return " + ".join(format_money(c, language) for c in credit if c.is_positive) or None


# French writes the first of the month as an ordinal: « le 1er octobre »
FIRST_OF_MONTH = {"fr": "d'er' MMMM y"}
# What notices recorded before the policy's own wait was stated gave the customer.
STATED_BEFORE = timedelta(days=7)


def format_day(day: date, language: str) -> str:
    pattern = FIRST_OF_MONTH.get(language) if day.day == 1 else None
    return format_date(day, format=pattern or "long", locale=babel_locale(language))


def format_period(period: timedelta | None, language: str) -> str:
    """'7 days', '4 Wochen': the time a notice gives the customer (days up to two weeks)."""
    return format_timedelta(period or STATED_BEFORE, threshold=2.5, format="long", locale=babel_locale(language))


def factor_instructions(n: NoticeRequest) -> dict | None:
    """The notice of assignment: whom to pay instead of us (docs/FINANCING.md)."""
    f = n.factor
    return None if f is None else {"name": f.account_name, "iban": f.iban, "bic": f.bic}


def _discount(n: NoticeRequest, language: str) -> dict | None:
    """The early-payment discount offer: the amount to pay and the last day (with the time when the
    offer ends within a day: a policy with a short ``within``)."""
    d = n.discount
    if d is None:
        return None
    last = d.pay_by - timedelta(microseconds=1)
    by = format_day(last.date(), language)
    if d.pay_by.time() != time(0):
        by += f" {d.pay_by:%H:%M:%S} UTC"
    return {"pay": format_money(d.pay, language), "discount": format_money(d.discount, language),
            "percent": f"{d.percent.normalize():f}", "by": by}


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    language: str


class NoticeRenderer:
    def __init__(self, directory: Path = TEMPLATES, sender_name: str = "Accounts Receivable",
                 link_for: Callable[[str], str] | None = None) -> None:
        """``link_for(customer_id)``: the customer's self-service link (app/links.py) that every
        notice carries; None (template previews, tests of the text alone): no link."""
        self.sender_name = sender_name
        self.link_for = link_for
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["lines"] = lines

    def languages(self) -> list[str]:
        return sorted(catalogue.LANGUAGES)

    def _language(self, wanted: str) -> str:
        return catalogue.supported(wanted)

    def render(self, notices: Sequence[NoticeRequest], credit: Sequence[Money] = ()) -> RenderedNotice:
        """One message for one or more notices of the same customer. ``credit``: the customer's
        unapplied credit per currency when the notice is sent (the positive ones are stated)."""
        first = notices[0]
        language = self._language(first.customer.language)
        step = max(notices, key=lambda n: n.level).step
        items = [
            {
                "invoice_id": n.invoice_id,
                "issue_date": format_day(n.issue_date, language),
                "due_date": format_day(n.due_date, language),
                "amount_due": format_money(n.amount_due, language),
                "fee": format_money(n.fee, language) if n.fee else None,
                "interest": format_money(n.interest.accrued, language) if n.interest else None,
                "interest_to": format_day(n.interest.accrued_to, language) if n.interest else None,
                "compensation": (format_money(n.interest.compensation_stated, language)
                                 if n.interest and n.interest.compensation_stated else None),
                "order_id": n.advance.order_id if n.advance else None,
                "reference": n.advance.reference if n.advance else None,
                "factor": factor_instructions(n),
                "discount": _discount(n, language),
            }
            for n in notices
        ]
        totals: dict[str, Money] = {}
        for n in notices:
            totals[n.amount_due.currency] = totals[n.amount_due.currency] + n.amount_due if n.amount_due.currency in totals else n.amount_due
        context = {
            **language_context(language),
            "customer_name": first.customer.name,
            "items": items,
            "total_due": " + ".join(format_money(t, language) for t in totals.values()),
            "sender_name": self.sender_name,
            "self_service_url": self.link_for(first.customer.customer_id) if self.link_for else None,
            "final": any(n.final for n in notices),
            "within": format_period(max(notices, key=lambda n: n.level).respond_within, language),
            "credit": credit_stated(credit, language),
        }
        if first.advance is not None:  # a deposit due before shipment: no invoice was issued
            step = "deposit"
        text_template = self._template(language, step, "txt")
        html_template = self._template(language, step, "html")
        subject_context = text_template.new_context(context)
        subject = "".join(text_template.blocks["subject"](subject_context))
        return RenderedNotice(
            subject=header_safe(subject),
            text=text_template.render(context),
            html=html_template.render(context),
            language=language,
        )

    def _template(self, language: str, step: str, kind: str):
        try:
            return self.env.get_template(f"{step}.{kind}.j2")
        except TemplateNotFound:
            return self.env.get_template(f"final.{kind}.j2" if "final" in step else f"firm.{kind}.j2")


@lru_cache(maxsize=32)
def sender_parts(sender: str) -> tuple[str, str]:
    """The name and address of ``sender`` ("Name <address>"), parsed once per sender."""
    name, address = parseaddr(sender)
    if not address:
        raise ValueError(f"no address in the sender {sender!r}")
    return name, address


def build_message(
    rendered: RenderedNotice,
    *,
    message_id: str,
    sender: str,
    recipient_name: str,
    recipient_email: str,
    sent_at: datetime,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> Mail:
    """The notice as it goes out: text and HTML alternatives (then PDF letters, in a multipart/mixed),
    built with the standard library's ``email.mime`` classes and flattened once (activities/mime.py)
    for ``Mail.send``."""
    name, address = header_safe(recipient_name), header_safe(recipient_email)
    sender_name, sender_address = sender_parts(header_safe(sender))
    utf8 = not (address.isascii() and sender_address.isascii())
    alternative, mixed = boundaries(message_id)
    message = MIMEMultipart("alternative", boundary=alternative)
    for body, subtype in ((rendered.text, "plain"), (rendered.html, "html")):
        part = MIMEText(body, subtype, "utf-8")  # base64
        del part["MIME-Version"]  # once, in the message's header
        message.attach(part)
    if attachments:  # PDF letters (activities/letters.py)
        message, alternatives = MIMEMultipart("mixed", boundary=mixed), message
        del alternatives["MIME-Version"]
        message.attach(alternatives)
        for filename, data in attachments:
            letter = MIMEApplication(data, "pdf")  # base64
            del letter["MIME-Version"]
            letter.add_header("Content-Disposition", "attachment", filename=filename)  # RFC 2231 if not ASCII
            message.attach(letter)
    message["Message-ID"] = header_safe(message_id)
    message["Date"] = format_datetime(sent_at)
    message["From"] = address_header("From", sender_name, sender_address, utf8)
    message["To"] = address_header("To", name, address, utf8)
    message["Subject"] = rendered.subject  # compat32: encoded words if not ASCII
    message["Content-Language"] = header_safe(rendered.language)
    return Mail(sender=sender_address, recipients=(address,), data=flatten(message, utf8), utf8=utf8)
