"""The watchdog judges a worker on the server's view of its polls, which lags (app/waiting.py,
POLLER_VIEW_LAG): however short ``stall_after`` is, a worker is not called stalled before the
view has had that long to show a poll. The view is a fixed one here (one function under test:
the watch loop); the watchdog against a real jammed worker is tests/faults/test_watchdog.py."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import app.watchdog as watchdog
from app.watchdog import LivenessWatchdog, QueueView

FLOOR = 0.6  # stands for POLLER_VIEW_LAG (15 s) to keep the test short


def frozen(last_poll: datetime | None, backlog: int = 5):
    async def look(client, task_queue, identity):
        return QueueView(backlog=backlog, backlog_age_s=30.0, dispatch_rate=0.0, last_poll=last_poll)
    return look


async def test_a_short_stall_after_waits_out_the_poller_view_lag(monkeypatch):
    monkeypatch.setattr(watchdog, "POLLER_VIEW_LAG", FLOOR)
    monkeypatch.setattr(watchdog, "look", frozen(datetime.now(timezone.utc) - timedelta(seconds=1)))
    stall = await asyncio.wait_for(LivenessWatchdog(None, "q", "me", stall_after=0.1, interval=0.05).watch(), 5)
    assert stall.since_s >= FLOOR, stall


async def test_a_worker_whose_polls_move_is_not_stalled(monkeypatch):
    monkeypatch.setattr(watchdog, "POLLER_VIEW_LAG", FLOOR)
    start = datetime.now(timezone.utc)
    looks = iter(range(10**6))

    async def moving(client, task_queue, identity):
        return QueueView(backlog=5, backlog_age_s=1.0, dispatch_rate=3.0,
                         last_poll=start + timedelta(seconds=next(looks)))

    monkeypatch.setattr(watchdog, "look", moving)
    dog = LivenessWatchdog(None, "q", "me", stall_after=0.1, interval=0.05)
    done, pending = await asyncio.wait({asyncio.ensure_future(dog.watch())}, timeout=4 * FLOOR)
    assert not done, "a worker that keeps polling was called stalled"
    for task in pending:
        task.cancel()
