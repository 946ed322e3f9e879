"""Acceptance: a command that waits on a workflow which cannot progress exits 1 within
COLLECTIONS_COMMAND_TIMEOUT with the reason in one line, instead of hanging; once the cause
is gone (the worker is back) the same command, typed again, does its work exactly once.

The way a user meets it: the worker is not running (crashed, not started, being deployed).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest, RespondWorkflowTaskFailedRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

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


# What the SDK's deadlock detector reports for an activation starved of CPU for 2 s.
STARVED = "[TMPRL1101] Potential deadlock detected: workflow didn't yield within 2 second(s)."


async def starve_first_tasks(ledger, workflow_id: str, times: int) -> Client:
    """Play a worker starved of CPU: take the workflow's first ``times`` tasks and fail each as
    the SDK's deadlock detector does. Returns a client of the same server."""
    client = await Client.connect(ledger.temporal.address)
    deadline = time.monotonic() + 60
    failed = 0
    while failed < times:
        assert time.monotonic() < deadline, f"the task of {workflow_id} was not polled {times} times within 60 s"
        task = await client.workflow_service.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=ledger.task_queue), identity="starved-worker"),
            timeout=timedelta(seconds=70))
        if not task.task_token or task.workflow_execution.workflow_id != workflow_id:
            continue  # another workflow's task: it times out and comes back to the real worker
        await client.workflow_service.respond_workflow_task_failed(RespondWorkflowTaskFailedRequest(
            namespace=client.namespace, task_token=task.task_token, identity="starved-worker",
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            failure=Failure(message=STARVED)))
        failed += 1
    return client


async def refused_while_failing(ledger, workflow_id: str) -> str:
    """Fail the workflow's first two tasks (``starve_first_tasks``); return the pending task's
    attempt, after checking that the server now refuses any Update."""
    client = await starve_first_tasks(ledger, workflow_id, times=2)
    described = await client.get_workflow_handle(workflow_id).describe()
    attempt = described.raw_description.pending_workflow_task.attempt
    try:
        await client.get_workflow_handle(workflow_id).execute_update("opened", rpc_timeout=timedelta(seconds=10))
    except RPCError as refusal:
        assert refusal.status == RPCStatusCode.FAILED_PRECONDITION, refusal
        return f"attempt {attempt}: {refusal.message}"
    raise AssertionError(f"the server took an Update while the case's task was on attempt {attempt}")


def test_case_open_outlasts_a_starved_worker_failing_the_case_s_first_tasks(ledger):
    """From a workflow task's third attempt on, the server refuses Updates outright (CI met it while
    a jammed worker was being replaced). `case open`, typed as usual, sends its Update again until a
    healthy worker runs the task, then exits 0 with the case open once."""
    ledger.import_invoices([row("ST-4", "640.00", -6)])
    workflow_id = f"{ledger.prefix}case-ST-4"
    ledger.stop_worker()
    try:
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(ledger.cli, "case", "open", "ST-4", timeout=150,
                                  env={"COLLECTIONS_COMMAND_TIMEOUT": "120"})
            refusal = asyncio.run(refused_while_failing(ledger, workflow_id))
            assert "attempt 3" in refusal and "Workflow Task in failed state" in refusal, refusal
            time.sleep(5)  # the command resends meanwhile (every 0.2-2 s), and is refused each time
            assert not opening.done(), f"`case open` gave up while the worker was starved:\n{opening.result()}"
            ledger.start_worker()
            opened = opening.result()
    finally:
        if ledger.worker is None:
            ledger.start_worker()
    assert opened.code == 0, f"{opened}\n{ledger.logs()}"
    assert opened.json["invoice_id"] == "ST-4" and opened.json["balance"] == "640.00", opened.json
    shown = ledger.case("ST-4")
    assert [e["type"] for e in shown["events"]].count("CaseOpened") == 1, shown["events"]
    ledger.reconcile()
