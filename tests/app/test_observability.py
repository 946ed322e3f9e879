"""Observability of a real worker process: Prometheus metrics (domain and SDK) and JSON logs.

``python worker.py`` runs with COLLECTIONS_METRICS_ADDRESS, COLLECTIONS_SDK_METRICS_ADDRESS
and COLLECTIONS_LOG_FORMAT=json against the dev server, a SQLite store and an SMTP
sink; a case walks the fast policy's ladder; both endpoints are scraped over HTTP and
the worker's log lines are read back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.context import Context
from app.logs import JsonFormatter
from tests.ports import free_port
from app.services import CaseService
from app.settings import Settings
from domain.decider import case_uuid
from tests.harness import INVOICES, eventually

ROOT = Path(__file__).resolve().parents[2]


def test_json_log_lines_carry_the_case_id():
    formatter = JsonFormatter()
    explicit = logging.LogRecord("activities.notices", logging.INFO, __file__, 1, "notice sent", (), None)
    explicit.case_id = "0b7e1c1e-0000-4000-8000-000000000001"
    explicit.seq = 2
    line = json.loads(formatter.format(explicit))
    assert line["case_id"] == explicit.case_id and line["seq"] == 2 and line["message"] == "notice sent"
    derived = logging.LogRecord("temporalio.workflow", logging.WARNING, __file__, 1, "deadline changed nothing", (),
                                None)
    derived.temporal_workflow = {"workflow_id": "t1-case-INV-1001", "run_id": "r1", "workflow_type": "CollectionCase"}
    line = json.loads(formatter.format(derived))
    assert line["case_id"] == str(case_uuid("INV-1001")) and line["workflow_id"] == "t1-case-INV-1001"
    assert line["level"] == "warning"


def scrape(port: int) -> dict[str, list]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict, name: str, **labels) -> float:
    for sample in families.get(name, []):
        if sample.name in (name, f"{name}_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return 0.0


async def test_a_worker_exports_domain_and_sdk_metrics_and_json_logs(dev_env, tmp_path, smtp):
    metrics_port, sdk_port = free_port(), free_port()
    key = f"obs1:{base64.b64encode(os.urandom(32)).decode()}"
    env = {
        **os.environ,
        "COLLECTIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'collections.db'}",
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "COLLECTIONS_TASK_QUEUE": f"obs-{uuid.uuid4().hex[:8]}",
        "COLLECTIONS_WORKFLOW_ID_PREFIX": f"obs{uuid.uuid4().hex[:6]}-",
        "SMTP_PORT": str(smtp.port),
        "COLLECTIONS_POLICY": str(ROOT / "tests" / "data" / "fast.toml"),
        "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
        "COLLECTIONS_PAYLOAD_KEYS": key,
        "COLLECTIONS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "COLLECTIONS_SDK_METRICS_ADDRESS": f"127.0.0.1:{sdk_port}",
        "COLLECTIONS_LOG_FORMAT": "json",
    }
    settings = Settings(
        database_url=env["COLLECTIONS_DATABASE_URL"], temporal_address=env["TEMPORAL_ADDRESS"],
        task_queue=env["COLLECTIONS_TASK_QUEUE"], workflow_id_prefix=env["COLLECTIONS_WORKFLOW_ID_PREFIX"],
        smtp_port=smtp.port, policy_path=Path(env["COLLECTIONS_POLICY"]), data_dir=tmp_path / "data",
        users_path=ROOT / "config" / "users.toml", payload_keys=key,
    )
    context = Context(settings)
    service = CaseService(context)
    service.import_invoices(INVOICES)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        await eventually(lambda: _answers(metrics_port) and _answers(sdk_port), timeout=60)
        before = scrape(metrics_port)
        assert value(before, "collections_projection_scrape_ok") == 1
        await service.open_case("INV-1002")  # grade B, EUR: three notices, a fee, an escalation
        await eventually(lambda: service.show("INV-1002")["status"] == "escalated", timeout=60)
        domain = await asyncio.to_thread(scrape, metrics_port)
        sdk = await asyncio.to_thread(scrape, sdk_port)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        context.db.dispose()
    assert value(domain, "collections_cases_opened", reason="overdue") == 1
    assert value(domain, "collections_notices", result="sent") == 3
    assert value(domain, "collections_notices", result="failed") == 0
    assert value(domain, "collections_events_appended", type="LateFeeCharged") == 1
    assert value(domain, "collections_approvals_pending", kind="escalation", tier="supervisor") == 1
    assert value(domain, "collections_approvals_overdue", kind="escalation", tier="supervisor") == 0
    assert value(domain, "collections_cases", status="escalated") == 1
    assert any(name.startswith("temporal_") for name in sdk), sorted(sdk)[:20]
    assert any("workflow_task" in name for name in sdk), sorted(sdk)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    sent = [line for line in lines if line["message"] == "notice sent"]
    case_id = str(case_uuid("INV-1002"))
    assert len(sent) == 3 and all(line["case_id"] == case_id and "mark_ms" in line for line in sent)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
