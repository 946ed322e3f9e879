"""JSON endpoints of the audit trail: verify the event store's hash chain, and the events of
a period (docs/CONTROLS.md). Supervisors and finance managers (app/authorization.py).

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated

from fastapi import Query

from domain.inputs import IsoDate

from api.routes import Service, endpoint
from app import audit, feed


@endpoint("GET", "/audit/verify", "audit.verify",
          summary="Recompute the event store's hash chain: intact, or each row changed, deleted or inserted out "
                  "of band (the first named in first_problem); the head (position, hash) to record elsewhere")
def verify(svc: Service) -> dict:
    result = audit.verify(svc.ctx)
    result.pop("database", None)  # the server's connection string is no business of the caller's
    return result


@endpoint("GET", "/audit/events", "audit.events",
          summary="The audit trail: every event of every stream recorded from `from` to `to` (UTC days, inclusive) "
                  "in the order recorded, optionally one actor's; a page of `limit` events after position `after`")
def events(svc: Service, start: Annotated[IsoDate | None, Query(alias="from")] = None,
           end: Annotated[IsoDate | None, Query(alias="to")] = None,
           actor: Annotated[str | None, Query(max_length=100)] = None,
           after: Annotated[int, Query(ge=0, le=feed.MAX_POSITION, description="Position to continue after (next_after of a page)")] = 0,
           limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict:
    rows = list(islice(audit.trail(svc.ctx, start, end, actor, after), limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"events": rows, "next_after": rows[-1]["position"] if more else None}
