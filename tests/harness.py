"""Helpers for tests that run cases on a real Temporal server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from activities.contracts import mailbox_workflow_id
from app.services import CaseService
from domain.decider import case_uuid
from domain.state import CaseState
from store.schema import invoices

ROOT = Path(__file__).resolve().parents[1]
INVOICES = ROOT / "tests" / "data" / "invoices.csv"


async def eventually(check: Callable[[], object], timeout: float = 20.0, interval: float = 0.1):
    """Poll until ``check()`` returns something truthy (reads are eventually caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last result: {result!r}")
        await asyncio.sleep(interval)


def case_state(service: CaseService, invoice_id: str) -> CaseState | None:
    return service.ctx.store.state(case_uuid(invoice_id))


def event_types(service: CaseService, invoice_id: str) -> list[str]:
    return [type(e).__name__ for e in service.ctx.store.load(case_uuid(invoice_id))]


async def advance(env, duration: timedelta) -> None:
    """Move the time-skipping server's clock forward."""
    await env.sleep(duration)


async def terminate_cases(service: CaseService) -> None:
    """End the workflows a test started: its open cases and its customers' mailboxes
    (one left without a worker would hold the time-skipping server's clock)."""
    client = await service.ctx.client()
    prefix = service.ctx.settings.workflow_id_prefix
    with service.ctx.db.read() as session:  # the ledger, not the projection: a case just started is not projected yet
        rows = session.execute(select(invoices.c.invoice_id, invoices.c.customer_id)).all()
    ids = [service._workflow_id(invoice_id) for invoice_id, _ in rows]
    ids += sorted({mailbox_workflow_id(customer_id, prefix) for _, customer_id in rows})
    for workflow_id in ids:
        try:
            await client.get_workflow_handle(workflow_id).terminate("test finished")
        except Exception:  # already finished, or never started
            pass


def cli_environment(dev_env, directory: Path, smtp_port: int, policy: Path, tag: str) -> dict[str, str]:
    """The environment a CLI command or worker needs to run against a test's own stack:
    its SQLite file, a task queue and workflow ids of its own, the SMTP sink, the policy."""
    import uuid

    return {
        "COLLECTIONS_DATABASE_URL": f"sqlite:///{directory / 'collections.db'}",
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "COLLECTIONS_TASK_QUEUE": f"{tag}-{uuid.uuid4().hex[:8]}",
        "COLLECTIONS_WORKFLOW_ID_PREFIX": f"{tag}{uuid.uuid4().hex[:6]}-",
        "SMTP_PORT": str(smtp_port),
        "COLLECTIONS_POLICY": str(policy),
        "COLLECTIONS_USERS": str(ROOT / "config" / "users.toml"),
        "COLLECTIONS_DATA_DIR": str(directory / "data"),
        "COLUMNS": "200",
    }


@contextlib.contextmanager
def patched_environment(env: dict[str, str]):
    """Sets ``env`` for the CLI run in this process (and drops what would change who acts)."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("COLLECTIONS_USER", raising=False)
        patch.delenv("COLLECTIONS_PAYLOAD_KEYS", raising=False)
        yield patch
