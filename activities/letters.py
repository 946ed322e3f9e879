"""Letters as PDF (the final notice), rendered from HTML with WeasyPrint.

A letter is a pure function of its notice request and the customer's credit the notice stated:
the text comes from them, the date and the PDF's creation date from ``issued_on``, so rendering
the same again gives the same bytes (``case letter``). The notice's ``ReminderSent`` keeps both
(the credit under ``credit`` in its ``letter``, when there was any) and the SHA-256 of the bytes
that were attached. The same WeasyPrint version and templates are needed to reproduce
a letter byte for byte; a different output is detected by its hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from activities.contracts import NoticeRequest
from domain.money import Money
from activities import catalogue
from activities.rendering import (
    credit_stated,
    factor_instructions,
    format_day,
    format_money,
    format_period,
    language_context,
    lines,
)

LETTERS = Path(__file__).resolve().parents[1] / "templates" / "letters"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def letter_name(request: NoticeRequest) -> str:
    return f"final-notice-{request.invoice_id}-{request.seq}.pdf"


class LetterRenderer:
    def __init__(self, directory: Path = LETTERS, sender_name: str = "Accounts Receivable") -> None:
        self.sender_name = sender_name
        self.env = Environment(loader=FileSystemLoader(str(directory)), autoescape=True, undefined=StrictUndefined)
        self.env.filters["lines"] = lines

    def _language(self, wanted: str) -> str:
        return catalogue.supported(wanted)

    def render(self, name: str, **context) -> str:
        """Template ``name`` (``final.html.j2``, ``statement.html.j2``) in the words of
        ``context["language"]``."""
        return self.env.get_template(name).render({**language_context(context["language"]), **context})

    def html(self, request: NoticeRequest, credit: Sequence[Money] = ()) -> str:
        """``credit``: the customer's unapplied credit the notice stated (its ReminderSent's letter keeps it)."""
        if request.issued_on is None:
            raise ValueError("a letter needs the notice's issue date (issued_on)")
        language = self._language(request.customer.language)
        interest = request.interest
        context = {
            "language": language,
            "sender_name": self.sender_name,
            "created": f"{request.issued_on.isoformat()}T00:00:00Z",
            "letter_date": format_day(request.issued_on, language),
            "customer_name": request.customer.name,
            "invoice_id": request.invoice_id,
            "issue_date": format_day(request.issue_date, language),
            "due_date": format_day(request.due_date, language),
            "amount_due": format_money(request.amount_due, language),
            "fee": format_money(request.fee, language) if request.fee else None,
            "interest": format_money(interest.accrued, language) if interest else None,
            "interest_to": format_day(interest.accrued_to, language) if interest else None,
            "compensation": (format_money(interest.compensation_stated, language)
                             if interest and interest.compensation_stated else None),
            "factor": factor_instructions(request),  # assigned to a factor: pay only to it
            "within": format_period(request.respond_within, language),
            "credit": credit_stated(credit, language),
        }
        return self.render("final.html.j2", **context)

    def pdf(self, request: NoticeRequest, credit: Sequence[Money] = ()) -> bytes:
        from weasyprint import HTML  # heavy: imported when a letter is rendered

        return HTML(string=self.html(request, credit), base_url=str(LETTERS)).write_pdf()
