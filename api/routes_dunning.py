"""JSON endpoints of automated dunning: sweep, schedule, payments, notice preview, policy versions.

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from api.routes import Body, Service, caller, endpoint, read_csv_body
from app import policies, sweeps
from app.payments import PaymentService
from domain.inputs import Identifier, IsoDate


class SweepBody(Body):
    as_of: IsoDate | None = Field(None, description="Sweep as of this date; default today")


class ScheduleBody(Body):
    cron: str = Field("0 6 * * *", max_length=100, description="Five-field cron expression")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone the cron is read in")
    reason: str | None = Field(None, max_length=500, description="Why (kept on the event); default 'daily sweep schedule'")


class AssignPaymentBody(Body):
    invoice_id: Identifier
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event, for the audit trail)")


class ReversalBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why, e.g. cheque bounced")


class MigrationBody(Body):
    to: str = Field(min_length=1, max_length=64, description="Policy version (see GET /api/policies)")
    reason: str = Field("policy update", max_length=500)


@endpoint("POST", "/sweeps", "sweeps.run", summary="Run the daily sweep now and return its summary")
async def run_sweep(body: SweepBody, svc: Service) -> dict:
    return await sweeps.run_sweep(svc.ctx, body.as_of)


@endpoint("POST", "/schedule", "schedule.create", summary="Create or update the daily sweep's Temporal Schedule")
async def create_schedule(body: ScheduleBody, svc: Service, user: caller("schedule.create")) -> dict:
    return await sweeps.create_schedule(svc.ctx, body.cron, body.timezone, user.actor(), body.reason)


class ScheduleDeleteBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why the daily sweep stops (kept on the event)")


@endpoint("GET", "/schedule", "schedule.show", summary="The daily sweep's Schedule: cron, next and latest runs")
async def show_schedule(svc: Service) -> dict:
    return await sweeps.show_schedule(svc.ctx)


@endpoint("POST", "/schedule/delete", "schedule.delete",
          summary="Delete the daily sweep's Schedule (the sweep then runs only when started by hand)")
async def delete_schedule(body: ScheduleDeleteBody, svc: Service, user: caller("schedule.delete")) -> dict:
    return await sweeps.delete_schedule(svc.ctx, user.actor(), body.reason)


# The bank files POST /payments/import accepts (docs/IMPORT.md); the body is told apart by its content,
# so the declared type is documentation for clients, not a switch.
STATEMENT_MEDIA_TYPES = {
    media: {"schema": {"type": "string", "description": description}}
    for media, description in (
        ("text/csv", "payments CSV: payment_id, received_on, amount, currency, payer, reference"),
        ("application/xml", "ISO 20022 camt.053 (statement) or camt.054 (notification) XML"),
        ("text/xml", "ISO 20022 camt.053 or camt.054 XML"),
        ("text/plain", "SWIFT MT940 statement (a .sta file)"),
    )
}


@endpoint("POST", "/payments/import", "payments.import",
          summary="Import a bank file: CSV (payment_id, received_on, amount, currency, payer, reference), "
                  "camt.053/054 XML or MT940, told apart by content (docs/IMPORT.md)",
          errors=(413, 415),
          openapi_extra={"requestBody": {"required": True, "content": STATEMENT_MEDIA_TYPES}})
async def import_payments(request: Request, svc: Service, user: caller("payments.import"),
                          reason: Annotated[str | None, Query(max_length=500, description=(
                              "Why this file is imported (kept on the event); default 'bank file import'"))]
                          = None) -> dict:
    text = await read_csv_body(request)
    return await PaymentService(svc).import_text(text, user.actor(), "upload", reason)


@endpoint("GET", "/payments/unmatched", "payments.unmatched", summary="Payments waiting to be assigned by hand")
def unmatched(svc: Service) -> list[dict]:
    return PaymentService(svc).unmatched()


@endpoint("POST", "/payments/{payment_id}/assign", "payments.assign", summary="Apply an unmatched payment to an invoice")
async def assign_payment(payment_id: str, body: AssignPaymentBody, svc: Service, user: caller("payments.assign")) -> dict:
    return await PaymentService(svc).assign(payment_id, body.invoice_id, user.actor(), body.reason)


@endpoint("POST", "/payments/{payment_id}/reverse", "payments.reverse",
          summary="Reverse an applied payment: the balance is due again and dunning resumes")
async def reverse_payment(payment_id: str, body: ReversalBody, svc: Service, user: caller("payments.reverse")) -> dict:
    return await PaymentService(svc).reverse(payment_id, body.reason, user.actor())


@endpoint("GET", "/notices/preview", "notices.preview",
          summary="The notice a case would send now (or at a ladder step), as the customer reads it")
def preview(svc: Service, case: Annotated[str, Query(min_length=1, max_length=200, description="Case or invoice id")],
            level: Annotated[int | None, Query(ge=1, le=20)] = None) -> dict:
    return policies.preview(svc, case, level)


@endpoint("POST", "/cases/{ref:path}/policy", "cases.migrate_policy", summary="Move a running case to another policy version")
async def migrate_policy(ref: str, body: MigrationBody, svc: Service, user: caller("cases.migrate_policy")) -> dict:
    return await policies.migrate(svc, ref, body.to, body.reason, user.actor())


@endpoint("GET", "/policies", "policy.list", summary="Policy versions known to the engine")
async def policy_versions(svc: Service) -> list[dict]:
    return await run_in_threadpool(policies.versions, svc)


@endpoint("POST", "/policies", "policy.pin",
          summary="Validate a policy (the request body, TOML) and keep it under its version, without making it active",
          openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def pin_policy(request: Request, svc: Service, user: caller("policy.pin"),
                     reason: Annotated[str, Query(min_length=1, max_length=500,
                                                  description="Why this version is pinned (kept on the event)")]) -> dict:
    text = await read_csv_body(request)  # bounded UTF-8 text, whatever its format
    return await run_in_threadpool(policies.pin_text, svc, text, "upload", user.actor(), reason)
