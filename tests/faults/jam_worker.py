"""The engine's worker (``worker.run``: supervised, with its watchdog) plus one test workflow
that jams it: ``python tests/faults/jam_worker.py``, configured from the environment.

A ``WatchdogJam`` workflow's first activation in this process never yields: it blocks its
workflow-task thread for good. The SDK reports it as a deadlock after 2 s, then cannot evict
it (its thread never ends), so the task slot it holds is never given back (the SDK's safe
eviction, temporalio/worker/_workflow.py). As many of them as the worker has workflow-task
slots leave it with every slot used and no poller: the state of the month-end stall. Run
again in the same process (the replacement worker), the workflow completes at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from temporalio import workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

JAMMED: set[str] = set()  # workflows whose first activation in this process blocked
NEVER = threading.Event()


@workflow.defn(name="WatchdogJam", sandboxed=False)
class JamWorkflow:
    @workflow.run
    async def run(self) -> str:
        workflow_id = workflow.info().workflow_id
        if workflow_id not in JAMMED:
            JAMMED.add(workflow_id)
            NEVER.wait()  # blocks the workflow-task thread in C: not even the SDK's interrupt reaches it
        return "done"


def main() -> None:
    import worker
    from app.logs import configure_logging
    from app.settings import Settings

    configure_logging(Settings().log_format)
    asyncio.run(worker.run(extra_workflows=[JamWorkflow]))


if __name__ == "__main__":
    main()
