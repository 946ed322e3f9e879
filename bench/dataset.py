"""The read-side dataset: N cases (about 10 events each) made by the real decider
(bench/lifecycles.py), their ledger (customers and invoices, plus invoices with no case),
bulk-inserted as event rows, then projected by the real ``EventStore.rebuild_projections``.

Cached: a SQLite file under bench/out/ and a PostgreSQL database named after the
dataset, each with a JSON note of how it was built. A cached copy is reused when the
dataset version matches (its schema is migrated forward on open, like any database).

The rows are generated once per run: each chunk is kept in a file under bench/out/rows-N/
(pickled, compressed) as it is made, and the second dialect built in the same run inserts
those files' rows instead of generating the same rows again. The files go when the run ends.
"""

from __future__ import annotations

import atexit
import json
import pickle
import shutil
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import func, insert, select

from bench.common import OUT

VERSION = 3  # bump when bench/lifecycles.py or this loader changes what they produce
CHUNK = 2000  # cases per generator task
FULL, QUICK = 100_000, 5_000
EXTRA_INVOICES = 0.2  # invoices with no case (not yet due, or paid on the ledger), per case
FRESH = False  # `python -m bench --fresh`: build (and time) the datasets again, ignoring the cache
_BUILT: set[tuple[str, int]] = set()
_GENERATED: set[int] = set()  # datasets (by case count) whose rows this run generated into bench/out/rows-N/


def _chunk(start: int, stop: int, directory: Path) -> Path:
    """Generates cases start..stop-1 and writes their rows to a file; returns its path."""
    path = directory / f"{start:07d}.pickle.z"
    path.write_bytes(zlib.compress(pickle.dumps(_rows(start, stop), protocol=pickle.HIGHEST_PROTOCOL), 1))
    return path


def _read(path: Path) -> dict:
    return pickle.loads(zlib.decompress(path.read_bytes()))


def _parts(cases: int) -> Iterator[dict]:
    """Each chunk's rows, in order: generated in a 2-process pool the first time in a run,
    read back from that generation's files afterwards (the same rows, byte for byte)."""
    directory = OUT / f"rows-{cases}"
    paths = [directory / f"{k:07d}.pickle.z" for k in range(0, cases, CHUNK)]
    if cases in _GENERATED:
        for path in paths:
            yield _read(path)
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    atexit.register(shutil.rmtree, directory, True)
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_chunk, k, min(k + CHUNK, cases), directory) for k in range(0, cases, CHUNK)]
        for future in futures:
            yield _read(future.result())
    _GENERATED.add(cases)


def _rows(start: int, stop: int) -> dict:
    from bench.lifecycles import default_policy, history
    from store.event_store import _encode

    policy = default_policy()
    events, ids, invoices, customers = [], [], [], {}
    for i in range(start, stop):
        facts, appends = history(i, policy)
        c = facts.customer
        customers[c.customer_id] = {"customer_id": c.customer_id, "name": c.name, "email": c.email,
                                    "country": c.country, "language": c.language, "timezone": c.timezone,
                                    "risk_grade": facts.risk_grade.value}
        invoices.append(_invoice(facts))
        for batch in appends:
            first = batch[0]
            meta = {"command_id": str(first.event_id), "command": "bench", "actor": first.actor,
                    "workflow_id": f"case-{facts.invoice_id}"}
            for e in batch:
                events.append({"originator_id": e.case_id, "originator_version": e.version,
                               "topic": type(e).__name__, "state": _encode(e, meta, e.occurred_at)})
                ids.append({"event_id": str(e.event_id), "stream_id": str(e.case_id), "version": e.version})
    return {"events": events, "ids": ids, "invoices": invoices, "customers": list(customers.values())}


def _invoice(facts) -> dict:
    return {"invoice_id": facts.invoice_id, "customer_id": facts.customer.customer_id,
            "currency": facts.amount.currency, "amount_minor": facts.amount.to_minor(),
            "paid_minor": facts.paid.to_minor(), "issue_date": facts.issue_date, "due_date": facts.due_date,
            "imported_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}


def _extra_invoices(cases: int) -> list[dict]:
    """Invoices that never needed a case: most not yet due, some paid on the ledger."""
    from bench.lifecycles import AS_OF, CURRENCIES

    rows = []
    for k in range(int(cases * EXTRA_INVOICES)):
        c = k % 2000
        due = AS_OF.date() + timedelta(days=1 + k % 60) if k % 5 else AS_OF.date() - timedelta(days=5 + k % 300)
        amount = 10_000 + (k * 7919) % 4_990_000
        rows.append({"invoice_id": f"BXINV-{k:07d}", "customer_id": f"BCUST-{c:05d}",
                     "currency": CURRENCIES[c % len(CURRENCIES)], "amount_minor": amount,
                     "paid_minor": amount if k % 5 == 0 and k % 10 else 0, "issue_date": due - timedelta(days=30),
                     "due_date": due, "imported_at": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    return rows


def _insert_all(db, conn, table, rows, size: int = 5000) -> None:
    for k in range(0, len(rows), size):
        conn.execute(insert(table), rows[k:k + size])


def load(db, cases: int) -> dict:
    """Generates and inserts the dataset into an empty, migrated database; returns its note."""
    from store.event_store import EventStore
    from store.schema import customers, event_ids, invoices

    store = EventStore(db)
    events_table = store._records.__table__
    info: dict = {"version": VERSION, "cases": cases, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    t0 = time.perf_counter()
    generate = insert_s = 0.0
    count = 0
    seen_customers: set[str] = set()
    writer = db.engine.execution_options(sqlite_begin="IMMEDIATE")
    reused = cases in _GENERATED
    parts = _parts(cases)
    while True:
        g0 = time.perf_counter()
        part = next(parts, None)
        generate += time.perf_counter() - g0
        if part is None:
            break
        i0 = time.perf_counter()
        with writer.begin() as conn:
            fresh = [c for c in part["customers"] if c["customer_id"] not in seen_customers]
            seen_customers.update(c["customer_id"] for c in fresh)
            _insert_all(db, conn, customers, fresh)
            _insert_all(db, conn, invoices, part["invoices"])
            _insert_all(db, conn, events_table, part["events"])
            _insert_all(db, conn, event_ids, part["ids"])
        insert_s += time.perf_counter() - i0
        count += len(part["events"])
    with writer.begin() as conn:
        _insert_all(db, conn, invoices, _extra_invoices(cases))
    rows = ("read from the files of this run's first build (nothing generated during the insert)" if reused
            else "generated by 2 processes during the insert")
    info.update(events=count, rows=rows, generate_wait_s=round(generate, 1), insert_s=round(insert_s, 1),
                bulk_insert_events_per_s=round(count / insert_s) if insert_s else None)
    r0 = time.perf_counter()
    replayed = store.rebuild_projections()
    rebuild_s = time.perf_counter() - r0
    info.update(rebuilt=replayed, rebuild_s=round(rebuild_s, 1), rebuild_events_per_s=round(replayed / rebuild_s),
                load_s=round(time.perf_counter() - t0, 1))
    tidy(db, "")
    return info


def tidy(db, table: str = "case_summary") -> None:
    """Planner statistics (and, on PostgreSQL, the visibility map index-only scans need)."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}".strip())
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql(f"ANALYZE {table}".strip())


def _note_path(dialect: str, cases: int):
    return OUT / f"reads-{dialect}-{cases}.json"


def open_dataset(dialect: str, cases: int, log=print):
    """The cached dataset's Database (built first when missing), and its note."""
    from store.db import Database
    from store.event_store import EventStore

    OUT.mkdir(parents=True, exist_ok=True)
    note = _note_path(dialect, cases)
    fresh = FRESH and (dialect, cases) not in _BUILT  # once per run
    cached = json.loads(note.read_text()) if note.exists() and not fresh else None
    if dialect == "sqlite":
        path = OUT / f"reads-{cases}.db"
        url = f"sqlite:///{path}"
        usable = cached is not None and cached.get("version") == VERSION and path.exists()
        if not usable:
            for stale in OUT.glob(f"reads-{cases}.db*"):
                stale.unlink()
    else:
        from bench import pg

        name = f"bench_reads_{cases}"
        url = pg.url_for(name)
        usable = cached is not None and cached.get("version") == VERSION and pg.exists(name)
        if not usable:
            pg.create_database(name)
    db = Database(url)  # migrates (a cached copy from an older schema is brought forward)
    if usable:
        with db.read() as session:
            events = session.execute(select(func.count()).select_from(EventStore(db)._records)).scalar_one()
        if events == cached["events"]:
            tidy(db)  # a migration on open may have rewritten rows: fresh statistics, as after a load
            return db, cached
        log(f"cached {dialect} dataset has {events} events, expected {cached['events']}: rebuilding")
        db.dispose()
        note.unlink()
        return open_dataset(dialect, cases, log)
    log(f"building the {dialect} read-side dataset: {cases:,} cases (cached afterwards in bench/out/)")
    info = load(db, cases)
    note.write_text(json.dumps(info, indent=1))
    _BUILT.add((dialect, cases))
    return db, {**info, "built_now": True}  # its rebuild was just timed: bench/store.py reuses it
