"""Internal notifications, driven as an operator and the team would: `starter.py` in its own
process with an API token, a worker process, a real SMTP sink on loopback; the e-mails are read
back from the sink (docs/CONTROLS.md, "Internal notifications")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_cli import running_stack, wait_for
from tests.harness import INVOICES


@pytest.fixture
def team(dev_env, tmp_path, smtp, sqlite_url):
    """A worker process and the CLI on SQLite, sending to the SMTP sink on loopback."""
    with running_stack(dev_env, tmp_path, smtp, sqlite_url) as cli:
        yield cli

ZH_SUPERVISOR = '''
[[users]]
name = "zh-supervisor"
role = "supervisor"
write_off_limit = "10000"
email = "zhuguan@example.com"
language = "zh-CN"
'''


def test_the_team_is_told_once_lapses_go_up_and_collectors_get_their_digest(team, smtp):
    cli = team
    with open(cli.env["COLLECTIONS_USERS"], "a", encoding="utf-8") as users:
        users.write(ZH_SUPERVISOR)
    cli.json("invoices", "import", str(INVOICES))
    write_off_case = cli.json("case", "open", "INV-3001")["case_id"]
    digest_case = cli.json("case", "open", "INV-1001")["case_id"]
    cli.json("case", "assign", digest_case, "demo-collector", "--as", "demo-collector")
    # a collector asks to write off 500.00 USD: above the policy's alone_up_to (100), four eyes
    requested = cli.json("write-off", "request", write_off_case, "--amount", "500.00", "--reason", "small_balance",
                         "--as", "demo-collector")
    assert requested["status"] == "awaiting_approval", requested
    approval = wait_for(lambda: next((a for a in cli.json("approvals", "list")
                                      if a["kind"] == "write_off" and a["case_id"] == write_off_case), None))
    tier = approval["tier"]
    assert tier == "supervisor", approval

    first = cli.json("notify", "run")
    sent = {(o["kind"], o["recipient"]): o for o in first["outcomes"] if o["status"] == "sent"}
    assert first["failed"] == 0, first
    # the supervisors (not the collector who requested it) are asked, each in their language
    assert ("waiting", "demo-supervisor") in sent and ("waiting", "zh-supervisor") in sent
    assert ("waiting", "demo-collector") not in sent and ("waiting", "demo-manager") not in sent
    mail = wait_for(lambda: smtp.to("supervisor@example.com"))
    waiting = [m for m in mail if m.subject == f"Waiting for a supervisor: write-off on invoice {approval['invoice_id']}"]
    assert len(waiting) == 1, [m.subject for m in mail]
    assert "500.00 USD" in waiting[0].body() and "demo-collector" in waiting[0].body()
    zh = [m for m in smtp.to("zhuguan@example.com") if m.subject == f"待主管审批：发票 {approval['invoice_id']} 的核销申请"]
    assert len(zh) == 1 and "500.00 USD" in zh[0].body(), [m.subject for m in smtp.to("zhuguan@example.com")]
    assert not [m for m in smtp.to("collector@example.com") if approval["invoice_id"] in m.subject]

    # the collector's digest lists the case assigned to them, and only that one
    digest = [m for m in smtp.to("collector@example.com") if m.subject.startswith("Your cases for")]
    assert len(digest) == 1 and "INV-1001" in digest[0].body() and "INV-3001" not in digest[0].body(), digest

    # a second run sends nothing that was sent: same keys, already sent, no new message for them
    def team_mail() -> int:  # the case workflows' customer notices arrive on their own schedule
        return sum(m.message_id.strip().startswith("<team-") for m in smtp.messages)

    count = team_mail()
    second = cli.json("notify", "run")
    again = {(o["kind"], o["item"], o["recipient"], o["day"]): o["status"] for o in second["outcomes"]}
    for o in first["outcomes"]:
        assert again[(o["kind"], o["item"], o["recipient"], o["day"])] == "already_sent"
    first_ids = {o["message_id"] for o in first["outcomes"]}
    assert sum(m.message_id.strip() in first_ids for m in smtp.messages) == len(first_ids)
    assert team_mail() == count + second["sent"]

    # tomorrow the write-off has waited longer than the approval SLA (PT10M): the next tier hears
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    later = cli.json("notify", "run", "--as-of", tomorrow)
    lapsed = [o for o in later["outcomes"] if o["kind"] == "lapsed" and o["item"] == approval["approval_id"]]
    assert [(o["recipient"], o["status"]) for o in lapsed] == [("demo-manager", "sent")], later
    up = [m for m in smtp.to("manager@example.com") if m.subject.startswith("SLA lapsed: write-off")]
    assert len(up) == 1 and approval["invoice_id"] in up[0].subject, [m.subject for m in up]
    assert "SLA (10 minutes) for a supervisor" in up[0].body()
    # the supervisors are not asked again about it; the collector gets tomorrow's digest
    assert not [o for o in later["outcomes"] if o["kind"] == "waiting" and o["item"].startswith(approval["approval_id"])]
    assert [o["day"] for o in later["outcomes"] if o["kind"] == "digest"] == [tomorrow]
    # run again: what was sent is not sent again; only an item that came up since (the digest
    # case escalates on its own, seconds after opening: later on a loaded machine) is new
    rerun = cli.json("notify", "run", "--as-of", tomorrow)
    told = {(o["kind"], o["item"], o["recipient"], o["day"]) for o in later["outcomes"]}
    items_told = {o["item"] for o in later["outcomes"]}
    for o in rerun["outcomes"]:
        if (o["kind"], o["item"], o["recipient"], o["day"]) in told:
            assert o["status"] == "already_sent", o
        else:
            assert o["status"] == "sent" and o["item"] not in items_told and o["kind"] != "digest", o
    assert rerun["already_sent"] == len(told), rerun

    # the sent log is the auditor's record: one row per key, sent
    log = cli.json("notify", "log")
    keys = [(r["kind"], r["item"], r["recipient"], r["day"]) for r in log]
    assert len(keys) == len(set(keys)) and all(r["status"] == "sent" for r in log)
    assert [k[2] for k in keys if k[:2] == ("lapsed", approval["approval_id"])] == ["demo-manager"]
    assert any(r["kind"] == "digest" and write_off_case not in r["case_ids"] and digest_case in r["case_ids"]
               for r in log)


def test_the_daily_sweep_notifies_after_opening_cases_and_shares_the_sent_log(team, smtp):
    cli = team
    done = cli.run("notify", "run", "--as", "demo-collector", ok=False)  # an approver's (operator's) command
    assert done.returncode == 2 and "may notify.run" in done.stderr
    cli.rejected("notify", "run", "--as-of", "2026-13-40", match="as-of")
    assert cli.json("notify", "log") == []  # nothing was sent by a refused command

    cli.json("invoices", "import", str(INVOICES))
    mine = cli.json("case", "open", "INV-1001")["case_id"]
    cli.json("case", "assign", mine, "demo-collector", "--as", "demo-collector")
    swept = cli.json("sweep")
    assert swept["cases_opened"] == 3 and swept["internal_notifications_sent"] >= 1, swept
    digest = wait_for(lambda: [m for m in smtp.to("collector@example.com") if m.subject.startswith("Your cases for")])
    assert len(digest) == 1 and "INV-1001" in digest[0].body() and "INV-1002" not in digest[0].body()
    # `notify run` the same day finds the sweep's digest in the sent log and sends it not again
    again = [o for o in cli.json("notify", "run")["outcomes"] if o["kind"] == "digest"]
    assert [(o["recipient"], o["status"]) for o in again] == [("demo-collector", "already_sent")]
    assert len([m for m in smtp.to("collector@example.com") if m.subject.startswith("Your cases for")]) == 1
    # what a person reads without --json
    shown = cli.run("notify", "run").stdout
    assert "already sent before, 0 failed" in shown and "Your cases for" in shown, shown
    logged = cli.run("notify", "log").stdout
    assert "demo-collector <collector@example.com>" in logged and "digest" in logged, logged


def test_a_dispute_left_past_its_deadline_is_mailed_to_the_supervisors_then_upward(team, smtp, tmp_path):
    """The dispute's deadline (5 s under this policy) passes with nobody resolving it: the case
    escalates it to the supervisors, `notify run` e-mails them how to decide it, and the day its
    escalation SLA has lapsed the finance manager hears (docs/CONTROLS.md, "Internal notifications")."""
    from tests.e2e.test_cli import FAST_POLICY

    policy = tmp_path / "dispute-deadline.toml"
    policy.write_text(FAST_POLICY.read_text().replace('"test-fast-1"', '"test-dispute-deadline-1"')
                      .replace('resolution_sla = "PT10M"', 'resolution_sla = "PT5S"'))
    assert 'resolution_sla = "PT5S"' in policy.read_text()
    cli = team
    cli.env["COLLECTIONS_POLICY"] = str(policy)
    cli.json("invoices", "import", str(INVOICES))
    case_id = cli.json("case", "open", "INV-1001")["case_id"]
    cli.json("dispute", "open", case_id, "--reason", "quality", "--as", "demo-collector")
    escalated = wait_for(lambda: [e for e in cli.json("case", "show", case_id)["events"]
                                  if e["type"] == "DisputeEscalated"], timeout=60)
    dispute_id = escalated[0]["data"]["dispute_id"]
    assert escalated[0]["data"]["tier"] == "supervisor", escalated

    run = cli.json("notify", "run")
    told = sorted((o["kind"], o["recipient"]) for o in run["outcomes"] if o["item"].startswith(dispute_id))
    assert told == [("waiting", "demo-supervisor")], run  # the owning tier only, not the collector
    subject = "Waiting for a supervisor: dispute past its deadline on invoice INV-1001"
    # a subject over 78 characters is folded; the reader's client unfolds it (hence the strip)
    mail = wait_for(lambda: [m for m in smtp.to("supervisor@example.com") if m.subject.strip() == subject])
    assert len(mail) == 1 and f"dispute resolve {case_id} --outcome" in mail[0].body(), mail[0].body()
    again = [o["status"] for o in cli.json("notify", "run")["outcomes"] if o["item"].startswith(dispute_id)]
    assert again == ["already_sent"], again

    # tomorrow the escalation SLA (PT10M) has lapsed with nobody deciding: the next tier hears
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    later = cli.json("notify", "run", "--as-of", tomorrow)
    up = [(o["kind"], o["recipient"], o["status"]) for o in later["outcomes"] if o["item"] == dispute_id]
    assert up == [("lapsed", "demo-manager", "sent")], later
    lapsed = [m for m in smtp.to("manager@example.com") if m.subject.strip().startswith("SLA lapsed: dispute past its deadline")]
    assert len(lapsed) == 1 and "INV-1001" in lapsed[0].subject, [m.subject for m in smtp.to("manager@example.com")]
