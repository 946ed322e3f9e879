"""Recording administration events (domain/admin.py): a human action outside any case
becomes an event in the event store, with actor, time and reason, hash-chained with the rest.

``record`` appends the event; ``within(connection)``, when given, makes the change it
records in the same transaction (both commit, or neither). ``within`` raises ``Unchanged``
when there is nothing to change after all (a repeat): then nothing is written at all.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timezone
from typing import Callable
from uuid import uuid4

from app.context import Context
from domain import admin
from domain.errors import DomainError
from domain.users import Actor
from store.event_store import ConcurrencyError

ATTEMPTS = 8


class Unchanged(Exception):
    """Raised by a ``within`` callback: nothing to change, so nothing to record."""


def operator_actor() -> str:
    """The actor of an operator's command run on the machine itself (no API token): the OS login."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"operator:{login}"


def default_actor(ctx: Context) -> Actor:
    """Who acts when a caller names nobody: the command's user (COLLECTIONS_USER, set from the
    CLI's token), else the operator at this machine."""
    try:
        return ctx.actor(None)
    except DomainError:
        return Actor(name=operator_actor())


def record(ctx: Context, kind: str, key: str, event_type: type[admin.AdminEvent], actor: Actor | str,
           reason: str, subject: str, within: Callable[[object], object] | None = None,
           unless: Callable[[list[admin.AdminEvent]], bool] | None = None, **data: object) -> admin.AdminEvent | None:
    """Append one event to the administration stream of ``kind``/``key``; None when ``within``
    found nothing to change, or ``unless`` (given the stream's events) finds it recorded already.
    Retries on a concurrent append to the same stream, asking ``unless`` again: at most once."""
    stream = admin.admin_stream_id(kind, key)
    name = actor.name if isinstance(actor, Actor) else actor
    command_id = uuid4()
    for attempt in range(ATTEMPTS):
        if unless is None:
            version = ctx.store.version(stream)
        else:
            records = ctx.store.records(stream)
            if unless([r.event for r in records]):
                return None
            version = records[-1].event.version if records else 0
        event = admin.record(event_type, stream, version, command_id, datetime.now(timezone.utc), name, reason,
                             subject, **data)
        try:
            ctx.store.append(stream, version, [event],
                             {"command_id": str(command_id), "command": event_type.__name__, "actor": name},
                             within=within)
        except Unchanged:
            return None
        except ConcurrencyError:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        return event
    raise AssertionError("unreachable")
