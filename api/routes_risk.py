"""JSON endpoints of credit risk: customer scorecard, watchlist, credit holds and their outbox,
customer credit, collection KPIs and credit insurance.

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from api.routes import Body, Service, caller, endpoint
from app import kpis
from app.credit import CreditService
from app.customers import CustomerService
from app.insurance import InsuranceService
from domain.inputs import Identifier, IsoDate
from domain.money import AmountText

Currency = Annotated[str, Field(pattern="^[A-Za-z]{3}$", description="ISO 4217 code, e.g. EUR")]


class LimitBody(Body):
    amount: AmountText | None = Field(description="Credit limit as a string, e.g. \"50000.00\"; null removes it")
    currency: Currency | None = Field(None, description="Currency of the limit; default: the currency of the "
                                      "customer's invoices (required when they are in several)")
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event, for the audit trail)")


class RescoreBody(Body):
    customer_id: Identifier | None = Field(None, description="Only this customer; default every customer")
    as_of: IsoDate | None = None


class HoldBody(Body):
    reason: str = Field(min_length=1, max_length=500)


class AckBody(Body):
    consumer: str = Field("erp", min_length=1, max_length=100, description="Who consumed the entry")


class ApplyCreditBody(Body):
    invoice_id: str = Field(min_length=1, max_length=100, description="Invoice (or case) the credit settles")
    amount: AmountText | None = Field(None, description="Default: as much as the credit and the balance allow")


class PrepaymentBody(Body):
    amount: AmountText
    currency: Currency = "USD"
    payment_id: Identifier | None = Field(None, description="Makes a repeated prepayment a no-op")
    received_on: IsoDate | None = None
    reference: str = Field("", max_length=500)
    request_id: Identifier | None = Field(None, description="The advance request it pays")


class InsurerPolicyBody(Body):
    policy_id: str = Field(min_length=1, max_length=64)
    insurer_id: str = Field(min_length=1, max_length=64)
    insurer_name: str = Field(min_length=1, max_length=300)
    insurer_email: str = Field(min_length=3, max_length=320)
    notify_within: str = Field(description="Notification deadline after the due date, ISO 8601 (P60D)")
    max_extension: str = Field(description="Longest extension of payment after the due date (P60D)")
    claim_waiting: str = Field(description="Claim waiting period after the notification (P90D)")
    indemnity_percent: str = Field(max_length=20, description="Share of the loss the insurer pays, e.g. \"90\"")
    reason: str | None = Field(None, max_length=500, description="Why (kept on the event, for the audit trail); a default when omitted")


class CoverBody(Body):
    policy_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(None, max_length=500, description="Why (kept on the event, for the audit trail); a default when omitted")


class IndemnityBody(Body):
    amount: AmountText
    reference: str = Field("", max_length=500)


@endpoint("GET", "/customers/{customer_id}", "customers.show",
          summary="A customer's risk score, grade and top factors, credit limit, hold and credit")
def show_customer(customer_id: str, svc: Service, as_of: IsoDate | None = None) -> dict:
    return CustomerService(svc.ctx).show(customer_id, as_of)


@endpoint("POST", "/customers/{customer_id}/limit", "customers.limit", summary="Set or remove a credit limit")
def set_limit(customer_id: str, body: LimitBody, svc: Service, user: caller("customers.limit")) -> dict:
    return CustomerService(svc.ctx).set_limit(customer_id, body.amount, body.currency, user.actor(), body.reason)


@endpoint("GET", "/risk/watchlist", "risk.watchlist",
          summary="Customers whose grade worsened lately or whose exposure exceeds their limit")
def watchlist(svc: Service, days: Annotated[int | None, Query(ge=0, le=3650)] = None,
              as_of: IsoDate | None = None) -> list[dict]:
    return CustomerService(svc.ctx).watchlist(days, as_of)


@endpoint("POST", "/risk/rescore", "risk.rescore", summary="Score customers now; grade changes are recorded")
async def rescore(body: RescoreBody, svc: Service, user: caller("risk.rescore")) -> dict:
    service = CustomerService(svc.ctx)
    if body.customer_id:
        return await run_in_threadpool(service.assess, body.customer_id, body.as_of, None, user.actor())
    return await run_in_threadpool(service.rescore_all, body.as_of, user.actor())


@endpoint("POST", "/customers/{customer_id}/hold", "credit_hold.place",
          summary="Put a customer on credit hold (published in the outbox)")
def place_hold(customer_id: str, body: HoldBody, svc: Service, user: caller("credit_hold.place")) -> dict:
    return CustomerService(svc.ctx).place_hold(customer_id, body.reason, user.actor())


@endpoint("POST", "/customers/{customer_id}/hold/release", "credit_hold.release",
          summary="Release a customer's credit hold (published in the outbox)")
def release_hold(customer_id: str, body: HoldBody, svc: Service, user: caller("credit_hold.release")) -> dict:
    return CustomerService(svc.ctx).release_hold(customer_id, body.reason, user.actor())


@endpoint("GET", "/credit-holds/outbox", "credit_hold.outbox",
          summary="Credit holds placed and released, for the ERP (unacknowledged unless all=true)")
def outbox(svc: Service, all: bool = False) -> list[dict]:
    return CustomerService(svc.ctx).outbox(not all)


@endpoint("POST", "/credit-holds/outbox/{outbox_id}/ack", "credit_hold.ack",
          summary="Acknowledge an outbox entry (recorded as an event)")
def acknowledge(outbox_id: str, body: AckBody, svc: Service, user: caller("credit_hold.ack")) -> dict:
    return CustomerService(svc.ctx).acknowledge(outbox_id, body.consumer, user.actor())


@endpoint("GET", "/payments/unapplied", "payments.unapplied", summary="Customer credit balances with their age")
def unapplied(svc: Service, customer_id: str | None = None, as_of: IsoDate | None = None) -> list[dict]:
    return CreditService(svc).unapplied(as_of, customer_id)


@endpoint("POST", "/payments/apply-credit", "payments.apply_credit",
          summary="Apply customer credit to an invoice's open case")
async def apply_credit(body: ApplyCreditBody, svc: Service, user: caller("payments.apply_credit")) -> dict:
    return await CreditService(svc).apply(body.invoice_id, body.amount, user.actor())


@endpoint("POST", "/customers/{customer_id}/prepayments", "payments.prepay",
          summary="Record a prepayment (no invoice): it becomes customer credit")
async def prepay(customer_id: str, body: PrepaymentBody, svc: Service, user: caller("payments.prepay")) -> dict:
    return await CreditService(svc).prepay(customer_id, body.amount, body.currency, user.actor(), body.payment_id,
                                           body.received_on, body.reference, body.request_id)


@endpoint("GET", "/reports/kpis", "reports.kpis",
          summary="Collection KPIs of a period (aging, DSO, CEI, turnover, promises, collection, write-offs, "
                  "collectors); report=NAME gives one report's rows")
def report_kpis(svc: Service, start: Annotated[IsoDate | None, Query(alias="from")] = None,
                end: Annotated[IsoDate | None, Query(alias="to")] = None,
                currency: Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")] = None,
                report: Literal[kpis.REPORTS] | None = None) -> dict:  # type: ignore[valid-type]
    figures = kpis.kpis(svc.ctx, start, end, currency)
    return kpis.report_view(report, figures) if report else figures


@endpoint("GET", "/insurance/policies", "insurance.policies", summary="Insurer policies and their terms")
def insurer_policies(svc: Service) -> list[dict]:
    return InsuranceService(svc).policies()


@endpoint("POST", "/insurance/policies", "insurance.policy_add", summary="Add an insurer policy with its terms")
def add_insurer_policy(body: InsurerPolicyBody, svc: Service, user: caller("insurance.policy_add")) -> dict:
    return InsuranceService(svc).add_policy(body.policy_id, body.insurer_id, body.insurer_name, body.insurer_email,
                                            body.notify_within, body.max_extension, body.claim_waiting,
                                            body.indemnity_percent, user.actor(), body.reason)


@endpoint("POST", "/invoices/{invoice_id:path}/insurance", "insurance.cover",
          summary="Insure an invoice under an insurer policy (before its case opens)")
def cover(invoice_id: str, body: CoverBody, svc: Service, user: caller("insurance.cover")) -> dict:
    return InsuranceService(svc).cover(invoice_id, body.policy_id, user.actor(), body.reason)


@endpoint("POST", "/cases/{ref:path}/indemnity", "insurance.indemnity",
          summary="Record the insurer's indemnity on a case with a filed claim")
async def indemnity(ref: str, body: IndemnityBody, svc: Service, user: caller("insurance.indemnity")) -> dict:
    return await InsuranceService(svc).record_indemnity(ref, body.amount, user.actor(), body.reference)
