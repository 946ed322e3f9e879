"""Acceptance: `starter.py up`, the quick start: the whole embedded stack in one foreground
process (its own Temporal dev server, SMTP sink into <data dir>/mail, worker, web console),
used from a second terminal with the CLI, then stopped with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import httpx

from tests.ports import free_port
from tests.acceptance.stack import FAST_POLICY, INVOICE_HEADER, PYTHON, STARTER, USERS, wait_until


def test_up_runs_the_stack_until_ctrl_c(tmp_path):
    data = tmp_path / "data"
    ports = {name: free_port() for name in ("temporal", "ui", "smtp", "web")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTIONS_", "SMTP_", "TEMPORAL_"))}
    users = tmp_path / "users.toml"  # tokens are issued into a copy, never into config/users.toml
    shutil.copyfile(USERS, users)
    env.update({"COLLECTIONS_DATA_DIR": str(data), "COLLECTIONS_POLICY": str(FAST_POLICY), "COLUMNS": "200",
                "PYTHONUNBUFFERED": "1", "COLLECTIONS_USERS": str(users)})
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen([PYTHON, STARTER, "up", "--temporal-port", str(ports["temporal"]), "--ui-port",
                               str(ports["ui"]), "--smtp-port", str(ports["smtp"]), "--web-port", str(ports["web"])],
                              env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(log.read_text, lambda text: "stack up" in text or up.poll() is not None, 120,
                   "`up` printing 'stack up'")
        assert up.poll() is None, f"`up` exited {up.returncode}:\n{log.read_text()[-2000:]}"
        assert httpx.get(f"http://127.0.0.1:{ports['web']}/healthz", timeout=10).status_code == 200

        # a second terminal: the same data dir, the Temporal port `up` was given
        cli_env = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}"}

        def cli(*args: str) -> subprocess.CompletedProcess:
            done = subprocess.run([PYTHON, STARTER, *args], env=cli_env, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=90, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
            return done

        cli_env["COLLECTIONS_TOKEN"] = json.loads(cli("users", "token", "demo-supervisor", "--json").stdout)["token"]
        today = datetime.now(timezone.utc).date()
        csv = tmp_path / "invoices.csv"
        csv.write_text(f"{INVOICE_HEADER}\nUP-1,C-UP,Up Ltd,ap@up.test,GB,en,GBP,250.00,"
                       f"{today - timedelta(days=40)},{today - timedelta(days=10)},A\n")
        cli("invoices", "import", str(csv), "--json")
        cli("case", "open", "UP-1", "--json")
        mails = wait_until(lambda: sorted((data / "mail").glob("*.eml")), bool, 60,
                           f"a reminder in {data / 'mail'}")
        assert b"ap@up.test" in mails[0].read_bytes() and b"UP-1" in mails[0].read_bytes()

        up.send_signal(signal.SIGINT)  # Ctrl-C
        started = time.monotonic()
        code = up.wait(timeout=60)
        assert code == 0 and time.monotonic() - started < 60, f"`up` exited {code} on Ctrl-C"
        assert "stack stopped" in log.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)
