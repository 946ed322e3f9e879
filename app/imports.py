"""Invoice CSV import: validate every row (with its line number) before writing any."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

from babel import Locale, UnknownLocaleError

from domain.calendar import default_timezone, known_country
from domain.commands import InvoiceFacts
from domain.errors import DomainError
from domain.events import Customer
from domain.money import Money
from domain.policy import RiskGrade

INVOICE_COLUMNS = (
    "invoice_id", "customer_id", "customer_name", "customer_email", "country", "language",
    "currency", "amount", "issue_date", "due_date", "risk_grade",
)
MAX_FILE_BYTES = 200 * 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:#-]{0,99}$")
_EMAIL = re.compile(r"^[^@\s<>\"'(),;:\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class RowError(DomainError):
    """A bad row: the message starts with its line number."""


def read_text(path: Path) -> str:
    if not path.is_file():
        raise DomainError(f"{path} does not exist or is not a file", "file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DomainError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", "file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(
            f"{path.name} is not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8",
            "file",
        ) from None


def parse_invoices(text: str) -> list[tuple[Customer, str, InvoiceFacts]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in INVOICE_COLUMNS if c not in header]
    if missing:
        raise DomainError(f"line 1: missing column(s) {', '.join(missing)}", "file")
    reader.fieldnames = header
    rows: list[tuple[Customer, str, InvoiceFacts]] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            raise RowError(f"line {line}: more values than columns")
        try:
            parsed = parse_invoice_row({k: (v or "").strip() for k, v in record.items()})
        except DomainError as error:
            raise RowError(f"line {line}: {error}") from None
        invoice_id = parsed[2].invoice_id
        if invoice_id in seen:
            raise RowError(f"line {line}: invoice {invoice_id} already appears on line {seen[invoice_id]}")
        seen[invoice_id] = line
        rows.append(parsed)
    if not rows:
        raise DomainError("the file has a header but no invoices", "file")
    return rows


def parse_invoice_row(r: dict[str, str]) -> tuple[Customer, str, InvoiceFacts]:
    invoice_id = _identifier(r["invoice_id"], "invoice_id")
    customer_id = _identifier(r["customer_id"], "customer_id")
    name = _text(r["customer_name"], "customer_name", 300)
    email = r["customer_email"]
    if not _EMAIL.match(email) or len(email) > 320:
        raise DomainError(f"{email[:80]!r} is not an email address", "customer_email")
    country = r["country"].upper()
    if not re.fullmatch(r"[A-Z]{2}", country) or not known_country(country):
        raise DomainError(f"{r['country'][:20]!r} is not an ISO 3166 country code", "country")
    language = _language(r["language"] or "en")
    amount = Money.of(r["amount"], r["currency"], "amount")
    if not amount.is_positive:
        raise DomainError(f"must be positive, got {amount.amount}", "amount")
    issue = _date(r["issue_date"], "issue_date")
    due = _date(r["due_date"], "due_date")
    if due < issue:
        raise DomainError(f"{due} is before the issue date {issue}", "due_date")
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


def _identifier(value: str, field: str) -> str:
    if not _ID.match(value):
        raise DomainError(
            f"{value[:60]!r} is not a valid id (letters, digits and . _ / : # -; at most 100)", field
        )
    return value


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
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{value[:30]!r} is not an ISO date (YYYY-MM-DD)", field) from None
