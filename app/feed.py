"""The event feed: every event of every stream (cases, customers) in global order, for an
ERP or a data warehouse to follow (docs/EVENTS.md).

Used by `events tail` (cli/feed.py) and GET /api/events (api/routes_feed.py). A page holds
only settled positions (EventStore.settled_head): a reader that continues after the last
position it received never skips an event committed later with a lower position.
"""

from __future__ import annotations

from app.context import Context
from domain.errors import DomainError
from domain.outbox import MAX_POSITION
from store.event_store import RecordedEvent

MAX_LIMIT = 1000


def check_after(after: int) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_POSITION:
        raise DomainError(f"after: must be a position from 0 to {MAX_POSITION} (got {after!r})", "after")
    return after


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise DomainError(f"limit: must be from 1 to {MAX_LIMIT} (got {limit!r})", "limit")
    return limit


def row(record: RecordedEvent) -> dict:
    """One event of the feed (the contract of docs/EVENTS.md)."""
    event = record.event
    return {
        "position": record.position,
        "stream": str(record.stream_id),
        "version": event.version,
        "event_id": str(event.event_id),
        "type": type(event).__name__,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": record.recorded_at.isoformat(),
        "actor": event.actor,
        "data": event.data(),
    }


def page(ctx: Context, after: int = 0, limit: int = 100) -> dict:
    """Up to ``limit`` events after position ``after``, in position order, and where to go on
    from: ``next_after`` is the last position returned (or ``after`` when there is nothing
    new); ``head`` is the highest settled position now (the feed is caught up when
    ``next_after == head``)."""
    check_after(after)
    check_limit(limit)
    records, head = ctx.store.read_page(after, limit)
    events = [row(r) for r in records]
    return {"events": events, "next_after": events[-1]["position"] if events else after, "head": head}
