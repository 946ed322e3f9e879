"""Invoice CSV import: validate every row (with its line number) before writing any."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
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
    parse_date,
)
from domain.money import Money
from domain.policy import InputPolicy, RiskGrade

INVOICE_COLUMNS = (
    "invoice_id", "customer_id", "customer_name", "customer_email", "country", "language",
    "currency", "amount", "issue_date", "due_date", "risk_grade",
)
MAX_FILE_BYTES = CSV_MAX_FILE_BYTES


class RowError(DomainError):
    """A bad row: the message starts with its line number, then the field ("line 3: amount: ...")."""

    def __init__(self, line: int, error: DomainError | str, field: str | None = None) -> None:
        self.line = line
        if isinstance(error, DomainError):
            super().__init__(error.message, error.field)
        else:
            super().__init__(error, field)

    def __str__(self) -> str:
        return f"line {self.line}: {super().__str__()}"


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


def parse_invoices(
    text: str, format: str = "standard", defaults: ImportDefaults = ImportDefaults(),
    today: date | None = None, rules: InputPolicy | None = None,
) -> list[tuple[Customer, str, InvoiceFacts]]:
    """Every row checked (``rules``: the policy's input horizons; ``today``: what they count from)."""
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
        raise DomainError(f"line 1: missing column(s) {', '.join(missing)}{hint}", "file")
    reader.fieldnames = header
    rows: list[tuple[Customer, str, InvoiceFacts]] = []
    seen: dict[str, int] = {}
    for record in csv_records(reader):
        line = reader.line_num
        if None in record:
            raise RowError(line, "more values than columns")
        try:
            raw = {k: (v or "").strip() for k, v in record.items()}
            parsed = parse_invoice_row(layout.to_standard(raw, defaults), today, rules)
        except DomainError as error:  # names the field, and the line in the message
            raise RowError(line, error) from None
        invoice_id = parsed[2].invoice_id
        if invoice_id in seen:
            raise RowError(line, f"invoice {invoice_id} already appears on line {seen[invoice_id]}")
        seen[invoice_id] = line
        rows.append(parsed)
    if not rows:
        raise DomainError("the file has a header but no invoices", "file")
    return rows


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
    amount = Money.of(r["amount"], r["currency"], "amount")
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
