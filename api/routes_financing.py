"""JSON endpoints of the early-cash instruments (docs/FINANCING.md): assigning invoices to a factor
and recording what the factor reports. Registered on the same router (and role matrix) as
api/routes.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.routes import Body, Service, caller, endpoint
from app.financing import FinancingService
from domain.inputs import Identifier


class AssignBody(Body):
    invoice_ids: list[Identifier] = Field(min_length=1, max_length=500, description="Invoices with open cases")
    factor: str = Field(min_length=1, max_length=64, description="The factor, by its name in the policy")
    recourse: Literal["yes", "no"]
    advance_rate: str = Field(min_length=1, max_length=20, description="Above 0 and at most 1, e.g. 0.9")
    fee_rate: str | None = Field(None, max_length=20, description="The factor's fee rate, e.g. 0.015 (default 0)")
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event, for the audit trail)")
    assignment_id: Identifier | None = Field(None, description="Makes a repeated assignment a no-op")


class FactorOutcomeBody(Body):
    outcome: Literal["collected", "defaulted"] = Field(description="collected: paid to the factor; defaulted")
    reason: str = Field(min_length=1, max_length=500, description="What the factor reported (its statement)")


@endpoint("POST", "/financing/assignments", "financing.assign",
          summary="Assign invoices to a factor (all or none); notices then carry the factor's instructions")
async def assign(body: AssignBody, svc: Service, user: caller("financing.assign")) -> dict:
    return await FinancingService(svc).assign(body.invoice_ids, body.factor, body.recourse, body.advance_rate,
                                              body.fee_rate, body.reason, user.actor(), body.assignment_id)


@endpoint("POST", "/cases/{ref:path}/factor-outcome", "financing.outcome",
          summary="Record what the factor reports on an assigned invoice: paid to it, or defaulted")
async def factor_outcome(ref: str, body: FactorOutcomeBody, svc: Service, user: caller("financing.outcome")) -> dict:
    return await FinancingService(svc).outcome(ref, body.outcome, body.reason, user.actor())


@endpoint("GET", "/reports/financing", "reports.financing",
          summary="Factoring per factor and recourse (assigned, advanced, fees, outstanding); discounts per quarter")
def report_financing(svc: Service) -> dict:
    return FinancingService(svc).report()
