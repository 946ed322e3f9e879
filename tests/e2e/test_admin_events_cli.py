"""Every human action outside a case is an event (issue 13 item 4), as a person sees it: each
command run as a subprocess with a token, then `audit export` read back for the event with the
right actor and reason; `audit verify` still intact; the read models equal a rebuild.

None of these actions needs Temporal (invoices, ledger payments on invoices without a case,
policies, limits, insurance, tokens), so the stack is a SQLite file and the CLI alone."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from store.db import Database
from tests.e2e.test_cli import FAST_POLICY, Cli
from tests.harness import INVOICES, users_with_tokens
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
    cli.json("users", "token", "demo-manager", "--reason", "laptop lost")

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
    assert "ce_" not in json.dumps(rows)  # the token itself is never recorded

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
