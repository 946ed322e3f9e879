"""Helpers for tests that run cases on a real Temporal server."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from app.services import CaseService
from domain.decider import case_uuid
from domain.state import CaseState

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
    """End the workflows a test started (a stale one would hold the test server's clock)."""
    client = await service.ctx.client()
    for row in service.list():
        if row["closed_at"] is None:
            try:
                await client.get_workflow_handle(service._workflow_id(row["invoice_id"])).terminate("test finished")
            except Exception:  # already finished
                pass
