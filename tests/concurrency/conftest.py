"""A real stack for concurrency tests: the Temporal dev server, one or two workers, the HTTP
API on a loopback port with real tokens, an SMTP sink, and SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from api.server import start_web
from app.context import Context
from app.mailsink import MailSink
from tests.ports import free_port
from app.services import CaseService
from app.settings import Settings
from app.tokens import issue_token
from domain.decider import case_uuid
from tests.conftest import ROOT
from worker import build_worker

HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"
USERS = {"collector": "demo-collector", "supervisor": "demo-supervisor", "finance_manager": "demo-manager"}


class Stack:
    def __init__(self, url: str, contexts: list[Context], tokens: dict[str, str], sink: MailSink) -> None:
        self.url = url
        self.contexts = contexts
        self.context = contexts[0]
        self.service = CaseService(self.context)
        self.tokens = tokens
        self.sink = sink
        self._numbers = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:4].upper()

    def client(self, role: str = "supervisor", **options) -> httpx.AsyncClient:
        # idle connections are dropped before the server's keep-alive (uvicorn: 5 s) ends them: a
        # request sent on one the server is closing at that moment fails with ReadError (seen in CI
        # on a loaded machine), and a POST is not retried
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=1.0)
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[role]}"},
                                 timeout=120, limits=limits, **options)

    def new_invoice(self, amount: str = "1000.00", grade: str = "A") -> str:
        invoice_id = f"K{self._prefix}-{next(self._numbers):04d}"
        row = f"{invoice_id},C-{invoice_id},Acme,ap@acme.test,DE,en,USD,{amount},2026-01-05,2026-02-04,{grade}"
        self.service.import_invoice_text(f"{HEADER}\n{row}\n", "test")
        return invoice_id

    async def new_case(self, amount: str = "1000.00", grade: str = "A") -> str:
        invoice_id = self.new_invoice(amount, grade)
        await self.service.open_case(invoice_id, "overdue", self.context.actor("demo-collector"))
        return invoice_id

    def events(self, invoice_id: str):
        return self.context.store.records(case_uuid(invoice_id))




@contextlib.asynccontextmanager
async def running_stack(client, tmp: Path, database_url: str, workers: int = 1,
                        policy: Path = ROOT / "tests" / "data" / "policy-web.toml", like_processes: bool = False):
    """``like_processes``: every context connects on its own, as a CLI or worker process does
    (payloads encrypted with the data dir's key), instead of sharing the test's client."""
    users_path = tmp / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", users_path)
    tokens = {role: issue_token(users_path, name)["token"] for role, name in USERS.items()}
    sink = MailSink(tmp / "mail").start()
    queue, prefix = f"conc-{uuid.uuid4().hex[:8]}", f"c{uuid.uuid4().hex[:8]}-"
    contexts = [Context(Settings(database_url=database_url, smtp_port=sink.port, users_path=users_path,
                                 policy_path=policy, task_queue=queue, workflow_id_prefix=prefix, data_dir=tmp,
                                 temporal_address=client.service_client.config.target_host),
                        client=None if like_processes else client) for _ in range(workers)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            for n, context in enumerate(contexts):  # each worker with its own engine and connection
                own = await context.client() if like_processes else client if n == 0 else await Client.connect(
                    client.service_client.config.target_host, namespace=client.namespace,
                    data_converter=client.data_converter)
                await stack.enter_async_context(build_worker(own, context))
            server = await start_web(contexts[0], "127.0.0.1", free_port())
            try:
                yield Stack(server.url, contexts, tokens, sink)
            finally:
                await server.stop()
    finally:
        sink.stop()
        for context in contexts:
            if "db" in context.__dict__:
                context.db.dispose()
