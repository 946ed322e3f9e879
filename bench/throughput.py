"""1. Case throughput vs bare Temporal, on the dev server in memory and on its SQLite file.

Engine: N cases through a short lifecycle (bench/bench.toml): the case opens, its first
notice is due at once and goes to the SMTP sink, the driver pays the invoice in full as
soon as the sink has the notice (an Update, as `pay` does), the case closes as paid.
Every event is appended and projected by the worker, as in production.
Baseline: N bare workflows of three trivial activities, same server, same run.

Each round starts a fresh worker process; rounds alternate baseline and engine so drift
on a noisy machine hits both alike. Rate = N / (first start .. last result).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

from tests.ports import free_port
from bench.common import (
    OUT,
    POLICY,
    DevServer,
    Result,
    SignallingSink,
    WorkerProcess,
    median,
    payload_keys,
    ratio,
    scratch,
    spread,
    thread_cpu,
)

SAMPLED_HISTORIES = 20  # finished workflows whose history is read back after each round (history_profile)
CONCURRENCY = 100  # lifecycles (or bare workflows) in flight at once, for both (256 once stalled the worker: docs/PERFORMANCE.md)


async def history_profile(client, workflow_ids: list[str]) -> dict:
    """What one workflow costs the server, read from finished histories (raw, as stored: payloads
    encrypted): events, workflow tasks, activity tasks, local-activity markers, Updates, bytes;
    the mean over ``workflow_ids``."""
    from temporalio.api.enums.v1 import EventType

    counted = {"events": 0, "workflow_tasks": 0, "activity_tasks": 0, "local_activities": 0, "updates": 0,
               "timers": 0, "history_bytes": 0, "input_bytes": 0}
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            counted["events"] += 1
            counted["history_bytes"] += event.ByteSize()
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                counted["workflow_tasks"] += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                counted["activity_tasks"] += 1
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED and event.marker_recorded_event_attributes.marker_name \
                    == "core_local_activity":
                counted["local_activities"] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                counted["updates"] += 1
            elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
                counted["timers"] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                counted["input_bytes"] += event.workflow_execution_started_event_attributes.input.ByteSize()
    n = max(1, len(workflow_ids))
    return {k: round(v / n, 1) for k, v in counted.items()}


async def bare_round(server: DevServer, directory: Path, n: int, tag: str) -> dict:
    from temporalio.client import Client

    from bench.bare import BARE_WORKFLOW

    queue = f"bare-{tag}"
    worker = WorkerProcess("bare", {"TEMPORAL_ADDRESS": server.address, "COLLECTIONS_TASK_QUEUE": queue},
                           directory / f"worker-{tag}.log")
    try:
        await worker.ready()
        client = await Client.connect(server.address)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> int:
            async with gate:
                return await client.execute_workflow(BARE_WORKFLOW, i, id=f"{tag}-{i}", task_queue=queue)

        cpu0, wcpu0, dcpu0 = server.cpu(), worker.cpu(), time.process_time()
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        dcpu = time.process_time() - dcpu0
        assert results == [i + 3 for i in range(n)]
        history = await history_profile(client, [f"{tag}-{i}" for i in range(min(n, SAMPLED_HISTORIES))])
        return {"rate": n / elapsed, "history": history, "seconds": elapsed, "server_cpu_ms": (server.cpu() - cpu0) * 1000 / n,
                "worker_cpu_ms": (worker.cpu() - wcpu0) * 1000 / n, "driver_cpu_ms": dcpu * 1000 / n,
                "rss_mb": worker.rss()}
    finally:
        worker.stop()


def invoice_facts(n: int, tag: str):
    from domain.commands import InvoiceFacts
    from domain.events import Customer
    from domain.money import Money
    from domain.policy import RiskGrade

    today = date.today()
    for i in range(n):
        customer = Customer(customer_id=f"BC-{i:06d}", name=f"Bench Customer {i}", email=f"ap{i}@bench.test",
                            country="US", language="en")
        amount = Money.of(Decimal(100 + (i * 37) % 9000) + Decimal(i % 100) / 100, "USD")
        yield InvoiceFacts(invoice_id=f"{tag}-INV-{i:06d}", customer=customer, risk_grade=list(RiskGrade)[i % 4],
                           amount=amount, paid=Money.zero("USD"), issue_date=today - timedelta(days=60),
                           due_date=today - timedelta(days=30))


async def pay_with_retry(handle, payment, retried: list[int]):
    """The `pay` Update, sent again while the server answers that the case's workflow task is
    failing (it is retried; under overload a task can time out), as a client would."""
    from temporalio.service import RPCError

    from workflows.messages import CommandReply

    for attempt in range(120):
        try:
            return await handle.execute_update("pay", payment, id=str(payment.command_id), result_type=CommandReply)
        except RPCError as error:
            if "Workflow Task in failed state" not in str(error) or attempt == 119:
                raise
            retried.append(1)
            await asyncio.sleep(1.0)


async def case_round(server: DevServer, directory: Path, n: int, tag: str, profile: Path | None = None) -> dict:
    from sqlalchemy import func, select

    from activities.opening import start_case
    from app.context import Context
    from app.settings import Settings
    from domain import commands as cmd
    from domain.decider import case_uuid
    from domain.events import OpenReason
    from domain.users import SYSTEM_ACTOR, Actor
    from domain.policy import Role
    from store.schema import EVENTS_TABLE, case_summary
    from workflows.messages import CommandReply, case_workflow_id

    sink = SignallingSink().start()
    sink.attach(asyncio.get_running_loop())
    queue, prefix = f"cases-{tag}", f"{tag}-"
    env = {
        "COLLECTIONS_DATABASE_URL": f"sqlite:///{directory / f'collections-{tag}.db'}",
        "COLLECTIONS_DATA_DIR": str(directory),
        "TEMPORAL_ADDRESS": server.address,
        "COLLECTIONS_TASK_QUEUE": queue,
        "COLLECTIONS_WORKFLOW_ID_PREFIX": prefix,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "COLLECTIONS_PAYLOAD_KEYS": payload_keys(),
        "COLLECTIONS_POLICY": str(POLICY),
        "COLLECTIONS_SDK_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    settings = Settings(database_url=env["COLLECTIONS_DATABASE_URL"], data_dir=directory,
                        temporal_address=server.address, task_queue=queue, workflow_id_prefix=prefix,
                        payload_keys=env["COLLECTIONS_PAYLOAD_KEYS"], policy_path=POLICY)
    context = Context(settings)
    policy = context.policy()  # migrates the database and pins the policy before the worker starts
    worker = WorkerProcess("engine", env, directory / f"worker-{tag}.log", profile=profile)
    collector = Actor(name="bench", role=Role.collector)
    try:
        await worker.ready()
        client = await context.client()
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(facts) -> CommandReply:
            case_id = case_uuid(facts.invoice_id)
            opening = cmd.OpenCase(command_id=uuid5(NAMESPACE_URL, f"bench-open:{facts.invoice_id}"),
                                   actor=SYSTEM_ACTOR, case_id=case_id, invoice=facts, reason=OpenReason.overdue)
            async with gate:
                await start_case(client, task_queue=queue, id_prefix=prefix, policy=policy, opening=opening)
                await asyncio.wait_for(sink.notice_for(str(case_id)), 300)
                handle = client.get_workflow_handle(case_workflow_id(facts.invoice_id, prefix))
                payment = cmd.RecordPayment(command_id=uuid5(NAMESPACE_URL, f"bench-pay:{facts.invoice_id}"),
                                            actor=collector, payment_id=f"pay-{facts.invoice_id}",
                                            amount=facts.amount, reference="bench", received_on=date.today())
                reply = await pay_with_retry(handle, payment, retried)
                await handle.result()
                return reply

        retried: list[int] = []
        invoices = list(invoice_facts(n, tag))
        cpu0, wcpu0, dcpu0 = server.cpu(), worker.cpu(), time.process_time()
        t0 = time.perf_counter()
        try:
            replies = await asyncio.gather(*(one(f) for f in invoices))
        except (TimeoutError, asyncio.TimeoutError) as error:  # a lifecycle stuck for 5 minutes: the worker stalled
            raise RuntimeError("a case made no progress for 300 s"
                               + worker.stall_evidence(env["COLLECTIONS_SDK_METRICS_ADDRESS"])) from error
        elapsed = time.perf_counter() - t0
        dcpu = time.process_time() - dcpu0
        server_cpu, worker_cpu, rss = server.cpu() - cpu0, worker.cpu() - wcpu0, worker.rss()
        threads = {k: round(v * 1000 / n, 1) for k, v in thread_cpu(worker.pid).items() if v > 0.05}
        assert all(r.status == "paid" for r in replies), {r.status for r in replies}
        with context.db.read() as session:
            events = session.execute(select(func.count()).select_from(
                __import__("sqlalchemy").table(EVENTS_TABLE))).scalar_one()
            paid = session.execute(select(func.count()).select_from(case_summary)
                                   .where(case_summary.c.status == "paid")).scalar_one()
        assert paid == n, (paid, n)
        assert sink.count >= n, (sink.count, n)  # more: a notice sent again (counted, docs/PERFORMANCE.md)
        history = await history_profile(client, [case_workflow_id(f.invoice_id, prefix)
                                                 for f in invoices[:SAMPLED_HISTORIES]])
        return {"rate": n / elapsed, "history": history, "seconds": elapsed, "events_per_case": events / n,
                "duplicate_notices": sink.count - n, "updates_retried": len(retried),
                "server_cpu_ms": server_cpu * 1000 / n, "worker_cpu_ms": worker_cpu * 1000 / n,
                "driver_cpu_ms": dcpu * 1000 / n, "rss_mb": rss, "worker_threads_cpu_ms": threads}
    finally:
        worker.stop()
        sink.stop()
        context.db.dispose()


def _history_note(h: dict) -> str:
    return (f"{h['events']:g} history events, {h['workflow_tasks']:g} workflow tasks, {h['activity_tasks']:g} activity "
            f"tasks, {h['local_activities']:g} local activities, {h['history_bytes'] / 1024:.1f} KB")


async def run(quick: bool = False, profile: bool = False) -> list[Result]:
    n = 150 if quick else 1000
    rounds = 1  # one round of each at N=1000 keeps `make bench` under 20 minutes
    modes = (("memory", False),) if quick else (("memory", False), ("file", True))
    results: list[Result] = []
    for label, file in modes:
        with scratch(f"throughput-{label}") as directory:
            server = DevServer(directory, file=file)
            try:
                await server.ready()
                bare, cases = [], []
                # warm the server (namespace caches, first task-queue creation) outside the timed rounds
                await bare_round(server, directory, 20, f"warm-{label}")
                for r in range(rounds):
                    bare.append(await bare_round(server, directory, n, f"b{r}"))
                    prof = OUT / f"profile-cases-{label}.speedscope.json" if profile and r == 0 else None
                    cases.append(await case_round(server, directory, n, f"c{r}", profile=prof))
            finally:
                server.stop()
        base = median([b["rate"] for b in bare])
        value = median([c["rate"] for c in cases])
        server_name = f"dev server {server.label}"
        results.append(Result(
            name=f"case throughput, {label}", value=round(value, 2), unit="cases/s", baseline=round(base, 2),
            baseline_name=f"bare 3-activity workflows/s ({server_name})", ratio=ratio(value, base),
            target=">= 1.0", met=(ratio(value, base) or 0) >= 1.0,
            spread=f"cases {spread([c['rate'] for c in cases])}; bare {spread([b['rate'] for b in bare])}".strip(),
            note=f"N={n}, {rounds} round(s), median; notices sent twice: "
                 f"{sum(c['duplicate_notices'] for c in cases)}, updates retried: {sum(c['updates_retried'] for c in cases)}; "
                 f"per case: {_history_note(cases[0]['history'])}, per bare workflow: {_history_note(bare[0]['history'])}; "
                 f"worker CPU {median([c['worker_cpu_ms'] for c in cases]):.0f} ms per case, "
                 f"{median([b['worker_cpu_ms'] for b in bare]):.0f} ms per bare workflow",
            extra={"server": server_name, "n": n, "bare": bare, "cases": cases},
        ))
    return results
