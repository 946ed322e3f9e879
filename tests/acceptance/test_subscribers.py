"""Acceptance: the general outbox on the real stack (docs/EVENTS.md, "Pushed to you").

A supervisor adds a subscriber with `subscribers add` while the warehouse's webhook is down
(503); the sweep opens cases, the worker sends their notices and records a payment; nobody
runs `subscribers dispatch`: the worker's dispatcher retries with backoff (`subscribers list`
shows the retries and the last error), and once the webhook is back it receives every event of
its types, once, in the feed's order, with a ReminderSent for each e-mail the customers got.
The webhook is a plain ``http.server`` in the test; nothing of the project is imported.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.acceptance.stack import wait_until

TODAY = datetime.now(timezone.utc).date()
TYPES = ["CaseOpened", "ReminderSent", "PaymentReceived", "CaseClosed"]


def invoice(invoice_id: str, amount: str, due_in: int) -> str:
    return (f"{invoice_id},C-{invoice_id},C-{invoice_id} Inc,ap@c-{invoice_id.lower()}.test,US,en,USD,{amount},"
            f"{TODAY + timedelta(days=due_in - 30)},{TODAY + timedelta(days=due_in)},A")


DOWN_PAGE = "the warehouse loader is down for maintenance until 06:00 UTC, retry later"


class Webhook:
    def __init__(self) -> None:
        self.down = True
        self.lock = threading.Lock()
        self.accepted: list[dict] = []  # the bodies of the posts answered 200
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    status = 503 if hook.down else 200
                    if status == 200:
                        hook.accepted.append(body)
                    else:
                        hook.refused += 1
                answer = b"" if status == 200 else DOWN_PAGE.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/warehouse"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        """What the warehouse keeps: deduplicated by event id, in the order received."""
        with self.lock:
            seen: dict[str, dict] = {}
            for body in self.accepted:
                for event in body["events"]:
                    seen.setdefault(event["event_id"], event)
            return list(seen.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ledger(ledger_for):
    # the worker's dispatcher looks twice a second; retries wait 0.5 s, 1 s, then 2 s at most
    return ledger_for(COLLECTIONS_SUBSCRIBERS_INTERVAL="0.5", COLLECTIONS_SUBSCRIBERS_BACKOFF="0.5",
                      COLLECTIONS_SUBSCRIBERS_BACKOFF_CAP="2")


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


QUIET = 5  # seconds without a new event of the feed's types: the ladder has run


def holds_a_still_feed(quiet: float):
    """Accepts (what the warehouse holds, what the feed shows) once they are the same events and
    the feed has not changed for ``quiet`` seconds: a ladder still running adds a ReminderSent
    after the warehouse has caught up (CI saw one come just after such a moment)."""
    still: dict = {"ids": None, "since": 0.0}

    def accept(both) -> bool:
        held, shown = ([e["event_id"] for e in events] for events in both)
        if shown != still["ids"]:
            still["ids"], still["since"] = shown, time.monotonic()
        return bool(shown) and held == shown and time.monotonic() - still["since"] >= quiet
    return accept


def feed(ledger, types: list[str]) -> list[dict]:
    """The feed as an integration reads it (`events tail`), page by page, only ``types``."""
    events, after = [], 0
    while True:
        page = ledger.ok("events", "tail", "--after", str(after), "--limit", "1000",
                         env={"COLLECTIONS_TOKEN": ledger.token("demo-supervisor")})
        events += [e for e in page["events"] if e["type"] in types]
        if page["next_after"] == page["head"]:
            return events
        after = page["next_after"]


def test_the_worker_pushes_every_event_once_in_order_after_the_webhook_comes_back(ledger, webhook):
    supervisor = {"COLLECTIONS_TOKEN": ledger.token("demo-supervisor")}  # her token exported, as she would
    added = ledger.ok("subscribers", "add", "warehouse", "--url", webhook.url, "--types", ",".join(TYPES),
                      "--reason", "nightly warehouse load", "--as", "demo-supervisor")
    assert added["position"] == 0 and added["types"] == TYPES, added

    ledger.import_invoices([invoice("SUBS-1", "1200.00", -30), invoice("SUBS-2", "300.00", -10)])
    swept = ledger.cli("sweep", timeout=180)
    assert swept.code == 0 and swept.json["cases_opened"] == 2, str(swept)
    paid = ledger.ok("pay", "SUBS-2", "300.00", "--reference", "SUBS-2 wire")
    assert paid["status"] == "paid", paid

    # the webhook is down: the worker keeps trying, with backoff, and says so
    retrying = wait_until(lambda: ledger.ok("subscribers", "list", env=supervisor)[0],
                          lambda s: s["attempts"] >= 2 and "HTTP 503" in (s["last_error"] or ""), 60,
                          "the worker retrying the warehouse's webhook")
    assert retrying["delivered"] == 0 and retrying["next_attempt_at"], retrying
    first_case = min(e["position"] for e in feed(ledger, ["CaseOpened"]))
    assert retrying["position"] < first_case, retrying  # it may pass events of other types, never one of its own
    assert DOWN_PAGE in retrying["last_error"], retrying  # whole in --json
    shown = ledger.cli("subscribers", "list", json=False, env=supervisor)
    assert "warehouse" in shown.stdout and "retrying" in shown.stdout, shown
    # cut at 60 cells, and seen to be: 'HTTP 503: ' and the page's first 49 characters, then '…'
    assert "unti…" in shown.stdout and "retry later" not in shown.stdout, shown.stdout

    webhook.down = False
    # once the engine is quiet (the ladder ran, the escalations wait), the warehouse has the feed's events
    received, shown = wait_until(lambda: (webhook.events(), feed(ledger, TYPES)), holds_a_still_feed(QUIET), 120,
                                 f"the warehouse holding every event of its types that the feed shows for {QUIET} s")
    assert received == shown  # the same events, in the feed's order, each once
    assert webhook.refused >= 2
    with webhook.lock:
        bodies = list(webhook.accepted)
    assert all(b["first_position"] > a["last_position"] for a, b in zip(bodies, bodies[1:]))  # no overlap, in order

    # what the warehouse learnt: both cases, the payment that closed one, and a ReminderSent for each e-mail
    opened = {e["data"]["invoice_id"] for e in received if e["type"] == "CaseOpened"}
    assert opened == {"SUBS-1", "SUBS-2"}
    closed = [e for e in received if e["type"] == "CaseClosed"]
    assert [c["data"]["outcome"] for c in closed] == ["paid"]
    reminders = {e["data"]["message_id"] for e in received if e["type"] == "ReminderSent"}
    mails = {m.message["Message-ID"] for m in ledger.mails() if "subs-" in " ".join(m.to)}
    assert mails and mails <= reminders, (mails, reminders)

    listed = ledger.ok("subscribers", "list", env=supervisor)[0]
    assert listed["attempts"] == 0 and listed["last_error"] is None and listed["delivered"] == len(received)
