"""A worker process for the benchmarks: ``python -m bench.worker engine|bare``.

``engine`` is the engine's own worker (``worker.build_worker``) configured from the
environment like ``python worker.py``; ``bare`` runs the baseline workflow with the
SDK's defaults. Prints READY once polling; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys


async def main(mode: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if mode == "bare":
        from bench.bare import BareWorkflow, bare_step

        client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
        worker = Worker(client, task_queue=os.environ["COLLECTIONS_TASK_QUEUE"], workflows=[BareWorkflow],
                        activities=[bare_step])
    else:  # the engine's worker as `python worker.py` runs it: supervised by its liveness watchdog
        from app.context import Context, connect
        from app.metrics import sdk_runtime
        from app.settings import Settings
        from worker import build_worker, dump_stacks_on_signal, finish, replace_process, supervise

        dump_stacks_on_signal(loop)
        context = Context(Settings())
        context.db  # migrate before taking work
        runtime = sdk_runtime(context.settings.sdk_metrics_address)

        async def connect_client():
            context._client = await connect(context.settings, runtime=runtime)
            return context._client

        started: list = []

        def ready(_worker) -> None:
            if not started:
                started.append(True)
                print("READY", flush=True)

        finish(await supervise(connect_client, lambda client, identity: build_worker(client, context, identity=identity),
                               context.settings, stop, on_start=ready, replace=replace_process))
        return
    async with worker:
        print("READY", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "engine"))
