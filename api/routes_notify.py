"""JSON endpoints of internal notifications (docs/CONTROLS.md, "Internal notifications"): send
what is due now to the team, and read the sent log. The same use cases as `notify run|log`.

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Query
from pydantic import Field

from api.routes import Body, Service, endpoint
from domain.inputs import IsoDate
from app.notifications import run_notifications, sent_log


class NotifyBody(Body):
    as_of: Optional[IsoDate] = Field(default=None, description="Work out what is due at the end of this day "
                                  "(YYYY-MM-DD, UTC); default: now")


@endpoint("POST", "/notify/run", "notify.run",
          summary="E-mail the team what is due: approvals waiting for a role, lapsed SLAs, collectors' digests "
                  "(idempotent per kind, item, recipient and day)")
async def notify_run(body: NotifyBody, svc: Service) -> dict:
    return await run_notifications(svc.ctx, body.as_of)


@endpoint("GET", "/notify/log", "notify.log",
          summary="The sent log of internal notifications: who was told what, about which cases, when")
def notify_log(svc: Service, start: Annotated[IsoDate | None, Query(alias="from")] = None,
               end: Annotated[IsoDate | None, Query(alias="to")] = None) -> list[dict]:
    return sent_log(svc.ctx, start, end)
