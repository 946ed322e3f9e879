"""`python starter.py up` serves the console and API next to Temporal, the SMTP sink and the worker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import httpx

from tests.ports import free_port
from app.settings import Settings
from app.stack import DEMO_USERS, demo_users_file
from app.tokens import issue_token, verify_token
from domain.users import parse_users
from tests.conftest import ROOT


def test_the_demo_issues_tokens_into_a_copy_of_the_users_file(tmp_path):
    committed = (ROOT / "config" / "users.toml").read_text()
    path, tokens = demo_users_file(Settings(data_dir=tmp_path / "data"))
    assert path == tmp_path / "data" / "users.toml" and set(tokens) == set(DEMO_USERS)
    users = {u.name: u for u in parse_users(path.read_text()).users}
    assert all(verify_token(token, users[name].token_hash) for name, token in tokens.items())
    assert (ROOT / "config" / "users.toml").read_text() == committed  # the committed file is untouched


def test_up_serves_the_console_and_the_api_and_stops_on_ctrl_c(tmp_path):
    users = tmp_path / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", users)
    token = issue_token(users, "demo-supervisor")["token"]
    ports = {name: free_port() for name in ("temporal", "ui", "smtp", "web")}
    env = {**os.environ, "COLLECTIONS_DATA_DIR": str(tmp_path / "data"), "COLLECTIONS_USERS": str(users)}
    process = subprocess.Popen(
        [sys.executable, "starter.py", "up", "--temporal-port", str(ports["temporal"]), "--ui-port", str(ports["ui"]),
         "--smtp-port", str(ports["smtp"]), "--web-port", str(ports["web"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{ports['web']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.3)
        me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["name"] == "demo-supervisor"
        assert httpx.get(f"{base}/", follow_redirects=True).url.path == "/console/login"
        imported = httpx.post(f"{base}/api/invoices/import", content=(ROOT / "samples" / "invoices.csv").read_bytes(),
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
        assert imported.json()["invoices_added"] == 5
        opened = httpx.post(f"{base}/api/cases", json={"invoice_id": "DEMO-1001"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert opened.status_code == 201 and opened.json()["status"] == "open"  # the worker answered
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"console: http://127.0.0.1:{ports['web']}/console/" in output and "stack stopped" in output
