"""The dispatcher on SQLite and PostgreSQL, with a real webhook on loopback: two dispatchers
at once (two workers) never send one subscriber's batches side by side, so the webhook sees
them in order without overlap; a paused or removed subscriber is left alone."""

from __future__ import annotations

import threading
import time

from app.context import Context
from app.subscribers import Dispatcher, SubscriberService
from domain.users import Actor
from store.event_store import EventStore
from tests.conftest import make_settings
from tests.e2e.test_subscribers_cli import receiver  # noqa: F401  (the webhook fixture)
from tests.store.test_event_store_contract import busy_case

SUPERVISOR = Actor(name="demo-supervisor")


def filled(database_url: str, cases: int) -> tuple[Context, EventStore]:
    ctx = Context(make_settings(database_url, subscribers_batch=2, subscribers_backoff=0.05,
                                subscribers_backoff_cap=0.1))
    for n in range(cases):
        case = busy_case(f"DSP-{n}")
        ctx.store.append(case.state.case_id, 0, case.events)
    return ctx, ctx.store


def test_two_dispatchers_at_once_deliver_in_order_without_overlap(database_url, receiver):  # noqa: F811
    ctx, store = filled(database_url, 6)
    SubscriberService(ctx).add("twin", f"http://127.0.0.1:{receiver.port}/t", "CaseOpened,PaymentReceived", 0,
                               SUPERVISOR, "test")
    receiver.fail = 3
    dispatchers = [Dispatcher(ctx), Dispatcher(ctx)]
    barrier = threading.Barrier(2)

    def run(d: Dispatcher) -> None:
        # bounded by time, not by a count of drains: a drain during the backoff returns at once
        barrier.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            d.drain(["twin"])
            if SubscriberService(ctx).get("twin")["position"] >= store.settled_head():
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for d in dispatchers:
        d.close()
    wanted = [str(r.event.event_id) for r in store.read_all()
              if type(r.event).__name__ in ("CaseOpened", "PaymentReceived")]
    assert [e["event_id"] for e in receiver.unique()] == wanted
    accepted = [p["body"] for p in receiver.answered(200)]
    assert all(b["first_position"] > a["last_position"] for a, b in zip(accepted, accepted[1:]))
    assert len(accepted) == len(wanted) // 2  # batches of 2, each acknowledged once
    assert SubscriberService(ctx).get("twin")["delivered"] == len(wanted)
    ctx.db.dispose()


def test_paused_and_removed_subscribers_get_nothing(database_url, receiver):  # noqa: F811
    ctx, _ = filled(database_url, 1)
    service = SubscriberService(ctx)
    service.add("later", f"http://127.0.0.1:{receiver.port}/l", "CaseOpened", 0, SUPERVISOR, "test")
    assert service.pause("later", SUPERVISOR, "test")["changed"]
    assert not service.pause("later", SUPERVISOR, "again")["changed"]  # recorded once
    dispatcher = Dispatcher(ctx)
    assert [a.outcome for a in dispatcher.run_once()] == ["paused"]
    service.remove("later", SUPERVISOR, "test")
    assert dispatcher.run_once() == [] and receiver.posts == []
    dispatcher.close()
    kinds = [type(r.event).__name__ for r in ctx.store.read_all() if type(r.event).__name__.startswith("Subscriber")]
    assert kinds == ["SubscriberAdded", "SubscriberPaused", "SubscriberRemoved"]
    ctx.db.dispose()
