"""`events tail` as an integration runs it: `starter.py` in a subprocess with a token, on a
SQLite file the event store filled (no Temporal needed): a page after a position, paging
to the head, following new events as they are appended, and who may read the feed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from store.db import Database
from store.event_store import EventStore
from tests.conftest import ROOT
from tests.e2e.test_cli import Cli
from tests.harness import users_with_tokens
from tests.store.test_event_store_contract import busy_case

AT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "collections.db"
    db = Database(f"sqlite:///{path}")
    store = EventStore(db)
    a, b = busy_case("FEED-1"), busy_case("FEED-2")
    store.append(a.state.case_id, 0, a.events[:3], recorded_at=AT)
    store.append(b.state.case_id, 0, b.events, recorded_at=AT)
    store.append(a.state.case_id, 3, a.events[3:], recorded_at=AT)
    env = {**os.environ, "COLLECTIONS_DATABASE_URL": f"sqlite:///{path}", "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
           "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)), "COLUMNS": "200"}  # a supervisor's token
    yield Cli(env, tmp_path), store, list(store.read_all())
    db.dispose()


def test_tail_after_a_position_gives_the_rest_in_order(filled):
    cli, _, records = filled
    after = records[2].position
    page = cli.json("events", "tail", "--after", str(after))
    assert [e["position"] for e in page["events"]] == [r.position for r in records[3:]]
    assert page["next_after"] == page["head"] == records[-1].position
    first = page["events"][0]
    assert (first["stream"], first["version"], first["type"], first["actor"], first["event_id"]) == (
        str(records[3].stream_id), records[3].event.version, type(records[3].event).__name__, records[3].event.actor,
        str(records[3].event.event_id))
    assert first["data"] == records[3].event.data() and first["recorded_at"] == AT.isoformat()

    human = cli.run("events", "tail", "--after", str(after), "--limit", "2").stdout
    assert type(records[3].event).__name__ in human and str(records[3].position) in human
    assert f"continue with --after {records[4].position}" in human


def test_paging_with_limit_reads_every_event_once(filled):
    cli, _, records = filled
    seen, after = [], 0
    while True:
        page = cli.json("events", "tail", "--after", str(after), "--limit", "4")
        seen += [e["position"] for e in page["events"]]
        if page["next_after"] == page["head"]:
            break
        after = page["next_after"]
    assert seen == [r.position for r in records]


@contextlib.contextmanager
def following(cli, after: int, interval: str):
    """`events tail --follow --json` as a manager runs it; killed after 60 s, so a line that never
    comes fails the test and never hangs it."""
    env = {**cli.env, "COLLECTIONS_TOKEN": json.loads((cli.cwd / "tokens.json").read_text())["demo-manager"]}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "starter.py"), "events", "tail", "--follow", "--json", "--interval", interval,
         "--after", str(after)],
        env=env, cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        process.kill()


def test_follow_prints_new_events_as_they_are_appended(filled):
    cli, store, records = filled
    with following(cli, records[-2].position, "0.2") as process:
        assert json.loads(process.stdout.readline())["position"] == records[-1].position
        later = busy_case("FEED-3")
        store.append(later.state.case_id, 0, later.events)
        lines = [json.loads(process.stdout.readline()) for _ in later.events]
        assert [e["type"] for e in lines] == [type(e).__name__ for e in later.events]
        assert lines[0]["data"]["invoice_id"] == "FEED-3" and lines[0]["position"] > records[-1].position
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=10) == 0, process.stderr.read()


def test_follow_stops_on_sigterm_between_two_reads(filled):
    """A supervisor (docker, systemd) stops a follower with SIGTERM: it ends cleanly, exit 0."""
    cli, _, records = filled
    with following(cli, records[-2].position, "60") as process:
        assert json.loads(process.stdout.readline())["position"] == records[-1].position
        process.terminate()  # while it waits its 60 s for the next poll
        assert process.wait(timeout=10) == 0, process.stderr.read()


def test_a_collector_or_no_token_may_not_read_the_feed(filled):
    cli, _, _ = filled
    tokens = json.loads((cli.cwd / "tokens.json").read_text())
    done = subprocess.run([sys.executable, str(ROOT / "starter.py"), "events", "tail", "--json"],
                          env={**cli.env, "COLLECTIONS_TOKEN": tokens["demo-collector"]}, cwd=cli.cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "only an integration or supervisor or finance_manager may events.read (demo-collector is a collector)" \
        in done.stderr
    done = subprocess.run([sys.executable, str(ROOT / "starter.py"), "events", "tail"],
                          env={k: v for k, v in cli.env.items() if k != "COLLECTIONS_TOKEN"}, cwd=cli.cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs your API token" in done.stderr


@pytest.mark.parametrize("args, field", [
    (("--after", "-1"), "after"), (("--after", "x"), "--after"), (("--limit", "0"), "limit"),
    (("--limit", "1001"), "limit"), (("--follow", "--interval", "0"), "interval"),
])
def test_bad_options_exit_2_naming_the_option(filled, args, field):
    cli, _, _ = filled
    line = cli.rejected("events", "tail", *args, match=field)
    assert line.startswith("error:")


def test_an_integration_user_tails_the_feed_and_may_do_nothing_else(filled):
    from app.tokens import issue_token

    cli, _, records = filled
    users = cli.cwd / "users.toml"
    with users.open("a", encoding="utf-8") as f:
        f.write('\n[[users]]\nname = "erp-feed"\nrole = "integration"\n')
    env = {**cli.env, "COLLECTIONS_TOKEN": issue_token(users, "erp-feed")["token"]}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], env=env, cwd=cli.cwd,
                              capture_output=True, text=True, timeout=60)

    done = run("events", "tail", "--json", "--after", str(records[0].position), "--limit", "1000")
    assert done.returncode == 0, done.stderr
    assert [e["position"] for e in json.loads(done.stdout)["events"]] == [r.position for r in records[1:]]
    for args in (("case", "list"), ("audit", "export"), ("pay", "FEED-1", "1.00", "--reference", "r")):
        refused = run(*args)
        assert refused.returncode == 2 and "(erp-feed is an integration)" in refused.stderr, (args, refused.stderr)
