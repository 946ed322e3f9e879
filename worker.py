"""The Temporal worker: runs case workflows and their activities.

    python worker.py            # configuration from the environment (see README)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.abc
import importlib.machinery
import json
import logging
import os
import signal
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NoReturn

from temporalio.client import Client
from temporalio.converter import (
    DataConverter,
    StorageDriverStoreContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowInstance, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.case_store import CaseStoreActivities
from activities.insurance import InsuranceActivities
from activities.internal_mail import TeamNotifier
from activities.mailbox import enqueue_notice
from activities.notices import NoticeActivities
from activities.sweep import SweepActivities
from app.context import Context, connect, smtp_settings
from app.logs import configure_logging
from app.metrics import sdk_runtime, serve_metrics
from app.settings import Settings
from app.subscribers import run_dispatcher
from domain.calendar import preload as preload_calendars
from store.ledger import SweepReads
from workflows.case import CollectionCaseWorkflow
from workflows.mailbox import CustomerMailboxWorkflow
from workflows.sweep import SweepWorkflow

# Pure modules shared with the sandbox instead of re-imported for every workflow run.
PASSTHROUGH = ("pydantic", "pydantic_core", "annotated_types", "babel", "holidays", "domain", "activities.contracts",
               "workflows.messages")


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


class _SharedCodeLoader(importlib.machinery.SourceFileLoader):
    """Loads a workflow module's code once per process; every later import runs that same
    code object again in a fresh module."""

    _code: dict[str, types.CodeType] = {}
    _lock = threading.Lock()

    def get_code(self, fullname: str) -> types.CodeType:
        with self._lock:
            code = self._code.get(self.path)
        if code is None:
            code = super().get_code(fullname)
            with self._lock:
                code = self._code.setdefault(self.path, code)
        return code


class SharedWorkflowCode(importlib.abc.MetaPathFinder):
    """The sandbox imports each workflow module again for every workflow run, and each import
    unmarshalled the module's bytecode into new code objects: about 67 KB per cached case, and
    part of the CPU each new run costs (docs/PERFORMANCE.md, section 4). Code objects are
    immutable, so the imports share one; the module itself is still executed afresh in each
    run's sandbox, with the sandbox's checks, as before. A worker runs the code it started
    with even if the file changes under it, as its registered workflow definitions do."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _SharedCodeLoader(fullname, spec.origin)
        return spec


def share_workflow_code() -> None:
    """Installs SharedWorkflowCode for this process's workflow modules (once)."""
    if not any(isinstance(finder, SharedWorkflowCode) for finder in sys.meta_path):
        modules = {w.__module__ for w in WORKFLOWS}
        sys.meta_path.insert(0, SharedWorkflowCode(modules | {m.rpartition(".")[0] for m in modules}))


def workflow_runner(sandboxed: bool = True, converter: DataConverter | None = None) -> WorkflowRunner:
    """Temporal's sandbox (the default) re-imports each workflow module for every run and runs
    every activation through it. Off, workflow code runs as plain Python (it is written for that:
    the domain is pure, time and ids come from ``workflow``); the tests and the replay check run
    it sandboxed, so a non-deterministic call still fails there. With ``converter`` (the client's)
    the payloads' serialization context is answered outside the sandbox when nothing in the
    converter uses it (``ContextFreeCodecRunner``)."""
    runner: WorkflowRunner = UnsandboxedWorkflowRunner() if not sandboxed else SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    if converter is not None and ContextFreeCodecRunner.applies(converter):
        runner = ContextFreeCodecRunner(runner)
    return runner


class ContextFreeCodecRunner(WorkflowRunner):
    """A workflow runner that answers the SDK's "which serialization context for this payload?"
    without entering the workflow's sandbox.

    With a payload codec configured (ours encrypts every payload), temporalio 1.35 asks the
    workflow instance for a serialization context once per payload sequence it encodes or
    decodes, and the sandboxed instance answers by compiling and running a snippet inside the
    sandbox: 9 to 18 % of the worker's CPU per case (docs/PERFORMANCE.md, section 1). The
    context only chooses which codec to use, and ours ignores it (``EncryptionCodec`` is not
    ``WithSerializationContext``): every payload is sealed the same way whatever its context.
    So every payload gets the workflow's own context, as the SDK gives payloads that belong to no
    command. ``applies`` refuses a codec (or external storage) that would see a difference."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner

    @staticmethod
    def applies(converter: DataConverter) -> bool:
        return not isinstance(converter.payload_codec, WithSerializationContext) and \
            getattr(converter, "external_storage", None) is None

    def prepare_workflow(self, defn) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det) -> WorkflowInstance:
        return _WorkflowContextInstance(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


_NO_STORE_CONTEXT = StorageDriverStoreContext(target=None)


class _WorkflowContextInstance(WorkflowInstance):
    """The runner's instance, with the workflow's serialization context for every payload."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self.inner = inner
        info = inner.get_info()
        self.context = WorkflowSerializationContext(namespace=info.namespace, workflow_id=info.workflow_id)

    def activate(self, act):
        return self.inner.activate(act)

    def get_serialization_context(self, command_info) -> WorkflowSerializationContext:
        return self.context

    def get_external_store_context(self, command_info) -> StorageDriverStoreContext:
        # Without external storage (``applies``) the SDK binds this context to nothing; asking
        # the sandboxed instance entered the sandbox for every payload sequence.
        return _NO_STORE_CONTEXT

    def get_info(self):
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()


def build_worker(client: Client, context: Context, task_queue: str | None = None, identity: str | None = None,
                 extra_workflows: Sequence[type] = ()) -> Worker:
    settings = context.settings
    precompile_workflow_modules()
    share_workflow_code()
    preload_calendars()  # not inside the first case activations, where it stalled a starved worker
    queue = task_queue or settings.task_queue
    from app.customers import CustomerService, cached_policy

    customers = CustomerService(context, cached_policy(context.policy))
    store = CaseStoreActivities(context.store, context.policies, after_append=customers.on_case_events)
    insurance = InsuranceActivities(context.db, smtp_settings(settings))
    from activities.rendering import NoticeRenderer
    from app.links import CustomerLinks

    links = CustomerLinks(settings)  # every notice carries the customer's self-service link
    notices = NoticeActivities(context.db, smtp_settings(settings), store=context.store,
                               renderer=NoticeRenderer(link_for=links.url_for))
    team = TeamNotifier(context.db, smtp_settings(settings), context.read_users, context.policy)
    sweep = SweepActivities(SweepReads(context.db), context.policies, context.policy, queue, settings.workflow_id_prefix,
                            store=context.store)
    return Worker(
        client,
        task_queue=queue,
        workflows=[*WORKFLOWS, *extra_workflows],
        activities=[store.append_events, store.load_case, store.load_policy, notices.send_notice,
                    notices.send_digest, enqueue_notice, sweep.prepare, sweep.page, sweep.advances, insurance.notify_insurer,
                    insurance.notify_factor, team.notify_team],
        activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity"),
        workflow_runner=workflow_runner(settings.workflow_sandbox, client.data_converter),
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        identity=identity,
    )


def dump_stacks(loop: asyncio.AbstractEventLoop) -> None:
    """Write every thread's stack and every pending asyncio task (where each coroutine waits)
    to stderr: what a stuck worker is doing, without stopping it."""
    import faulthandler

    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    print(f"--- {len(tasks)} pending asyncio tasks", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=6, file=sys.stderr)
    sys.stderr.flush()


def dump_stacks_on_signal(loop: asyncio.AbstractEventLoop, signum: int = signal.SIGUSR1) -> None:
    """``kill -USR1 <worker pid>`` writes ``dump_stacks`` to stderr (the worker's log)."""
    loop.add_signal_handler(signum, dump_stacks, loop)


EXIT_STALLED = 70  # the worker stalled more often than COLLECTIONS_WATCHDOG_RESTARTS allows
log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 60.0  # a worker asked to stop that has not stopped by then is stalled
_left_behind = False  # a stalled worker was replaced: its threads may never end
# What a process that replaced itself (``replace_process``) tells its new image: how many times
# it has done so, and the stalls of the last hour (wall clock), for COLLECTIONS_WATCHDOG_RESTARTS.
LINEAGE_ENV = "COLLECTIONS_WATCHDOG_LINEAGE"
HOUR_S = 3600.0


def replaced_before() -> tuple[int, list[float]]:
    """How many times this process has replaced itself after a stall, and when (this hour)."""
    try:
        lineage = json.loads(os.environ.get(LINEAGE_ENV) or "{}")
        return int(lineage["replacements"]), [float(t) for t in lineage["stalls"]]
    except (ValueError, TypeError, KeyError):
        return 0, []


def replace_process(replacements: int, stalls: list[float]) -> NoReturn:
    """Replace this process with a new image of itself: the same PID (what a supervisor watches),
    command line and environment, nothing else kept. A new worker in the same process would leave
    the stalled one's threads, held slots and memory behind, and the SDK state they share; replaced
    so, the month-end stall reproduced with starved CPUs was recovered (docs/PERFORMANCE.md). Every
    case is durable; what the old image had in flight is retried as after a crash."""
    os.environ[LINEAGE_ENV] = json.dumps({"replacements": replacements, "stalls": stalls})
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError as error:  # the interpreter gone or replaced (an upgrade): its supervisor restarts it
        print(f"watchdog: cannot replace process {os.getpid()} ({error}): exiting with {EXIT_STALLED}",
              file=sys.stderr, flush=True)
        exit_now(EXIT_STALLED)


async def supervise(connect_client: Callable[[], Awaitable[Client]], build: Callable[[Client, str], Worker],
                    settings: Settings, stop: asyncio.Event, on_start: Callable[[Worker], None] | None = None,
                    replace: Callable[[int, list[float]], NoReturn] | None = None) -> int:
    """Run a worker until ``stop``; when the liveness watchdog (app/watchdog.py) finds it stalled,
    log the evidence, shut it down (bounded) and replace it: with ``replace`` (``replace_process``:
    a new image of the process), else with a new worker on a new connection in this process.
    ``build(client, identity)`` makes a worker; ``on_start(worker)`` is called as each one starts.
    Returns 0 once stopped, EXIT_STALLED after more stalls within an hour than
    ``settings.watchdog_restarts``: then the process should exit for its supervisor to restart
    it (the stalled worker's threads may never end, so exit with ``os._exit``)."""
    from app.watchdog import LivenessWatchdog

    global _left_behind
    generation, restarts = replaced_before() if replace is not None else (0, [])
    while True:
        client = await connect_client()
        identity = client.identity if generation == 0 else f"{client.identity}/restart-{generation}"
        worker = build(client, identity)
        # What the process holds once its worker is built (modules, catalogues, holiday tables)
        # lives as long as the process: out of the cyclic collector's full passes, which walked it
        # every time (docs/PERFORMANCE.md, section 4).
        gc.freeze()
        running = asyncio.create_task(worker.run(), name=f"worker-{generation}")
        stopping = asyncio.create_task(stop.wait())
        waits = {running, stopping}
        watching = None
        if settings.watchdog_stall_after > 0:
            watchdog = LivenessWatchdog(client, worker.config()["task_queue"], identity,
                                        stall_after=settings.watchdog_stall_after, interval=settings.watchdog_interval)
            watching = asyncio.create_task(watchdog.watch())
            waits.add(watching)
        log.info("worker %s polling task queue %s", identity, worker.config()["task_queue"])
        if on_start is not None:
            on_start(worker)
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if watching is not None and watching not in done:
            watching.cancel()
        if watching is None or watching not in done:  # stopped, or the worker ended by itself
            stopping.cancel()
            if not running.done():
                try:  # a stalled worker never finishes shutting down (its evictions never end)
                    await asyncio.wait_for(asyncio.shield(worker.shutdown()), timeout=SHUTDOWN_TIMEOUT_S)
                except TimeoutError:
                    log.error("worker %s did not shut down within %.0f s: stalled", identity, SHUTDOWN_TIMEOUT_S)
                    dump_stacks(asyncio.get_running_loop())
                    return EXIT_STALLED
            await running  # raises what made the worker fail
            return 0
        stopping.cancel()
        stall = watching.result()
        _left_behind = True
        log.error("watchdog: worker %s stalled: %s; stacks follow, then it is replaced", identity, stall)
        dump_stacks(asyncio.get_running_loop())
        now = time.time()
        restarts = [t for t in restarts if now - t < HOUR_S] + [now]
        try:  # a stalled worker may never finish shutting down: bounded, then left behind
            await asyncio.wait_for(asyncio.shield(worker.shutdown()), timeout=max(settings.watchdog_interval, 10.0))
        except TimeoutError:
            log.error("watchdog: stalled worker %s did not shut down; left behind", identity)
        if len(restarts) > settings.watchdog_restarts:
            log.error("watchdog: %d stalls within an hour (COLLECTIONS_WATCHDOG_RESTARTS=%d): exiting with %d",
                      len(restarts), settings.watchdog_restarts, EXIT_STALLED)
            return EXIT_STALLED
        if stop.is_set():  # asked to stop meanwhile: no replacement
            return 0
        generation += 1
        if replace is not None:
            log.error("watchdog: replacing process %d with a new image of it (replacement %d)", os.getpid(), generation)
            replace(generation, restarts)


async def run(settings: Settings | None = None, extra_workflows: Sequence[type] = ()) -> int:
    context = Context(settings)
    context.db  # migrate before taking work
    serve_metrics(context.settings.metrics_address, context.db)
    runtime = sdk_runtime(context.settings.sdk_metrics_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    dump_stacks_on_signal(loop)

    async def connect_client() -> Client:
        context._client = await connect(context.settings, runtime=runtime)
        return context._client

    dispatching = asyncio.create_task(run_dispatcher(context, stop))  # the general outbox (app/subscribers.py)
    code = await supervise(connect_client, lambda client, identity: build_worker(
        client, context, identity=identity, extra_workflows=extra_workflows), context.settings, stop,
        replace=replace_process)
    stop.set()
    await dispatching
    finish(code)
    return code


def finish(code: int) -> None:
    """After ``supervise``: exit now if a stalled worker was left behind (its threads would keep
    the interpreter from exiting) or the worker stalled too often (EXIT_STALLED)."""
    if code or _left_behind:
        exit_now(code)


class Supervision:
    """What became of a ``supervised_worker``: ``code`` for ``finish`` once it has ended."""

    code: int = 0


@contextlib.asynccontextmanager
async def supervised_worker(context: Context, on_end: Callable[[], None] = lambda: None):
    """A supervised worker (``supervise``) for the body of the ``async with``, for the embedded
    stack: ``on_end`` is called if it ends by itself (failed, or stalled too often); leaving
    the body stops it. Yields a ``Supervision``: pass its ``code`` to ``finish`` once the rest
    of the stack is stopped."""
    stop = asyncio.Event()
    connections = 0

    async def connect_client() -> Client:
        nonlocal connections
        connections += 1
        if connections > 1:  # a new connection for a replacement worker
            context._client = await connect(context.settings)
        return await context.client()

    outcome = Supervision()
    supervising = asyncio.create_task(supervise(
        connect_client, lambda client, identity: build_worker(client, context, identity=identity),
        context.settings, stop))
    supervising.add_done_callback(lambda _: on_end())
    dispatching = asyncio.create_task(run_dispatcher(context, stop))  # the general outbox (app/subscribers.py)
    try:
        yield outcome
    finally:
        stop.set()
        outcome.code = await supervising
        await dispatching


def exit_now(code: int) -> None:
    """Exit at once: a stalled worker's threads would keep the interpreter from exiting."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    configure_logging(Settings().log_format)
    code = asyncio.run(run())
    # The worker has shut down (its tasks are finished or handed back to the server). Exit without
    # the interpreter's teardown, where the SDK's native threads and the metrics thread can abort
    # the process (SIGABRT seen after a clean shutdown under load): its exit code would lie.
    exit_now(code)


if __name__ == "__main__":
    main()
