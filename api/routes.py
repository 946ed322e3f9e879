"""The JSON API under ``/api``: everything the CLI does, through the same services.

Every route is registered with ``endpoint(...)``, which names it after its
action in ``ROLE_MATRIX`` and adds the bearer-token + role check. Amounts are
strings ("12.50"), never JSON numbers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.auth import permit
from api.errors import ApiError, error_responses
from app import reports
from app.services import CaseService
from domain.commands import CODE_PATTERN, check_code
from domain.errors import DomainError
from domain.inputs import CSV_MAX_UPLOAD_BYTES, Identifier, IsoDate
from domain.money import AmountText
from domain.state import CaseStatus
from domain.users import User

router = APIRouter(prefix="/api")
MAX_IMPORT_BYTES = CSV_MAX_UPLOAD_BYTES
Text = Annotated[str, Field(max_length=500, description="Free text, at most 500 characters, no control characters")]


def _checked(check: Callable[[str], object]) -> BeforeValidator:
    """Run a domain check on a string before pydantic's own constraints: the domain's message."""
    return BeforeValidator(lambda value: (check(value), value)[1] if isinstance(value, str) else value)


ReasonCode = Annotated[str, Field(min_length=1, max_length=40, pattern=CODE_PATTERN.pattern,
                                  description="A reason code: lowercase letters, digits, '_', '-', '.'"),
                       _checked(lambda v: check_code(v, "reason"))]
Duration = Annotated[str, Field(min_length=1, max_length=40, examples=["P30D"],
                                description="ISO 8601 duration, e.g. P30D (the policy bounds it)")]


def endpoint(method: str, path: str, action: str, **options) -> Callable:
    """Register a route for ``action``: its name is the action, and only the roles
    the matrix lists get past the check (401 without a valid token, 403 otherwise)."""
    responses = {**error_responses(*options.pop("errors", ())), **options.pop("responses", {})}

    def register(handler: Callable) -> Callable:
        router.add_api_route(path, handler, methods=[method], name=action, operation_id=action,
                             dependencies=[Depends(permit(action))], responses=responses, **options)
        return handler

    return register


def service(request: Request) -> CaseService:
    return request.app.state.service


Service = Annotated[CaseService, Depends(service)]


def caller(action: str):
    return Annotated[User, Depends(permit(action))]


CaseStatusName = Literal[tuple(CaseStatus.__members__)]  # type: ignore[valid-type]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenCaseBody(Body):
    invoice_id: Identifier
    reason: Literal["overdue", "dispute", "manual"] = "overdue"


class AssignBody(Body):
    assignee: str = Field(min_length=1, max_length=100, description="A user name from the users file")


class ReasonBody(Body):
    reason: ReasonCode = Field(description="A reason code such as invoice_voided, insolvency")


class PaymentBody(Body):
    amount: AmountText = Field(description="Amount as a string, e.g. \"250.00\"")
    reference: Text = ""
    payment_id: Identifier | None = Field(None, description="Makes a repeated payment a no-op")
    received_on: IsoDate | None = Field(None, description="Date received; default today")


class DisputeBody(Body):
    reason: ReasonCode = Field(description="Reason code, e.g. pricing, quality, not_received")
    amount: AmountText | None = Field(None, description="Disputed amount; default the whole balance")


class ResolveBody(Body):
    outcome: Literal["upheld", "rejected"]
    credit: AmountText | None = Field(None, description="Credit note when upheld; default the disputed amount")
    note: Text = ""


class PromiseBody(Body):
    amount: AmountText
    date: IsoDate = Field(description="Promised payment date, YYYY-MM-DD")


class PlanBody(Body):
    instalments: int = Field(ge=1, le=120, description="Number of instalments (the policy may allow fewer)")
    every: Duration
    first: IsoDate | None = Field(None, description="First due date, YYYY-MM-DD; default now + every")


class EscalationBody(Body):
    decision: Literal["plan", "agency", "legal", "credit_hold", "write_off", "continue"]
    note: Text = ""


class WriteOffBody(Body):
    amount: AmountText
    reason: ReasonCode = Field(description="Reason code, e.g. insolvency, small_balance")


class DecisionBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why it is approved or rejected (kept on the event)")


# -- who am I ------------------------------------------------------------------------------------


@endpoint("GET", "/me", "me", summary="The calling user and what their role may do")
def me(user: caller("me")) -> dict:
    from app.authorization import ROLE_MATRIX

    return {"name": user.name, "role": user.role.value, "write_off_limit": str(user.write_off_limit),
            "may": sorted(a for a, roles in ROLE_MATRIX.items() if user.role in roles)}


# -- cases ---------------------------------------------------------------------------------------


@endpoint("GET", "/cases", "cases.list", summary="Case summaries (CLI: case list)")
def list_cases(svc: Service, status: CaseStatusName | None = None, limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict]:
    return svc.list(status, limit)


@endpoint("GET", "/worklist", "cases.worklist", summary="Open cases by priority (amount at risk x days overdue x risk grade)")
def worklist(svc: Service, status: CaseStatusName | None = None,
             assignee: Annotated[str | None, Query(max_length=100)] = None,
             risk_grade: Literal["A", "B", "C", "D"] | None = None,
             currency: Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")] = None,
             q: Annotated[str | None, Query(max_length=200)] = None, as_of: IsoDate | None = None,
             limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> dict:
    today = as_of or datetime.now(timezone.utc).date()
    return reports.worklist(svc.ctx, today, status=status, assignee=assignee, risk_grade=risk_grade,
                            currency=currency, q=q, limit=limit)


@endpoint("GET", "/cases/{ref:path}", "cases.show", summary="A case (by case id or invoice id) with its full history")
def show_case(ref: str, svc: Service) -> dict:
    return svc.show(ref)


@endpoint("POST", "/cases", "cases.open", summary="Open a case for an invoice (201; 200 when it was already open)",
          status_code=201)
async def open_case(body: OpenCaseBody, svc: Service, user: caller("cases.open"), response: Response) -> dict:
    result = await svc.open_case(body.invoice_id, body.reason, user.actor())
    if not result.get("opened"):
        response.status_code = 200
    return result


@endpoint("POST", "/cases/{ref:path}/assign", "cases.assign", summary="Assign a case to a user")
async def assign(ref: str, body: AssignBody, svc: Service, user: caller("cases.assign"), request: Request) -> dict:
    if request.app.state.users.get(body.assignee) is None:
        raise DomainError(f"unknown user {body.assignee!r}", "assignee")
    return await svc.assign(ref, body.assignee, user.actor())


@endpoint("POST", "/cases/{ref:path}/cancel", "cases.cancel", summary="Cancel a case (e.g. the invoice was voided)")
async def cancel(ref: str, body: ReasonBody, svc: Service, user: caller("cases.cancel")) -> dict:
    return await svc.cancel(ref, body.reason, user.actor())


@endpoint("POST", "/invoices/{invoice_id:path}/payments", "payments.record",
          summary="Record a payment for an invoice (to its open case, or on the ledger when it has none)")
async def pay(invoice_id: str, body: PaymentBody, svc: Service, user: caller("payments.record")) -> dict:
    return await svc.pay(invoice_id, body.amount, body.reference, user.actor(), body.payment_id, body.received_on)


@endpoint("POST", "/cases/{ref:path}/dispute", "disputes.open", summary="Open a dispute: dunning stops for the amount")
async def open_dispute(ref: str, body: DisputeBody, svc: Service, user: caller("disputes.open")) -> dict:
    return await svc.open_dispute(ref, body.reason, user.actor(), body.amount)


@endpoint("POST", "/cases/{ref:path}/dispute/resolve", "disputes.resolve", summary="Resolve the open dispute")
async def resolve_dispute(ref: str, body: ResolveBody, svc: Service, user: caller("disputes.resolve")) -> dict:
    return await svc.resolve_dispute(ref, body.outcome, user.actor(), body.credit, body.note)


@endpoint("POST", "/cases/{ref:path}/promise", "promises.make", summary="Record a promise to pay")
async def promise(ref: str, body: PromiseBody, svc: Service, user: caller("promises.make")) -> dict:
    return await svc.promise(ref, body.amount, body.date.isoformat(), user.actor())


@endpoint("POST", "/cases/{ref:path}/plan", "plans.propose", summary="Propose a payment plan over the balance")
async def propose_plan(ref: str, body: PlanBody, svc: Service, user: caller("plans.propose")) -> dict:
    return await svc.propose_plan(ref, body.instalments, body.every, user.actor(),
                                  body.first.isoformat() if body.first else None)


@endpoint("POST", "/cases/{ref:path}/plan/accept", "plans.accept", summary="Record the customer's acceptance of the plan")
async def accept_plan(ref: str, svc: Service, user: caller("plans.accept")) -> dict:
    return await svc.accept_plan(ref, user.actor())


@endpoint("POST", "/cases/{ref:path}/escalation", "escalations.decide", summary="Decide an escalated case")
async def decide_escalation(ref: str, body: EscalationBody, svc: Service, user: caller("escalations.decide")) -> dict:
    return await svc.decide_escalation(ref, body.decision, user.actor(), body.note)


@endpoint("POST", "/cases/{ref:path}/write-off", "write_offs.request", summary="Request a write-off (four eyes)")
async def request_write_off(ref: str, body: WriteOffBody, svc: Service, user: caller("write_offs.request")) -> dict:
    return await svc.request_write_off(ref, body.amount, body.reason, user.actor())


# -- approvals -------------------------------------------------------------------------------------


@endpoint("GET", "/approvals", "approvals.list", summary="The approvals inbox")
def list_approvals(svc: Service, status: Literal["pending", "approved", "rejected", "decided", "withdrawn", "all"] = "pending",
                   limit: Annotated[int | None, Query(ge=1, le=10000, description="page size (default: all)")] = None,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[dict]:
    if status not in ("pending", "approved", "rejected", "decided", "withdrawn", "all"):
        raise DomainError(f"{status!r} is not one of pending, approved, rejected, decided, withdrawn, all", "status")
    return svc.approvals(status, limit, offset)


@endpoint("POST", "/approvals/{approval_id}/approve", "approvals.approve",
          summary="Approve a write-off, dispute credit, cancellation or plan (not your own; within your authority)")
async def approve(approval_id: str, body: DecisionBody, svc: Service, user: caller("approvals.approve")) -> dict:
    return await svc.decide_approval(approval_id, True, user.actor(), body.reason)


@endpoint("POST", "/approvals/{approval_id}/reject", "approvals.reject", summary="Reject a write-off or plan, with a reason")
async def reject(approval_id: str, body: DecisionBody, svc: Service, user: caller("approvals.reject")) -> dict:
    return await svc.decide_approval(approval_id, False, user.actor(), body.reason)


# -- ledger, reports, operations ---------------------------------------------------------------------


@endpoint("POST", "/invoices/import", "invoices.import",
          summary=("Import invoices, credit notes and customers from an ERP export (CSV, the request body): "
                   "all rows or none; changes of known invoices reach their open cases (docs/IMPORT.md)"), errors=(413, 415),
          openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_invoices(request: Request, svc: Service, user: caller("invoices.import"),
                          reason: Annotated[str | None, Query(max_length=500, description=(
                              "Why these invoices are imported (kept on the event); default 'invoice import'"))]
                          = None) -> dict:
    return await svc.sync_invoice_text(await read_csv_body(request), "upload", user.actor(), reason, user.actor())


async def read_csv_body(request: Request) -> str:
    """The uploaded file as text: the request body itself (not a form upload), bounded in size,
    UTF-8, not empty."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        # `curl -F file=@x.csv` wraps the file in a form; read as the file, the envelope's
        # boundary lines came back as "missing column(s) invoice_id, customer_id, ...".
        raise ApiError(415, "send the file itself as the request body (e.g. curl --data-binary @invoices.csv "
                            "-H 'Content-Type: text/csv'), not as a form upload", "file")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise ApiError(413, f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB", "file")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise ApiError(413, f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB", "file")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(f"the upload is not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})", "file") from None
    if not text.strip():
        raise DomainError("the request body is empty; send the CSV file as text/csv", "file")
    return text


@endpoint("GET", "/reports/dashboard", "reports.dashboard",
          summary="Aging buckets, cases by status, approvals vs SLA, cash per week, DSO trend")
def dashboard(svc: Service, currency: Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")] = None,
              as_of: IsoDate | None = None) -> dict[str, Any]:
    return reports.dashboard(svc.ctx, currency, as_of=as_of)


@endpoint("GET", "/policy", "policy.show", summary="The active policy (validated)")
def policy(svc: Service) -> dict:
    return svc.ctx.policy().model_dump(mode="json")


@endpoint("POST", "/projections/rebuild", "projections.rebuild", summary="Replay every event into fresh read models")
def rebuild(svc: Service) -> dict:
    return svc.rebuild_projections()
