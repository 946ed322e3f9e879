"""Acceptance: a command that waits on a workflow which cannot progress exits 1 within
COLLECTIONS_COMMAND_TIMEOUT with the reason in one line, instead of hanging; once the cause
is gone (the worker is back) the same command, typed again, does its work exactly once.

The way a user meets it: the worker is not running (crashed, not started, being deployed).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.acceptance.stack import CommandHung

TIMEOUT = 15  # COLLECTIONS_COMMAND_TIMEOUT for this module
# the command's own start (Python, imports, connecting) on a busy 2-core machine comes on top
SLACK = 20
TODAY = datetime.now(timezone.utc).date()


def row(invoice_id: str, amount: str, due_in: int) -> str:
    due = TODAY + timedelta(days=due_in)
    return (f"{invoice_id},C-{invoice_id},{invoice_id} SA,ap@{invoice_id.lower()}.test,FR,en,EUR,{amount},"
            f"{due - timedelta(days=30)},{due},A")


@pytest.fixture(scope="module")
def ledger(ledger_for):
    return ledger_for(COLLECTIONS_COMMAND_TIMEOUT=str(TIMEOUT))


def fails_in_one_line_within_the_timeout(ledger, *args: str) -> str:
    try:
        result = ledger.cli(*args, timeout=TIMEOUT + SLACK + 10)
    except CommandHung as hung:
        raise AssertionError(f"with no worker running, `{' '.join(args)}` hung instead of exiting 1 within "
                             f"COLLECTIONS_COMMAND_TIMEOUT={TIMEOUT}s: {hung}") from None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 1, f"expected exit 1 when no worker answers:\n{result}"
    assert len(lines) == 1, f"expected the failure in one line on stderr:\n{result}"
    assert "worker" in lines[0].lower(), f"the line should say no worker answered: {lines[0]!r}"
    assert result.seconds < TIMEOUT + SLACK, f"exited after {result.seconds:.0f}s, timeout {TIMEOUT}s:\n{result}"
    return lines[0]


def test_case_commands_without_a_worker_fail_fast_and_work_once_it_is_back(ledger):
    ledger.import_invoices([row("ST-1", "800.00", -9), row("ST-2", "1500.00", -14)])
    assert ledger.ok("case", "open", "ST-2")["balance"] == "1500.00"

    ledger.stop_worker()
    try:
        fails_in_one_line_within_the_timeout(ledger, "case", "open", "ST-1")
        fails_in_one_line_within_the_timeout(ledger, "pay", "ST-2", "600.00", "--reference", "wire 1",
                                             "--payment-id", "ST-2-wire-1")
    finally:
        ledger.start_worker()

    # typed again once the worker is back: the case opens, and the payment counts once
    opened = ledger.ok("case", "open", "ST-1")
    assert opened["invoice_id"] == "ST-1" and opened["balance"] == "800.00", opened
    paid = ledger.ok("pay", "ST-2", "600.00", "--reference", "wire 1", "--payment-id", "ST-2-wire-1")
    assert paid["balance"] == "900.00", paid
    shown = ledger.case("ST-2")
    payments = [e for e in shown["events"] if e["type"] == "PaymentReceived"]
    assert shown["balance"] == "900.00" and len(payments) == 1, (shown["balance"], payments)
    ledger.reconcile()


def test_sweep_without_a_worker_fails_fast(ledger):
    ledger.import_invoices([row("ST-3", "120.00", -3)])
    ledger.stop_worker()
    try:
        fails_in_one_line_within_the_timeout(ledger, "sweep")
    finally:
        ledger.start_worker()
    # once the worker is back, the sweep (the one left behind, or a new one) opens the case
    swept = ledger.cli("sweep", timeout=90)
    assert swept.code == 0, str(swept)
    assert "ST-3" in ledger.cases(), "the overdue ST-3 has no case after the sweep"
    ledger.reconcile()
