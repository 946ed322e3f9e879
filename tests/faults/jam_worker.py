"""The engine's worker (``worker.run``: supervised, with its watchdog) plus one test workflow
that jams it: ``python tests/faults/jam_worker.py``, configured from the environment.

A ``WatchdogJam`` workflow activated by the first worker of this process never yields: it
blocks its workflow-task thread for good. The SDK reports it as a deadlock after 2 s, then
cannot evict it (its thread never ends), so the task slot it holds is never given back (the
SDK's safe eviction, temporalio/worker/_workflow.py). As many of them as the worker has
workflow-task slots leave it with every slot used and no poller: the state of the month-end
stall. Run by the replacement (a new image of this process, ``worker.replace_process``: it
knows itself by ``worker.LINEAGE_ENV``), the workflow completes at once. Which
worker runs it decides, not which workflow it is: how many jams the first worker takes
before its slots are all held is the SDK's affair, and one it never took must not jam the
replacement too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

from temporalio import workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from worker import LINEAGE_ENV  # noqa: E402 - set in the new image of a process that replaced itself

WORKERS_BUILT = [0]  # how many workers this process image has built
NEVER = threading.Event()


@workflow.defn(name="WatchdogJam", sandboxed=False)
class JamWorkflow:
    @workflow.run
    async def run(self) -> str:
        if WORKERS_BUILT[0] == 1 and not os.environ.get(LINEAGE_ENV):  # the first worker: jam it
            NEVER.wait()  # blocks the workflow-task thread in C: not even the SDK's interrupt reaches it
        return "done"


def main() -> None:
    import worker
    from app.logs import configure_logging
    from app.settings import Settings

    configure_logging(Settings().log_format)
    build = worker.build_worker

    def counted_build(*args, **kwargs):
        WORKERS_BUILT[0] += 1
        return build(*args, **kwargs)

    worker.build_worker = counted_build
    asyncio.run(worker.run(extra_workflows=[JamWorkflow]))


if __name__ == "__main__":
    main()
