"""`make demo` (= `starter.py up --demo`) as a newcomer runs it, on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import create_engine, select

from tests.ports import free_port
from store.schema import approvals, case_summary

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_shows_reminders_an_escalation_and_an_approval(tmp_path):
    ports = [str(free_port()) for _ in range(4)]
    env = {**os.environ, "COLLECTIONS_DATA_DIR": str(tmp_path / ".data")}
    for name in ("COLLECTIONS_DATABASE_URL", "COLLECTIONS_POLICY", "COLLECTIONS_USERS", "TEMPORAL_ADDRESS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), "up", "--demo", "--exit-after-demo",
         "--temporal-port", ports[0], "--ui-port", ports[1], "--smtp-port", ports[2], "--web-port", ports[3]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo complete" in done.stdout and "stack stopped" in done.stdout

    mails = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted((tmp_path / ".data" / "mail").glob("*.eml"))]
    subjects = [str(m["Subject"]) for m in mails]
    assert sum(s.startswith("Final notice") for s in subjects) >= 2
    assert any(s.startswith("付款提醒") for s in subjects)  # the Chinese customer's reminder
    # the customers' links lead to this stack's console, on the port `up` was given (they led to :8000)
    texts = [m.get_body(("plain",)).get_content() for m in mails]
    links = [t for t in texts if "/c/" in t]
    assert links and all(f"http://127.0.0.1:{ports[3]}/c/" in t for t in links), links[:1]

    engine = create_engine(f"sqlite:///{tmp_path / '.data' / 'collections.db'}")
    with engine.connect() as conn:
        status = dict(conn.execute(select(case_summary.c.invoice_id, case_summary.c.status)).all())
        decided = conn.execute(select(approvals.c.kind, approvals.c.status, approvals.c.decided_by)
                               .where(approvals.c.kind == "write_off")).all()
    engine.dispose()
    assert status == {"DEMO-1001": "paid", "DEMO-1002": "resolved", "DEMO-1003": "written_off",
                      "DEMO-1004": "escalated", "DEMO-1005": "promised"}
    assert decided == [("write_off", "approved", "demo-manager")]

    # the lines it prints to try by hand set up a terminal like the demo's worker: the same users and
    # the same (demo) policy; without COLLECTIONS_POLICY a case opened by hand was pinned to the default
    # (and the stack's own Temporal and data directory: a terminal without them reached another
    # stack's Temporal on 7233, or none)
    exports = dict(line.strip().removeprefix("export ").split("=", 1) for line in done.stdout.splitlines()
                   if line.strip().startswith("export "))
    assert set(exports) == {"COLLECTIONS_USERS", "COLLECTIONS_POLICY", "TEMPORAL_ADDRESS", "COLLECTIONS_DATA_DIR"}
    assert exports["TEMPORAL_ADDRESS"] == f"127.0.0.1:{ports[0]}", exports
    terminal = {k: v for k, v in env.items() if k != "COLLECTIONS_DATA_DIR"} | exports
    case = subprocess.run([sys.executable, str(ROOT / "starter.py"), "case", "show", "DEMO-1004", "--json"],
                          cwd=tmp_path, env=terminal, capture_output=True, text=True, timeout=60)
    assert case.returncode == 0 and '"status": "escalated"' in case.stdout, case.stdout[:500] + case.stderr
    shown = subprocess.run([sys.executable, str(ROOT / "starter.py"), "policy", "show", "--json"], cwd=tmp_path,
                           env=terminal, capture_output=True, text=True, timeout=60)
    demo_version = next(line.split('"')[1] for line in (ROOT / "policies" / "demo.toml").read_text().splitlines()
                        if line.startswith("version"))
    assert shown.returncode == 0 and f'"version": "{demo_version}"' in shown.stdout, shown.stdout[:500] + shown.stderr
