"""Waiting on a workflow without hanging: every caller that awaits a workflow's answer
(an Update's reply, a run's result) goes through ``await_workflow``.

A workflow whose task keeps failing (a bug, a non-deterministic change, a sandbox
restriction) never answers: Temporal retries the task forever and the caller would wait
forever. So while waiting we describe the execution now and then; once its pending
workflow task has failed and is being retried, we stop waiting and say why in one line.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable

CHECK_EVERY = 1.0  # seconds between two looks at the execution while waiting
# The SDK's deadlock detector fails a workflow task whose activation took over 2 s: a real
# deadlock, or an activation starved of CPU (a loaded or jammed worker) that a retry gets through.
# Only after this many such failures in a row is the workflow reported as stuck.
DEADLOCK_FAILURES_TOLERATED = 3
DEADLOCK_MARK = "TMPRL1101"
# The server's view of a queue's pollers lags: a worker polling every second was shown as last
# polling up to 9 s before (a loaded 2-core machine, dev server; that was the root partition's
# view alone, which app/watchdog.py::look now completes with the other partitions'). A queue
# that has been polled is judged unattended only after this long without a poll, whatever wait
# the caller allows.
POLLER_VIEW_LAG = 15.0


# The server refuses an Update outright (FAILED_PRECONDITION, WorkflowNotReadyFailure) while the
# workflow's task is on its third attempt or later: a worker starved of CPU or being replaced
# fails or loses a task twice, and a person's command would fail with it. Such a refusal is sent
# again, like a busy or unreachable server; ``await_workflow`` decides when a task's failures
# mean the workflow is stuck.
NOT_READY_DETAIL = "WorkflowNotReadyFailure"


class WorkflowStuck(RuntimeError):
    """The workflow cannot make progress; the message says why (one line)."""


async def await_workflow(client, workflow_id: str, call: Awaitable[Any], *, timeout: float | None,
                         task_queue: str, unattended_after: float | None = None) -> Any:
    """Await ``call`` (an Update or a result of ``workflow_id``); raise ``WorkflowStuck``
    when the workflow's task is failing, ``RuntimeError`` when nothing answered within
    ``timeout`` seconds (None: wait as long as the workflow makes progress) or when its
    workflow task has waited ``unattended_after`` seconds for a worker to pick it up."""
    answer = asyncio.ensure_future(call)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while True:
            wait = CHECK_EVERY if deadline is None else max(0.0, min(CHECK_EVERY, deadline - loop.time()))
            done, _ = await asyncio.wait({answer}, timeout=wait)
            if done:
                return answer.result()
            failure = await workflow_task_failure(client, workflow_id, unattended_after)
            if failure is not None:
                raise WorkflowStuck(f"workflow {workflow_id} cannot make progress: {failure}")
            if deadline is not None and loop.time() >= deadline:
                raise RuntimeError(f"no worker answered within {timeout:.0f}s on task queue {task_queue!r} "
                                   "(is the worker running?)")
    finally:
        if not answer.done():
            answer.cancel()


async def workflow_task_failure(client, workflow_id: str, unattended_after: float | None = None) -> str | None:
    """Why the workflow's current task cannot make progress, or None when it can.

    A pending workflow task on its second attempt or later whose last attempt *failed*
    (not timed out: a worker that died is retried, and recovers by itself) is a stuck one;
    so is one that no worker has picked up for ``unattended_after`` seconds."""
    from datetime import datetime, timezone

    from temporalio.api.enums.v1 import EventType, PendingWorkflowTaskState
    from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
    from temporalio.service import RPCError

    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return None  # not started yet, or the server is busy: the deadline still holds
    if not described.raw_description.HasField("pending_workflow_task"):
        return None
    pending = described.raw_description.pending_workflow_task
    if unattended_after is not None and pending.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
        now = datetime.now(timezone.utc)
        waited = (now - pending.scheduled_time.ToDatetime(timezone.utc)).total_seconds()
        if waited > unattended_after:
            # A worker busy with a backlog (a month-end burst) still polls whenever a slot frees:
            # the task waits its turn. Unattended means nobody has polled the queue for as long
            # (and for POLLER_VIEW_LAG at least: the server shows polls late, and shows no poller
            # at all for a while on a queue a worker has only just begun to poll).
            # A queue whose tasks are being handed out has a worker, and a look that failed (a server
            # too busy to describe the queue in time) says nothing: neither is judged (a 10,000-case
            # sweep on a slow machine was reported so while its worker opened 17 cases a second).
            view = await _queue_view(client, described.raw_description.execution_config.task_queue.name)
            if view is None or view.dispatch_rate > 0:
                return None
            quiet = waited if view.last_poll is None else (now - view.last_poll).total_seconds()
            if quiet > max(unattended_after, POLLER_VIEW_LAG):
                return (f"no worker has picked up its task for {waited:.0f}s (is the worker running?); it goes on "
                        "by itself once a worker polls")
    if pending.attempt < 2:
        return None
    history = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace, execution=described.raw_description.workflow_execution_info.execution,
            maximum_page_size=20,
        )
    )
    for event in history.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            try:  # messages are encrypted (app/codec.py): decode with the client's converter
                message = str(await client.data_converter.decode_failure(failure))
            except Exception:  # noqa: BLE001 - a key we do not hold: say what we have
                message = failure.message
            first_line = (message.strip().splitlines() or ["(no message)"])[0]
            if DEADLOCK_MARK in first_line and pending.attempt - 1 < DEADLOCK_FAILURES_TOLERATED:
                return None  # perhaps only starved of CPU: the retry may get through
            return f"its workflow task failed {pending.attempt - 1} time(s), last with: {first_line}"
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            return None
    return None


async def _queue_view(client, task_queue: str):
    """The workflow task queue as the server sees it, any worker's polls (``app.watchdog.look``);
    None when the server did not say."""
    from app.watchdog import look

    try:
        return await look(client, task_queue, None)
    except Exception:  # noqa: BLE001 - not knowing is no evidence either way
        return None


async def execute_update(handle, update: str, *args: Any, id: str, result_type: type) -> Any:
    """Run the Update ``update`` on ``handle`` until the server takes it, under one ``id``.

    The same id every time: an Update the server aborted (its workflow task was lost) may have
    been recorded, and is then answered as such. Refusals that pass are sent again: the server
    unreachable or aborting, a workflow not ready (its task failing, see ``NOT_READY_DETAIL``),
    or RESOURCE_EXHAUSTED (the server admits 10 in-flight Updates per workflow; the others back
    off with jitter). Callers bound it with ``await_workflow``."""
    from temporalio.service import RPCError, RPCStatusCode

    pause = 0.2
    while True:
        try:
            return await handle.execute_update(update, *args, id=id, result_type=result_type)
        except RPCError as error:
            if not _passing(error):
                raise
            busy = error.status == RPCStatusCode.RESOURCE_EXHAUSTED
        await asyncio.sleep(random.uniform(pause / 2, pause) if busy else 0.2)
        pause = min(pause * 1.5, 2.0) if busy else pause


def _passing(error) -> bool:
    """Whether a refused Update may pass when sent again."""
    from temporalio.service import RPCStatusCode

    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.ABORTED, RPCStatusCode.RESOURCE_EXHAUSTED):
        return True
    return error.status == RPCStatusCode.FAILED_PRECONDITION and any(
        detail.type_url.endswith(NOT_READY_DETAIL) for detail in error.grpc_status.details)
