"""The baseline: a bare Temporal workflow that runs three trivial activities, nothing else."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_WORKFLOW = "BareThreeActivities"


@activity.defn(name="bare_step")
async def bare_step(n: int) -> int:
    return n + 1


@workflow.defn(name=BARE_WORKFLOW)
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(bare_step, n, start_to_close_timeout=timedelta(seconds=30))
        return n
