"""`sweep` waits for the openings of the cases it started; a worker that stops recording them
makes it give up after the command timeout without growth, saying how many are missing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from app.sweeps import openings_recorded
from store.ledger import SweepReads
from tests.store.test_event_store_contract import busy_case


async def test_openings_that_never_come_are_given_up_after_the_timeout_without_growth(make_context, sqlite_url):
    context = make_context(sqlite_url, command_timeout=1.5)
    seen: list[tuple[int, int]] = []
    started = time.monotonic()
    missing = await openings_recorded(context, datetime.now(timezone.utc) - timedelta(minutes=1), 3,
                                      lambda done, opened: seen.append((done, opened)))
    waited = time.monotonic() - started
    assert missing == 3 and seen == [(0, 3)], (missing, seen)
    assert 1.5 <= waited < 5, waited


async def test_nothing_to_wait_for_returns_at_once(make_context, sqlite_url):
    context = make_context(sqlite_url, command_timeout=30)
    started = time.monotonic()
    assert await openings_recorded(context, datetime.now(timezone.utc), 0) == 0
    assert time.monotonic() - started < 2


def test_the_openings_since_a_moment_are_counted_on_both_databases(database_url, make_context):
    context = make_context(database_url)
    cases = [busy_case(f"SWR-{n}") for n in range(3)]
    for case in cases:
        context.store.append(case.state.case_id, 0, case.events)
    opened = sorted(case.state.opened_at for case in cases)  # the same moment here: one fixed clock
    reads = SweepReads(context.db)
    assert reads.cases_opened_since(opened[0]) == 3
    assert reads.cases_opened_since(opened[0] - timedelta(days=1)) == 3
    assert reads.cases_opened_since(opened[-1] + timedelta(microseconds=1)) == 0
