"""A caller waiting on a workflow that cannot make progress is told so, in one line."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from temporalio import workflow
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from app import waiting
from app.waiting import POLLER_VIEW_LAG, WorkflowStuck, await_workflow
from app.watchdog import QueueView


@workflow.defn(name="AlwaysFailingTask")
class AlwaysFailingTask:
    @workflow.run
    async def run(self) -> str:
        raise TypeError("a bug in workflow code")  # not an ApplicationError: the task is retried forever


@workflow.defn(name="AnswersLater")
class AnswersLater:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(3)
        return "done"


STARVED = {"left": 0}  # activations still to block (unsandboxed worker: this module's state is shared)


@workflow.defn(name="StarvedOnce")
class StarvedOnce:
    """Its first activations take over 2 s, as on a worker starved of CPU: the SDK's deadlock
    detector fails those workflow tasks; a retry gets through."""

    @workflow.run
    async def run(self) -> str:
        if STARVED["left"] > 0:
            STARVED["left"] -= 1
            time.sleep(2.5)  # noqa: ASYNC251 - blocking on purpose: what a starved activation looks like
        return "done"


@workflow.defn(name="StarvedAnswering")
class StarvedAnswering:
    """Starved like ``StarvedOnce`` while ``STARVED`` says so; answers the Update ``finish``."""

    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self) -> str:
        if STARVED["left"] > 0:
            STARVED["left"] -= 1
            time.sleep(2.5)  # noqa: ASYNC251 - blocking on purpose: a starved activation
        await workflow.wait_condition(lambda: self.finished)
        return "done"

    @workflow.update
    async def finish(self) -> str:
        self.finished = True
        return "finished"


@workflow.defn(name="BusyActivation")
class BusyActivation:
    """Holds one of its worker's workflow-task slots for a while (CPU, as under a burst)."""

    @workflow.run
    async def run(self) -> str:
        time.sleep(1.2)  # noqa: ASYNC251 - blocking on purpose: a busy worker, under the 2-s deadlock check
        return "done"


async def test_a_task_waiting_behind_a_busy_worker_is_waited_on_not_reported(dev_env):
    """The month-end burst: a worker with work queued polls whenever a slot frees, so a task that
    waits its turn longer than ``unattended_after`` is not 'no worker' (the sweep failed so). The
    server refreshes what it says of pollers only every few seconds (up to 9 s seen on a loaded
    machine), so a polled queue is not judged unattended before ``POLLER_VIEW_LAG`` even when the
    caller allows less (here 3 s, and 24 s of work ahead)."""
    queue = f"busy-{uuid.uuid4().hex[:6]}"
    unattended_after = 3
    async with Worker(dev_env.client, task_queue=queue, workflows=[BusyActivation, AnswersLater],
                      workflow_runner=UnsandboxedWorkflowRunner(), max_concurrent_workflow_tasks=2,
                      max_cached_workflows=4):
        ahead = [await dev_env.client.start_workflow("BusyActivation", id=f"ahead-{i}-{queue}", task_queue=queue)
                 for i in range(40)]  # 40 x 1.2 s on 2 slots: about 24 s of work before the one behind
        waiting = await dev_env.client.start_workflow("AnswersLater", id=f"behind-{queue}", task_queue=queue)
        assert await asyncio.wait_for(await_workflow(dev_env.client, waiting.id, waiting.result(), timeout=None,
                                                     task_queue=queue, unattended_after=unattended_after),
                                      120) == "done"
        assert [await h.result() for h in ahead] == ["done"] * 40
        assert await first_task_wait(waiting) > unattended_after  # it did wait past the allowance


async def first_task_wait(handle) -> float:
    """Seconds the workflow's first task waited in the queue (scheduled to started)."""
    times = {}
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind in ("workflow_task_scheduled_event_attributes", "workflow_task_started_event_attributes"):
            times.setdefault(kind, event.event_time.ToDatetime())
    return (times["workflow_task_started_event_attributes"]
            - times["workflow_task_scheduled_event_attributes"]).total_seconds()


async def test_a_task_starved_once_is_waited_on_a_deadlock_every_time_is_reported(dev_env):
    queue = f"waiting-{uuid.uuid4().hex[:6]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[StarvedOnce],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        STARVED["left"] = 1
        once = await dev_env.client.start_workflow("StarvedOnce", id=f"starved-{queue}", task_queue=queue)
        assert await asyncio.wait_for(await_workflow(dev_env.client, once.id, once.result(), timeout=None,
                                                     task_queue=queue), 60) == "done"
        STARVED["left"] = 100
        always = await dev_env.client.start_workflow("StarvedOnce", id=f"always-{queue}", task_queue=queue)
        with pytest.raises(WorkflowStuck, match="deadlock") as raised:
            await asyncio.wait_for(await_workflow(dev_env.client, always.id, always.result(), timeout=None,
                                                  task_queue=queue), 90)
        assert "failed 3 time(s)" in str(raised.value) or "failed 4 time(s)" in str(raised.value), raised.value
        STARVED["left"] = 0
        await always.terminate()


async def test_an_update_refused_while_the_task_fails_is_sent_again_and_answered(dev_env):
    """From its third attempt on, the server refuses an Update to a workflow whose task keeps
    failing (a jammed worker's deadlocks failed a case's task twice, and ``case open`` failed with
    'Workflow Task in failed state'). ``execute_update`` sends it again until the task gets through."""
    queue = f"refused-{uuid.uuid4().hex[:6]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[StarvedAnswering],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        STARVED["left"] = 100
        handle = await dev_env.client.start_workflow("StarvedAnswering", id=f"refused-{queue}", task_queue=queue)
        await until_task_attempt(handle, 3, 60)
        with pytest.raises(RPCError, match="Workflow Task in failed state"):
            await handle.execute_update("finish", id="sent-once", result_type=str)  # what the person got
        sending = asyncio.ensure_future(waiting.execute_update(handle, "finish", id="sent-again", result_type=str))
        await asyncio.sleep(3)
        assert not sending.done(), sending  # still trying, not failed
        STARVED["left"] = 0
        assert await asyncio.wait_for(sending, 60) == "finished"
        assert await asyncio.wait_for(handle.result(), 30) == "done"


async def until_task_attempt(handle, attempt: int, timeout: float) -> None:
    """Until the workflow's pending task is on ``attempt`` or later."""
    deadline = time.monotonic() + timeout
    while True:
        described = (await handle.describe()).raw_description
        if described.HasField("pending_workflow_task") and described.pending_workflow_task.attempt >= attempt:
            return
        assert time.monotonic() < deadline, f"the task did not reach attempt {attempt} in {timeout:.0f} s"
        await asyncio.sleep(0.2)


async def test_a_failing_workflow_task_is_reported_not_waited_on(dev_env):
    queue = f"waiting-{uuid.uuid4().hex[:6]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[AlwaysFailingTask, AnswersLater]):
        handle = await dev_env.client.start_workflow("AlwaysFailingTask", id=f"stuck-{queue}", task_queue=queue)
        with pytest.raises(WorkflowStuck, match="a bug in workflow code") as raised:
            await asyncio.wait_for(await_workflow(dev_env.client, handle.id, handle.result(), timeout=None,
                                                  task_queue=queue), 30)
        assert "\n" not in str(raised.value)
        await handle.terminate()
        # a slow but healthy workflow is waited on (no deadline), and answers
        slow = await dev_env.client.start_workflow("AnswersLater", id=f"slow-{queue}", task_queue=queue)
        assert await await_workflow(dev_env.client, slow.id, slow.result(), timeout=None, task_queue=queue) == "done"


async def test_no_worker_is_a_deadline_not_a_hang(dev_env):
    queue = f"nobody-{uuid.uuid4().hex[:6]}"
    handle = await dev_env.client.start_workflow("AnswersLater", id=f"orphan-{queue}", task_queue=queue)
    with pytest.raises(RuntimeError, match="no worker answered within 2s"):
        await await_workflow(dev_env.client, handle.id, handle.result(), timeout=2, task_queue=queue)
    await handle.terminate()


async def test_a_task_no_worker_picks_up_is_reported_after_the_given_wait_and_the_poller_view_lag(dev_env):
    queue = f"unattended-{uuid.uuid4().hex[:6]}"
    handle = await dev_env.client.start_workflow("AnswersLater", id=f"unattended-{queue}", task_queue=queue)
    with pytest.raises(WorkflowStuck, match="no worker has picked up its task") as raised:
        await asyncio.wait_for(await_workflow(dev_env.client, handle.id, handle.result(), timeout=None,
                                              task_queue=queue, unattended_after=2), 40)
    waited = int(re.search(r"for (\d+)s", str(raised.value)).group(1))
    assert waited >= POLLER_VIEW_LAG, raised.value
    await handle.terminate()


async def test_a_queue_the_server_shows_no_poller_for_yet_is_not_judged_before_the_poller_view_lag(
        dev_env, monkeypatch):
    """The server shows a worker that has only just begun to poll a queue a few seconds late, as
    no poller at all (a busy worker failed a full run so: 'no worker ... for 3s'). No poller shown
    is judged as no poll, with the same floor."""
    queue = f"unseen-{uuid.uuid4().hex[:6]}"
    handle = await dev_env.client.start_workflow("AnswersLater", id=f"unseen-{queue}", task_queue=queue)

    async def no_poller_shown(client, task_queue):
        return QueueView(backlog=1, backlog_age_s=3.5, dispatch_rate=0.0, last_poll=None)

    monkeypatch.setattr(waiting, "_queue_view", no_poller_shown)
    await asyncio.sleep(3.5)
    assert await waiting.workflow_task_failure(dev_env.client, handle.id, unattended_after=3) is None
    await handle.terminate()


@pytest.mark.parametrize("shown", ["the server did not say", "tasks are being handed out"])
async def test_a_task_waiting_behind_a_busy_worker_is_not_judged_unattended(dev_env, monkeypatch, shown):
    """A 10,000-case sweep on a slow machine (`python -m bench --only sweep`, 2026-12-07 19:02) was
    given up as 'no worker has picked up its task for 131s (is the worker running?)' while its worker
    opened 17 cases a second: the sweep's own task waited its turn behind thousands. A queue whose
    tasks are being dispatched has a worker, and a look at the queue that failed is no evidence:
    neither is judged; a queue shown idle with no poller still is (the test above)."""
    queue = f"busy-{uuid.uuid4().hex[:6]}"
    handle = await dev_env.client.start_workflow("AnswersLater", id=f"busy-{queue}", task_queue=queue)

    async def busy_queue(client, task_queue):
        if shown == "the server did not say":
            return None
        return QueueView(backlog=2300, backlog_age_s=130.0, dispatch_rate=17.0, last_poll=None)

    monkeypatch.setattr(waiting, "_queue_view", busy_queue)
    await asyncio.sleep(POLLER_VIEW_LAG + 1)
    assert await waiting.workflow_task_failure(dev_env.client, handle.id, unattended_after=2) is None
    await handle.terminate()
