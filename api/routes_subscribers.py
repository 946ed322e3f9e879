"""JSON endpoints of the general outbox: subscribers of the event feed and their dispatch
(docs/EVENTS.md, "Pushed to you"; app/subscribers.py). Supervisors and finance managers
(app/authorization.py: ``subscribers.*``).

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from api.routes import Body, Service, caller, endpoint
from app import feed
from app.subscribers import Dispatcher, SubscriberService


class SubscriberBody(Body):
    name: str = Field(min_length=1, max_length=100, description="Lower-case letters, digits, '.', '_', '-'")
    url: str = Field(min_length=1, max_length=2000, description="The webhook its batches are POSTed to")
    types: list[str] = Field(min_length=1, max_length=200, description="The event types it wants")
    from_position: int = Field(0, ge=0, le=feed.MAX_POSITION, description="Deliver the events after this position")
    reason: str | None = Field(None, max_length=500, description="Kept on the event; default 'subscriber added'")


class SubscriberReasonBody(Body):
    reason: str | None = Field(None, max_length=500, description="Kept on the event, for the audit trail")


@endpoint("GET", "/subscribers", "subscribers.list",
          summary="Every subscriber of the feed: types, webhook, last acknowledged position, retries, last error")
def list_subscribers(svc: Service) -> list[dict]:
    return SubscriberService(svc.ctx).list()


@endpoint("POST", "/subscribers", "subscribers.add", status_code=201,
          summary="Add a subscriber: its events after from_position are pushed to url (SubscriberAdded)")
def add_subscriber(body: SubscriberBody, svc: Service, user: caller("subscribers.add")) -> dict:
    return SubscriberService(svc.ctx).add(body.name, body.url, body.types, body.from_position, user.actor(),
                                          body.reason)


@endpoint("POST", "/subscribers/{name}/pause", "subscribers.pause",
          summary="Stop pushing to a subscriber; its position is kept (SubscriberPaused)")
def pause_subscriber(name: str, body: SubscriberReasonBody, svc: Service, user: caller("subscribers.pause")) -> dict:
    return SubscriberService(svc.ctx).pause(name, user.actor(), body.reason)


@endpoint("POST", "/subscribers/{name}/resume", "subscribers.resume",
          summary="Push to a paused subscriber again, from its position (SubscriberResumed)")
def resume_subscriber(name: str, body: SubscriberReasonBody, svc: Service,
                      user: caller("subscribers.resume")) -> dict:
    return SubscriberService(svc.ctx).resume(name, user.actor(), body.reason)


@endpoint("POST", "/subscribers/{name}/remove", "subscribers.remove",
          summary="Remove a subscriber (SubscriberRemoved, with the position it had reached)")
def remove_subscriber(name: str, body: SubscriberReasonBody, svc: Service, user: caller("subscribers.remove")) -> dict:
    return SubscriberService(svc.ctx).remove(name, user.actor(), body.reason)


@endpoint("POST", "/subscribers/dispatch", "subscribers.dispatch",
          summary="Push due subscribers' events now, until each is caught up or waits for a retry")
async def dispatch_subscribers(svc: Service) -> list[dict]:
    def run() -> list[dict]:
        dispatcher = Dispatcher(svc.ctx)
        try:
            return [asdict(a) for a in dispatcher.drain()]
        finally:
            dispatcher.close()

    return await run_in_threadpool(run)
