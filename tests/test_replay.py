"""Determinism: committed histories of finished cases replay against today's workflow code.

A change to ``workflows/case.py`` that would make a running case diverge from its
history (a new activity, a removed timer, a reordered step...) fails here, before
it reaches a worker with cases in flight. Change such code behind
``workflow.patched(...)`` (see docs/UPGRADES.md); re-record the histories
(``make histories``) only when the change is meant to apply to new cases only and
no old case can still be running.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tests.histories.record import converter
from tests.histories.unpatched import ChangedWithoutPatch
from worker import PASSTHROUGH
from workflows.case import CollectionCaseWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(f"replay-{path.stem}", data)


def replayer(*workflows) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [CollectionCaseWorkflow],
        data_converter=converter(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )


def test_there_are_histories_to_replay():
    names = {p.name.split(".")[0] for p in FILES}
    assert {"ladder_agency_paid", "dispute_rejected_paid", "plan_approved_completed", "write_off_approved",
            "bounced_continued_cancelled"} <= names
    assert any(".run2" in p.name for p in FILES), "a continue-as-new chain is among them"
    # both sides of workflow.patched("one-message-per-customer") (docs/UPGRADES.md)
    before = [p for p in FILES if '"send_notice"' in p.read_text()]
    after = [p for p in FILES if "core_patch" in p.read_text() and '"enqueue_notice"' in p.read_text()]
    assert before and after, (before, after)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
async def test_history_replays_with_the_current_workflow_code(path):
    result = await replayer().replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_histories_are_encrypted_at_rest_in_temporal():
    """The recorded payloads are ciphertext: no customer name, e-mail or amount in clear."""
    raw = "\n".join(p.read_text() for p in FILES)
    for clear in ("Acme GmbH", "ap@acme.test", "Shanghai Trading", "finance@shtrade.test", "nobody@bounce.test",
                  "1240.00", "12345.60", "50000.00"):
        assert clear not in raw, clear
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in raw  # base64 of the metadata value b"binary/encrypted"


async def test_an_unpatched_change_is_caught():
    """The replay test can fail: a variant that adds one timer before the first step diverges."""

    result = await replayer(ChangedWithoutPatch).replay_workflow(load(HISTORIES / "ladder_agency_paid.json"),
                                                     raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
