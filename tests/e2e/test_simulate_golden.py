"""The simulator's results do not move when it is made faster: reports and every event of every
case and customer, on a generated ledger (2,000 invoices, seed 7) and on the full public
ledger, against figures recorded by the simulator as it was before the speed work (main at
3159dd0; docs/PERFORMANCE.md, simulator section).

What is compared: the report as ``run_simulation`` returns it (its run time and the files'
paths aside), and a fingerprint of each case's events and of the customers' events: every field
of every event, with the ids that derive from random command ids (event ids; dispute,
escalation and hold ids) replaced by their order of appearance in the stream, and fields whose
value is None left out (event types gain optional fields; that is no change). The dates are
shifted by a fixed number of weeks, so the result does not depend on the day the test runs.

``python -m tests.e2e.test_simulate_golden WRITE`` records the figures again (only ever from a
code path whose results are known to be right, e.g. a checkout of 3159dd0 on the Python path).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from app.backtest import ledger_lines
from app.imports import read_text
from app.simulate import Simulator, load_policy, run_simulation
from bench.ledger import generate

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "data" / "simulate-golden.json"
POLICY = HERE.parent.parent / "policies" / "default.toml"
SHIFT_DAYS = 1792  # 256 weeks: the generated ledger's 2022 onto 2026, the public ledger's 2012 onto 2017
_RANDOM_ID = re.compile(r"^[A-Z]{2,3}[0-9]?-[0-9a-f]{16}$")


def _stream_digest(events) -> str:
    seen: dict[str, str] = {}
    out = []
    for e in events:
        data = e.model_dump(mode="json")
        data.pop("event_id", None)
        # a field an event type gained later, absent (None) here, is not a change of results
        data = {key: value for key, value in data.items() if value is not None}
        for key, value in sorted(data.items()):
            if isinstance(value, str) and _RANDOM_ID.match(value):
                data[key] = seen.setdefault(value, f"id#{len(seen)}")
        out.append(data)
    return hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:20]


def fingerprint(ledger: Path, format: str) -> dict:
    """The report and the events of one simulation (a fresh one, through ``run_simulation`` for
    the report and the ``Simulator`` it drives for the events)."""
    report = run_simulation(ledger, POLICY, format, shift_days=SHIFT_DAYS)
    for key in ("run_seconds", "ledger", "policy_file"):  # the run time and where the files are
        report.pop(key)
    policy = load_policy(POLICY)
    rows, lines = ledger_lines(read_text(ledger), format, None, None)
    sim = Simulator(policy, rows, lines, timedelta(days=SHIFT_DAYS))
    sim.play()
    results = sim.results()
    assert results == {k: report[k] for k in results}  # the same run as run_simulation's
    by_customer: dict[str, list] = {}
    for e in sim.customer_events:
        by_customer.setdefault(e.customer_id, []).append(e)
    return {
        "report": json.loads(json.dumps(report, default=str)),
        "cases": {invoice_id: _stream_digest(case.events) for invoice_id, case in sorted(sim.cases.items())},
        "customers": {c: _stream_digest(events) for c, events in sorted(by_customer.items())},
        "messages": sim.messages,
    }


def _generated(folder: Path) -> Path:
    path = folder / "ledger-2000.csv"
    generate(path, 2000, 2, seed=7)
    return path


def _public() -> Path | None:
    from tests.conftest import shared_ledger

    return shared_ledger()


def _compare(name: str, got: dict) -> None:
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    assert got["report"] == want["report"]
    assert got["messages"] == want["messages"]
    assert sorted(got["cases"]) == sorted(want["cases"])
    assert [i for i in want["cases"] if got["cases"][i] != want["cases"][i]] == []
    assert got["customers"] == want["customers"]


def test_the_simulator_gives_the_recorded_results_on_a_generated_ledger(tmp_path):
    path = _generated(tmp_path)
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))["generated-2000"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == want["ledger_sha256"], "the generator changed"
    got = fingerprint(path, "standard")
    assert got["report"]["cases_opened"] == len(got["cases"]) > 500
    assert got["report"]["escalations"] > 0 and got["report"]["disputes_opened"] > 0
    _compare("generated-2000", got)


@pytest.mark.skipif(_public() is None, reason="the shared AR ledger is not on this machine")
def test_the_simulator_gives_the_recorded_results_on_the_full_public_ledger():
    got = fingerprint(_public(), "ibm-ar")
    assert got["report"]["cases_opened"] == len(got["cases"]) == 700
    _compare("public", got)


def _write(folder: Path) -> None:
    path = _generated(folder)
    generated = fingerprint(path, "standard")
    generated["ledger_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    golden = {"generated-2000": generated}
    if _public() is not None:
        golden["public"] = fingerprint(_public(), "ibm-ar")
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["WRITE"]:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as folder:
        _write(Path(folder))
