"""2. Event store: appends per second vs raw SQLAlchemy Core inserts of the same rows, and the
projection rebuild of the read-side dataset (bench/reads.py) in events per second.

Appends: the histories of bench/lifecycles.py, one ``EventStore.append`` per decision as the
workflow makes them (about 1.1 events each), into a fresh database: one writer working one
stream at a time, and 50 writers on 50 streams at once (threads). Baseline, same run, same
database server: every row such an append writes (event rows, event-id rows, the case's
summary row, its approvals rows and its customer's exposure row, all computed beforehand)
inserted with plain Core statements, one transaction per append, the same writers.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from sqlalchemy import delete, insert

from bench.common import OUT, Result, median, ratio, scratch, spread

WRITERS = 50


def _dataset(cases: int):
    from bench.lifecycles import histories

    return [(facts.invoice_id, appends) for facts, appends in histories(cases, seed=2)]


def _raw_rows(data):
    """Per append, the rows the engine's append writes, computed up front (no timing)."""
    from domain.state import fold
    from store.event_store import _encode
    from store.projections import approval_rows, summary_row

    recorded_at = datetime(2026, 11, 20, tzinfo=timezone.utc)
    summaries: dict[str, dict] = {}
    seen_cases: set[str] = set()
    seen_keys: set[tuple] = set()
    out = []
    for _, appends in data:
        state = None
        for events in appends:
            state = fold(events, state)
            summary = summary_row(state)
            summaries[summary["case_id"]] = summary
            key = (summary["customer_id"], summary["currency"])
            mine = [x for x in summaries.values() if (x["customer_id"], x["currency"]) == key]
            opened = [x for x in mine if x["closed_at"] is None]
            row = {"customer_id": key[0], "currency": key[1], "customer_name": max(x["customer_name"] for x in mine),
                   "open_cases": len(opened), "open_balance_minor": sum(x["balance_minor"] for x in opened),
                   "disputed_minor": sum(x["disputed_minor"] for x in opened),
                   "credit_minor": sum(x["credit_minor"] for x in mine),
                   "on_credit_hold": any(x["credit_hold"] for x in mine)}
            new_summary = summary["case_id"] not in seen_cases
            new_exposure = key not in seen_keys
            seen_cases.add(summary["case_id"])
            seen_keys.add(key)
            out.append({"new_summary": new_summary, "new_exposure": new_exposure,
                "events": [{"originator_id": e.case_id, "originator_version": e.version, "topic": type(e).__name__,
                            "state": _encode(e, {"command": "bench"}, recorded_at)} for e in events],
                "ids": [{"event_id": str(e.event_id), "stream_id": str(e.case_id), "version": e.version}
                        for e in events],
                "summary": summary, "approvals": approval_rows(state), "exposure": dict(row),
            })
    return out


def _streams(data, raw):
    """Appends grouped per stream, in order: [(stream_id, [(expected, events, raw_rows)])]."""
    streams, k = [], 0
    for invoice_id, appends in data:
        items = []
        for events in appends:
            items.append((events[0].version - 1, events, raw[k]))
            k += 1
        streams.append((events[0].case_id, items))
    return streams


def _run(streams, writers: int, one) -> float:
    """Appends per second with ``writers`` threads, stream i going to writer i % writers."""
    lanes = [streams[w::writers] for w in range(writers)]
    count = sum(len(items) for _, items in streams)
    start = threading.Barrier(writers + 1)

    def lane(mine):
        start.wait()
        for stream_id, items in mine:
            for expected, events, rows in items:
                one(stream_id, expected, events, rows)

    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(lane, mine) for mine in lanes]
        start.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        return count / (time.perf_counter() - t0)


def _engine(db):
    from store.event_store import EventStore

    store = EventStore(db)

    def one(stream_id, expected, events, rows):
        store.append(stream_id, expected, events, {"command": "bench"})

    return one


def _raw(db):
    """Plain Core statements on a Core connection, one transaction per append (on SQLite
    BEGIN IMMEDIATE, as every engine write)."""
    from sqlalchemy import bindparam, update

    from store.event_store import EventStore
    from store.schema import approvals, case_summary, customer_exposure, event_ids

    events_table = EventStore(db)._records.__table__  # the recorder's table, with its column types
    writer = db.engine.execution_options(sqlite_begin="IMMEDIATE")
    ins_events, ins_ids = insert(events_table), insert(event_ids)
    ins_summary = insert(case_summary)
    upd_summary = update(case_summary).where(case_summary.c.case_id == bindparam("key"))
    del_approvals = delete(approvals).where(approvals.c.case_id == bindparam("key"))
    ins_approvals = insert(approvals)
    ins_exposure = insert(customer_exposure)
    upd_exposure = update(customer_exposure).where(customer_exposure.c.customer_id == bindparam("k1"),
                                                   customer_exposure.c.currency == bindparam("k2"))

    def one(stream_id, expected, events, rows):
        summary, exposure = rows["summary"], rows["exposure"]
        with writer.begin() as conn:
            conn.execute(ins_events, rows["events"])
            conn.execute(ins_ids, rows["ids"])
            if rows["new_summary"]:
                conn.execute(ins_summary, summary)
            else:
                conn.execute(upd_summary, {**summary, "key": summary["case_id"]})
            if rows["approvals"]:
                conn.execute(del_approvals, {"key": summary["case_id"]})
                conn.execute(ins_approvals, rows["approvals"])
            if rows["new_exposure"]:
                conn.execute(ins_exposure, exposure)
            else:
                conn.execute(upd_exposure, {**exposure, "k1": exposure["customer_id"], "k2": exposure["currency"]})

    return one


def _fresh(dialect: str, directory, tag: str):
    from store.db import Database

    if dialect == "sqlite":
        return Database(f"sqlite:///{directory / f'{tag}.db'}"), None
    from bench.pg import create_database

    url = create_database(f"bench_store_{tag}_{uuid.uuid4().hex[:6]}")
    return Database(url), url


def _drop(db, url):
    db.dispose()
    if url:
        from bench.pg import drop_database

        drop_database(url)


def appends(quick: bool) -> list[Result]:
    from bench.pg import available

    cases = 150 if quick else 300
    data = _dataset(cases)
    raw = _raw_rows(data)
    streams = _streams(data, raw)
    total_events = sum(len(r["events"]) for r in raw)
    rounds = 1 if quick else 2
    results = []
    dialects = ["sqlite"] + (["postgresql"] if available() else [])
    with scratch("store") as directory:
        for dialect in dialects:
            for writers in (1, WRITERS):
                engine_rates, raw_rates = [], []
                for r in range(rounds):
                    for kind, rates in (("raw", raw_rates), ("engine", engine_rates)):
                        db, url = _fresh(dialect, directory, f"{kind}{writers}r{r}")
                        try:
                            one = _engine(db) if kind == "engine" else _raw(db)
                            rates.append(_run(streams, writers, one))
                        finally:
                            _drop(db, url)
                value, base = median(engine_rates), median(raw_rates)
                label = "1 writer (one stream at a time)" if writers == 1 else f"{writers} concurrent streams"
                results.append(Result(
                    name=f"event store appends, {dialect}, {label}", value=round(value, 1), unit="appends/s",
                    baseline=round(base, 1), baseline_name="raw Core inserts of the same rows/s",
                    ratio=ratio(value, base), target=">= 0.8", met=(ratio(value, base) or 0) >= 0.8,
                    spread=f"engine {spread(engine_rates)}; raw {spread(raw_rates)}".replace(" ; ", "; "),
                    note=f"{len(raw)} appends of {total_events} events, {cases} streams; median of {rounds}",
                ))
    return results


def rebuild(quick: bool) -> list[Result]:
    """The projection rebuild of the read-side dataset, timed when the dataset was built
    (bench/dataset.py: its bulk insert, the baseline, and then its rebuild, one run on one
    machine). A cached dataset keeps those figures; ``--fresh`` builds and times them again."""
    from bench.reads import dataset_databases

    results = []
    for dialect, db, info in dataset_databases(quick):
        db.dispose()
        replayed, elapsed, base = info["rebuilt"], info["rebuild_s"], info.get("bulk_insert_events_per_s")
        when = "in this run" if info.get("built_now") else f"when the cached dataset was built, {info.get('built_at', 'earlier')}"
        results.append(Result(
            name=f"projection rebuild, {dialect}, {replayed:,} events", value=round(replayed / elapsed),
            unit="events/s", baseline=round(base) if base else None,
            baseline_name="bulk insert of the same events/s (dataset load)", ratio=ratio(replayed / elapsed, base),
            note=f"{elapsed:.0f} s; {info['cases']:,} cases; timed {when}",
        ))
    return results


def db_store(db):
    from store.event_store import EventStore

    return EventStore(db)


async def run(quick: bool = False, profile: bool = False) -> list[Result]:
    OUT.mkdir(parents=True, exist_ok=True)
    return appends(quick) + rebuild(quick)
