"""JSON endpoints of the advances register (docs/ADVANCES.md): the register, applying an
advance to an invoice with or without a case, refunds (four eyes above the threshold).

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from api.routes import Body, Service, caller, endpoint
from app.advances import AdvanceService
from domain.inputs import Identifier, IsoDate
from domain.money import AmountText


class ApplyAdvanceBody(Body):
    invoice_id: str = Field(min_length=1, max_length=100, description="Invoice of the advance's customer")
    amount: AmountText | None = Field(None, description="Default: as much as the advance holds and the invoice owes")
    allocation_id: Identifier | None = Field(None, description="Makes a repeated application a no-op")


class AdvanceRequestBody(Body):
    amount: AmountText
    currency: str = Field("USD", pattern="^[A-Za-z]{3}$")
    due: IsoDate = Field(description="Date the advance is due")
    reference: str = Field(min_length=1, max_length=500, description="What it is for, e.g. 30 % deposit order 77")
    order_id: Identifier | None = Field(None, description="The sales order it is a deposit for")
    request_id: Identifier | None = Field(None, description="Makes a repeated request a no-op")


class RefundBody(Body):
    amount: AmountText
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event, for the audit trail)")
    refund_id: Identifier | None = Field(None, description="Makes a repeated request a no-op")


@endpoint("GET", "/reports/advances", "reports.advances",
          summary="The advances register (source, age, status); lingering=true: only those held past the policy's limit")
def report_advances(svc: Service, as_of: IsoDate | None = None, lingering: bool = False) -> dict:
    return AdvanceService(svc).report(as_of, lingering)


@endpoint("POST", "/customers/{customer_id}/advance-requests", "advances.request",
          summary="Ask a customer for an advance (a deposit before delivery)")
async def request_advance(customer_id: str, body: AdvanceRequestBody, svc: Service,
                          user: caller("advances.request")) -> dict:
    return await run_in_threadpool(AdvanceService(svc).request, customer_id, body.amount, body.currency, body.due,
                                   body.reference, user.actor(), body.order_id, body.request_id)


@endpoint("POST", "/advances/{advance_id}/apply", "advances.apply",
          summary="Apply an advance to an invoice of its customer, with or without a case")
async def apply_advance(advance_id: str, body: ApplyAdvanceBody, svc: Service, user: caller("advances.apply")) -> dict:
    return await AdvanceService(svc).apply(advance_id, body.invoice_id, body.amount, user.actor(), body.allocation_id)


@endpoint("POST", "/advances/{advance_id}/refunds", "advances.refund",
          summary="Refund an advance (above one person's threshold it waits for a second person)")
async def refund_advance(advance_id: str, body: RefundBody, svc: Service, user: caller("advances.refund")) -> dict:
    return await run_in_threadpool(AdvanceService(svc).refund, advance_id, body.amount, body.reason, user.actor(),
                                   body.refund_id)


@endpoint("POST", "/advances/refunds/{refund_id}/approve", "advances.approve_refund",
          summary="Approve a waiting refund (four eyes: not the requester; within authority)")
async def approve_refund(refund_id: str, svc: Service, user: caller("advances.approve_refund")) -> dict:
    return await run_in_threadpool(AdvanceService(svc).approve_refund, refund_id, user.actor())
