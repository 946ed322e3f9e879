"""The month-end burst at a size CI can run: 300 cases opened at once on one worker process with
few workflow-task slots and a small workflow cache, then every notice of their ladders.

Asserts what issue 18 asks of the full burst: no stall (every case closes within the timeout,
no workflow left running) and no notice sent twice (nor lost), on the real stack (worker
process, Temporal dev server, SMTP sink on loopback, the fault suite's verification).
Run 2026-12-04 (load average 14-15 on 2 cores, other suites running): 300 cases, every notice
recorded and received once, 0 lost, wave 537.5 s, test 556.5 s. It runs with `make faults`.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import record_report
from tests.faults.stack import FaultStack
from tests.faults.test_faults import running_workflows
from tests.faults.wave import plan_wave, run_wave, verify

BURST = 300


@pytest.mark.faults_full  # 9 min on a loaded 2-core machine: with `make faults` (COLLECTIONS_FAULTS=full)
@pytest.mark.timeout(900)
async def test_burst_of_cases_neither_stalls_nor_sends_twice(tmp_path):
    stack = FaultStack.start(tmp_path / "stack")
    try:
        stack.env["COLLECTIONS_MAX_CONCURRENT_WORKFLOW_TASKS"] = "4"
        stack.env["COLLECTIONS_MAX_CACHED_WORKFLOWS"] = "50"
        csv_text, cases = plan_wave(BURST, 0)
        stack.start_worker()
        timing = await run_wave(stack, csv_text, cases, None, timeout=600, concurrency=BURST)
        checks = verify(stack, cases)
        report = {"scenario": "burst", "title": f"burst: {BURST} cases at once, 4 workflow-task slots, cache 50",
                  "suite": "burst", "crashes": 0, "in_window": 0,
                  "running_workflows": await running_workflows(stack), **timing, **checks}
        record_report(report)
    finally:
        stack.close()
    assert report["problems"] == [], report["problems"]
    assert report["lost_cases"] == 0 and report["running_workflows"] == 0  # no stall: everything closed
    assert report["notices_lost"] == 0 and report["phantom_notices"] == 0
    assert report["duplicate_notices"] == 0 and report["duplicate_steps"] == 0, report["duplicate_detail"]
    assert report["duplicate_events"] == 0 and report["version_gaps"] == 0
    assert report["projections_equal_rebuild"]
