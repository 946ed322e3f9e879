"""The general outbox: subscribers of the event feed, and the dispatcher that pushes to them
(docs/EVENTS.md, "Pushed to you").

A subscriber names the event types it wants and a webhook. The dispatcher POSTs its events
after its position, in position order, in batches, as the feed's JSON; a 2xx acknowledges the
batch (the position moves to its last event), anything else (or no answer) is retried after
an exponential backoff (domain/outbox.py) with the same events, so delivery is ordered and at
least once. It runs in the worker (a loop next to the Temporal worker, every
``COLLECTIONS_SUBSCRIBERS_INTERVAL`` seconds) and on demand (`subscribers dispatch`).

Adding, pausing, resuming and removing a subscriber are administration events
(``subscriber:NAME``, domain/admin.py) recorded in the transaction that changes the row.

A subscriber that names credit-hold types (``CustomerPutOnHold``, ``CustomerHoldReleased``,
``ShipmentHeld``, ``ShipmentReleased``) is the push form of the credit-hold outbox: once it has
acknowledged such an event, that outbox entry is acknowledged by it (``HoldNoticeAcknowledged``,
consumer = the subscriber's name), so `credit-hold outbox` lists what no subscriber has taken yet.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Callable

import httpx
from sqlalchemy import delete, insert, or_, select, update

from app.adminlog import Unchanged, default_actor, record
from app.context import Context
from app.feed import row as feed_row
from domain import admin, outbox
from domain.customer import CUSTOMER_EVENT_TYPES
from domain.errors import DomainError, shown
from domain.events import EVENT_TYPES
from domain.users import Actor
from store.schema import subscribers

log = logging.getLogger(__name__)

KNOWN_TYPES = frozenset(EVENT_TYPES) | CUSTOMER_EVENT_TYPES | admin.ADMIN_EVENT_TYPES
LEASE = timedelta(minutes=2)  # a claimed subscriber is another dispatcher's again after this (a crash mid-POST)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _types(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def _dict(r) -> dict:
    return {"name": r.name, "url": r.url, "types": list(_types(r.event_types)), "position": r.position,
            "paused": bool(r.paused), "attempts": r.attempts, "next_attempt_at": _iso(r.next_attempt_at),
            "last_error": r.last_error, "delivered": r.delivered, "last_delivery_at": _iso(r.last_delivery_at),
            "created_at": _iso(r.created_at)}


def backoff_of(ctx: Context) -> outbox.Backoff:
    s = ctx.settings
    return outbox.Backoff(timedelta(seconds=s.subscribers_backoff), timedelta(seconds=s.subscribers_backoff_cap))


class SubscriberService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- reads ------------------------------------------------------------------------------
    def list(self) -> list[dict]:
        with self.ctx.db.read() as session:
            return [_dict(r) for r in session.execute(select(subscribers).order_by(subscribers.c.name))]

    def get(self, name: str) -> dict:
        with self.ctx.db.read() as session:
            r = session.execute(select(subscribers).where(subscribers.c.name == name)).first()
        if r is None:
            raise DomainError(f"unknown subscriber {shown(name)} (see `subscribers list`)", "subscriber")
        return _dict(r)

    # -- administration (each an event with actor, time, reason) -----------------------------
    def add(self, name: str, url: str, types: str | list[str], from_position: int = 0,
            actor: Actor | None = None, reason: str | None = None) -> dict:
        name = outbox.check_name(name)
        url = outbox.check_url(url)
        chosen = outbox.check_types(types, KNOWN_TYPES)
        outbox.check_position(from_position)
        reason = admin.check_reason(reason, required=False, default="subscriber added")
        now = _now()

        def change(session) -> None:
            if session.execute(select(subscribers.c.name).where(subscribers.c.name == name)).first() is not None:
                raise DomainError(f"subscriber {shown(name)} already exists (remove it first to change it)",
                                  "subscriber")
            session.execute(insert(subscribers).values(
                name=name, url=url, event_types=",".join(chosen), position=from_position, attempts=0,
                paused=False, delivered=0, created_at=now))

        record(self.ctx, "subscriber", name, admin.SubscriberAdded, actor or default_actor(self.ctx), reason,
               f"subscriber {name}", within=change, name=name, url=url, event_types=list(chosen),
               from_position=from_position)
        return self.get(name)

    def pause(self, name: str, actor: Actor | None = None, reason: str | None = None) -> dict:
        return self._set_paused(name, True, admin.SubscriberPaused, actor, reason)

    def resume(self, name: str, actor: Actor | None = None, reason: str | None = None) -> dict:
        return self._set_paused(name, False, admin.SubscriberResumed, actor, reason)

    def _set_paused(self, name: str, paused: bool, event: type[admin.AdminEvent], actor: Actor | None,
                    reason: str | None) -> dict:
        current = self.get(name)
        reason = admin.check_reason(reason, required=False,
                                    default="subscriber paused" if paused else "subscriber resumed")
        values: dict = {"paused": paused}
        if not paused:  # resumed: try at once, the backoff starts over
            values.update(attempts=0, next_attempt_at=None)

        def change(session) -> None:
            done = session.execute(update(subscribers).where(subscribers.c.name == name,
                                                             subscribers.c.paused == (not paused)).values(**values))
            if done.rowcount == 0:
                raise Unchanged()

        event_recorded = record(self.ctx, "subscriber", name, event, actor or default_actor(self.ctx), reason,
                                f"subscriber {name}", within=change, name=name, position=current["position"])
        return {**self.get(name), "changed": event_recorded is not None}

    def remove(self, name: str, actor: Actor | None = None, reason: str | None = None) -> dict:
        current = self.get(name)
        reason = admin.check_reason(reason, required=False, default="subscriber removed")

        def change(session) -> None:
            if session.execute(delete(subscribers).where(subscribers.c.name == name)).rowcount == 0:
                raise DomainError(f"unknown subscriber {shown(name)}", "subscriber")

        record(self.ctx, "subscriber", name, admin.SubscriberRemoved, actor or default_actor(self.ctx), reason,
               f"subscriber {name}", within=change, name=name, position=current["position"])
        return {**current, "removed": True}


# -- the dispatcher ----------------------------------------------------------------------------

@dataclass
class Attempt:
    """What one dispatch did for one subscriber."""

    subscriber: str
    outcome: str  # delivered | caught_up | failed | waiting | paused
    events: int = 0
    position: int = 0
    first_position: int | None = None
    last_position: int | None = None
    status: int | None = None
    error: str | None = None
    attempts: int = 0
    next_attempt_at: str | None = None


class Dispatcher:
    """Pushes each due subscriber's next batch. Safe to run in several processes: a subscriber is
    claimed (its ``next_attempt_at`` moved ``LEASE`` ahead by a conditional update) before its
    batch is sent, so two dispatchers never send one subscriber's batches at once."""

    def __init__(self, ctx: Context, http: httpx.Client | None = None, now: Callable[[], datetime] = _now) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.backoff = backoff_of(ctx)
        self.http = http or httpx.Client(timeout=self.settings.subscribers_timeout, follow_redirects=False)
        self.now = now

    def close(self) -> None:
        self.http.close()

    def run_once(self, names: list[str] | None = None) -> list[Attempt]:
        """One batch for each due subscriber (or of ``names``)."""
        with self.ctx.db.read() as session:
            query = select(subscribers.c.name).order_by(subscribers.c.name)
            if names is not None:
                query = query.where(subscribers.c.name.in_(names))
            chosen = list(session.execute(query).scalars())
        return [self.dispatch(name) for name in chosen]

    def drain(self, names: list[str] | None = None, on_attempt: Callable[[Attempt], None] = lambda a: None,
              ) -> list[Attempt]:
        """Batches until every subscriber is caught up or waits for a retry."""
        done: list[Attempt] = []
        active = names
        while True:
            attempts = self.run_once(active)
            for a in attempts:
                on_attempt(a)
            done.extend(attempts)
            active = [a.subscriber for a in attempts if a.outcome == "delivered"]
            if not active:
                return done

    def _claim(self, name: str, now: datetime) -> bool:
        with self.ctx.db.transaction() as session:
            claimed = session.execute(
                update(subscribers)
                .where(subscribers.c.name == name, subscribers.c.paused.is_(False),
                       or_(subscribers.c.next_attempt_at.is_(None), subscribers.c.next_attempt_at <= now))
                .values(next_attempt_at=now + LEASE))
            return claimed.rowcount == 1

    def dispatch(self, name: str) -> Attempt:
        now = self.now()
        with self.ctx.db.read() as session:
            r = session.execute(select(subscribers).where(subscribers.c.name == name)).first()
        if r is None:
            raise DomainError(f"unknown subscriber {shown(name)}", "subscriber")
        state = outbox.Delivery(r.position, r.attempts, r.next_attempt_at, r.last_error, r.delivered, bool(r.paused))
        if not state.due(now) or not self._claim(name, now):
            return Attempt(name, "paused" if state.paused else "waiting", position=r.position, attempts=r.attempts,
                           next_attempt_at=_iso(r.next_attempt_at), error=r.last_error)
        types = _types(r.event_types)
        records, head = self.ctx.store.read_page(state.position, self.settings.subscribers_batch, types)
        if not records:  # nothing of its types up to the settled head: it has seen them all
            self._save(name, state, state.acknowledged(max(state.position, head), 0), None)
            return Attempt(name, "caught_up", position=max(state.position, head))
        events = [feed_row(rec) for rec in records]
        first, last = events[0]["position"], events[-1]["position"]
        body = {"subscriber": name, "events": events, "first_position": first, "last_position": last,
                "head": head}
        headers = {"Idempotency-Key": f"{name}:{first}-{last}", "X-Collections-Subscriber": name,
                   "X-Collections-Last-Position": str(last)}
        status = None
        try:
            answer = self.http.post(r.url, json=body, headers=headers)
            status = answer.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}: {answer.text[:300]}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        if error is None:
            # the hold notices first: a crash before the position is saved sends them again, and
            # acknowledging an entry twice is a no-op
            self._acknowledge_holds(name, types, events)
            after = state.acknowledged(last, len(events))
            self._save(name, state, after, self.now())
            return Attempt(name, "delivered", len(events), last, first, last, status)
        after = state.failed(error, self.now(), self.backoff)
        self._save(name, state, after, None)
        log.warning("subscriber %s: batch %s-%s not acknowledged (attempt %d, next at %s): %s",
                    name, first, last, after.attempts, after.next_attempt_at, error)
        return Attempt(name, "failed", len(events), state.position, first, last, status, error, after.attempts,
                       _iso(after.next_attempt_at))

    def _save(self, name: str, before: outbox.Delivery, after: outbox.Delivery, delivered_at: datetime | None) -> None:
        values = {k: v for k, v in asdict(after).items() if k != "paused"}
        if delivered_at is not None:
            values["last_delivery_at"] = delivered_at
        with self.ctx.db.transaction() as session:
            # only from the position it was claimed at: a removed (or re-added) subscriber is left alone
            session.execute(update(subscribers).where(subscribers.c.name == name,
                                                      subscribers.c.position == before.position).values(**values))

    def _acknowledge_holds(self, name: str, types: tuple[str, ...], events: list[dict]) -> None:
        """A subscriber of credit-hold types took these hold notices: their outbox entries are acknowledged."""
        if not set(types) & set(outbox.HOLD_TYPES):
            return
        from app.customers import CustomerService

        customers = CustomerService(self.ctx)
        actor = Actor(name=f"subscriber:{name}")
        for event in events:
            if event["type"] in outbox.HOLD_TYPES:
                try:
                    customers.acknowledge(event["event_id"], name, actor)
                except DomainError as problem:
                    if problem.field != "outbox_id":
                        raise  # e.g. no policy file: the batch stays unacknowledged and is tried again
                    # an entry the outbox does not have: nothing to acknowledge
                    log.warning("subscriber %s: outbox entry %s not acknowledged: %s", name, event["event_id"], problem)


def dispatch_round(dispatcher: Dispatcher) -> int:
    """One round of the worker's loop: every due subscriber until caught up; events delivered."""
    return sum(a.events for a in dispatcher.drain() if a.outcome == "delivered")


async def run_dispatcher(ctx: Context, stop) -> None:
    """The worker's dispatcher loop: a round every ``subscribers_interval`` seconds until ``stop`` is set.
    The rounds run in a thread (blocking HTTP and database calls), one at a time."""
    import asyncio

    interval = ctx.settings.subscribers_interval
    if interval <= 0:
        return
    dispatcher = Dispatcher(ctx)
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(dispatch_round, dispatcher)
            except Exception:  # a database hiccup: log it, the next round tries again
                log.exception("subscriber dispatch round failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
    finally:
        dispatcher.close()
