"""JSON endpoint of the event feed: every event in global order, a page after a position
(docs/EVENTS.md). Supervisors and finance managers (app/authorization.py: ``events.read``).

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from api.routes import Service, endpoint
from app import feed


@endpoint("GET", "/events", "events.read",
          summary="The event feed: up to `limit` events after position `after`, in global order (position, stream, "
                  "type, occurred_at, recorded_at, actor, data). Continue with `after=next_after`; caught up when "
                  "`next_after == head`. At least once, ordered by position, never skipping (docs/EVENTS.md)")
def events(svc: Service,
           after: Annotated[int, Query(ge=0, le=feed.MAX_POSITION,
                                       description="The last position already read (0: from the start)")] = 0,
           limit: Annotated[int, Query(ge=1, le=feed.MAX_LIMIT, description="Most events in the page")] = 100) -> dict:
    return feed.page(svc.ctx, after, limit)
