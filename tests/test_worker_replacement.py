"""What a worker process that replaced itself after a stall (worker.replace_process) hands to its
new image: the count of replacements and the stalls of the hour, which COLLECTIONS_WATCHDOG_RESTARTS
limits across images. The replacement itself runs in tests/faults/test_watchdog.py."""

from __future__ import annotations

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
