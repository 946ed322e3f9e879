"""Acceptance: the daily sweep as a person runs it (`sweep`, no options), the same sweep as a
Temporal Schedule fired with the `temporal` CLI, and the reminders a customer receives.

The ledger runs policies/demo.toml (the default ladder in seconds: 5 s, 15 s, 25 s), so a
reminder sent after a payment can be told from one sent before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.acceptance.stack import DEMO_POLICY, eventually, wait_until

TODAY = datetime.now(timezone.utc).date()  # the sweep's default: today in UTC
SWEEP_TIMEOUT = 60  # a sweep of a handful of invoices takes seconds; beyond this it hangs


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def invoice(invoice_id: str, amount: str, due_in: int, grade: str = "A", currency: str = "EUR") -> str:
    """A CSV row: issued 30 days before it is due; one customer per invoice (no batching)."""
    customer = invoice_id.lower()
    return (f"{invoice_id},C-{invoice_id},{invoice_id} Ltd,ap@{customer}.test,DE,en,{currency},{amount},"
            f"{day(due_in - 30)},{day(due_in)},{grade}")


@pytest.fixture(scope="module")
def ledger(ledger_for):
    return ledger_for(policy=DEMO_POLICY)


def test_sweep_without_options_opens_exactly_the_overdue_invoices(ledger):
    imported = ledger.import_invoices([
        invoice("SW-1", "1200.00", -30),            # overdue a month
        invoice("SW-2", "450.50", -5, grade="B"),   # overdue five days
        invoice("SW-3", "980.00", -61, grade="C"),  # overdue two months
        invoice("SW-4", "300.00", 10),              # not yet due
        invoice("SW-5", "75.25", 3),                # not yet due
        invoice("SW-6", "640.00", -20),             # overdue, but paid in full below
    ])
    assert imported["invoices_added"] == 6, imported
    paid = ledger.ok("pay", "SW-6", "640.00", "--reference", "SW-6 wire")
    assert paid["case_id"] is None and paid["applied_to"] == "invoice", paid  # no case: on the ledger

    result = ledger.cli("sweep", timeout=SWEEP_TIMEOUT)
    assert result.code == 0, f"`sweep` failed:\n{result}"
    swept = result.json
    assert swept["as_of"] == TODAY.isoformat(), swept
    assert swept["cases_opened"] == 3, swept
    assert swept["skipped"]["not_yet_overdue"] == 2 and swept["skipped"]["paid"] == 1, swept
    assert swept["skipped"]["failed"] == 0 and not swept["failures"], swept

    cases = ledger.cases()
    assert sorted(cases) == ["SW-1", "SW-2", "SW-3"], sorted(cases)
    assert {c["balance"] for c in cases.values()} == {"1200.00", "450.50", "980.00"}

    again = ledger.cli("sweep", timeout=SWEEP_TIMEOUT)
    assert again.code == 0, f"second `sweep` failed:\n{again}"
    assert again.json["cases_opened"] == 0 and again.json["already_open"] == 3, again.json
    assert sorted(ledger.cases()) == ["SW-1", "SW-2", "SW-3"]
    ledger.reconcile()


def test_the_schedule_fired_with_the_temporal_cli_opens_the_overdue_cases(ledger):
    ledger.import_invoices([
        invoice("SC-1", "2500.00", -10),
        invoice("SC-2", "99.90", -2, grade="B"),
        invoice("SC-3", "410.00", 7),  # not yet due
    ])
    created = ledger.ok("schedule", "create")  # defaults: every day at 06:00 UTC
    assert created["created"] is True and created["cron"] == "0 6 * * *" and created["timezone"] == "UTC", created
    runs = [datetime.fromisoformat(t) for t in created["next_runs"]]
    assert len(runs) == 3 and all((r.hour, r.minute) == (6, 0) and r.utcoffset() == timedelta(0) for r in runs), runs
    assert runs[0] > datetime.now(timezone.utc) and runs[1] - runs[0] == timedelta(days=1), runs
    schedule_id = created["schedule_id"]
    try:
        described = ledger.temporal.temporal("schedule", "describe", "--schedule-id", schedule_id, "-o", "json")
        assert ledger.task_queue in described.stdout, "the schedule does not start the sweep on the ledger's task queue"
        # a cron that never fires (30 February) is refused and leaves the schedule as it was
        ledger.refused("schedule", "create", "--cron", "0 0 30 2 *", match="never fires")
        # once in four years (29 February), or every minute: not a daily sweep, refused likewise
        ledger.refused("schedule", "create", "--cron", "0 0 29 2 *", match="less often than monthly")
        ledger.refused("schedule", "create", "--cron", "*/1 * * * *", match="more often than hourly")
        assert ledger.ok("schedule", "show")["cron"] == "0 6 * * *"

        ledger.temporal.temporal("schedule", "trigger", "--schedule-id", schedule_id)
        opened = wait_until(ledger.cases, lambda c: {"SC-1", "SC-2"} <= set(c), 60,
                            "the triggered schedule's sweep opening cases for SC-1 and SC-2")
        assert "SC-3" not in opened, "a case was opened for an invoice not yet due"
        assert opened["SC-1"]["balance"] == "2500.00" and opened["SC-2"]["balance"] == "99.90"
        ledger.reconcile()
        shown = ledger.cli("schedule", "show", json=False)
        assert shown.code == 0 and "'0 6 * * *' in UTC" in shown.stdout and "ran " in shown.stdout, str(shown)
    finally:
        deleted = ledger.cli("schedule", "delete", "--reason", "end of the test")
    assert deleted.code == 0 and deleted.json["deleted"] is True, str(deleted)
    assert ledger.ok("schedule", "show")["exists"] is False
    ledger.refused("schedule", "delete", "--reason", "again", match="no schedule")
    trail = ledger.ok("audit", "export", env={"COLLECTIONS_TOKEN": ledger.token("demo-manager")})
    [event] = [e for e in trail if e["type"] == "ScheduleDeleted"]
    # what was set, not only that something was: the cron and its time zone
    assert any("cron=0 6 * * *; timezone=UTC" in e["details"] for e in trail if e["type"] == "ScheduleCreated"), trail
    assert event["reason"] == "end of the test", event


def test_reminders_carry_the_balance_left_after_a_partial_payment(ledger):
    ledger.import_invoices([invoice("ML-1", "1000.00", -12, currency="USD")])
    opened = ledger.ok("case", "open", "ML-1")
    assert opened["status"] == "open" and opened["balance"] == "1000.00", opened
    address = "ap@ml-1.test"

    # demo ladder, grade A: friendly after 5 s, firm after 15 s
    first = eventually(lambda: ledger.mails(address), 40, f"a first reminder to {address}")
    assert len(first) == 1 and first[0].subject.startswith("Friendly reminder"), [m.subject for m in first]
    assert "ML-1" in first[0].text and "$1,000.00 outstanding" in first[0].text, first[0].text

    paid = ledger.ok("pay", "ML-1", "400.00", "--reference", "ML-1 part 1")
    assert paid["balance"] == "600.00" and paid["status"] not in ("paid", "closed"), paid

    second = wait_until(lambda: ledger.mails(address), lambda m: len(m) >= 2, 45, f"a second reminder to {address}")
    assert second[1].subject.startswith("Second reminder"), [m.subject for m in second]
    assert "$600.00 outstanding" in second[1].text, second[1].text
    assert "1,000.00" not in second[1].text, second[1].text
    ledger.reconcile()


def test_no_open_case_waits_on_nobody(ledger):
    """Run last in the module: whatever the commands above left open has a timer or an owned item."""
    assert ledger.ok("report", "stuck") == []
    assert "no stuck cases" in ledger.cli("report", "stuck", json=False).stdout


def test_every_case_the_sweep_reports_opened_is_listed_once_it_returns(ledger):
    """A person runs `sweep`, then `case list`: the cases the sweep counted are there. The sweep's
    workflow is done once its cases are started; each case records its opening a moment later
    (seconds behind for a few hundred cases), and `sweep` waits for that."""
    ids = [f"SWB-{k:03d}" for k in range(250)]
    ledger.import_invoices([invoice(i, "210.00", -3 - k % 20) for k, i in enumerate(ids)])
    swept = ledger.ok("sweep", timeout=SWEEP_TIMEOUT * 2)
    listed = ledger.cases()
    assert swept["cases_opened"] == len(ids) and swept["openings_not_yet_recorded"] == 0, swept
    missing = sorted(set(ids) - set(listed))
    assert not missing, f"`sweep` said {swept['cases_opened']} cases opened; `case list` right after lacks {missing}"
    ledger.reconcile()
