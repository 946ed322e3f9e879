"""Internal notifications as the team lives them (docs/CONTROLS.md, "Internal notifications"):
only `starter.py` in subprocesses with each person's token, a worker process, and the .eml
files a stand-alone SMTP sink on loopback writes. Imports nothing of the project."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.acceptance.stack import DEMO_POLICY, INVOICE_HEADER, eventually

TODAY = date.today()


@pytest.fixture(scope="module")
def ledger(ledger_for):
    return ledger_for(policy=DEMO_POLICY)  # escalation only after ~35 s: the approval is the one item


def team_mails(ledger, address: str, subject_start: str) -> list:
    return [m for m in ledger.mails(address) if m.subject.startswith(subject_start)]


def test_approvers_are_told_once_a_lapse_goes_up_and_the_collector_gets_a_digest(ledger):
    rows = [f"NT-1,C-NT1,Nordic Tools AB,ap@nt1.test,SE,en,USD,2400.00,{TODAY - timedelta(days=40)},"
            f"{TODAY - timedelta(days=10)},A",
            f"NT-2,C-NT2,Delta Parts Ltd,ap@nt2.test,GB,en,USD,800.00,{TODAY - timedelta(days=35)},"
            f"{TODAY - timedelta(days=5)},A"]
    path = ledger.dir / "team.csv"
    path.write_text(INVOICE_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert ledger.ok("invoices", "import", str(path))["invoices_added"] == 2
    ledger.ok("case", "open", "NT-1", "--as", "demo-collector")
    ledger.ok("case", "open", "NT-2", "--as", "demo-collector")
    ledger.ok("case", "assign", "NT-2", "demo-collector", "--as", "demo-collector")
    # a write-off of 750.00 USD, above the single-person threshold (100): someone else must approve
    requested = ledger.ok("write-off", "request", "NT-1", "--amount", "750.00", "--reason", "small_balance",
                          "--as", "demo-collector")
    assert requested["status"] == "awaiting_approval", requested

    run = ledger.ok("notify", "run")  # an operator's run: `notify run` uses a supervisor's token
    assert run["failed"] == 0, run
    asked = eventually(lambda: team_mails(ledger, "supervisor@example.com", "Waiting for a supervisor: write-off"),
                       20, "the supervisor's e-mail")
    assert len(asked) == 1 and "NT-1" in asked[0].subject and "750.00 USD" in asked[0].text, asked[0].text
    assert "demo-collector" in asked[0].text  # who asked
    assert not team_mails(ledger, "collector@example.com", "Waiting for")  # the requester is not asked
    digest = eventually(lambda: team_mails(ledger, "collector@example.com", "Your cases for"), 20, "the digest")
    assert len(digest) == 1 and "NT-2" in digest[0].text and "NT-1" not in digest[0].text, digest[0].text

    team = lambda: [m for m in ledger.mails() if any(a.endswith("@example.com") for a in m.to)]  # noqa: E731
    before = len(team())  # the customers' reminders go on meanwhile: only the team's mail is counted
    again = ledger.ok("notify", "run")
    status = {(o["kind"], o["item"], o["recipient"], o["day"]): o["status"] for o in again["outcomes"]}
    assert all(status[(o["kind"], o["item"], o["recipient"], o["day"])] == "already_sent" for o in run["outcomes"])
    assert len(team()) == before + again["sent"]  # nothing sent twice (only what is new since, if any)
    assert len(team_mails(ledger, "supervisor@example.com", "Waiting for a supervisor: write-off")) == 1

    tomorrow = (date.today() + timedelta(days=1)).isoformat()  # taken now, not at collection
    later = ledger.ok("notify", "run", "--as-of", tomorrow, env={"COLLECTIONS_TOKEN": ledger.token("demo-manager")})
    assert later["failed"] == 0, later
    lapsed = eventually(lambda: team_mails(ledger, "manager@example.com", "SLA lapsed: write-off"), 20,
                        "the finance manager's e-mail")
    assert len(lapsed) == 1 and "NT-1" in lapsed[0].subject and "10 minutes" in lapsed[0].text, lapsed[0].text
    assert len(team_mails(ledger, "supervisor@example.com", "Waiting for a supervisor: write-off")) == 1

    log = ledger.ok("notify", "log")
    assert {(r["kind"], r["recipient"]) for r in log} >= {
        ("waiting", "demo-supervisor"), ("lapsed", "demo-manager"), ("digest", "demo-collector")}
    assert all(r["status"] == "sent" for r in log)
    ledger.refused("notify", "log", match="notify.log", env={"COLLECTIONS_TOKEN": ledger.token("demo-collector")})
