"""3. Read side at scale: p50/p95 latency of the screens' queries on 100,000 cases and about
1,000,000 events (bench/dataset.py), on SQLite and PostgreSQL, through the same functions the
API and the console call.

Each figure's baseline is its target (ratio = target / p95: 1.0 or more is met, and says by
how much); the same-run latency of a primary-key read of one case row is given beside it, as a
measure of how fast the machine was at that moment.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from bench.common import Result, percentile

LIST_TARGET_MS, AGING_TARGET_MS = 50.0, 200.0


def _context(db):
    from app.context import Context
    from app.settings import Settings

    ctx = Context(Settings(database_url=db.url))
    ctx.__dict__["db"] = db  # the dataset's open Database (cached_property slot)
    return ctx


def _time(call: Callable[[], object], repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def queries(ctx) -> dict[str, tuple[Callable[[], object], float]]:
    """Name -> (the call, its target in ms)."""
    from sqlalchemy import select

    from app import reports
    from app.services import CaseService
    from bench.lifecycles import AS_OF
    from store.schema import case_summary

    service = CaseService(ctx)
    today = AS_OF.date()
    rng = random.Random(7)
    with ctx.db.read() as session:
        invoices = [r[0] for r in session.execute(select(case_summary.c.invoice_id).limit(20000))]
        case_ids = [r[0] for r in session.execute(select(case_summary.c.case_id).limit(20000))]
        # only collectors with open cases: an empty worklist would flatter the figure
        collectors = sorted(r[0] for r in session.execute(
            select(case_summary.c.assignee).where(case_summary.c.closed_at.is_(None),
                                                  case_summary.c.assignee.is_not(None)).distinct()))

    def pk_lookup():
        with ctx.db.read() as session:
            session.execute(select(case_summary.c.status).where(case_summary.c.case_id == rng.choice(case_ids))).one()

    return {
        "primary-key read of one case row": (pk_lookup, 0.0),
        "collector worklist (first 200 open cases by priority)": (lambda: reports.worklist(ctx, today), LIST_TARGET_MS),
        "collector worklist, one collector's cases": (
            lambda: reports.worklist(ctx, today, assignee=rng.choice(collectors)), LIST_TARGET_MS),
        "approvals inbox (first page of pending)": (lambda: inbox(service), LIST_TARGET_MS),
        "case page (summary + full event timeline)": (lambda: service.show(rng.choice(invoices)), LIST_TARGET_MS),
        "aging report (open receivables by currency and bucket)": (lambda: aging(ctx, today), AGING_TARGET_MS),
    }


def inbox(service):
    import inspect

    if "limit" in inspect.signature(service.approvals).parameters:
        return service.approvals("pending", limit=100)
    return service.approvals("pending")


def aging(ctx, today):
    from app import reports

    if hasattr(reports, "aging_report"):
        return reports.aging_report(ctx, today)
    return reports.aging(reports.open_receivables(ctx), today)


def dataset_databases(quick: bool):
    from bench import pg
    from bench.dataset import FULL, QUICK, open_dataset

    cases = QUICK if quick else FULL
    for dialect in ("sqlite", "postgresql"):
        if dialect == "postgresql" and not pg.available():
            continue
        db, info = open_dataset(dialect, cases)
        yield dialect, db, info


async def run(quick: bool = False, profile: bool = False) -> list[Result]:
    repeat = 10 if quick else 40
    results: list[Result] = []
    for dialect, db, info in dataset_databases(quick):
        try:
            ctx = _context(db)
            measured = {name: (_time(call, repeat if target != AGING_TARGET_MS else max(5, repeat // 2)), target)
                        for name, (call, target) in queries(ctx).items()}
            reference = measured.pop("primary-key read of one case row")[0]
            ref_p95 = percentile(reference, 95)
            for name, (samples, target) in measured.items():
                p50, p95 = percentile(samples, 50), percentile(samples, 95)
                results.append(Result(
                    name=f"{name}, {dialect}", value=round(p95, 1), unit="ms p95", baseline=target,
                    baseline_name="target ms", ratio=round(target / p95, 2) if p95 else None,
                    target=f"p95 <= {target:g} ms", met=p95 <= target,
                    spread=f"p50 {p50:.1f} ms; {len(samples)} runs",
                    note=f"{info['cases']:,} cases, {info['events']:,} events; PK read p95 {ref_p95:.2f} ms",
                    extra={"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "pk_read_p95_ms": round(ref_p95, 3)},
                ))
        finally:
            db.dispose()
    return results
