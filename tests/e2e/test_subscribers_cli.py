"""The general outbox as its users run it: a supervisor adds a subscriber with `subscribers add`
(`starter.py` in a subprocess, with a token), and its events are POSTed to a real webhook on
loopback (an ``http.server`` in the test) by `subscribers dispatch` and by the worker's
dispatcher loop. The webhook fails the first posts with 500 (after reading them, as a receiver
that crashed before answering would): the receiver, deduplicating by event id, ends with every
event of the subscriber's types exactly once, in position order, with no gap; the position
survives a restart of the dispatcher (each CLI run is a new process); a consumer rebuilds the
case list from position 0 from what it was pushed."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from store.db import Database
from store.event_store import EventStore
from tests.e2e.test_cli import Cli
from tests.harness import users_with_tokens
from tests.store.test_event_store_contract import busy_case

AT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
CASE_TYPES = "CaseOpened,PaymentReceived,WriteOffApproved,CaseClosed"


@dataclass
class Receiver:
    """A webhook: records every POST (headers and events) and answers 500 to the first ``fail`` ones."""

    fail: int = 0
    posts: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def unique(self) -> list[dict]:
        """The events as a consumer keeps them: only from the posts it accepted (a 500 means it did not
        take them), deduplicated by event id, in the order first received."""
        seen: dict[str, dict] = {}
        with self.lock:
            for post in (p for p in self.posts if p["status"] == 200):
                for event in post["body"]["events"]:
                    seen.setdefault(event["event_id"], event)
        return list(seen.values())

    def answered(self, status: int) -> list[dict]:
        with self.lock:
            return [p for p in self.posts if p["status"] == status]


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                status = 500 if len(state.posts) < state.fail else 200
                state.posts.append({"path": self.path, "status": status, "body": body,
                                    "key": self.headers.get("Idempotency-Key"),
                                    "type": self.headers.get("Content-Type")})
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"no")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def ledger(tmp_path):
    """A SQLite file with three cases' events (one of them paid in full and closed) and a CLI on it."""
    path = tmp_path / "collections.db"
    db = Database(f"sqlite:///{path}")
    store = EventStore(db)
    a, b, c = busy_case("SUB-1"), busy_case("SUB-2"), busy_case("SUB-3")
    c.pay("450.00")  # closes it as paid
    store.append(a.state.case_id, 0, a.events[:3], recorded_at=AT)
    store.append(b.state.case_id, 0, b.events, recorded_at=AT)
    store.append(a.state.case_id, 3, a.events[3:], recorded_at=AT)
    store.append(c.state.case_id, 0, c.events, recorded_at=AT)
    env = {**os.environ, "COLLECTIONS_DATABASE_URL": f"sqlite:///{path}", "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
           "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)), "COLUMNS": "200",
           # small batches and short waits, so that a test sees several batches and retries
           "COLLECTIONS_SUBSCRIBERS_BATCH": "3", "COLLECTIONS_SUBSCRIBERS_BACKOFF": "0.3",
           "COLLECTIONS_SUBSCRIBERS_BACKOFF_CAP": "1"}
    yield Cli(env, tmp_path), store
    db.dispose()


def wanted(store: EventStore, types: str) -> list[tuple[int, str]]:
    """What the subscriber must get, computed from the store itself: (position, event id) in order."""
    names = set(types.split(","))
    return [(r.position, str(r.event.event_id)) for r in store.read_all() if type(r.event).__name__ in names]


def dispatch_until_caught_up(cli: Cli, name: str, timeout: float = 60) -> list[dict]:
    """`subscribers dispatch` again and again (each run a fresh process), as cron would, until the
    subscriber reports caught up; waits out the backoff between failed runs."""
    attempts: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = cli.json("subscribers", "dispatch", name)
        attempts += run
        if run and run[-1]["outcome"] == "caught_up":
            return attempts
        time.sleep(0.2)
    raise AssertionError(f"{name} never caught up: {attempts}")


def test_retries_deliver_every_event_once_in_order_and_the_position_survives_restarts(ledger, receiver):
    cli, store = ledger
    receiver.fail = 2
    url = f"http://127.0.0.1:{receiver.port}/hooks/collections"
    added = cli.json("subscribers", "add", "warehouse", "--url", url, "--types", CASE_TYPES, "--reason", "DWH load")
    assert (added["name"], added["position"], added["types"], added["paused"]) == (
        "warehouse", 0, CASE_TYPES.split(","), False)

    # the first run: the webhook answers 500; the same batch is kept for the next attempt
    first = cli.run("subscribers", "dispatch", "warehouse")
    assert "not acknowledged (HTTP 500" in first.stderr and "attempt 1" in first.stderr
    listed = cli.json("subscribers", "list")[0]
    assert (listed["position"], listed["attempts"]) == (0, 1) and listed["last_error"].startswith("HTTP 500")
    assert listed["next_attempt_at"] is not None

    # a run before the backoff is over sends nothing
    assert cli.json("subscribers", "dispatch", "warehouse")[0]["outcome"] in ("waiting", "failed")

    # one batch per run (--once), each run a new dispatcher process: it starts at the stored position
    attempts = []
    deadline = time.monotonic() + 60
    while len(receiver.answered(200)) < 2 and time.monotonic() < deadline:
        attempts += cli.json("subscribers", "dispatch", "warehouse", "--once")
        time.sleep(0.2)
    assert len(receiver.answered(200)) == 2, attempts
    after_two = cli.json("subscribers", "list")[0]
    acknowledged = receiver.answered(200)
    assert after_two["position"] == acknowledged[-1]["body"]["last_position"] and after_two["attempts"] == 0
    assert acknowledged[1]["body"]["first_position"] > acknowledged[0]["body"]["last_position"]

    dispatch_until_caught_up(cli, "warehouse")
    expected = wanted(store, CASE_TYPES)
    got = receiver.unique()
    assert [(e["position"], e["event_id"]) for e in got] == expected  # each once, in order, no gap
    with receiver.lock:
        posts = list(receiver.posts)
    assert len(posts) >= 3 and [p["status"] for p in posts[:2]] == [500, 500]
    assert posts[0]["body"]["events"] == posts[2]["body"]["events"]  # the failed batch was sent again, unchanged
    assert posts[0]["key"] == posts[2]["key"] == f"warehouse:{expected[0][0]}-{expected[2][0]}"
    assert all(p["path"] == "/hooks/collections" and p["type"] == "application/json" for p in posts)
    for post in posts:  # every batch in position order, at most 3 (COLLECTIONS_SUBSCRIBERS_BATCH)
        positions = [e["position"] for e in post["body"]["events"]]
        assert positions == sorted(positions) and 1 <= len(positions) <= 3
        assert {e["type"] for e in post["body"]["events"]} <= set(CASE_TYPES.split(","))
    ok = [p["body"] for p in receiver.answered(200)]
    assert all(b["first_position"] > a["last_position"] for a, b in zip(ok, ok[1:]))  # acknowledged batches never overlap
    final = cli.json("subscribers", "list")[0]
    assert final["position"] == store.settled_head() and final["delivered"] == len(expected)
    assert final["attempts"] == 0 and final["last_error"] is None

    # new events later: only they are pushed
    later = busy_case("SUB-4")
    store.append(later.state.case_id, 0, later.events)
    before = len(receiver.posts)
    dispatch_until_caught_up(cli, "warehouse")
    new = [e for p in receiver.posts[before:] for e in p["body"]["events"]]
    assert [e["event_id"] for e in new] == [eid for _, eid in wanted(store, CASE_TYPES)[len(expected):]]
    assert new[0]["data"]["invoice_id"] == "SUB-4"


def test_a_consumer_rebuilds_the_case_list_from_position_0(ledger, receiver):
    """The issue's done-when: from what it was pushed since position 0, a consumer knows every case,
    its invoice, status and balance, as `case list` shows them."""
    cli, _ = ledger
    cli.run("subscribers", "add", "erp", "--url", f"http://127.0.0.1:{receiver.port}/erp", "--types", CASE_TYPES,
            "--from-position", "0")
    dispatch_until_caught_up(cli, "erp")
    cases: dict[str, dict] = {}
    for event in receiver.unique():  # the consumer's own fold, independent of the engine's code
        data = event["data"]
        if event["type"] == "CaseOpened":
            cases[event["stream"]] = {"invoice_id": data["invoice_id"], "status": "open",
                                      "balance": Decimal(data["opening_balance"]["amount"]),
                                      "currency": data["opening_balance"]["currency"]}
        elif event["type"] == "PaymentReceived":
            cases[event["stream"]]["balance"] -= Decimal(data["applied"]["amount"])
        elif event["type"] == "WriteOffApproved":
            cases[event["stream"]]["balance"] -= Decimal(data["amount"]["amount"])
        elif event["type"] == "CaseClosed":
            cases[event["stream"]]["status"] = data["outcome"]
    shown = {c["case_id"]: {"invoice_id": c["invoice_id"], "status": c["status"], "balance": Decimal(c["balance"]),
                            "currency": c["currency"]} for c in cli.json("case", "list")}
    assert cases == shown and len(cases) == 3
    assert sorted(c["status"] for c in cases.values()) == ["open", "open", "paid"]


def test_pause_resume_remove_are_audited_and_a_paused_subscriber_gets_nothing(ledger, receiver):
    cli, store = ledger
    url = f"http://127.0.0.1:{receiver.port}/x"
    cli.run("subscribers", "add", "erp-holds", "--url", url, "--types", "CaseOpened")
    paused = cli.run("subscribers", "pause", "erp-holds", "--reason", "ERP upgrade weekend")
    assert "subscriber erp-holds paused at position 0" in paused.stdout
    assert "already paused" in cli.run("subscribers", "pause", "erp-holds").stdout
    assert cli.json("subscribers", "dispatch")[0]["outcome"] == "paused" and receiver.posts == []
    listed = cli.run("subscribers", "list").stdout
    assert "erp-holds" in listed and "paused" in listed
    cli.run("subscribers", "resume", "erp-holds", "--reason", "ERP back")
    dispatch_until_caught_up(cli, "erp-holds")
    assert [e["event_id"] for e in receiver.unique()] == [eid for _, eid in wanted(store, "CaseOpened")]
    head = store.settled_head()  # the removal is itself an event, after it
    removed = cli.json("subscribers", "remove", "erp-holds", "--reason", "replaced by the DWH feed")
    assert removed["removed"] and removed["position"] == head
    assert cli.json("subscribers", "list") == []

    trail = cli.json("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01")
    rows = trail["events"] if isinstance(trail, dict) else trail
    mine = [(r["type"], r["actor"], r["reason"]) for r in rows if r["type"].startswith("Subscriber")]
    assert mine == [("SubscriberAdded", "demo-supervisor", "subscriber added"),
                    ("SubscriberPaused", "demo-supervisor", "ERP upgrade weekend"),
                    ("SubscriberResumed", "demo-supervisor", "ERP back"),
                    ("SubscriberRemoved", "demo-supervisor", "replaced by the DWH feed")]


@pytest.mark.parametrize("args, field", [
    (("add", "ERP", "--url", "http://127.0.0.1:1/x", "--types", "CaseOpened"), "name"),
    (("add", "erp", "--url", "ftp://127.0.0.1/x", "--types", "CaseOpened"), "url"),
    (("add", "erp", "--url", "http://127.0.0.1:1/x", "--types", "CaseOpened,NoSuchEvent"), "types"),
    (("add", "erp", "--url", "http://127.0.0.1:1/x", "--types", ""), "types"),
    (("add", "erp", "--url", "http://127.0.0.1:1/x", "--types", "CaseOpened", "--from-position", "-1"),
     "from_position"),
    (("pause", "nobody"), "subscriber"),
    (("remove", "nobody"), "subscriber"),
    (("dispatch", "nobody"), "subscriber"),
])
def test_bad_input_exits_2_naming_the_field_and_changes_nothing(ledger, args, field):
    cli, store = ledger
    count = store.count()
    cli.rejected("subscribers", *args, match=field)
    assert cli.json("subscribers", "list") == [] and store.count() == count


def test_adding_a_name_twice_is_refused(ledger):
    cli, store = ledger
    cli.run("subscribers", "add", "erp", "--url", "http://127.0.0.1:1/x", "--types", "CaseOpened")
    count = store.count()
    cli.rejected("subscribers", "add", "erp", "--url", "http://127.0.0.1:2/y", "--types", "CaseClosed",
                 match="already exists")
    assert cli.json("subscribers", "list")[0]["url"] == "http://127.0.0.1:1/x" and store.count() == count


def test_a_collector_may_not_manage_subscribers(ledger):
    cli, _ = ledger
    tokens = json.loads((cli.cwd / "tokens.json").read_text())
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "starter.py"), "subscribers", "list"],
                          env={**cli.env, "COLLECTIONS_TOKEN": tokens["demo-collector"]}, cwd=cli.cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "may subscribers.list (demo-collector is a collector)" in done.stderr


def test_the_workers_dispatcher_loop_pushes_without_being_asked(ledger, receiver):
    """`worker`/`up` run ``run_dispatcher`` next to the Temporal worker: a new subscriber gets its
    events within a few intervals, retried after the webhook's 500."""
    from app.context import Context
    from app.settings import Settings
    from app.subscribers import run_dispatcher

    cli, store = ledger
    receiver.fail = 1
    cli.run("subscribers", "add", "loop", "--url", f"http://127.0.0.1:{receiver.port}/loop", "--types", CASE_TYPES)
    settings = Settings(database_url=cli.env["COLLECTIONS_DATABASE_URL"], subscribers_interval=0.2,
                        subscribers_batch=3, subscribers_backoff=0.3, subscribers_backoff_cap=1,
                        users_path=cli.env["COLLECTIONS_USERS"])

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_dispatcher(Context(settings), stop))
        deadline = time.monotonic() + 60
        while len(receiver.unique()) < len(wanted(store, CASE_TYPES)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(loop, 30)

    asyncio.run(run())
    assert [(e["position"], e["event_id"]) for e in receiver.unique()] == wanted(store, CASE_TYPES)
    assert receiver.posts[0]["status"] == 500


def test_credit_holds_are_a_subscriber_the_outbox_lists_what_no_subscriber_has_taken(tmp_path, receiver):
    """A subscriber of the credit-hold types is the push form of the credit-hold outbox: the entries
    it is pushed are the outbox's (an entry's id is its event's id), and once it has acknowledged
    them (2xx) `credit-hold outbox` no longer lists them; `credit-hold ack` keeps working for an
    ERP that reads the outbox instead."""
    from tests.conftest import ROOT

    env = {**os.environ, "COLLECTIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "COLLECTIONS_DATA_DIR": str(tmp_path / "data"), "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)),
           "COLUMNS": "200", "COLLECTIONS_SUBSCRIBERS_BACKOFF": "0.3", "COLLECTIONS_SUBSCRIBERS_BACKOFF_CAP": "1"}
    cli = Cli(env, tmp_path)
    cli.run("invoices", "import", str(ROOT / "samples" / "invoices.csv"))
    for args in (("place", "CUST-ACME"), ("place", "CUST-NORTH"), ("release", "CUST-ACME")):
        cli.run("credit-hold", *args, "--reason", "credit review", "--as", "demo-supervisor")
    pending = cli.json("credit-hold", "outbox")
    assert [(e["customer_id"], e["action"]) for e in pending] == [
        ("CUST-ACME", "hold"), ("CUST-NORTH", "hold"), ("CUST-ACME", "release")]

    receiver.fail = 1
    cli.run("subscribers", "add", "erp", "--url", f"http://127.0.0.1:{receiver.port}/holds",
            "--types", "CustomerPutOnHold,CustomerHoldReleased,ShipmentHeld,ShipmentReleased")
    cli.run("subscribers", "dispatch", "erp")  # the webhook answers 500: nothing is acknowledged
    assert cli.json("credit-hold", "outbox") == pending
    dispatch_until_caught_up(cli, "erp")
    pushed = receiver.unique()
    assert [(e["event_id"], e["data"]["customer_id"], e["type"]) for e in pushed] == [
        (e["outbox_id"], e["customer_id"], "CustomerPutOnHold" if e["action"] == "hold" else "CustomerHoldReleased")
        for e in pending]  # the same entries, in the same order
    assert cli.json("credit-hold", "outbox") == []
    everything = cli.json("credit-hold", "outbox", "--all")
    assert [(e["outbox_id"], e["acked_by"]) for e in everything] == [(e["outbox_id"], "erp") for e in pending]
    feed = cli.json("events", "tail", "--limit", "1000")["events"]
    acks = [e for e in feed if e["type"] == "HoldNoticeAcknowledged"]
    assert [(a["data"]["outbox_id"], a["data"]["consumer"], a["actor"]) for a in acks] == [
        (e["outbox_id"], "erp", "subscriber:erp") for e in pending]

    # a hold placed later: pending until pushed; an ERP reading the outbox may still acknowledge it by hand
    cli.run("credit-hold", "place", "CUST-ACME", "--reason", "second review", "--as", "demo-supervisor")
    later = cli.json("credit-hold", "outbox")
    assert [(e["customer_id"], e["action"]) for e in later] == [("CUST-ACME", "hold")]
    cli.run("credit-hold", "ack", later[0]["outbox_id"], "--consumer", "erp-batch")
    assert cli.json("credit-hold", "outbox") == []
    dispatch_until_caught_up(cli, "erp")  # still pushed (it is in the feed); the acknowledgement stays the first one
    assert receiver.unique()[-1]["event_id"] == later[0]["outbox_id"]
    assert cli.json("credit-hold", "outbox", "--all")[-1]["acked_by"] == "erp-batch"
