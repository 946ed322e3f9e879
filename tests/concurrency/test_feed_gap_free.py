"""The event feed never skips an event (docs/EVENTS.md), read over HTTP with a token while
events are appended in parallel, on PostgreSQL (and SQLite for the first test).

On PostgreSQL a sequence value is taken at insert and the row is seen at commit, so two
transactions can commit out of position order; a reader that went on after the higher one
would never see the lower one. The feed reads only up to the settled head
(EventStore.settled_head)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import insert, text

from api.server import start_web
from app.context import Context
from app.settings import Settings
from app.tokens import issue_token
from store.db import Database
from store.event_store import EventStore, _encode
from store.schema import EVENTS_TABLE
from tests.ports import free_port
from tests.conftest import ROOT, drop_postgres_database, postgres_database
from tests.store.test_event_store_contract import busy_case

WRITERS = 6
CASES_PER_WRITER = 8


@pytest.fixture
def postgres_url():
    url = postgres_database()
    yield url
    drop_postgres_database(url)


async def _serving(database_url: str, tmp):
    users = tmp / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", users)
    token = issue_token(users, "demo-manager")["token"]
    context = Context(Settings(database_url=database_url, users_path=users, data_dir=tmp))
    server = await start_web(context, "127.0.0.1", free_port())
    client = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return context, server, client


def _table_positions(db: Database) -> list[int]:
    with db.read() as session:
        return [p for (p,) in session.execute(text(f"SELECT id FROM {EVENTS_TABLE} ORDER BY id"))]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_a_reader_paging_during_parallel_appends_sees_every_event_once(backend, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    context, server, client = await _serving(url, tmp_path)
    done = threading.Event()

    def writer(n: int) -> None:
        db = Database(url)  # each writer on its own engine, as a worker process would be
        store = EventStore(db)
        try:
            for c in range(CASES_PER_WRITER):
                case = busy_case(f"PAR-{n}-{c}")
                store.append(case.state.case_id, 0, case.events[:2])
                store.append(case.state.case_id, 2, case.events[2:4])
                store.append(case.state.case_id, 4, case.events[4:])
        finally:
            db.dispose()

    async def reader() -> list[int]:
        seen, after = [], 0
        while True:
            finished = done.is_set()  # read before the page: a page after the last append sees it
            response = await client.get("/api/events", params={"after": after, "limit": 7})
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [e["position"] for e in page["events"]]
            after = page["next_after"]
            if finished and after == page["head"]:
                return seen
            if not page["events"]:
                await asyncio.sleep(0.01)

    try:
        Database(url).dispose()  # migrated once before the writers start
        reading = asyncio.create_task(reader())
        await asyncio.gather(*(asyncio.to_thread(writer, n) for n in range(WRITERS)))
        done.set()
        seen = await reading
        expected = _table_positions(context.db)
        assert len(expected) == WRITERS * CASES_PER_WRITER * len(busy_case("X").events)
        assert seen == expected, f"missing {sorted(set(expected) - set(seen))[:10]}, repeated " \
                                 f"{len(seen) - len(set(seen))}"
    finally:
        await client.aclose()
        await server.stop()
        context.db.dispose()


async def test_an_event_committed_later_with_a_lower_position_is_not_skipped(postgres_url, tmp_path):
    """Two writers that do not take the engine's table lock (a bulk load, another tool): the
    first inserts (lower position) and stays open, the second inserts and commits. A page read
    now must not hold the second without the first: it waits until the first settles."""
    context, server, client = await _serving(postgres_url, tmp_path)
    table = context.store.recorder.events_record_cls.__table__
    at = datetime(2026, 3, 2, tzinfo=timezone.utc)

    def row(invoice: str) -> dict:
        event = busy_case(invoice).events[0]
        return {"originator_id": event.case_id, "originator_version": 1, "topic": type(event).__name__,
                "state": _encode(event, {}, at)}

    slow = context.db.engine.connect()
    try:
        slow_tx = slow.begin()
        low = slow.execute(insert(table).returning(table.c.id), [row("LATE-1")]).scalar_one()
        with context.db.engine.begin() as fast:
            high = fast.execute(insert(table).returning(table.c.id), [row("LATE-2")]).scalar_one()
        assert low < high  # the lower position is not committed, the higher one is

        reading = asyncio.create_task(client.get("/api/events", params={"after": 0, "limit": 100}))
        await asyncio.sleep(1.0)
        assert not reading.done(), f"a page was answered while position {low} was in flight: {reading.result().text}"
        await asyncio.to_thread(slow_tx.commit)
        page = (await asyncio.wait_for(reading, 30)).json()
        assert [e["position"] for e in page["events"]] == [low, high]
        assert [e["data"]["invoice_id"] for e in page["events"]] == ["LATE-1", "LATE-2"]
    finally:
        slow.close()
        await client.aclose()
        await server.stop()
        context.db.dispose()
