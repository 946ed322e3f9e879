"""Running the web server: alone (`python starter.py web`) or inside the embedded stack."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from api.app import create_app
from app.context import Context
from domain.errors import DomainError


class EmbeddedServer(uvicorn.Server):
    """uvicorn as one task of a larger program: the program owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise DomainError(f"port {port} on {host} is already in use (is another server running?)", "port") from None


class WebServer:
    """A started server: ``url`` to open, ``stop()`` to end it."""

    def __init__(self, server: EmbeddedServer, task: asyncio.Task, host: str, port: int) -> None:
        self.server = server
        self.task = task
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await asyncio.wait_for(self.task, 10)


async def start_web(context: Context, host: str = "127.0.0.1", port: int = 8000) -> WebServer:
    """Serve the API and console on this event loop (sharing the context's Temporal client)."""
    check_port(host, port)
    config = uvicorn.Config(create_app(context), host=host, port=port, log_level="warning", lifespan="on",
                            access_log=False)
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name="web")
    while not server.started:
        if task.done():
            error = task.exception() if not task.cancelled() else None
            raise DomainError(f"the web server did not start on {host}:{port}: {error!r}", "web")
        await asyncio.sleep(0.02)
    return WebServer(server, task, host, port)


def serve(host: str, port: int, context: Context | None = None) -> None:
    """Run in the foreground until Ctrl-C (commands need Temporal and a worker running)."""
    context = context or Context()
    check_port(host, port)
    uvicorn.run(create_app(context), host=host, port=port, log_level="info", proxy_headers=True)
