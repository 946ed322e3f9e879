"""The backtest's clock step on the real time-skipping server, when the step's work takes longer
than the SDK client's default deadline of 30 s of real time (seen in CI: a loaded machine made
one step of days outlast it, and `backtest --engine temporal` failed with "Timeout expired").

The server does not move its clock while an activity runs, so an activity of 31 s of real time
holds the step that long, as a slow notice delivery on a loaded machine does."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

from app.backtest import advance_clock

HELD = 31.0  # seconds of real time: past the client's default deadline for a call


@activity.defn
async def slow_delivery() -> None:
    await asyncio.sleep(HELD)


@workflow.defn(sandboxed=False)
class DueInAnHour:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(hours=1))
        await workflow.execute_activity(slow_delivery, start_to_close_timeout=timedelta(minutes=5))


async def test_a_clock_step_outlasts_work_that_holds_the_clock_for_more_than_30_seconds(time_env):
    queue = f"clock-{uuid.uuid4().hex[:8]}"
    async with Worker(time_env.client, task_queue=queue, workflows=[DueInAnHour], activities=[slow_delivery]):
        handle = await time_env.client.start_workflow(DueInAnHour.run, id=f"due-{queue}", task_queue=queue)
        before = await time_env.get_current_time()
        await advance_clock(time_env, timedelta(days=1))
        assert await time_env.get_current_time() - before >= timedelta(days=1)
        await handle.result()
