"""Errors as JSON: ``{"error": "amount: must be positive", "field": "amount", "status": 400}``.

How a ``DomainError`` maps to an HTTP status:

* an unknown case, approval or invoice: 404;
* the domain refusing the person (role, tier, authority limit, four eyes): 403;
* a conflict with the current state (case closed, approval already decided,
  dispute already open, nothing to accept, invoice already open or paid), or a
  client's id (payment id) already used for other content: 409;
* a command the case did not take, with nothing applied (it kept changing under it):
  429 with ``Retry-After``;
* any other bad value (amount, date, reason code...): 400.

Malformed requests (missing field, wrong type) are 422. An unreachable Temporal
server or a missing worker is 503.
"""

from __future__ import annotations

import logging
import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import escape
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.services import TryAgain
from domain.errors import DomainError

log = logging.getLogger(__name__)

NOT_FOUND_FIELDS = frozenset({"case_id", "approval_id", "invoice_id", "customer_id", "outbox_id", "subscriber"})
IDEMPOTENCY_FIELDS = frozenset({"payment_id"})  # a client's id already used for something else: 409


class Problem(BaseModel):
    field: str | None = Field(description="The input that is wrong, dotted (e.g. amount, instalments)")
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers, whatever its status."""

    model_config = ConfigDict(json_schema_extra={"example": {"error": "amount: must be positive", "field": "amount",
                                                             "status": 400}})
    error: str = Field(description="One line: the field, then what is wrong with it")
    field: str | None = Field(None, description="The input that is wrong, when there is one")
    status: int = Field(description="The HTTP status, repeated")
    errors: list[Problem] | None = Field(None, description="422: every problem found in the request")


ERROR_STATUSES = {
    400: "A value the business rules refuse (amount above the balance, date outside the policy's horizon...)",
    401: "No token, or an invalid or revoked one",
    403: "The caller's role or authority does not allow it (role matrix, limits, four eyes)",
    404: "Unknown case, approval, invoice, customer or payment",
    409: "Conflicts with the current state (case closed, already decided, nothing to accept)",
    422: "A malformed request: the schema refuses it (missing field, wrong type, out of bounds)",
    503: "Temporal or the worker is unreachable",
}


def error_responses(*extra: int) -> dict[int, dict]:
    """The ``responses=`` of a route: every error status it may answer, with the shared error model."""
    codes = sorted({*ERROR_STATUSES, *extra})
    described = {**ERROR_STATUSES, 413: "The uploaded file is too large",
                 415: "The file was sent as a form upload; send it as the request body"}
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def _leaf_routes(routes):
    """Every endpoint route, through included routers (FastAPI keeps those as their own objects)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _leaf_routes(nested.routes)
        elif getattr(route, "methods", None):
            yield route


def allowed_methods(app, scope) -> list[str]:
    """What the ``Allow`` of a 405 lists: the methods of the most specific routes matching the path
    (``/api/cases/X/assign`` is the assign route's, not the case page's ``{ref:path}``)."""
    candidates = []
    for route in _leaf_routes(getattr(app, "routes", [])):
        match, _ = route.matches({**scope, "method": next(iter(route.methods))})
        if match == Match.FULL:
            literal = len(re.sub(r"{[^}]*}", "", route.path))
            candidates.append((literal, route.methods))
    if not candidates:
        return []
    best = max(literal for literal, _ in candidates)
    return sorted({m for literal, methods in candidates if literal == best for m in methods})


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def status_for(error: DomainError) -> int:
    message = error.message
    if message.startswith("unknown ") and error.field in NOT_FOUND_FIELDS:
        return 404
    if error.field == "as":
        return 403
    if error.field == "case" or (error.field in NOT_FOUND_FIELDS | IDEMPOTENCY_FIELDS and " already " in f" {message} "):
        return 409
    return 400


def body(status: int, message: str, field: str | None = None, **extra) -> dict:
    return {"error": message, "field": field, "status": status, **extra}


def domain_response(error: DomainError) -> JSONResponse:
    status = status_for(error)
    return JSONResponse(body(status, str(error), error.field), status_code=status)


def unavailable_message(error: Exception) -> str | None:
    """A message for Temporal being unreachable, no worker answering, or a workflow that
    cannot make progress (app.waiting.WorkflowStuck), else None."""
    from app.waiting import WorkflowStuck

    text = str(error)
    if isinstance(error, WorkflowStuck):
        return text
    lowered = text.lower()
    if "client connect" in lowered or "connection refused" in lowered or "no worker answered" in lowered:
        return text if "no worker answered" in lowered else f"cannot reach Temporal ({text})"
    return None


def install(app) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return JSONResponse(body(error.status, error.message, error.field), status_code=error.status,
                            headers=error.headers)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, error: DomainError):
        return domain_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError):
        problems = []
        for item in error.errors():
            if item.get("type") == "json_invalid":
                problems.append({"field": None, "message": "the request body is not valid JSON"})
                continue
            location = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header")]
            cause = (item.get("ctx") or {}).get("error")
            message = cause.message if isinstance(cause, DomainError) else item.get("msg", "invalid")
            problems.append({"field": ".".join(location) or None, "message": message})
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return JSONResponse(body(422, message, first["field"], errors=problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        if error.status_code in (404, 405) and request.url.path.startswith("/console"):
            from api.console import missing_page  # a person typed or followed the address: a page, not JSON

            return missing_page(request, error.status_code)
        message = error.detail if isinstance(error.detail, str) else "request failed"
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:  # every method the resource has, not only the first route's
            methods = allowed_methods(request.app, request.scope)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return JSONResponse(body(error.status_code, message), status_code=error.status_code, headers=headers or None)

    @app.exception_handler(TryAgain)
    async def _try_again(request: Request, error: TryAgain):  # nothing was applied: send it again
        response = _failure(request, 429, str(error))
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(RuntimeError)
    async def _runtime_error(request: Request, error: RuntimeError):
        message = unavailable_text(request, error)
        if message is not None:
            return _failure(request, 503, message)
        log.error("request failed: %s", error, exc_info=error)
        return _failure(request, 500, "internal error; see the server log")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):  # logged by the server as well
        return _failure(request, 500, "internal error; see the server log")


def unavailable_text(request: Request, error: Exception) -> str | None:
    """What to tell the user when Temporal or the worker is not there, else None."""
    message = unavailable_message(error)
    if message is None:
        return None
    if message.startswith("cannot reach Temporal"):
        context = getattr(request.app.state, "context", None)
        where = f" at {context.settings.temporal_address}" if context is not None else ""
        return f"cannot reach Temporal{where} (is the stack running? `python starter.py up`)"
    return message


def _failure(request: Request, status: int, message: str):
    if request.url.path.startswith("/console"):
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(message)}</p>"
                            '<p><a href="/console/">Back</a></p>', status_code=status)
    return JSONResponse(body(status, message), status_code=status)
