"""A payment id binds its content (issue 14, part 2), through the HTTP API with a token and
the CLI as a subprocess, against the real stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date

from tests.concurrency.conftest import running_stack
from tests.conftest import ROOT


async def test_payment_id_repeat_and_conflicts_over_http(dev_env, tmp_path):
    async with running_stack(dev_env.client, tmp_path, f"sqlite:///{tmp_path / 'c.db'}") as stack:
        case, other, ledger_only = await stack.new_case(), await stack.new_case(), stack.new_invoice()
        today = date.today().isoformat()
        body = {"amount": "100.00", "reference": "wire 1", "payment_id": "IDEM-1", "received_on": today}
        async with stack.client("supervisor") as http:
            first = await http.post(f"/api/invoices/{case}/payments", json=body)
            again = await http.post(f"/api/invoices/{case}/payments", json=body)
            assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
            assert again.json()["events"] == first.json()["events"] != []
            for change in ({"amount": "90.00"}, {"reference": "wire 2"}, {"received_on": "2026-01-02"}):
                refused = await http.post(f"/api/invoices/{case}/payments", json={**body, **change})
                assert refused.status_code == 409, refused.text
                assert refused.json()["field"] == "payment_id" and "already recorded" in refused.json()["error"]
            elsewhere = await http.post(f"/api/invoices/{other}/payments", json=body)
            assert elsewhere.status_code == 409 and elsewhere.json()["field"] == "payment_id", elsewhere.text
            # a ledger payment (invoice without a case) binds its id the same way
            ledger = {**body, "payment_id": "IDEM-L", "amount": "5.00"}
            assert (await http.post(f"/api/invoices/{ledger_only}/payments", json=ledger)).status_code == 200
            assert (await http.post(f"/api/invoices/{ledger_only}/payments", json=ledger)).status_code == 200
            changed = await http.post(f"/api/invoices/{ledger_only}/payments", json={**ledger, "amount": "6.00"})
            assert changed.status_code == 409 and changed.json()["field"] == "payment_id", changed.text
        payments = [r.event for r in stack.events(case) if type(r.event).__name__ == "PaymentReceived"]
        assert [p.payment_id for p in payments] == ["IDEM-1"]
        assert not [r for r in stack.events(other) if type(r.event).__name__ == "PaymentReceived"]


async def test_payment_id_conflicts_from_the_cli(dev_env, tmp_path):
    async with running_stack(dev_env.client, tmp_path, f"sqlite:///{tmp_path / 'c.db'}", like_processes=True) as stack:
        case, other = await stack.new_case(), await stack.new_case()
        settings = stack.context.settings
        env = {**os.environ, "COLLECTIONS_DATABASE_URL": settings.database_url,
               "TEMPORAL_ADDRESS": settings.temporal_address, "COLLECTIONS_TASK_QUEUE": settings.task_queue,
               "COLLECTIONS_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
               "COLLECTIONS_POLICY": str(settings.policy_path), "COLLECTIONS_USERS": str(settings.users_path),
               "COLLECTIONS_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
        env.pop("COLLECTIONS_PAYLOAD_KEYS", None)
        env["COLLECTIONS_TOKEN"] = stack.tokens["collector"]  # the collector's own API token

        async def pay(invoice: str, amount: str, *extra: str) -> subprocess.CompletedProcess:
            # in a thread: the worker runs on this test's event loop
            return await asyncio.to_thread(subprocess.run, [sys.executable, str(ROOT / "starter.py"), "pay", invoice, amount, "--reference",
                                   "wire 1", "--payment-id", "CLI-1", "--received-on", date.today().isoformat(),
                                   *extra], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

        first, again = await pay(case, "100.00", "--json"), await pay(case, "100.00", "--json")
        assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
        assert json.loads(again.stdout)["events"] == json.loads(first.stdout)["events"]
        for done in (await pay(case, "90.00"), await pay(other, "100.00")):
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1 and "payment_id" in lines[0], (done.returncode, lines)
        assert [r.event.payment_id for r in stack.events(case) if type(r.event).__name__ == "PaymentReceived"] == ["CLI-1"]
