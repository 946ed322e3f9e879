"""The audit trail: verify the event store's hash chain, anchor its head outside the
database, and export every event of a period (docs/CONTROLS.md).

Used by `audit verify|anchor|export` (cli/audit.py) and /api/audit/... (api/routes_audit.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from app.context import Context
from domain.audit import details, ledger_amount, value_date
from domain.errors import DomainError
from store import chain
from store.schema import case_summary

# Fields of an event's data that say why (reason codes, notes, decisions, outcomes).
WHY_FIELDS = ("reason", "note", "decision", "outcome")
# then the money the event moves or names and a payment's value date: domain/audit.py says which
# field of which event type (one table for every stream's events); then the rest it says (details)
COLUMNS = ("position", "recorded_at", "occurred_at", "actor", "stream", "subject", "version", "type",
           *WHY_FIELDS, "amount", "currency", "value_date", "details")


def verify(ctx: Context, anchor: Path | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Recompute the chain; with ``anchor``, every head recorded in that file must still be in it."""
    anchors = chain.read_anchors(anchor) if anchor is not None else []
    found = chain.verify(ctx.store, progress=progress, anchors=anchors)
    result = found.as_dict()
    result["database"] = ctx.db.engine.url.render_as_string(hide_password=True)
    return result


def anchor(ctx: Context, path: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Verify the chain, then append its head (position and hash) to ``path``, one JSON
    line per anchor, for the operator to keep outside the database. Refused (nothing written)
    when the chain is not intact: anchoring a tampered store would vouch for it."""
    if path.exists() and not path.is_file():
        raise DomainError(f"{path} is not a file", "file")
    result = verify(ctx, progress=progress)
    if not result["intact"]:
        return {**result, "anchored": False}
    entry = {"position": result["head"]["position"], "hash": result["head"]["hash"], "events": result["events"],
             "anchored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "database": result["database"]}
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as error:
        raise DomainError(f"cannot write {path}: {error.strerror}", "file") from None
    return {**result, "anchored": True, "anchor": entry, "file": str(path)}


def _bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    if start and end and end < start:
        raise DomainError(f"the period ends ({end}) before it starts ({start})", "from")
    low = datetime.combine(start, time.min, timezone.utc) if start else None
    high = datetime.combine(end + timedelta(days=1), time.min, timezone.utc) if end else None
    return low, high


def _subjects(ctx: Context) -> dict[str, str]:
    with ctx.db.read() as session:
        return {r.case_id: r.invoice_id for r in session.execute(select(case_summary.c.case_id,
                                                                       case_summary.c.invoice_id))}


def trail(ctx: Context, start: date | None = None, end: date | None = None, actor: str | None = None,
          after: int = 0) -> Iterator[dict]:
    """Every event of every stream (cases, customers...) recorded from ``start`` to ``end``
    (days in UTC, inclusive), in position order, optionally only one actor's; streamed. Bad
    bounds are refused here, before anything is produced."""
    low, high = _bounds(start, end)
    return _rows(ctx, low, high, actor, after)


def _rows(ctx: Context, low: datetime | None, high: datetime | None, actor: str | None, after: int) -> Iterator[dict]:
    subjects = _subjects(ctx)
    for record in ctx.store.read_all(after=after):
        if (low and record.recorded_at < low) or (high and record.recorded_at >= high):
            continue
        event = record.event
        if actor is not None and event.actor != actor:
            continue
        data = event.data()
        stream = str(record.stream_id)
        # administration events name their subject (domain/admin.py); cases their invoice
        subject = data.get("subject") or data.get("invoice_id") or data.get("customer_id") or subjects.get(stream, "")
        row = {"position": record.position, "recorded_at": record.recorded_at.isoformat(),
               "occurred_at": event.occurred_at.isoformat(), "actor": event.actor, "stream": stream,
               "subject": subject, "version": event.version, "type": type(event).__name__}
        for key in WHY_FIELDS:
            value = data.get(key)
            row[key] = value if isinstance(value, (str, int, float)) or value is None else json.dumps(value)
        money = ledger_amount(row["type"], data)
        row["amount"], row["currency"] = (money.model_dump(mode="json")["amount"], money.currency) if money else (None, None)
        row["value_date"] = value_date(data)
        row["details"] = details(row["type"], data)  # what else it says: a role, a cron, an assignee
        yield row


def to_csv_lines(rows) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        yield buffer.getvalue()
