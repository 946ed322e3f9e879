"""Invoice CSV import: validate every row (with its line number) before writing any."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from babel import Locale, UnknownLocaleError

from domain.calendar import default_timezone, known_country
from domain.commands import InvoiceFacts
from domain.errors import DomainError
from domain.events import Customer
from domain.inputs import (
    CSV_MAX_FILE_BYTES,
    check_email,
    check_file_size,
    check_identifier,
    check_issue_and_due,
    csv_error,
    csv_reader,
    missing_columns,
    parse_date,
)
from domain.money import Money, payable_currency
from domain.policy import InputPolicy, RiskGrade

INVOICE_COLUMNS = (
    "invoice_id", "customer_id", "customer_name", "customer_email", "country", "language",
    "currency", "amount", "issue_date", "due_date", "risk_grade",
)
MAX_FILE_BYTES = CSV_MAX_FILE_BYTES


class RowError(DomainError):
    """A bad row: the message starts with its line number (or, for a bank statement's entry, where
    it is), then the field ("line 3: amount: ...")."""

    def __init__(self, line: int | str, error: DomainError | str, field: str | None = None) -> None:
        self.line = line
        if isinstance(error, DomainError):
            super().__init__(error.message, error.field)
        else:
            super().__init__(error, field)

    def __str__(self) -> str:
        where = f"line {self.line}" if isinstance(self.line, int) else self.line
        return f"{where}: {super().__str__()}"


def read_text(path: Path) -> str:
    if not path.is_file():
        raise DomainError(f"{path} does not exist or is not a file", "file")
    check_file_size(path.stat().st_size, str(path))
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(
            f"{path.name} is not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8",
            "file",
        ) from None


@dataclass(frozen=True)
class LedgerFormat:
    """How another ledger's columns map onto ours (see docs/IMPORT.md)."""

    name: str
    columns: tuple[str, ...]
    to_standard: Callable[[dict[str, str], ImportDefaults], dict[str, str]]


@dataclass(frozen=True)
class ImportDefaults:
    """Values for fields a ledger does not carry."""

    currency: str = "USD"
    country: str = "US"
    language: str = "en"
    risk_grade: str = "B"


def _day_first(value: str, field: str) -> str:
    try:
        return datetime.strptime(value, "%d/%m/%Y").date().isoformat()
    except ValueError:
        raise DomainError(f"{value[:30]!r} is not a day-first date (DD/MM/YYYY)", field) from None


def _ibm_ar(r: dict[str, str], d: ImportDefaults) -> dict[str, str]:
    customer = r["customerID"]
    return {
        "invoice_id": r["invoiceNumber"],
        "customer_id": customer,
        "customer_name": f"Customer {customer}",
        # The ledger has no e-mail addresses: .invalid can never be delivered (RFC 2606).
        "customer_email": f"ar.{customer.lower()}@customers.invalid",
        "country": d.country,
        "language": d.language,
        "currency": d.currency,
        "amount": r["InvoiceAmount"],
        "issue_date": _day_first(r["InvoiceDate"], "InvoiceDate"),
        "due_date": _day_first(r["DueDate"], "DueDate"),
        "risk_grade": d.risk_grade,
    }


FORMATS = {
    "standard": LedgerFormat("standard", INVOICE_COLUMNS, lambda r, d: r),
    "ibm-ar": LedgerFormat(
        "ibm-ar", ("customerID", "invoiceNumber", "InvoiceDate", "DueDate", "InvoiceAmount"), _ibm_ar
    ),
}


def csv_records(reader: csv.DictReader):
    """The reader's records; a malformed or oversized field is a DomainError naming its line."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise csv_error(error, reader.line_num) from None
        yield record


def csv_header(reader: csv.DictReader) -> list[str]:
    try:
        return [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as error:
        raise csv_error(error, 1) from None


@dataclass(frozen=True)
class ExportRow:
    """One invoice row of an ERP export (docs/IMPORT.md): the invoice as the ERP has it now."""

    line: int
    customer: Customer
    grade: str
    facts: InvoiceFacts
    cancelled: bool = False
    paid: Money | None = None  # booked by the ERP as paid outside the engine (None: column empty or absent)

    def as_tuple(self) -> tuple[Customer, str, InvoiceFacts]:
        return self.customer, self.grade, self.facts


@dataclass(frozen=True)
class CreditNoteRow:
    """A credit note row: its own document id, the invoice it references."""

    line: int
    document_id: str
    invoice_id: str
    customer_id: str
    amount: Money


@dataclass(frozen=True)
class Export:
    invoices: list[ExportRow]
    credit_notes: list[CreditNoteRow]


DOCUMENT_TYPES = ("invoice", "credit_note")
STATUSES = ("open", "cancelled")


def parse_invoices(
    text: str, format: str = "standard", defaults: ImportDefaults = ImportDefaults(),
    today: date | None = None, rules: InputPolicy | None = None,
) -> list[tuple[Customer, str, InvoiceFacts]]:
    """The invoice rows (``rules``: the policy's input horizons; ``today``: what they count from)."""
    return [row.as_tuple() for row in parse_export(text, format, defaults, today, rules).invoices]


def parse_export(
    text: str, format: str = "standard", defaults: ImportDefaults = ImportDefaults(),
    today: date | None = None, rules: InputPolicy | None = None,
) -> Export:
    """Every row checked, invoices and credit notes."""
    if format not in FORMATS:
        raise DomainError(f"{format!r} is not a known format ({', '.join(FORMATS)})", "format")
    layout = FORMATS[format]
    today = today or datetime.now(timezone.utc).date()
    rules = rules or InputPolicy()
    reader = csv_reader(text)
    header = csv_header(reader)
    missing = [c for c in layout.columns if c not in header]
    if missing:
        looks_like = [f.name for f in FORMATS.values() if f.name != format and set(f.columns) <= set(header)]
        hint = f"; the header looks like the {looks_like[0]} layout: pass --format {looks_like[0]}" if looks_like else ""
        raise missing_columns(missing, header, hint)
    reader.fieldnames = header
    rows: list[ExportRow] = []
    notes: list[CreditNoteRow] = []
    seen: dict[str, int] = {}
    for record in csv_records(reader):
        line = reader.line_num
        if None in record:
            raise RowError(line, "more values than columns")
        try:
            raw = {k: (v or "").strip() for k, v in record.items()}
            standard = layout.to_standard(raw, defaults)
            customer, grade, facts = parse_invoice_row(standard, today, rules)
            kind = _choice(raw.get("document_type", ""), "document_type", DOCUMENT_TYPES)
            if kind == "credit_note":
                notes.append(CreditNoteRow(line, facts.invoice_id, _reference(raw.get("references", "")),
                                           customer.customer_id, facts.amount))
            else:
                if raw.get("references"):
                    raise DomainError("only a credit note references another document", "references")
                cancelled = _choice(raw.get("status", ""), "status", STATUSES) == "cancelled"
                rows.append(ExportRow(line, customer, grade, facts, cancelled, _paid(raw.get("paid", ""), facts)))
        except DomainError as error:  # names the field, and the line in the message
            raise RowError(line, error) from None
        document_id = facts.invoice_id
        if document_id in seen:
            what = "credit note" if raw.get("document_type", "").lower() == "credit_note" else "invoice"
            raise RowError(line, f"{what} {document_id} already appears on line {seen[document_id]}")
        seen[document_id] = line
    invoice_lines = {r.facts.invoice_id: r for r in rows}
    for note in notes:
        invoice = invoice_lines.get(note.invoice_id)
        if invoice is not None:
            check_credit_note(note, invoice.facts)
    if not rows and not notes:
        raise DomainError("the file has a header but no invoices", "file")
    return Export(rows, notes)


def check_credit_note(note: CreditNoteRow, invoice: InvoiceFacts) -> None:
    """A credit note is for its invoice's customer and in its currency."""
    if note.customer_id != invoice.customer.customer_id:
        raise RowError(note.line, f"credit note {note.document_id} is for customer {note.customer_id}, its invoice "
                                  f"{invoice.invoice_id} for {invoice.customer.customer_id}", "customer_id")
    if note.amount.currency != invoice.amount.currency:
        raise RowError(note.line, f"credit note {note.document_id} is in {note.amount.currency}, its invoice "
                                  f"{invoice.invoice_id} in {invoice.amount.currency}", "currency")


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    value = value.lower() or allowed[0]
    if value not in allowed:
        raise DomainError(f"{value[:30]!r} is not one of {', '.join(allowed)}", field)
    return value


def _reference(value: str) -> str:
    if not value:
        raise DomainError("a credit note names the invoice it credits", "references")
    return check_identifier(value, "references")


def _paid(value: str, facts: InvoiceFacts) -> Money | None:
    if not value:
        return None
    paid = Money.of(value, facts.amount.currency, "paid")
    if paid.amount < 0:
        raise DomainError(f"must not be negative, got {paid.amount}", "paid")
    if paid > facts.amount:
        raise DomainError(f"{paid.amount} is more than the invoice amount {facts.amount.amount}", "paid")
    return paid


def parse_invoice_row(r: dict[str, str], today: date | None = None,
                      rules: InputPolicy | None = None) -> tuple[Customer, str, InvoiceFacts]:
    invoice_id = check_identifier(r["invoice_id"], "invoice_id")
    customer_id = check_identifier(r["customer_id"], "customer_id")
    name = _text(r["customer_name"], "customer_name", 300)
    email = check_email(r["customer_email"], "customer_email")
    country = r["country"].upper()
    if not re.fullmatch(r"[A-Z]{2}", country) or not known_country(country):
        raise DomainError(f"{r['country'][:20]!r} is not an ISO 3166 country code", "country")
    language = _language(r["language"] or "en")
    amount = Money.of(r["amount"], payable_currency(r["currency"]), "amount")
    if not amount.is_positive:
        raise DomainError(f"must be positive, got {amount.amount}", "amount")
    issue = _date(r["issue_date"], "issue_date")
    due = _date(r["due_date"], "due_date")
    check_issue_and_due(issue, due, today or datetime.now(timezone.utc).date(), rules or InputPolicy())
    grade = (r.get("risk_grade") or "B").upper()
    if grade not in RiskGrade.__members__:
        raise DomainError(f"{grade[:10]!r} is not a risk grade (A, B, C or D)", "risk_grade")
    customer = Customer(
        customer_id=customer_id, name=name, email=email, country=country, language=language,
        timezone=r.get("timezone") or default_timezone(country),
    )
    facts = InvoiceFacts(
        invoice_id=invoice_id, customer=customer, risk_grade=RiskGrade(grade), amount=amount,
        paid=Money.zero(amount.currency), issue_date=issue, due_date=due,
    )
    return customer, grade, facts


def _text(value: str, field: str, limit: int) -> str:
    if not value:
        raise DomainError("must not be empty", field)
    if len(value) > limit:
        raise DomainError(f"is longer than {limit} characters", field)
    if any(ord(c) < 32 for c in value):
        raise DomainError("must not contain control characters", field)
    return value


@lru_cache(maxsize=256)  # a ledger names a few languages on thousands of rows; a refused one is not cached
def _language(value: str) -> str:
    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise DomainError(f"{value[:20]!r} is not a language tag such as en or zh-CN", "language") from None
    return value


def _date(value: str, field: str) -> date:
    try:
        return parse_date(value, field)
    except DomainError as error:
        raise DomainError(error.message.replace("is not a date", "is not an ISO date"), field) from None
