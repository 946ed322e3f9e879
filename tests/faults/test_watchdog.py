"""The worker's liveness watchdog (app/watchdog.py, worker.supervise) against a real stall.

A real dev server, SMTP sink and SQLite store; ``tests/faults/jam_worker.py`` in its own
process: the engine's worker, given 4 workflow-task slots, plus a test workflow that never
yields in the first worker (and completes in its replacement). Four of them hold every slot for good (the SDK cannot evict a
workflow whose thread never returns), so the worker stops polling: the state of the
month-end stall. Cases opened meanwhile wait in the task queue. The watchdog must notice,
log the evidence, replace the process with a new image of itself (same PID: what a supervisor
watches does not change), and every case must then open and every command be answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from app.context import connect
from app.settings import Settings
from app.waiting import POLLER_VIEW_LAG
from tests.harness import INVOICES, ROOT, cli_environment, token_for

FAST_POLICY = ROOT / "tests" / "data" / "fast.toml"
SLOTS = 4
STALL_AFTER = POLLER_VIEW_LAG  # the shortest wait the watchdog allows (the server shows polls late)
INVOICE_IDS = ("INV-1001", "INV-1002", "INV-2001")


def cli(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**env, "COLLECTIONS_TOKEN": token_for(env["COLLECTIONS_USERS"], args)}  # the person's own token
    return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


async def test_a_jammed_worker_is_noticed_and_replaced_and_the_work_completes(dev_env, smtp, tmp_path):
    env = {**os.environ, **cli_environment(dev_env, tmp_path, smtp.port, FAST_POLICY, "jam"),
           "COLLECTIONS_MAX_CONCURRENT_WORKFLOW_TASKS": str(SLOTS),
           "COLLECTIONS_WATCHDOG_STALL_AFTER": str(STALL_AFTER), "COLLECTIONS_WATCHDOG_INTERVAL": "1",
           "COLLECTIONS_COMMAND_TIMEOUT": "150"}
    assert cli(env, "invoices", "import", str(INVOICES)).returncode == 0
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faults" / "jam_worker.py")], env=env,
                                  cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = await connect(Settings(temporal_address=env["TEMPORAL_ADDRESS"],
                                        data_dir=Path(env["COLLECTIONS_DATA_DIR"])))  # the engine's payload codec
        queue = env["COLLECTIONS_TASK_QUEUE"]
        await wait_for_log(log_path, "polling task queue", 30)
        jams = [await client.start_workflow("WatchdogJam", id=f"jam-{uuid.uuid4().hex[:8]}", task_queue=queue)
                for _ in range(SLOTS + 2)]
        # every slot held: one eviction the SDK keeps retrying per jammed workflow
        await wait_for_runs(log_path, "running eviction job for run ID", SLOTS, 60)
        started = time.monotonic()
        collector = {**env, "COLLECTIONS_TOKEN": token_for(env["COLLECTIONS_USERS"], ["case", "open"])}
        opening = [subprocess.Popen([sys.executable, str(ROOT / "starter.py"), "case", "open", i, "--json"], env=collector,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in INVOICE_IDS]

        # the jammed worker takes none of them: nothing is open while the watchdog has not fired
        await asyncio.sleep(STALL_AFTER / 2)
        assert "stalled" not in log_path.read_text(errors="replace")
        assert json.loads(cli(env, "case", "list", "--json").stdout) == []

        stall = await wait_for_log(log_path, "watchdog: worker", 120)
        noticed = time.monotonic() - started
        assert "stalled: no workflow task taken" in stall and "backlog" in stall, stall
        replacing = await wait_for_log(log_path, "watchdog: replacing process", 60)
        assert f"replacing process {worker.pid} with a new image" in replacing, replacing
        await wait_for_log(log_path, "/restart-1 polling task queue", 60)  # the new image's worker
        assert "pending asyncio tasks" in log_path.read_text(errors="replace")  # the stacks were dumped as evidence

        # every command issued during the stall is answered, every case opened, every jam done
        for process in opening:
            out, err = await asyncio.to_thread(process.communicate, timeout=150)
            assert process.returncode == 0, err + "\nworker log:\n" + log_path.read_text(errors="replace")[-6000:]
        cases = json.loads(cli(env, "case", "list", "--json").stdout)
        assert sorted(c["invoice_id"] for c in cases) == sorted(INVOICE_IDS)
        for jam in jams:
            assert await asyncio.wait_for(jam.result(), 120) == "done"
        assert worker.poll() is None  # the same process, a new image, still serving
        print(f"stall noticed {noticed:.1f} s after the cases were asked for (threshold {STALL_AFTER:.0f} s)")
        served = True
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = None
            if locals().get("served"):  # else the failure above is the one to report
                raise
        for jam in locals().get("jams", []):
            try:
                await jam.terminate("test finished")
            except Exception:  # noqa: BLE001 - completed already
                pass
    assert code == 0, log_path.read_text(errors="replace")[-3000:]


async def wait_for_runs(path, text: str, count: int, timeout: float) -> None:
    """Until ``count`` different workflow runs have a log line containing ``text``."""
    import re

    deadline = time.monotonic() + timeout
    while True:
        runs = {m.group(1) for m in re.finditer(re.escape(text) + r" ([0-9a-f-]+)", path.read_text(errors="replace"))}
        if len(runs) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(runs)} runs with {text!r} within {timeout:.0f} s, expected {count}:\n"
                                 + path.read_text(errors="replace")[-4000:])
        await asyncio.sleep(0.5)


async def wait_for_log(path, text: str, timeout: float) -> str:
    """The first log line containing ``text``, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text(errors="replace").splitlines():
            if text in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the worker's log within {timeout:.0f} s:\n"
                                 + path.read_text(errors="replace")[-4000:])
        await asyncio.sleep(0.5)
