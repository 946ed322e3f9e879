"""The month-end burst on a worker starved of CPU: the reproduction of the stall of issue 18.

`python -m bench --quick --only sweep --profile` sweeps 10,000 invoices, opens the 300 overdue
cases as fast as the sweep starts them, then sends the 300 first notices at the same second,
with py-spy sampling the worker (which takes CPU from it). Before the worker imported the
holiday tables ahead of its first case (`domain.calendar.preload`), this stalled in 5 of 6
runs within the first minute (docs/PERFORMANCE.md); with it, 5 of 5 finished in about a
minute. It runs with `make faults`: it starves the machine on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.faults_full
@pytest.mark.timeout(960)
def test_a_burst_on_a_starved_worker_opens_and_notifies_every_case_once(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "sweep", "--profile",
                           "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == [], json.dumps(report["results"], indent=1)[:3000]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wave = next(r for r in report["results"] if r["name"].startswith("month-end wave"))
    assert wave["extra"]["emails_received"] == 300, wave
    assert wave["extra"]["sent_twice"] == 0, wave
    assert wave["extra"]["watchdog_replacements"] == 0, wave
