"""Every human action outside a case is an event (issue 13 item 4), as a person sees it: each
command run as a subprocess with a token, then `audit export` read back for the event with the
right actor and reason; `audit verify` still intact; the read models equal a rebuild.

None of these actions needs Temporal (invoices, ledger payments on invoices without a case,
policies, limits, insurance, users and tokens), so the stack is a SQLite file and the CLI alone
(with `starter.py web` beside it where a token's end must show on the API and the console)."""

from __future__ import annotations

import contextlib
import csv
import getpass
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port
from domain.errors import DomainError
from store.db import Database
from tests.e2e.test_cli import FAST_POLICY, ROOT, Cli
from tests.e2e.test_cli_auth import refused, run
from tests.harness import INVOICES, token_for, users_with_tokens
from tests.store.test_event_store_contract import projection_rows


@pytest.fixture
def cli(tmp_path):
    path = tmp_path / "collections.db"
    env = {**os.environ, "COLLECTIONS_DATABASE_URL": f"sqlite:///{path}", "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
           "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)), "COLLECTIONS_POLICY": str(FAST_POLICY),
           "COLUMNS": "200"}
    env.pop("COLLECTIONS_USER", None)
    return Cli(env, tmp_path), path


def one(rows: list[dict], type_: str, **where) -> dict:
    found = [r for r in rows if r["type"] == type_ and all(r.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (type_, where, [(r["type"], r["subject"], r["actor"]) for r in rows])
    return found[0]


def payment_status(path, payment_id: str) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT status FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()[0]


def test_every_admin_action_is_in_the_audit_trail_with_actor_and_reason(cli, tmp_path):
    cli, path = cli
    started = datetime.now(timezone.utc)
    # invoice import (approvers only: the supervisor's token), with a reason, and without (the default)
    cli.json("invoices", "import", str(INVOICES), "--reason", "monthly ledger load")
    cli.json("invoices", "import", str(INVOICES))

    # a payment on an invoice without a case, then its reversal (a reason is required)
    paid = cli.json("pay", "INV-1002", "100.00", "--payment-id", "LP-1", "--reference", "wire 77")
    assert paid["case_id"] is None and paid["recorded"]
    cli.rejected("payments", "reverse", "LP-1", "--reason", "  ", match="reason")
    assert payment_status(path, "LP-1") == "applied"  # a refused reversal changed nothing
    cli.json("payments", "reverse", "LP-1", "--reason", "cheque bounced")
    assert payment_status(path, "LP-1") == "reversed"

    # an unmatched payment assigned by hand, with a reason (none: exit 2, nothing changed)
    received = (started.date() - timedelta(days=2)).isoformat()
    bank = tmp_path / "bank.csv"
    bank.write_text("payment_id,received_on,amount,currency,payer,reference\n"
                    f"U-1,{received},50.00,EUR,Nobody,\n")
    assert cli.json("payments", "import", str(bank), "--reason", "bank statement 12")["unmatched"] == 1
    done = cli.run("payments", "assign", "U-1", "INV-1001", ok=False)
    assert done.returncode == 2 and "--reason" in done.stderr
    assert payment_status(path, "U-1") == "unmatched"
    cli.json("payments", "assign", "U-1", "INV-1001", "--reason", "remittance advice by e-mail")
    assert payment_status(path, "U-1") == "applied"

    # a policy version pinned (reason required)
    faster = tmp_path / "faster.toml"
    faster.write_text(FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-9"'))
    done = cli.run("policy", "pin", str(faster), ok=False)
    assert done.returncode == 2 and "--reason" in done.stderr
    assert "test-fast-9" not in {p["version"] for p in cli.json("policy", "list")}
    assert cli.json("policy", "pin", str(faster), "--reason", "faster ladder for Q3")["pinned"]
    assert not cli.json("policy", "pin", str(faster), "--reason", "again")["pinned"]  # the same text: no event

    # a credit limit (reason required), insurer policy and cover
    cli.rejected("customer", "limit", "C-100", "5000", "--reason", "", "--as", "demo-supervisor", match="reason")
    cli.json("customer", "limit", "C-100", "5000", "--currency", "EUR", "--reason", "annual review",
             "--as", "demo-supervisor")
    cli.json("insurance", "policy-add", "ACME-POL", "--insurer", "ACME", "--name", "Acme Insurance",
             "--email", "claims@acme-ins.test", "--notify-within", "P60D", "--max-extension", "P60D",
             "--claim-waiting", "P90D", "--indemnity", "90", "--reason", "new cover contract")
    cli.json("insurance", "cover", "INV-3001", "--policy", "ACME-POL")

    # a token issued by the operator (no token needed: it writes the users file)
    issued = cli.json("users", "token", "demo-manager", "--reason", "laptop lost")["token"]

    rows = cli.json("audit", "export", "--from", started.date().isoformat())
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)  # time (commit) order
    supervisor, collector = "demo-supervisor", "demo-collector"
    imports = [r for r in rows if r["type"] == "InvoicesImported"]
    assert [(r["actor"], r["reason"]) for r in imports] == [(supervisor, "monthly ledger load"),
                                                           (supervisor, "invoice import")]
    recorded = one(rows, "LedgerPaymentRecorded")
    assert recorded["actor"] == collector and recorded["subject"] == "payment LP-1 (invoice INV-1002)"
    assert (recorded["amount"], recorded["currency"]) == ("100.00", "EUR") and "wire 77" in recorded["reason"]
    reversed_ = one(rows, "LedgerPaymentReversed")
    assert (reversed_["actor"], reversed_["reason"], reversed_["amount"]) == (supervisor, "cheque bounced", "100.00")
    held = one(rows, "PaymentHeldUnmatched")
    assert (held["actor"], held["reason"], held["subject"]) == (collector, "bank statement 12", "payment U-1 (unmatched)")
    assert (held["amount"], held["currency"]) == ("50.00", "EUR") and "not a known customer" in held["note"]
    bank_file = one(rows, "PaymentsImported")
    assert (bank_file["actor"], bank_file["reason"], bank_file["subject"]) == (collector, "bank statement 12",
                                                                               f"payments from {bank}")
    assigned = one(rows, "PaymentAssigned")
    assert (assigned["actor"], assigned["reason"]) == (collector, "remittance advice by e-mail")
    assert assigned["subject"] == "payment U-1 (invoice INV-1001)" and assigned["amount"] == "50.00"
    pinned = one(rows, "PolicyPinned")
    assert (pinned["actor"], pinned["reason"], pinned["subject"]) == (supervisor, "faster ladder for Q3",
                                                                      "policy test-fast-9")
    limit = one(rows, "CreditLimitSet")
    assert (limit["actor"], limit["reason"], limit["subject"]) == (supervisor, "annual review", "C-100")
    assert (limit["amount"], limit["currency"]) == ("5000.00", "EUR")
    added = one(rows, "InsurerPolicyAdded")
    assert (added["actor"], added["reason"], added["subject"]) == (supervisor, "new cover contract",
                                                                   "insurer policy ACME-POL")
    cover = one(rows, "InvoiceInsured")
    assert (cover["actor"], cover["reason"], cover["subject"]) == (supervisor, "invoice insured", "invoice INV-3001")
    token = one(rows, "ApiTokenIssued")
    assert (token["actor"], token["reason"], token["subject"]) == (f"operator:{getpass.getuser()}", "laptop lost",
                                                                   "user demo-manager")
    assert issued not in json.dumps(rows)  # the token itself is never recorded

    # one actor's trail as CSV: the supervisor's actions only
    text = cli.run("audit", "export", "--actor", supervisor, "--csv").stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["type"] for r in table} == {"InvoicesImported", "LedgerPaymentReversed", "PolicyPinned",
                                          "CreditLimitSet", "InsurerPolicyAdded", "InvoiceInsured"}
    assert {r["actor"] for r in table} == {supervisor}

    # the chain covers them, and the read models equal a rebuild
    verified = json.loads(cli.run("audit", "verify", "--json").stdout)
    assert verified["intact"] and verified["events"] == len(cli.json("audit", "export"))
    db = Database(f"sqlite:///{path}")
    try:
        before = projection_rows(db)
        assert before["customer_risk"]  # C-100's limit is in a read model
        assert cli.json("projections", "rebuild")["events_replayed"] == verified["events"]
        assert projection_rows(db) == before
    finally:
        db.dispose()
    assert cli.run("audit", "verify").returncode == 0


@contextlib.contextmanager
def web_server(cli: Cli):
    """`starter.py web` on a free loopback port, on the test's database and users file."""
    port = free_port()
    log = cli.cwd / "web.log"
    with open(log, "ab") as out:
        web = subprocess.Popen([sys.executable, str(ROOT / "starter.py"), "web", "--port", str(port)], env=cli.env,
                               cwd=cli.cwd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, f"`starter.py web` exited {web.returncode}: {log.read_text()[-2000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"`starter.py web` did not answer: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url
    finally:
        web.terminate()
        try:
            web.wait(timeout=20)
        finally:
            if web.poll() is None:
                web.kill()


def console_session(url: str, token: str) -> httpx.Client:
    """A browser-like client signed in to the console with ``token``."""
    client = httpx.Client(base_url=url, timeout=30)
    login = client.get("/console/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    done = client.post("/console/login", data={"token": token, "csrf_token": csrf, "next": "/console/worklist"})
    assert done.status_code == 303 and done.headers["location"] == "/console/worklist", done.text
    return client


def test_an_operator_adds_a_user_then_revokes_their_token(cli, tmp_path):
    """`users add` / `users revoke` as an operations admin runs them: bad input changes nothing;
    the new user gets a token and acts with it; once revoked, the CLI, the API and the console
    refuse it at once; every step is in `audit export` with the operator and the reason."""
    cli, _ = cli
    users = Path(cli.env["COLLECTIONS_USERS"])
    operator = f"operator:{getpass.getuser()}"
    original = users.read_bytes()

    # bad input: exit 2, one line naming the field; the users file byte for byte as it was
    for args, field in [(("ops-anna", "--role", "boss"), "role"),
                        (("ops-anna", "--role", "collector", "--write-off-limit", "-1"), "write_off_limit"),
                        (("ops-anna", "--role", "collector", "--write-off-limit", "1,5"), "write_off_limit"),
                        (("ops-anna", "--role", "collector", "--email", "anna@"), "email"),
                        (("demo-manager", "--role", "collector"), "name"),  # exists
                        (("Demo-Manager", "--role", "collector"), "name"),  # the same login to a reader
                        (("ops-anna", "--role", "collector", "--language", "xx"), "language"),  # no such e-mails
                        (("erp-2", "--role", "integration", "--write-off-limit", "999999"), "write_off_limit"),
                        (("ops-anna", "--role", "collector", "--reason", "line\nbreak"), "reason")]:
        cli.rejected("users", "add", *args, match=f"{field}: ")
        assert users.read_bytes() == original, args

    # added: appended after everything the file held (comments and layout kept), without a token
    shown = cli.run("users", "add", "ops-anna", "--role", "supervisor", "--write-off-limit", "2500",
                    "--email", "anna@example.com", "--reason", "new team lead").stdout
    assert "users token ops-anna" in " ".join(shown.split()), shown
    text = users.read_text()
    assert text.startswith(original.decode()) and text[len(original):] == (
        '\n[[users]]\nname = "ops-anna"\nrole = "supervisor"\nwrite_off_limit = "2500"\n'
        'email = "anna@example.com"\n'), text[len(original):]
    listed = {u["name"]: u for u in cli.json("users", "list")}
    assert listed["ops-anna"] == {"name": "ops-anna", "role": "supervisor", "write_off_limit": "2500",
                                  "email": "anna@example.com", "has_token": False}
    cli.rejected("users", "add", "ops-anna", "--role", "collector", match="name: a user 'ops-anna' already exists")
    cli.rejected("users", "revoke", "ops-anna", "--reason", "never had one", match="has no token")

    # a token for the new user; with it they import invoices (a supervisor's action) as themselves
    token = cli.json("users", "token", "ops-anna", "--reason", "first day")["token"]
    done = run(cli, "invoices", "import", str(INVOICES), "--reason", "monthly ledger load", "--json", token=token)
    assert done.returncode == 0, done.stderr
    assert run(cli, "case", "list", "--json", token=token).returncode == 0
    colleague = json.loads((users.parent / "tokens.json").read_text())["demo-supervisor"]

    with web_server(cli) as url:
        api = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        assert api.get("/api/me").json()["name"] == "ops-anna"
        console = console_session(url, token)
        assert console.get("/console/worklist").status_code == 200

        # a revocation needs a reason: without one, nothing changes and the token still works
        signed = users.read_bytes()
        cli.rejected("users", "revoke", "ops-anna", match="--reason")
        cli.rejected("users", "revoke", "ops-anna", "--reason", "  ", match="reason")
        cli.rejected("users", "revoke", "nobody", "--reason", "left", match="name: unknown user 'nobody'")
        assert users.read_bytes() == signed and api.get("/api/me").status_code == 200

        revoked = cli.json("users", "revoke", "ops-anna", "--reason", "left the company")
        assert (revoked["user"], revoked["reason"]) == ("ops-anna", "left the company")

        # refused at once, everywhere; the others' tokens go on working
        refused(run(cli, "case", "list", token=token), "COLLECTIONS_TOKEN (or --token) is not a valid token")
        refused(run(cli, "invoices", "import", str(INVOICES), token=token), "not a valid token")
        assert api.get("/api/me").status_code == 401
        ended = console.get("/console/worklist")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/console/login"), ended
        assert httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {colleague}"}).status_code == 200
        api.close()
        console.close()

    assert "ops-anna" in users.read_text() and not cli.json("users", "list")[-1]["has_token"]
    after = users.read_bytes()
    cli.rejected("users", "revoke", "ops-anna", "--reason", "again", match="name: user 'ops-anna' has no token")
    assert users.read_bytes() == after

    # the audit trail: who added the user, issued and revoked the token, when and why
    rows = cli.json("audit", "export")
    mine = [(r["type"], r["actor"], r["reason"]) for r in rows if r["subject"] == "user ops-anna"]
    assert mine == [("UserAdded", operator, "new team lead"), ("ApiTokenIssued", operator, "first day"),
                    ("ApiTokenRevoked", operator, "left the company")], mine  # one revocation; refusals record nothing
    assert one(rows, "InvoicesImported")["actor"] == "ops-anna"
    # what the export says of the user added: the role, the limit and the address, not only the type
    added = next(r for r in rows if r["type"] == "UserAdded" and r["subject"] == "user ops-anna")
    assert "role=supervisor; write_off_limit=2500; email=anna@example.com" in added["details"], added
    feed = [e for e in cli.json("events", "tail", "--limit", "1000")["events"] if e["data"].get("user") == "ops-anna"]
    data = {e["type"]: e["data"] for e in feed}
    assert (data["UserAdded"]["role"], data["UserAdded"]["write_off_limit"], data["UserAdded"]["email"]) == \
        ("supervisor", "2500", "anna@example.com")
    assert data["ApiTokenRevoked"]["fingerprint"] == data["ApiTokenIssued"]["fingerprint"] == revoked["fingerprint"]
    assert token not in json.dumps(feed)
    assert cli.run("audit", "verify").returncode == 0



def test_users_add_waits_for_another_edit_of_the_users_file_and_keeps_it(cli):
    """Two edits of the users file at once: an operator's `users add` while another command (here
    the test) has read the file and is about to write its change. `users add` waits for it and
    adds its user to the result, so neither change is lost. Without the wait, it would write its
    user into the copy it read, and the other edit, written after, would drop that user."""
    from app.tokens import editing, replace_file

    cli, _ = cli
    users = Path(cli.env["COLLECTIONS_USERS"])
    args = ("users", "add", "ops-ben", "--role", "collector", "--reason", "joins the team", "--json")
    env = {**cli.env, "COLLECTIONS_TOKEN": token_for(cli.env["COLLECTIONS_USERS"], args)}
    with editing(users):
        read = users.read_text()  # the other edit has read the file...
        adding = subprocess.Popen([sys.executable, str(ROOT / "starter.py"), *args], env=env, cwd=cli.cwd,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            adding.wait(timeout=4)  # long enough for the command to have written, were it not waiting
        waiting = adding.poll() is None
        replace_file(users, read + "\n# reviewed by internal audit\n")  # ...and writes its change now
    out, err = adding.communicate(timeout=60)
    assert adding.returncode == 0, err
    assert waiting, "users add did not wait for the other edit"
    assert json.loads(out)["user"] == "ops-ben"
    text = users.read_text()
    assert "# reviewed by internal audit" in text and 'name = "ops-ben"' in text, text
    assert "ops-ben" in {u["name"] for u in cli.json("users", "list")}


def test_an_edit_of_the_users_file_gives_up_with_a_clear_error_when_another_never_ends(tmp_path):
    from app.tokens import editing

    users = tmp_path / "users.toml"
    users.write_text("")
    with editing(users), pytest.raises(DomainError, match="being changed by another command") as refused:
        with editing(users, wait=0.2):
            pass
    assert refused.value.field == "users"
