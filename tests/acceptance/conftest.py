"""Acceptance fixtures: the real stack as separate processes (see stack.py).

One Temporal dev server per session; each test module asks for its own ``Ledger`` (database,
SMTP sink, worker, web server, task queue and workflow id prefix) with ``ledger_for``.
"""

from __future__ import annotations

import pytest

from tests.acceptance.stack import Ledger, TemporalServer


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory):
    server = TemporalServer(tmp_path_factory.mktemp("acceptance-temporal")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ledger_for(temporal_server, tmp_path_factory, request):
    """``ledger_for(policy=..., **env)`` starts a module's stack once; teardown stops it."""
    started: list[Ledger] = []

    def make(policy=None, **env) -> Ledger:
        name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "")[:12]
        options = {"policy": policy} if policy else {}
        ledger = Ledger(temporal_server, tmp_path_factory.mktemp(f"acceptance-{name}"), name, extra_env=env, **options)
        started.append(ledger)
        return ledger.start()

    try:
        yield make
    finally:
        for ledger in started:
            ledger.stop()
