"""4 and 5. The daily sweep over a large ledger, the open-case footprint, and a month-end wave.

One engine worker process (``python -m bench.worker engine``) and the dev server in memory:

5. Sweep: a ledger of 100,000 invoices of which 10,000 are overdue (the rest not yet due) is
   swept with ``app.sweeps.run_sweep`` (the `sweep` command): time until it returns (once the
   cases it opened have recorded their opening), and until every overdue invoice's case is open
   (its CaseOpened projected).
4. Footprint: the worker's resident memory with those 10,000 cases open and waiting on their
   first notice's timer, then after the month-end wave in which every one of them sends that
   notice to the SMTP sink, and the wave's notices per second. As on a real month-end morning
   the notices are due at once: the first one is due when a case opens, but the policy's send
   window opens only after the sweep has finished, so they all wait for the same moment.

Baseline, same server, same run: bare three-activity workflows (bench/bare.py) per second;
ratio = cases opened per second / bare workflows per second, and notices per second / bare
workflows per second. The memory target is its own baseline (ratio = 300 MB / RSS).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select

from tests.ports import free_port
from bench.common import (
    POLICY,
    DevServer,
    Result,
    SignallingSink,
    WorkerProcess,
    payload_keys,
    ratio,
    scratch,
)
from bench.throughput import bare_round

RSS_TARGET_MB = 300.0


def write_ledger(db, total: int, overdue: int, as_of: date) -> None:
    from store.schema import customers, invoices

    now = datetime.now(timezone.utc)
    people = [{"customer_id": f"SC-{c:05d}", "name": f"Sweep Customer {c}", "email": f"ap{c}@sweep.test",
               "country": "US", "language": "en", "timezone": "UTC", "risk_grade": "ABCD"[c % 4]}
              for c in range(min(total, 5000))]
    rows = []
    for n in range(total):
        due = as_of - timedelta(days=10 + n % 50) if n < overdue else as_of + timedelta(days=1 + n % 60)
        rows.append({"invoice_id": f"SW-{n:07d}", "customer_id": f"SC-{n % len(people):05d}", "currency": "USD",
                     "amount_minor": 10_000 + (n * 37) % 900_000, "paid_minor": 0, "issue_date": due - timedelta(days=30),
                     "due_date": due, "imported_at": now})
    with db.transaction() as session:
        session.execute(insert(customers), people)
        for k in range(0, len(rows), 5000):
            session.execute(insert(invoices), rows[k:k + 5000])


# The sweep has opened cases at 0.76 to 0.96 of the same run's bare workflows per second; the
# send window is placed for 0.7 of it, so that all cases are open and waiting before the wave,
# on a slow machine too (a fixed 30/s opened the window before the last case on one that made 24).
OPEN_SHARE_OF_BARE = 0.7


def wave_moment(now: datetime, overdue: int, open_rate: float) -> datetime | None:
    """When the send window should open: after the sweep (opening ``open_rate`` cases per
    second), on a whole second, and with an hour of the day left (a window cannot cross
    midnight)."""
    start = now + timedelta(seconds=15 + overdue / open_rate)
    start = start.replace(microsecond=0) + timedelta(seconds=1)
    return start if (start + timedelta(hours=1)).date() == now.date() else None


def policy_text(window_start: datetime | None, first_notice_after: int) -> str:
    """The benchmark policy with its first notice held back until ``window_start`` (UTC, the
    bench customers' time zone); without one, due ``first_notice_after`` seconds after opening."""
    text = POLICY.read_text()
    if window_start is None:
        text = text.replace('version = "bench-1"', f'version = "bench-wave-{first_notice_after}"')
        return text.replace('after = "PT0S"', f'after = "PT{first_notice_after}S"')
    opens = window_start.strftime("%H:%M:%S")
    text = text.replace('version = "bench-1"', f'version = "bench-wave-{opens.replace(":", "")}"')
    return text.replace('send_window = "any"', f'send_window = "{opens}-23:59:59"')


def _count(db, table, where=None) -> int:
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    with db.read() as session:
        return session.execute(query).scalar_one()


def worker_backlog(address: str, queue: str) -> str:
    """The task queue as the server sees it (backlog, when its pollers last polled), for a stall."""
    import subprocess

    from bench.common import BIN

    try:
        shown = subprocess.run([str(BIN / "temporal"), "task-queue", "describe", "--address", address,
                                "--task-queue", queue], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return " (task queue: " + " | ".join(" ".join(line.split()) for line in shown.splitlines()[1:] if line.strip()) + ")"


# No progress for this long: the step is reported as stalled instead of waited for. Longer than
# the worker's watchdog takes to notice a stalled worker and replace it (120 s by default,
# COLLECTIONS_WATCHDOG_STALL_AFTER), so that a stall it recovers from is measured, not given up on.
STALL_S = 240.0


async def _until(count, target: int, not_before: float = 0.0, interval: float = 0.5) -> tuple[float, int, bool]:
    """Wait until ``count() >= target``: (when, count reached, stalled). Stalled when the count
    has not moved for STALL_S seconds (counted from ``not_before`` at the earliest)."""
    last, moved = -1, time.perf_counter()
    while True:
        reached, now = count(), time.perf_counter()
        if reached >= target:
            return now, reached, False
        if reached != last:
            last, moved = reached, now
        elif now - max(moved, not_before) > STALL_S:
            return now, reached, True
        await asyncio.sleep(interval)


def watchdog_replacements(worker: WorkerProcess) -> list[str]:
    """The worker's watchdog lines (worker.supervise): each a stalled worker it replaced. The log
    is copied to bench/out/stall-*.log when there is one (the scratch directory is removed)."""
    from bench.common import OUT

    text = worker.log_path.read_text(errors="replace")
    found = [line.split("stalled: ", 1)[-1][:300] for line in text.splitlines() if "watchdog: worker" in line]
    if found:
        (OUT / f"stall-{time.strftime('%Y%m%d-%H%M%S')}-watchdog.log").write_text(text[-2_000_000:])
    return found


async def run(quick: bool = False, profile: bool = False, sizes: tuple[int, int] | None = None) -> list[Result]:
    """``sizes``: (invoices, overdue) instead of the standard ones (a smaller reproduction)."""
    from sqlalchemy import table as sql_table

    from app.context import Context
    from app.settings import Settings
    from app.sweeps import run_sweep
    from store.schema import EVENTS_TABLE, case_summary

    total, overdue = sizes or ((10_000, 300) if quick else (100_000, 10_000))
    results: list[Result] = []
    with scratch("sweep") as directory:
        server = DevServer(directory, file=False)
        sink = SignallingSink().start()
        try:
            await server.ready()
            bare = await bare_round(server, directory, 200 if quick else 500, "sweep-bare")
            # every first notice waits for the send window, which opens after the whole sweep
            # (near midnight, when no window fits: due a fixed time after each case opens)
            expected_rate = OPEN_SHARE_OF_BARE * bare["rate"]
            window = wave_moment(datetime.now(timezone.utc), overdue, expected_rate)
            wave_after = int(30 + overdue / expected_rate)
            policy_path = directory / "policy.toml"
            policy_path.write_text(policy_text(window, wave_after))
            keys = payload_keys()
            metrics = f"127.0.0.1:{free_port()}"
            url = f"sqlite:///{directory / 'collections.db'}"
            env = {"COLLECTIONS_DATABASE_URL": url, "COLLECTIONS_DATA_DIR": str(directory),
                   "TEMPORAL_ADDRESS": server.address, "COLLECTIONS_TASK_QUEUE": "sweep-bench",
                   "COLLECTIONS_WORKFLOW_ID_PREFIX": "sw-", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port),
                   "COLLECTIONS_PAYLOAD_KEYS": keys, "COLLECTIONS_POLICY": str(policy_path),
                   "COLLECTIONS_SDK_METRICS_ADDRESS": metrics}
            ctx = Context(Settings(database_url=url, data_dir=directory, temporal_address=server.address,
                                   task_queue="sweep-bench", workflow_id_prefix="sw-", payload_keys=keys,
                                   policy_path=policy_path))
            as_of = date.today()
            write_ledger(ctx.db, total, overdue, as_of)
            ctx.policy()
            worker = WorkerProcess("engine", env, directory / "worker.log",
                                   profile=Path("bench/out/profile-wave.speedscope.json") if profile else None)
            try:
                await worker.ready()
                done_at: list[float] = []
                await asyncio.sleep(1.0)
                rest_rss = worker.rss()
                t0 = time.perf_counter()
                sweeping = asyncio.create_task(run_sweep(ctx, as_of))
                sweeping.add_done_callback(lambda _: done_at.append(time.perf_counter()))
                opened, n_opened, open_stalled = await _until(lambda: _count(ctx.db, case_summary), overdue)
                if open_stalled and not sweeping.done():  # the sweep workflow is stuck with its cases
                    sweeping.cancel()
                    summary, swept = {"stalled": True}, opened
                else:
                    summary, swept = await sweeping, done_at[0]
                    assert summary["cases_opened"] == overdue, summary
                first_due = (t0 + wave_after if window is None
                             else time.perf_counter() + (window - datetime.now(timezone.utc)).total_seconds())
                waiting_rss = worker.rss()
                waiting_ok = opened < first_due
                events = sql_table(EVENTS_TABLE)
                notices_done, n_sent, wave_stalled = await _until(
                    lambda: _count(ctx.db, case_summary, case_summary.c.level >= 1), overdue,
                    not_before=first_due, interval=1.0)
                after_rss = worker.rss()
                await asyncio.sleep(5)  # a notice sent again after its first was recorded arrives late
                sent_twice, received = sink.sent_twice, sink.count
                event_count = _count(ctx.db, events)
                replaced = watchdog_replacements(worker)
                backlog = (worker_backlog(server.address, "sweep-bench") + worker.stall_evidence(metrics)
                           if open_stalled or wave_stalled else "")
            finally:
                worker.stop()
        finally:
            sink.stop()
            server.stop()
            if "ctx" in locals():
                ctx.db.dispose()
    base = bare["rate"]
    sweep_s, open_s = swept - t0, opened - t0 - (STALL_S if open_stalled else 0)
    open_rate = n_opened / open_s
    wave_s = notices_done - first_due - (STALL_S if wave_stalled else 0)  # first notice due .. last recorded
    how = ("all due at once when the send window opened" if window is not None
           else "due as their cases opened, no send window fitted before midnight")
    notice_rate = n_sent / max(wave_s, 0.001)
    stalled = {"open": f"STALLED: {n_opened:,} of {overdue:,} cases opened, then none for {STALL_S:.0f} s{backlog}; "
                       if open_stalled else "",
               "wave": f"STALLED: {n_sent:,} of {overdue:,} notices recorded, then none for {STALL_S:.0f} s{backlog}; "
                       if wave_stalled else ""}
    note = f"{total:,} invoices, {overdue:,} overdue; dev server in memory"
    results.append(Result(
        name=f"sweep {total:,} invoices, open the {overdue:,} overdue", value=round(open_rate, 1),
        unit="cases opened/s", baseline=round(base, 1), baseline_name="bare 3-activity workflows/s",
        ratio=ratio(open_rate, base),
        note=f"{stalled['open']}`sweep` {'given up' if open_stalled else 'returned'} after {sweep_s:.1f} s, "
             f"{n_opened:,} cases open (CaseOpened projected) "
             f"in {open_s:.1f} s; {note}",
        extra={"sweep_s": round(sweep_s, 1), "all_open_s": round(open_s, 1), "summary": summary, "bare": bare},
    ))
    results.append(Result(
        name=f"worker RSS, {overdue:,} open cases waiting on timers", value=round(waiting_rss, 1), unit="MB",
        baseline=RSS_TARGET_MB, baseline_name="target MB", ratio=round(RSS_TARGET_MB / waiting_rss, 2),
        target="<= 300 MB", met=waiting_rss <= RSS_TARGET_MB,
        note=f"worker at rest {rest_rss:.0f} MB" + ("" if waiting_ok else "; the wave had begun before the last case opened"),
        extra={"rest_rss_mb": round(rest_rss, 1)},
    ))
    results.append(Result(
        name=f"worker RSS after the month-end wave ({overdue:,} notices)", value=round(after_rss, 1), unit="MB",
        baseline=RSS_TARGET_MB, baseline_name="target MB", ratio=round(RSS_TARGET_MB / after_rss, 2),
        target="<= 300 MB", met=after_rss <= RSS_TARGET_MB,
        note=f"{stalled['wave']}{event_count:,} events in the store",
    ))
    if replaced:
        stalled["wave"] = (f"the worker's watchdog replaced a stalled worker {len(replaced)} time(s) during the "
                           f"sweep and the wave ({'; '.join(replaced)}); " + stalled["wave"])
    results.append(Result(
        name="month-end wave: notices sent and recorded", value=round(notice_rate, 1), unit="notices/s",
        baseline=round(base, 1), baseline_name="bare 3-activity workflows/s", ratio=ratio(notice_rate, base),
        note=f"{stalled['wave']}{n_sent:,} notices in {wave_s:.0f} s (from the first one due to the last one recorded; "
             f"{how}); notices sent twice: {sent_twice} ({received:,} e-mails received)",
        extra={"sent_twice": sent_twice, "emails_received": received, "watchdog_replacements": len(replaced)},
    ))
    return results
