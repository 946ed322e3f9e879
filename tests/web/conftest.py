"""A real web stack per test module: uvicorn on a loopback port, serving the API and
console, with a real worker on the Temporal dev server, a real SMTP sink and a
SQLite file; users with real tokens issued into a copy of config/users.toml."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from api.server import start_web
from app.context import Context
from app.mailsink import MailSink
from tests.ports import free_port
from app.services import CaseService
from app.settings import Settings
from app.tokens import issue_token
from domain.decider import case_uuid
from domain.users import Actor
from tests.conftest import ROOT
from tests.harness import case_state, eventually
from worker import build_worker

ROLES = ("collector", "supervisor", "finance_manager")
ROLE_USERS = {"collector": "demo-collector", "supervisor": "demo-supervisor", "finance_manager": "demo-manager"}
HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


class Web:
    def __init__(self, url: str, context: Context, users_path: Path, tokens: dict[str, str], sink: MailSink) -> None:
        self.url = url
        self.context = context
        self.service = CaseService(context)
        self.users_path = users_path
        self.tokens = tokens  # by role
        self.sink = sink
        self._numbers = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:4].upper()
        self._clients: list[httpx.AsyncClient] = []
        self.escalating: list[str] = []  # grade D cases opened at start: escalated within seconds

    def client(self, role: str | None = None, token: str | None = None, **options) -> httpx.AsyncClient:
        headers = {}
        if token or role:
            headers["Authorization"] = f"Bearer {token or self.tokens[role]}"
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **options)
        self._clients.append(client)
        return client

    def actor(self, role: str) -> Actor:
        return self.context.actor(ROLE_USERS[role])

    def new_invoice(self, grade: str = "A", amount: str = "1000.00", currency: str = "USD",
                    customer: str = "Acme Test GmbH") -> str:
        invoice_id = f"W{self._prefix}-{next(self._numbers):04d}"
        name = '"' + customer.replace('"', '""') + '"'
        row = f"{invoice_id},C-{invoice_id},{name},ap@acme.test,DE,en,{currency},{amount},2026-01-05,2026-02-04,{grade}"
        self.service.import_invoice_text(f"{HEADER}\n{row}\n", "test")
        return invoice_id

    async def new_case(self, grade: str = "A", amount: str = "1000.00", **invoice) -> str:
        invoice_id = self.new_invoice(grade, amount, **invoice)
        await self.service.open_case(invoice_id, "overdue", self.actor("collector"))
        return invoice_id

    async def escalated_case(self) -> str:
        """A case waiting for a supervisor's decision."""
        invoice_id = self.escalating.pop() if self.escalating else await self.new_case("D")
        await eventually(lambda: (s := case_state(self.service, invoice_id)) is not None and s.escalation_pending,
                         timeout=30)
        return invoice_id

    async def quiet(self) -> None:
        """Wait until no case has a timer about to fire (the grade D cases have escalated)."""
        for invoice_id in list(self.escalating):
            await eventually(lambda: case_state(self.service, invoice_id).escalation_pending, timeout=30)

    def version(self, invoice_id: str) -> int:
        return self.context.store.version(case_uuid(invoice_id))

    def events(self, invoice_id: str) -> list[str]:
        return [type(e).__name__ for e in self.context.store.load(case_uuid(invoice_id))]

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


@pytest.fixture(scope="module")
async def web(dev_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    users_path = tmp / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", users_path)
    tokens = {role: issue_token(users_path, name)["token"] for role, name in ROLE_USERS.items()}
    sink = MailSink(tmp / "mail").start()
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'collections.db'}", smtp_port=sink.port, users_path=users_path,
        policy_path=ROOT / "tests" / "data" / "policy-web.toml", task_queue=f"web-{uuid.uuid4().hex[:8]}",
        workflow_id_prefix=f"w{uuid.uuid4().hex[:8]}-", data_dir=tmp,
    )
    context = Context(settings, client=dev_env.client)
    try:
        async with build_worker(dev_env.client, context):
            server = await start_web(context, "127.0.0.1", free_port())
            stack = Web(server.url, context, users_path, tokens, sink)
            stack.escalating = list(await asyncio.gather(*(stack.new_case("D") for _ in range(4))))
            try:
                yield stack
            finally:
                await stack.close()
                await server.stop()
    finally:
        sink.stop()
        context.db.dispose()


