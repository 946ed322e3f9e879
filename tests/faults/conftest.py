"""Selection and reporting for the fault suite.

* tests marked ``faults_full`` run only with COLLECTIONS_FAULTS=full (``make faults``);
  otherwise they are deselected, so plain ``pytest`` runs the reduced scenarios;
* every scenario's figures are collected; the terminal summary prints them as a
  table, they are saved to tests/artifacts/faults-<suite>.json, and a full run
  writes the table into docs/RELIABILITY.md (between the ``faults:`` markers).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
REPORTS: list[dict] = []
FULL = os.environ.get("COLLECTIONS_FAULTS") == "full"
DOC = ROOT / "docs" / "RELIABILITY.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


def record_report(report: dict) -> None:
    REPORTS.append(report)


def pytest_collection_modifyitems(config, items):
    """Without COLLECTIONS_FAULTS=full the full scenarios are deselected; with it, the reduced ones."""
    drop = [i for i in items
            if "faults" in i.nodeid.split("::")[0] and (i.get_closest_marker("faults_full") is not None) != FULL]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]


def _recover(report: dict) -> str:
    times = [f["recover_s"] for f in report["faults"] if f.get("recover_s") is not None]
    return "/".join(f"{t:.1f}" for t in times) if times else "-"


def table(reports: list[dict]) -> str:
    head = ("| scenario | cases | faults injected | lost cases | lost notices | duplicate events | "
            "duplicate notices (sends a crash caught after SMTP acceptance) | recover s (each fault) | drain s | wave s | projections = rebuild |")
    rows = [head, "|" + "---|" * 11]
    for r in reports:
        faults = len(r["faults"]) if r["faults"] else (f"{r['rejected_cases']} x 550" if r["rejected_cases"] else 0)
        if r["faults"] and r["rejected_cases"]:
            faults = f"{len(r['faults'])} + {r['rejected_cases']} x 550"
        allowed = f"{r['in_window']} in window / {r['crashes']} crashes" if r["crashes"] else "0"
        rows.append(
            f"| {r['title']} | {r['cases']} | {faults} | {r['lost_cases']} | {r['notices_lost']} | "
            f"{r['duplicate_events'] + r['duplicate_facts']} | {r['duplicate_notices']} ({allowed}) | {_recover(r)} | "
            f"{r['drain_s'] if r['drain_s'] is not None else '-'} | {r['wall_s']} | "
            f"{'yes' if r['projections_equal_rebuild'] else 'NO'} |"
        )
    return "\n".join(rows)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not REPORTS:
        return
    suite = "full" if FULL else "reduced"
    text = table(REPORTS)
    terminalreporter.write_sep("=", f"fault injection ({suite} suite)")
    terminalreporter.write_line(text)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / f"faults-{suite}.json").write_text(json.dumps(REPORTS, indent=2, default=str))
    if FULL and DOC.exists():
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = DOC.read_text()
        if BEGIN in body and END in body:
            start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
            block = f"\n_Last full run: {stamp} (`make faults`; {len(REPORTS)} scenario(s))._\n\n{text}\n"
            DOC.write_text(body[:start] + block + body[end:])
            terminalreporter.write_line(f"table written to {DOC.relative_to(ROOT)}")
