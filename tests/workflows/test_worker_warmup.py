"""A worker imports what its cases' first activation would otherwise import, before it takes work.

A burst of new cases (the sweep on a month-end morning) starves a fresh worker of CPU; the first
case activations then imported the holiday tables of every country inside the sandbox, taking
seconds, and the worker stalled for good (docs/PERFORMANCE.md). Run in a
fresh interpreter: the test process has long imported everything."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from worker import WORKFLOWS

BUILD_A_WORKER = """
import asyncio, sys
import worker
from app.context import Context, connect

async def main():
    context = Context()
    client = await connect(context.settings)
    before = "holidays.countries" in sys.modules
    built = worker.build_worker(client, context)
    config = built.config()
    print(before, "holidays.countries" in sys.modules, config["max_concurrent_workflow_tasks"],
          config["max_cached_workflows"])

asyncio.run(main())
"""


def test_a_worker_imports_the_holiday_tables_before_it_takes_work(dev_env, tmp_path):
    """And, configured by default, it runs 20 workflow tasks at once, not the SDK's 100 (with 100,
    a burst on starved CPUs stalled it), and keeps 400 workflows cached, not the SDK's 1000 (each
    costs about 340 KB of worker memory; 250 made a 200-case wave 1.7 times as long; docs/PERFORMANCE.md)."""
    tuned = ("COLLECTIONS_MAX_CONCURRENT_WORKFLOW_TASKS", "COLLECTIONS_MAX_CACHED_WORKFLOWS")
    env = {**{k: v for k, v in os.environ.items() if k not in tuned},
           "PYTHONPATH": str(ROOT),
           "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "COLLECTIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'collections.db'}",
           "COLLECTIONS_DATA_DIR": str(tmp_path),
           "COLLECTIONS_POLICY": str(ROOT / "policies" / "default.toml"),
           "COLLECTIONS_USERS": str(ROOT / "config" / "users.toml")}
    done = subprocess.run([sys.executable, "-c", BUILD_A_WORKER], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True", "20", "400"], (done.stdout, done.stderr[-2000:])


NEW_RUNS = """
import asyncio, importlib.machinery, sys
import worker
from temporalio import workflow

loaded = []
plain = importlib.machinery.SourceFileLoader.get_code
importlib.machinery.SourceFileLoader.get_code = lambda self, name: loaded.append(name) or plain(self, name)
if sys.argv[1] == "shared":
    worker.share_workflow_code()
runner = worker.workflow_runner(True)

async def main():
    for defn in map(workflow._Definition.from_class, worker.WORKFLOWS):
        for _ in range(3):
            runner.prepare_workflow(defn)  # a new instance in a new sandbox, as for every workflow run

asyncio.run(main())
print(" ".join(sorted(name for name in loaded if name.startswith("workflows"))))
"""


def test_sandboxed_runs_share_their_workflow_modules_code(tmp_path):
    """The sandbox imports a workflow's module again for every run; each import unmarshalled the
    module's bytecode into new code objects (about 67 KB per cached case, docs/PERFORMANCE.md).
    With the worker's loader every module's code is loaded once and run again in each sandbox."""
    def loads(mode: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", NEW_RUNS, mode], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split()

    modules = sorted({w.__module__ for w in WORKFLOWS} | {"workflows"})
    assert loads("shared") == modules
    assert loads("plain").count("workflows.case") == 3  # what the sandbox does on its own
