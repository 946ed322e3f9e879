"""The Temporal worker: runs case workflows and their activities.

    python worker.py            # configuration from the environment (see README)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.case_store import CaseStoreActivities
from activities.insurance import InsuranceActivities
from activities.mailbox import enqueue_notice
from activities.notices import NoticeActivities, SmtpSettings
from activities.sweep import SweepActivities
from app.context import Context, connect
from app.logs import configure_logging
from app.metrics import sdk_runtime, serve_metrics
from app.settings import Settings
from store.ledger import SweepReads
from workflows.case import CollectionCaseWorkflow
from workflows.mailbox import CustomerMailboxWorkflow
from workflows.sweep import SweepWorkflow

# Pure modules shared with the sandbox instead of re-imported for every workflow run.
PASSTHROUGH = ("pydantic", "pydantic_core", "annotated_types", "babel", "holidays", "domain", "activities.contracts",
               "workflows.messages")


def smtp_settings(settings: Settings) -> SmtpSettings:
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        sender=settings.mail_from,
        message_domain=settings.message_domain,
    )


def precompile_workflow_modules() -> None:
    """The sandbox re-imports each workflow's module for every workflow run it starts. Without
    bytecode on disk (PYTHONDONTWRITEBYTECODE=1, an editable install) every one of those imports
    compiles the source again, which showed in the worker's profiles (docs/PERFORMANCE.md).
    Writes the standard __pycache__ entry when it is missing or stale; best effort."""
    import importlib.util
    import os
    import py_compile
    import sys

    for name in ("workflows", *(w.__module__ for w in WORKFLOWS)):
        source = getattr(sys.modules.get(name), "__file__", None)
        if not source or not source.endswith(".py"):
            continue
        cache = importlib.util.cache_from_source(source)
        try:
            if not os.path.exists(cache) or os.path.getmtime(cache) < os.path.getmtime(source):
                py_compile.compile(source, cfile=cache, doraise=True)
        except (OSError, py_compile.PyCompileError):
            pass  # a read-only install compiles as before


WORKFLOWS = (CollectionCaseWorkflow, SweepWorkflow, CustomerMailboxWorkflow)


def workflow_runner(sandboxed: bool = True):
    """Temporal's sandbox (the default) re-imports each workflow module for every run and runs
    every activation and every payload's serialization context through it: about a quarter of the
    worker's CPU per case here. Off, workflow code runs as plain Python (it is written for that:
    the domain is pure, time and ids come from ``workflow``); the tests and the replay check run
    it sandboxed, so a non-deterministic call still fails there."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def build_worker(client: Client, context: Context, task_queue: str | None = None) -> Worker:
    settings = context.settings
    precompile_workflow_modules()
    queue = task_queue or settings.task_queue
    from app.customers import CustomerService, cached_policy

    customers = CustomerService(context, cached_policy(context.policy))
    store = CaseStoreActivities(context.store, context.policies, after_append=customers.on_case_events)
    insurance = InsuranceActivities(context.db, smtp_settings(settings))
    notices = NoticeActivities(context.db, smtp_settings(settings), store=context.store)
    sweep = SweepActivities(SweepReads(context.db), context.policies, context.policy, queue, settings.workflow_id_prefix)
    return Worker(
        client,
        task_queue=queue,
        workflows=list(WORKFLOWS),
        activities=[store.append_events, store.load_case, store.load_policy, notices.send_notice,
                    notices.send_digest, enqueue_notice, sweep.prepare, sweep.page, insurance.notify_insurer],
        activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity"),
        workflow_runner=workflow_runner(settings.workflow_sandbox),
        max_cached_workflows=settings.max_cached_workflows,
    )


def dump_stacks_on_signal(loop: asyncio.AbstractEventLoop, signum: int = signal.SIGUSR1) -> None:
    """``kill -USR1 <worker pid>`` writes every thread's stack and every pending asyncio task
    (where each coroutine waits) to stderr: what a stuck worker is doing, without stopping it."""
    import faulthandler
    import sys

    def dump() -> None:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        print(f"--- {len(tasks)} pending asyncio tasks", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=6, file=sys.stderr)
        sys.stderr.flush()

    loop.add_signal_handler(signum, dump)


async def run(settings: Settings | None = None) -> None:
    context = Context(settings)
    context.db  # migrate before taking work
    serve_metrics(context.settings.metrics_address, context.db)
    client = await connect(context.settings, runtime=sdk_runtime(context.settings.sdk_metrics_address))
    context._client = client
    worker = build_worker(client, context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    dump_stacks_on_signal(loop)
    logging.getLogger(__name__).info("worker polling task queue %s", context.settings.task_queue)
    async with worker:
        await stop.wait()


def main() -> None:
    configure_logging(Settings().log_format)
    asyncio.run(run())


if __name__ == "__main__":
    main()
