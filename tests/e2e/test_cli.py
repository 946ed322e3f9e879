"""End to end: worker.py in its own process, the team driving starter.py commands.

Real dev server, real SMTP sink, real database; the CLI contract as written in
the issue (JSON shapes, exit codes, nothing changed by a rejected command).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.harness import INVOICES, token_for, users_with_tokens

ROOT = Path(__file__).resolve().parents[2]
FAST_POLICY = ROOT / "tests" / "data" / "fast.toml"


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        env = {**self.env, "COLLECTIONS_TOKEN": token_for(self.env["COLLECTIONS_USERS"], args)}
        done = subprocess.run(
            [sys.executable, str(ROOT / "starter.py"), *args], env=env, cwd=self.cwd,
            capture_output=True, text=True, timeout=120,
        )
        if ok and done.returncode != 0:
            raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
        return done

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def rejected(self, *args: str, match: str) -> str:
        done = self.run(*args, ok=False)
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and match in lines[0], lines
        return lines[0]


@contextlib.contextmanager
def running_stack(dev_env, tmp_path, smtp, database_url, policy: Path = FAST_POLICY):
    env = {
        **os.environ,
        "COLLECTIONS_DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "COLLECTIONS_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "COLLECTIONS_WORKFLOW_ID_PREFIX": f"e2e{uuid.uuid4().hex[:6]}-",
        "SMTP_PORT": str(smtp.port),
        "COLLECTIONS_POLICY": str(policy),
        "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
        "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)),
        "COLUMNS": "200",
    }
    cli = Cli(env, tmp_path)
    cli.run("db", "upgrade")
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        yield cli
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=20)
            assert code == 0, f"worker exited with {code}; its log ends:\n{log_path.read_text()[-3000:]}"
        finally:
            if worker.poll() is None:
                worker.kill()


@pytest.fixture
def stack(dev_env, tmp_path, smtp, database_url):
    with running_stack(dev_env, tmp_path, smtp, database_url) as cli:
        yield cli


@pytest.fixture
def sqlite_stack(dev_env, tmp_path, smtp, sqlite_url):
    with running_stack(dev_env, tmp_path, smtp, sqlite_url) as cli:
        yield cli


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError("timed out")


def event_count(cli: Cli, case_id: str) -> int:
    return len(cli.json("case", "show", case_id)["events"])


def test_the_cli_contract_end_to_end(stack, smtp, tmp_path):
    cli = stack
    imported = cli.json("invoices", "import", str(INVOICES))
    assert imported["invoices_added"] == 4
    assert cli.json("invoices", "import", str(INVOICES))["invoices_added"] == 0  # re-import: no-op

    bad = tmp_path / "bad.csv"
    bad.write_text(INVOICES.read_text().replace("1200.00", "12.005").replace("INV-1001", "INV-9001"))
    cli.rejected("invoices", "import", str(bad), match="line 2: amount")
    cli.rejected("case", "open", "INV-9001", match="unknown invoice")  # nothing from that file was imported

    opened = cli.json("case", "open", "INV-1002")
    assert set(opened) >= {"case_id", "status"} and opened["status"] == "open"
    case_id = opened["case_id"]
    assert cli.json("case", "open", "INV-1002")["case_id"] == case_id

    # the fast policy runs the whole ladder in ~4 s; then a supervisor is asked
    wait_for(lambda: cli.json("case", "show", case_id)["status"] == "escalated")
    shown = cli.json("case", "show", case_id)
    assert {"case_id", "invoice_id", "status", "balance", "currency", "level", "events"} <= set(shown)
    assert shown["balance"] == "490.50" and shown["currency"] == "EUR" and shown["level"] == 3  # 450.50 + 40.00 fee
    types = [e["type"] for e in shown["events"]]
    assert types == ["CaseOpened", "ReminderSent", "ReminderSent", "ReminderSent", "LateFeeCharged",
                     "EscalatedToSupervisor"]
    assert all({"type", "version", "occurred_at", "data"} <= set(e) for e in shown["events"])
    assert [m.subject.split(":")[0] for m in smtp.to("ap@acme.test")] == [
        "Friendly reminder", "Second reminder", "Final notice"]

    listed = cli.json("case", "list")
    assert [c["case_id"] for c in listed] == [case_id] and "events" not in listed[0]
    assert cli.json("case", "list", "--status", "paid") == []
    cli.rejected("case", "list", "--status", "bogus", match="not a status")

    # escalation: a collector may not decide; the supervisor sends it to write-off; four eyes
    before = event_count(cli, case_id)
    cli.rejected("escalation", "decide", case_id, "--decision", "write_off", "--as", "demo-collector",
                 match="only a supervisor or finance_manager")
    decided = cli.json("escalation", "decide", case_id, "--decision", "write_off", "--as", "demo-supervisor")
    assert decided["status"] == "awaiting_approval"
    pending = cli.json("approvals", "list")
    write_off = next(a for a in pending if a["kind"] == "write_off")
    assert {"approval_id", "case_id", "kind", "amount", "requested_by", "status"} <= set(write_off)
    assert write_off["amount"] == "490.50" and write_off["requested_by"] == "demo-supervisor"
    after_decision = event_count(cli, case_id)
    assert after_decision == before + 2
    cli.rejected("approvals", "approve", write_off["approval_id"], "--reason", "ok", "--as", "demo-supervisor", match="four eyes")
    cli.rejected("approvals", "approve", write_off["approval_id"], "--reason", "ok", "--as", "demo-collector", match="only a supervisor")
    assert event_count(cli, case_id) == after_decision
    closed = cli.json("approvals", "approve", write_off["approval_id"], "--reason", "uncollectable", "--as", "demo-manager")
    assert closed["status"] == "written_off" and closed["balance"] == "0.00"
    totals = cli.json("case", "show", case_id)["totals"]
    assert totals["write_offs"] == "490.50" and totals["fees"] == "40.00"
    cli.rejected("promise", "INV-1002", "--amount", "10", "--date", "2026-03-10", match="closed")
    # money received after the write-off is a recovery of bad debt; the case stays written off
    late = cli.run("pay", "INV-1002", "10", "--reference", "late").stdout
    assert "recovered 10 of 490.50 written off" in late, late
    assert cli.json("case", "show", case_id)["status"] == "written_off"

    # a second case, opened as a dispute (dunning paused): payment, promise, credit
    other = cli.json("case", "open", "INV-3001", "--reason", "dispute")["case_id"]
    paid = cli.json("pay", "INV-3001", "1000.00", "--reference", "wire 1")
    assert paid["balance"] == "49000.00" and paid["status"] == "disputed"
    cli.rejected("dispute", "open", other, "--reason", "quality", match="already open")
    soon = (date.today() + timedelta(days=5)).isoformat()
    assert cli.json("promise", other, "--amount", "8500", "--date", soon)["status"] == "disputed"
    requested = cli.json("dispute", "resolve", other, "--outcome", "upheld", "--credit", "500")
    assert requested["balance"] == "49000.00" and requested["status"] == "awaiting_approval"  # above 100 USD: four eyes
    credit = next(a for a in cli.json("approvals", "list") if a["case_id"] == other and a["kind"] == "credit")
    resolved = cli.json("approvals", "approve", credit["approval_id"], "--reason", "damaged goods",
                        "--as", "demo-supervisor")
    assert resolved["balance"] == "48500.00" and resolved["status"] == "promised"
    cli.rejected("promise", other, "--amount", "10", "--date", soon, match="already open")
    cli.rejected("plan", "propose", other, "--instalments", "4", "--every", "P60D", match="every: must be between")
    cli.rejected("plan", "propose", other, "--instalments", "4", "--every", "sixty days", match="ISO 8601")
    cli.rejected("pay", "INV-3001", "-1", match="must be positive")
    cli.rejected("pay", "INV-3001", "1.001", match="more decimal places")
    cli.rejected("case", "show", "NO-SUCH-CASE", match="unknown case")
    assert not [m for m in smtp.messages if "ar@bigspender.test" in m.recipients]

    # read models equal a rebuild from events
    listed_before = cli.json("case", "list")
    approvals_before = cli.json("approvals", "list", "--status", "all")
    assert cli.json("projections", "rebuild")["events_replayed"] >= 12
    assert cli.json("case", "list") == listed_before
    assert cli.json("approvals", "list", "--status", "all") == approvals_before

    # the plain output is for people
    human = cli.run("case", "show", case_id).stdout
    assert "written_off" in human and "WriteOffApproved" in human


def test_unreachable_temporal_is_exit_1_with_a_hint(tmp_path, sqlite_url):
    env = {**os.environ, "COLLECTIONS_DATABASE_URL": sqlite_url, "TEMPORAL_ADDRESS": "127.0.0.1:1",
           "COLLECTIONS_DATA_DIR": str(tmp_path), "COLLECTIONS_USERS": str(users_with_tokens(tmp_path))}
    cli = Cli(env, tmp_path)
    cli.json("invoices", "import", str(INVOICES))
    done = cli.run("case", "open", "INV-1001", ok=False)
    assert done.returncode == 1 and "cannot reach Temporal" in done.stderr


def fees_until(cli, reply: dict) -> Decimal:
    """Late fees charged on the reply's case up to the reply's version."""
    events = cli.json("case", "show", reply["invoice_id"])["events"]
    return sum((Decimal(e["data"]["fee"]["amount"]) for e in events
                if e["type"] == "LateFeeCharged" and e["version"] <= reply["version"]), Decimal(0))


def test_automated_dunning_from_the_cli(sqlite_stack, smtp, tmp_path):
    cli = sqlite_stack
    cli.json("invoices", "import", str(INVOICES))
    swept = cli.json("sweep", "--as-of", "2026-02-07")
    assert swept["invoices_scanned"] == 4 and swept["cases_opened"] == 3  # INV-1002 is due on 02-11
    assert swept["skipped"]["not_yet_overdue"] == 1
    human = cli.run("sweep", "--as-of", "2026-02-07").stdout
    assert "with a case" in human and "3" in human  # (closed ones too: 'already open' said otherwise)
    cli.rejected("sweep", "--as-of", "20-02-2026", match="as-of")

    bank = tmp_path / "bank.csv"
    bank.write_text("payment_id,received_on,amount,currency,payer,reference\n"
                    "B1,2026-02-21,200.00,EUR,Acme GmbH,INV-1001\n"
                    "B2,2026-02-21,77.00,EUR,Nobody,\n")
    imported = cli.json("payments", "import", str(bank))
    assert imported["matched_by_reference"] == 1 and imported["unmatched"] == 1
    assert [p["payment_id"] for p in cli.json("payments", "unmatched")] == ["B2"]
    assigned = cli.json("payments", "assign", "B2", "INV-1001", "--reason", "remittance advice")
    # on an invoice with a case: PaymentReceived on the case, PaymentAssigned with the reason (audit trail)
    trail = json.loads(cli.run("audit", "export", "--json").stdout)
    [assignment] = [r for r in trail if r["type"] == "PaymentAssigned"]
    assert (assignment["actor"], assignment["reason"], assignment["amount"]) == ("demo-collector", "remittance advice",
                                                                                 "77.00")
    assert any(r["type"] == "PaymentReceived" and r["actor"] == "demo-collector" and r["amount"] == "77.00"
               and r["subject"] == "INV-1001" for r in trail)
    # the final notice's late fee counts once it is charged, which may be just before or just after
    assert Decimal(assigned["balance"]) == Decimal("1200.00") + fees_until(cli, assigned) - Decimal("277.00")
    reversed_ = cli.json("payments", "reverse", "B1", "--reason", "recalled")
    assert Decimal(reversed_["balance"]) == Decimal("1200.00") + fees_until(cli, reversed_) - Decimal("77.00")
    cli.rejected("payments", "reverse", "B9", "--reason", "x", match="unknown payment")
    again = cli.run("payments", "reverse", "B1", "--reason", "recalled").stdout  # said reversed, 'with None EUR due'
    assert "B1 was already reversed: no change" in again and "None" not in again, again

    preview = cli.json("template", "preview", "INV-2001", "--level", "3")
    assert preview["language"] == "zh-CN" and preview["subject"].startswith("最后催款通知")
    assert "INV-2001" in preview["text"] and "未付金额 ¥1" in preview["text"]  # amount depends on fees so far
    cli.rejected("template", "preview", "INV-2001", "--level", "9", match="between 1 and 3")

    faster = tmp_path / "faster.toml"
    faster.write_text(FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-2"'))
    assert cli.json("policy", "pin", str(faster), "--reason", "faster ladder")["version"] == "test-fast-2"
    assert {p["version"] for p in cli.json("policy", "list")} >= {"test-fast-1", "test-fast-2"}
    cli.rejected("case", "migrate-policy", "INV-3001", "--to", "test-fast-2", "--as", "demo-collector", match="only a supervisor")
    moved = cli.json("case", "migrate-policy", "INV-3001", "--to", "test-fast-2", "--as", "demo-supervisor")
    assert moved["events"][0]["type"] == "PolicyMigrated"
    assert cli.json("case", "show", "INV-3001")["policy_version"] == "test-fast-2"
    cli.rejected("case", "migrate-policy", "INV-3001", "--to", "nope", "--as", "demo-supervisor", match="not known")

    schedule = cli.json("schedule", "create", "--cron", "0 6 * * *", "--timezone", "Asia/Shanghai",
                        "--reason", "sweep at 06:00 Shanghai")
    assert schedule["created"] and len(schedule["next_runs"]) == 3
    [scheduled] = [r for r in json.loads(cli.run("audit", "export", "--json").stdout) if r["type"] == "ScheduleCreated"]
    assert (scheduled["actor"], scheduled["reason"]) == ("demo-supervisor", "sweep at 06:00 Shanghai")
    cli.rejected("schedule", "create", "--timezone", "Nowhere/Land", match="time zone")
