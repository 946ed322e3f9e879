"""The FastAPI application: JSON API, console, static files, security headers."""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from api import console, errors, routes, routes_advances, routes_audit, routes_customer, routes_dunning, routes_feed, routes_financing, routes_interest, routes_links, routes_liveness, routes_notify, routes_risk, routes_subscribers  # noqa: F401  (registers on routes.router)
from api.auth import UserBook
from api.session import SessionCodec, SessionMiddleware
from app.context import Context
from app.services import CaseService

STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
The collections engine over HTTP: cases, commands, approvals, imports and reports,
through the same application services as the CLI.

**Authentication**: `Authorization: Bearer <token>`; issue a token with
`python starter.py users token NAME` (it is printed once; only its hash is stored).

**Roles**: every endpoint lists the roles it admits (see `app/authorization.py`); collectors
work cases and request write-offs, supervisors and finance managers also decide
escalations and approvals within their limits (the domain enforces four eyes).

**Errors** are JSON: `{"error": "amount: must be positive", "field": "amount", "status": 400}`.
400 a value the business rules refuse, 401 no or bad token, 403 role or authority,
404 unknown case/approval/invoice, 409 conflicts with the case's state (closed,
already decided), 422 a malformed request, 503 Temporal or the worker unreachable.
"""

CONSOLE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Headers every response carries; the console also gets a strict CSP (no inline script)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # the customer's page behind a signed link (/c/...) is held to the console's rules too
        console_page = scope["path"].startswith(("/console", "/c/"))

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if console_page:
                    headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_secret(context: Context) -> bytes:
    configured = context.settings.session_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode("utf-8")
    return secrets.token_bytes(32)


def create_app(context: Context | None = None) -> FastAPI:
    context = context or Context()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        context.db  # create or migrate the schema before the first request
        app.state.users.directory()  # a missing or invalid users file stops the start, with its message
        yield

    app = FastAPI(title="Collections engine", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.context = context
    app.state.service = CaseService(context)
    app.state.users = UserBook(context.settings.users_path)
    errors.install(app)
    console.install(app)
    app.include_router(routes.router)
    app.include_router(console.router)
    app.include_router(routes_customer.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/console/", status_code=307)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok"}

    app.add_middleware(SessionMiddleware, codec=SessionCodec(session_secret(context)))
    app.add_middleware(SecurityHeaders)
    return app
