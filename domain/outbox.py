"""The general outbox's rules (docs/EVENTS.md, "Pushed to you"). Pure: no I/O, no clock.

A *subscriber* wants the events of some types, pushed to its webhook in position order. Its
``position`` is the last position it acknowledged (a 2xx answer); the dispatcher sends the
next batch after it, and nothing after a batch that was not acknowledged: delivery is ordered
and at least once. A failed attempt (any other answer, or no answer) is retried after an
exponential backoff, capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from domain.errors import DomainError, shown

# Positions go up to the largest integer a JSON number holds exactly (readers that parse numbers as
# doubles included): a larger one would be rounded on its way to the API and compared wrongly.
MAX_POSITION = 2**53 - 1

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
# The types of the credit-hold outbox (RISK.md): a subscriber of some of these is the push form of it.
HOLD_TYPES = ("CustomerPutOnHold", "CustomerHoldReleased", "ShipmentHeld", "ShipmentReleased")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DomainError(f"lower-case letters, digits, '.', '_' or '-', at most 100 "
                          f"(got {shown(name)})", "name")
    return name


def check_url(url: str) -> str:
    """An http(s) URL with a host: where the batches are POSTed."""
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    try:
        port_ok = parts is not None and (parts.port is None or 0 < parts.port < 65536)
    except ValueError:
        port_ok = False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok \
            or len(url) > 2000 or any(c.isspace() for c in url.strip()):
        raise DomainError(f"must be an http:// or https:// URL with a host (got {shown(url)})", "url")
    return url.strip()


def check_types(text: str | Sequence[str], known: Iterable[str]) -> tuple[str, ...]:
    """The event types of a filter, comma-separated or a list: each one a type the engine records,
    in the order given, without repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    types = tuple(dict.fromkeys(t.strip() for t in items if t.strip()))
    if not types:
        raise DomainError("name at least one event type (e.g. CaseOpened,PaymentReceived)", "types")
    allowed = set(known)
    unknown = [t for t in types if t not in allowed]
    if unknown:
        raise DomainError(f"unknown event type {shown(unknown[0])} (the types are those of the feed, "
                          f"e.g. CaseOpened, CustomerPutOnHold)", "types")
    return types


def check_position(position: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= MAX_POSITION:
        raise DomainError(f"must be a position from 0 to {MAX_POSITION} (got {position!r})", "from_position")
    return position


@dataclass(frozen=True)
class Backoff:
    """Wait ``first`` after the first failure, twice as long after each next one, never more than ``cap``."""

    first: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=15)

    def delay(self, attempts: int) -> timedelta:
        if attempts < 1:
            return timedelta(0)
        # 2**n grows past any cap quickly: stop doubling once beyond it (no overflow on long outages)
        delay = self.first
        for _ in range(attempts - 1):
            if delay >= self.cap:
                break
            delay *= 2
        return min(delay, self.cap)


@dataclass(frozen=True)
class Delivery:
    """A subscriber's delivery state: the last acknowledged position and the retries."""

    position: int
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    delivered: int = 0
    paused: bool = False

    def due(self, now: datetime) -> bool:
        return not self.paused and (self.next_attempt_at is None or self.next_attempt_at <= now)

    def acknowledged(self, last_position: int, count: int) -> Delivery:
        """A 2xx for a batch ending at ``last_position`` (or nothing to send up to there)."""
        if last_position < self.position:
            raise ValueError("a subscriber's position never goes back")
        return replace(self, position=last_position, attempts=0, next_attempt_at=None, last_error=None,
                       delivered=self.delivered + count)

    def failed(self, error: str, now: datetime, backoff: Backoff) -> Delivery:
        """Not acknowledged: the same batch again after the backoff; the position stays."""
        attempts = self.attempts + 1
        return replace(self, attempts=attempts, next_attempt_at=now + backoff.delay(attempts),
                       last_error=error[:2000])
