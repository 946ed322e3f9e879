"""A caller waiting on a workflow that cannot make progress is told so, in one line."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.worker import Worker

from app.waiting import WorkflowStuck, await_workflow


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


async def test_a_task_no_worker_picks_up_is_reported_after_the_given_wait(dev_env):
    queue = f"unattended-{uuid.uuid4().hex[:6]}"
    handle = await dev_env.client.start_workflow("AnswersLater", id=f"unattended-{queue}", task_queue=queue)
    with pytest.raises(WorkflowStuck, match="no worker has picked up its task"):
        await asyncio.wait_for(await_workflow(dev_env.client, handle.id, handle.result(), timeout=None,
                                              task_queue=queue, unattended_after=2), 30)
    await handle.terminate()
