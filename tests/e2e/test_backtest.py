"""The backtest's reduced form on the real public ledger, checked against counts taken
straight from the CSV (no engine code involved in the expected numbers).

The full run (2,466 invoices, 100 customers) is documented in docs/BACKTEST.md;
``COLLECTIONS_BACKTEST_FULL=1`` runs it here too.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_ledger

LEDGER = shared_ledger()
POLICY = ROOT / "policies" / "default.toml"
CUSTOMERS = None if os.environ.get("COLLECTIONS_BACKTEST_FULL") == "1" else 8

pytestmark = pytest.mark.skipif(LEDGER is None, reason="the shared AR ledger is not on this machine")


def independent_counts(path: Path, customers: int | None, grace_days: int) -> dict:
    """From the CSV alone: the first ``customers`` customer ids in sorted order; an invoice
    needs a case when it was settled more than ``grace_days`` days after its due date."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    ids = sorted({r["customerID"] for r in rows})
    chosen = set(ids[:customers] if customers else ids)
    rows = [r for r in rows if r["customerID"] in chosen]
    day = lambda text: datetime.strptime(text, "%d/%m/%Y").date()  # noqa: E731
    late = [r for r in rows if (day(r["SettledDate"]) - day(r["DueDate"])).days > grace_days]
    return {"invoices": len(rows), "customers": len(chosen), "cases": len(late),
            "paid_cases": sum(1 for r in late if r["SettledDate"]),
            "disputed_cases": sum(1 for r in late if r["Disputed"] == "Yes")}


def test_the_backtest_agrees_with_an_independent_count_from_the_csv(tmp_path):
    grace_days = int(tomllib.loads(POLICY.read_text())["grace"].strip("PD"))
    args = [sys.executable, str(ROOT / "starter.py"), "backtest", str(LEDGER), "--format", "ibm-ar",
            "--policy", str(POLICY), "--json"]
    if CUSTOMERS:
        args += ["--customers", str(CUSTOMERS)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=tmp_path,
                          env={**os.environ, "COLLECTIONS_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)  # nothing but the JSON on stdout
    expected = independent_counts(LEDGER, CUSTOMERS, grace_days)
    print(json.dumps({k: v for k, v in result.items() if k not in ("kpis", "kpis_by_quarter")}))
    assert result["grace_days"] == grace_days == 3 and result["policy_version"] == "default-2026.12-3"
    assert (result["invoices"], result["customers"]) == (expected["invoices"], expected["customers"])
    assert result["cases_opened"] == expected["cases"] > 0
    assert result["cases_by_outcome"] == {"paid": expected["paid_cases"]}
    assert result["disputes_opened"] == expected["disputed_cases"]
    assert result["paid_without_case"] == expected["invoices"] - expected["cases"]
    assert sum(result["notices_by_level"].values()) == result["notices_sent"] > 0
    assert result["approvals_needed"] >= result["escalations"]
    kpis = result["kpis"]
    assert kpis["invoices_collected"] == expected["invoices"]  # every invoice was settled in the end
    assert kpis["receivables_end"] == "0.00" and kpis["cei_percent"] == "100.0"
    assert result["kpis_by_quarter"] and all(q["dso_standard"] is not None for q in result["kpis_by_quarter"][:-1])
    assert result["period"]["from"].startswith("2012-")
