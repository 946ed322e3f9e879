"""The domain of every input value, declared once.

Identifiers, calendar dates, e-mail addresses and CSV files are checked here and
only here; every entry (API, console, CLI, invoice and bank-file imports) calls
these functions or uses these pydantic types, so one value is refused the same
way wherever it comes in, with an error naming the field. Amounts live in
``domain/money.py``; horizons that depend on the business (how far a payment may
precede the invoice, the longest terms, plan and report horizons) are in the
policy (``domain/policy.py``, section ``[inputs]``). Pure: today is passed in.
"""

from __future__ import annotations

from functools import lru_cache

import csv
import re
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from domain.errors import DomainError, shown

if TYPE_CHECKING:
    from domain.policy import InputPolicy

# -- identifiers ---------------------------------------------------------------------------------------
# Invoice, customer, payment ids: printable ASCII without spaces, quotes or control characters.
ID_MAX = 100
ID_CHARS = r"[A-Za-z0-9][A-Za-z0-9._/:#-]{0,99}"
ID_PATTERN = f"^{ID_CHARS}$"
_ID = re.compile(ID_PATTERN)


def check_identifier(value: Any, field: str) -> str:
    text = value if isinstance(value, str) else str(value)
    if not _ID.fullmatch(text):
        raise DomainError(
            f"{shown(text)} is not a valid id (letters, digits and . _ / : # -, starting with a letter or "
            f"digit; at most {ID_MAX})", field)
    return text


def _identifier(value: Any) -> Any:
    if isinstance(value, str):
        check_identifier(value, "id")
    return value


# For pydantic models (API bodies, commands): the same rule, and the pattern in the OpenAPI document.
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN), BeforeValidator(_identifier)]

# -- calendar dates ----------------------------------------------------------------------------------------
# No date outside these is accepted anywhere: the arithmetic the engine does on a date (a year of
# reports back, a plan's instalments forward) can never leave Python's calendar. The policy narrows
# them further for each kind of date (``[inputs]``).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)
DATE_PATTERN = r"^(19|2[01])[0-9]{2}-[0-9]{2}-[0-9]{2}$"  # years EARLIEST_DATE..LATEST_DATE
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_date(value: Any, field: str) -> date:
    """A calendar date written YYYY-MM-DD (only that: not a number, not a week date), within
    EARLIEST_DATE..LATEST_DATE."""
    if isinstance(value, date):
        day = value
    else:
        text = value if isinstance(value, str) else repr(value)
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError
            day = date.fromisoformat(text)
        except ValueError:
            raise DomainError(f"{shown(text)} is not a date (YYYY-MM-DD)", field) from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise DomainError(f"{day} is outside the dates accepted ({EARLIEST_DATE} to {LATEST_DATE})", field)
    return day


def _iso_date(value: Any) -> date:
    return parse_date(value, "date")


# For pydantic models and query parameters: ``as_of=0`` is not 1970-01-01.
IsoDate = Annotated[date, BeforeValidator(_iso_date), WithJsonSchema(
    {"type": "string", "format": "date", "pattern": DATE_PATTERN,
     "description": f"A date, YYYY-MM-DD, from {EARLIEST_DATE} to {LATEST_DATE}"})]


def within(day: date, field: str, earliest: date, latest: date, what: str = "") -> date:
    if day < earliest:
        raise DomainError(f"{day} is before {earliest}{what and ', ' + what}", field)
    if day > latest:
        raise DomainError(f"{day} is after {latest}{what and ', ' + what}", field)
    return day


def _later(day: date, delta: timedelta) -> date:
    try:
        return min(day + delta, LATEST_DATE)
    except OverflowError:
        return LATEST_DATE


def check_issue_and_due(issue: date, due: date, today: date, rules: InputPolicy) -> None:
    """An invoice's dates: issued within the policy's window, due within its longest terms."""
    within(issue, "issue_date", rules.earliest_date, _later(today, rules.latest_ahead),
           f"the earliest and latest issue dates the policy accepts are {rules.earliest_date} and "
           f"today + {rules.latest_ahead.days} days")
    if due < issue:
        raise DomainError(f"{due} is before the issue date {issue}", "due_date")
    latest_due = _later(issue, rules.max_terms)
    if due > latest_due:
        raise DomainError(f"{due} is more than {rules.max_terms.days} days after the issue date {issue} "
                          f"(the policy's longest terms; latest {latest_due})", "due_date")


def check_received_on(received: date, today: date, rules: InputPolicy, issue: date | None = None,
                      field: str = "received_on") -> date:
    """A payment's date: not in the future, not before the policy's earliest date, and (for a
    payment of an invoice) not long before the invoice was issued."""
    if received > today:
        raise DomainError(f"{received} is in the future", field)
    earliest = rules.earliest_date
    if issue is not None and issue - rules.payment_before_issue > earliest:
        earliest = issue - rules.payment_before_issue
        if received < earliest:
            raise DomainError(f"{received} is more than {rules.payment_before_issue.days} days before the invoice "
                              f"was issued ({issue})", field)
    if received < earliest:
        raise DomainError(f"{received} is before {earliest}, the earliest date the policy accepts", field)
    return received


def check_same_payment(payment_id: str, recorded: dict[str, Any], sent: dict[str, Any]) -> None:
    """A payment id is an idempotency key bound to what it paid (amount, received_on, reference):
    the same content again is a repeat, anything else under that id is a conflict, refused naming
    what differs (never silently taken as a repeat)."""
    differing = [name for name in recorded if recorded[name] != sent[name]]
    if differing:
        said = lambda value: repr(value) if isinstance(value, str) else str(value)  # noqa: E731  ('' for none)
        what = ", ".join(f"{name} {said(recorded[name])} (sent {said(sent[name])})" for name in differing)
        raise DomainError(f"payment {shown(payment_id)} was already recorded with a different {what}; send it "
                          "again as it was recorded, or give a new payment id", "payment_id")


def reversed_payment_id(payment_id: str) -> DomainError:
    """The refusal of a payment id whose payment was reversed (the bank took it back): the id named
    that payment, so money received again is a new payment under a new id. Never a repeat: a
    repeat would report as recorded money that the books do not hold."""
    return DomainError(f"payment {shown(payment_id)} was recorded and then reversed; money received again is a new "
                       "payment: record it under a new payment id", "payment_id")


def recorded_on_another_invoice(payment_id: str, invoice_id: str) -> DomainError:
    """The refusal of a payment id already recorded on another invoice (a payment, a recovery or a
    bank line assigned): a payment id names one payment."""
    return DomainError(f"payment {shown(payment_id)} was already recorded on another invoice ({invoice_id}); "
                       "a payment id names one payment", "payment_id")


def check_report_day(day: date | None, field: str, today: date, rules: InputPolicy) -> date | None:
    """An as-of date or a report period's end: between the policy's earliest date and a little ahead."""
    if day is None:
        return None
    return within(day, field, rules.earliest_date, _later(today, rules.latest_ahead),
                  f"reports cover {rules.earliest_date} to today + {rules.latest_ahead.days} days")


# The most any time zone is ahead of UTC (Kiribati, UTC+14): a day that has begun somewhere.
LATEST_ZONE_AHEAD = timedelta(hours=14)


def check_sweep_day(day: date | None, now: datetime, rules: InputPolicy, field: str = "as_of") -> date | None:
    """The day a sweep runs as of: one that has begun (in some time zone) and is not before the
    policy's earliest date. A later day would open cases for invoices not yet overdue and send
    their customers real notices at once."""
    if day is None:
        return None
    latest = (now.astimezone(timezone.utc) + LATEST_ZONE_AHEAD).date()
    if day > latest:
        raise DomainError(f"{day} is in the future (today is {now.astimezone(timezone.utc).date()} UTC): a sweep opens "
                          "cases and sends notices as of a day that has come", field)
    return within(day, field, rules.earliest_date, latest)


def check_overdue_opening(reason: str, invoice_id: str, due_date: date, today: date) -> None:
    """A case opened as "overdue" needs an invoice whose due date has come: one not yet due
    would be recorded as overdue and dunned as if it were."""
    if reason == "overdue" and due_date > today:
        raise DomainError(f"invoice {invoice_id} is not due until {due_date} (today is {today}): "
                          "open its case as 'manual' or 'dispute', not 'overdue'", "reason")


# -- e-mail addresses ---------------------------------------------------------------------------------------
EMAIL_MAX = 254


def check_email(value: str, field: str = "customer_email") -> str:
    """An address notices can be sent to, as the SMTP server will take it.

    Syntax by ``email-validator`` (no DNS look-up). A local part with non-ASCII characters
    needs SMTPUTF8, which the engine does not use: such addresses are refused here rather
    than failing at every notice. An internationalized domain is kept in its ASCII
    (IDNA) form. Addresses under ``.test`` and ``.invalid`` (RFC 2606: tests and
    deliberate placeholders, e.g. imported ledgers without addresses) are accepted.
    The verdict on an address is cached (a ledger repeats each customer's on every line)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > EMAIL_MAX:
        raise DomainError(f"{shown(text)} is not an email address (at most {EMAIL_MAX} characters)", field)
    address, reason = _email_verdict(text)
    if reason is not None:
        raise DomainError(f"{shown(text, 60)} is not an email address: {reason}", field)
    return address


@lru_cache(maxsize=65536)
def _email_verdict(text: str) -> tuple[str, str | None]:
    """(the address to use, None) or (text, why it is refused): pure, so cached."""
    from email_validator import EmailNotValidError, validate_email

    local, at, domain = text.rpartition("@")
    placeholder = at and domain.lower().endswith(".invalid")
    checked = f"{local}@{domain[:-len('.invalid')]}.test" if placeholder else text
    try:
        result = validate_email(checked, check_deliverability=False, allow_smtputf8=False, test_environment=True)
    except EmailNotValidError as error:
        reason = str(error).rstrip(".")
        if "before the @-sign are not supported" in reason:
            reason = "a non-ASCII name before the @ needs SMTPUTF8, which notices do not use; give an ASCII address"
        return text, reason
    if placeholder or text.isascii():
        return text, None
    return result.ascii_email or text, None


# -- CSV files --------------------------------------------------------------------------------------------
CSV_MAX_FIELD = 65_536  # characters in one field (a name, a reference): far above any real one
CSV_MAX_FILE_BYTES = 200 * 1024 * 1024  # a file given to the CLI
CSV_MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a file uploaded to the API


OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def missing_columns(missing: list[str], header: list[str], hint: str = "") -> DomainError:
    """Line 1 lacks columns. A header read as one column holding ';' (a spreadsheet saved with
    the list separator of many European locales) or tabs says how to fix it."""
    if len(header) == 1:
        found = [name for mark, name in OTHER_DELIMITERS.items() if mark in header[0]]
        if found:
            hint = f"; the file is separated by {found[0]}, not commas: save it as comma-separated CSV (UTF-8)"
    return DomainError(f"line 1: missing column(s) {', '.join(missing)}{hint}", "file")


def csv_reader(text: str) -> csv.DictReader:
    """A reader whose fields are bounded (csv.field_size_limit); see ``csv_error``."""
    import io

    if csv.field_size_limit() != CSV_MAX_FIELD:
        csv.field_size_limit(CSV_MAX_FIELD)
    return csv.DictReader(io.StringIO(text, newline=""))


def csv_error(error: csv.Error, line: int) -> DomainError:
    message = str(error)
    if "field larger than field limit" in message:
        return DomainError(f"line {line}: a field is longer than {CSV_MAX_FIELD} characters", "file")
    return DomainError(f"line {line}: not a valid CSV row ({message[:100]})", "file")


def check_file_size(size: int, name: str, limit: int = CSV_MAX_FILE_BYTES) -> None:
    if size > limit:
        raise DomainError(f"{name} is larger than {limit // (1024 * 1024)} MB", "file")


# How often the scheduled sweep may run: it opens overdue cases once a day; weekly or monthly
# suits a small ledger; less often than monthly (the 29th of February) it silently stops dunning,
# more often than hourly it is a typo ('*/1 * * * *').
SWEEP_CADENCE = (timedelta(hours=1), timedelta(days=31))


def check_sweep_cadence(cron: str, runs: list[datetime]) -> None:
    """The next runs Temporal gives a sweep cron must come at least monthly and at most hourly."""
    if len(runs) < 2:
        raise DomainError(f"{shown(cron)} never fires (or fires once); the sweep would stop", "cron")
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:])]
    shortest, longest = SWEEP_CADENCE
    if max(gaps) > longest:
        raise DomainError(f"{shown(cron)} runs the sweep less often than monthly (next {runs[0]:%Y-%m-%d}, then "
                          f"{runs[1]:%Y-%m-%d}): overdue invoices would wait that long for a case", "cron")
    if min(gaps) < shortest:
        raise DomainError(f"{shown(cron)} runs the sweep more often than hourly; it opens the day's overdue "
                          "cases once a day (e.g. '0 6 * * *')", "cron")
