"""What a worker process that replaced itself after a stall (worker.replace_process) hands to its
new image: the count of replacements and the stalls of the hour, which COLLECTIONS_WATCHDOG_RESTARTS
limits across images; and its two edges: an exec that fails, a stop asked for during the stalled
worker's shutdown. The replacement itself runs in tests/faults/test_watchdog.py."""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

import worker


def test_a_process_that_never_replaced_itself_has_no_stalls(monkeypatch):
    monkeypatch.delenv(worker.LINEAGE_ENV, raising=False)
    assert worker.replaced_before() == (0, [])


@pytest.mark.parametrize("value", ["", "not json", "[]", '{"replacements": 1}', '{"replacements": "x", "stalls": []}'])
def test_an_unreadable_lineage_counts_as_none(monkeypatch, value):
    monkeypatch.setenv(worker.LINEAGE_ENV, value)
    assert worker.replaced_before() == (0, [])


def test_the_new_image_runs_the_same_command_and_reads_the_stalls_back(monkeypatch):
    monkeypatch.setenv(worker.LINEAGE_ENV, "")  # restored (unset) after the test
    calls = []

    def execv(path, args):  # the real one would replace the test process
        calls.append((path, args))
        raise SystemExit(0)

    monkeypatch.setattr(worker.os, "execv", execv)
    monkeypatch.setattr(worker.logging, "shutdown", lambda: None)  # the test run's own handlers stay open
    with pytest.raises(SystemExit):
        worker.replace_process(2, [1_780_000_000.5, 1_780_000_900.0])
    assert calls == [(sys.executable, [sys.executable, *sys.orig_argv[1:]])]
    assert worker.replaced_before() == (2, [1_780_000_000.5, 1_780_000_900.0])


def test_a_process_that_cannot_replace_itself_exits_for_its_supervisor(monkeypatch, capsys):
    """execv fails when the interpreter was removed or replaced (an upgrade under a running worker):
    the process must end (its stalled worker's threads would hold a normal exit) with EXIT_STALLED."""
    monkeypatch.setenv(worker.LINEAGE_ENV, "")

    def execv(path, args):
        raise FileNotFoundError(2, "No such file or directory", path)

    def _exit(code):  # the real one would end the test process
        raise SystemExit(code)

    monkeypatch.setattr(worker.os, "execv", execv)
    monkeypatch.setattr(worker.os, "_exit", _exit)
    monkeypatch.setattr(worker.logging, "shutdown", lambda: None)
    with pytest.raises(SystemExit) as exited:
        worker.replace_process(1, [1_780_000_000.0])
    assert exited.value.code == worker.EXIT_STALLED
    assert f"cannot replace process {worker.os.getpid()}" in capsys.readouterr().err


async def test_a_stop_asked_for_while_the_stalled_worker_shuts_down_is_not_followed_by_a_replacement(monkeypatch):
    """SIGTERM (a deploy, the operator) during the bounded shutdown of a stalled worker: the process
    stops with 0; replacing it then would start a worker nobody asked for."""
    from app import watchdog
    from app.settings import Settings

    stop = asyncio.Event()

    class Stalled:  # what the watchdog reports at once (the stall's evidence is its text)
        def __init__(self, *args, **kwargs):
            pass

        async def watch(self):
            return "no workflow task taken for 15 s while the queue had work"

    class JammedWorker:  # runs until shut down; the stop arrives during its shutdown
        def config(self):
            return {"task_queue": "jammed"}

        async def run(self):
            await asyncio.Event().wait()

        async def shutdown(self):
            stop.set()

    class Client:
        identity = "worker@test"

    async def connect():
        return Client()

    replaced = []
    monkeypatch.setattr(watchdog, "LivenessWatchdog", Stalled)
    monkeypatch.setattr(worker, "dump_stacks", lambda loop: None)
    monkeypatch.setenv(worker.LINEAGE_ENV, "")
    monkeypatch.setattr(worker, "_left_behind", False)  # the module's flag, which the stall sets
    settings = Settings(watchdog_stall_after=15, watchdog_interval=1, watchdog_restarts=3)
    gc.unfreeze()
    try:
        code = await asyncio.wait_for(worker.supervise(connect, lambda client, identity: JammedWorker(), settings,
                                                       stop, replace=lambda *lineage: replaced.append(lineage)), 30)
        # each worker started, what the process held was moved out of the cyclic collector's passes
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert (code, replaced) == (0, [])
