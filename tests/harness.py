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
from app.backtest import advance_clock
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
    """Move the time-skipping server's clock forward (without the SDK's 30 s deadline, as the backtest)."""
    await advance_clock(env, duration)


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


DEMO_USERS = ("demo-collector", "demo-supervisor", "demo-manager")


def users_with_tokens(directory: Path) -> Path:
    """A copy of config/users.toml with a fresh API token for each demo user (the CLI acts as
    the user of its token), and the tokens beside it in tokens.json for ``token_for``."""
    import json
    import shutil

    from app.tokens import issue_token

    path = directory / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", path)
    tokens = {name: issue_token(path, name)["token"] for name in DEMO_USERS}
    (directory / "tokens.json").write_text(json.dumps(tokens))
    return path


def token_for(users_path: str | Path, args) -> str:
    """The token of the person who would run ``args``: the user named by --as; without --as,
    the collector, or a supervisor for what only approvers may do (importing invoices...);
    the collector's when --as names nobody with a token."""
    import json

    from app.authorization import CLI_ACTIONS, ROLE_MATRIX
    from domain.policy import Role

    tokens = json.loads((Path(users_path).parent / "tokens.json").read_text())
    args = list(args)
    if "--as" in args[:-1]:
        return tokens.get(args[args.index("--as") + 1], tokens["demo-collector"])
    path = " ".join(a for a in args[:2] if not a.startswith("-"))
    action = (CLI_ACTIONS.get(path) or CLI_ACTIONS.get(path.split(" ")[0]) or ("", False))[0]
    collector_may = Role.collector in ROLE_MATRIX.get(action, frozenset(Role))
    return tokens["demo-collector" if collector_may else "demo-supervisor"]


def cli_environment(dev_env, directory: Path, smtp_port: int, policy: Path, tag: str) -> dict[str, str]:
    """The environment a CLI command or worker needs to run against a test's own stack:
    its SQLite file, a task queue and workflow ids of its own, the SMTP sink, the policy,
    a users file whose demo users hold tokens."""
    import uuid

    return {
        "COLLECTIONS_DATABASE_URL": f"sqlite:///{directory / 'collections.db'}",
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "COLLECTIONS_TASK_QUEUE": f"{tag}-{uuid.uuid4().hex[:8]}",
        "COLLECTIONS_WORKFLOW_ID_PREFIX": f"{tag}{uuid.uuid4().hex[:6]}-",
        "SMTP_PORT": str(smtp_port),
        "COLLECTIONS_POLICY": str(policy),
        "COLLECTIONS_USERS": str(users_with_tokens(directory)),
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
        patch.delenv("COLLECTIONS_TOKEN", raising=False)
        patch.delenv("COLLECTIONS_PAYLOAD_KEYS", raising=False)
        yield patch
