"""No silent stall through the CLI, as a collector with a token would (docs/CONTROLS.md): a proposed
plan nobody accepts lapses and dunning resumes; a paused case sends nothing until the pause's end
date, `case show` shows the pause, and a notice follows; a customer pause pauses a case opened
while it lasts; `report stuck` lists none."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from tests.e2e.test_cli import FAST_POLICY, running_stack, wait_for
from tests.harness import INVOICES


def slower_policy(path):
    """The fast test policy with room to act between notices, and offers valid 12 seconds."""
    text = FAST_POLICY.read_text().replace('"test-fast-1"', '"test-liveness-1"')
    text = text.replace('after = "PT3S"', 'after = "PT60S"').replace('after = "PT2S"', 'after = "PT40S"')
    text = text.replace('after = "PT1S"', 'after = "PT15S"')
    text = text.replace("max_renegotiations = 1\n", 'max_renegotiations = 1\noffer_valid_for = "PT12S"\n')
    assert 'offer_valid_for = "PT12S"' in text
    path.write_text(text)
    return path


def test_offer_lapses_pause_holds_notices_and_nothing_is_stuck(dev_env, tmp_path, smtp, sqlite_url):
    with running_stack(dev_env, tmp_path, smtp, sqlite_url) as cli:
        cli.env["COLLECTIONS_POLICY"] = str(slower_policy(tmp_path / "liveness.toml"))
        cli.run("invoices", "import", str(INVOICES))
        # a plan offered (right after opening: the friendly notice is due at 15 s) and never accepted
        offered_case = cli.json("case", "open", "INV-2001")["case_id"]
        cli.json("plan", "propose", offered_case, "--instalments", "2", "--every", "P30D")
        assert "the offer lapses at" in cli.run("case", "show", offered_case).stdout
        paused_case = cli.json("case", "open", "INV-1001")["case_id"]

        # a pause of a few seconds, asked right after opening (the friendly notice was due at 15 s)
        until = (datetime.now(timezone.utc) + timedelta(seconds=25)).replace(microsecond=0)
        reply = cli.json("case", "pause", paused_case, "--until", until.isoformat(), "--reason", "customer_holiday")
        assert [e["type"] for e in reply["events"]] == ["DunningPaused"]
        shown = cli.run("case", "show", paused_case).stdout
        assert f"dunning paused until {until.isoformat()[:19]} (customer_holiday), asked by demo-collector" in shown
        listed = next(r for r in cli.json("case", "list") if r["case_id"] == paused_case)
        assert listed["next_action"] == "paused (customer_holiday): dunning resumes"
        assert listed["next_action_at"].startswith(until.isoformat()[:19])

        stuck = cli.run("report", "stuck").stdout
        assert "no stuck cases" in stuck and cli.json("report", "stuck") == []

        while datetime.now(timezone.utc) < until - timedelta(seconds=1):
            assert smtp.to("ap@acme.test") == [], "a notice went out during the pause"
            time.sleep(0.5)
        events = lambda case: cli.json("case", "show", case)["events"]  # noqa: E731
        resumed = wait_for(lambda: [e for e in events(paused_case) if e["type"] == "DunningResumed"], timeout=30)
        assert resumed[0]["actor"] == "system" and resumed[0]["data"]["ended"] == "end_date"
        mails = wait_for(lambda: smtp.to("ap@acme.test"), timeout=30)  # the friendly notice, after the pause
        assert mails[0].subject.startswith("Friendly reminder")
        sent = next(e for e in events(paused_case) if e["type"] == "ReminderSent")
        assert sent["occurred_at"] >= until.isoformat()[:19]

        expired = wait_for(lambda: [e for e in events(offered_case) if e["type"] == "PaymentPlanExpired"], timeout=30)
        assert expired[0]["actor"] == "system"
        proposed = next(e for e in events(offered_case) if e["type"] == "PaymentPlanProposed")
        offered_at = datetime.fromisoformat(proposed["occurred_at"]).timestamp()
        lapsed_at = datetime.fromisoformat(expired[0]["occurred_at"]).timestamp()
        # dunning resumed after the offer lapsed; nothing went out while it was open
        wait_for(lambda: [m for m in smtp.to("finance@shtrade.test") if m.received_at >= lapsed_at], timeout=60)
        assert not [m for m in smtp.to("finance@shtrade.test") if offered_at <= m.received_at < lapsed_at]
        assert cli.json("report", "stuck") == []

        # a customer pause: a case of that customer opened while it lasts opens paused
        later = (datetime.now(timezone.utc) + timedelta(days=7)).date().isoformat()
        cli.run("customer", "pause", "C-300", "--until", later, "--reason", "insolvency_talks")
        cli.run("case", "open", "INV-3001")
        opened = cli.json("case", "show", "INV-3001")
        assert [e["type"] for e in opened["events"]][:2] == ["CaseOpened", "DunningPaused"]
        assert opened["pause"]["scope"] == "customer"
        assert f"dunning paused until {later}T00:00:00 (insolvency_talks), asked by demo-collector" in \
            cli.run("case", "show", "INV-3001").stdout
        assert cli.rejected("case", "pause", paused_case, "--until", "2099-01-01", "--reason", "customer_holiday",
                            match="beyond the longest pause")
