"""JSON endpoints of "no silent stall" (docs/CONTROLS.md): withdraw a plan offer, pause and resume
dunning on a case or a customer, the stuck-case report.

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from pydantic import Field

from api.routes import Body, ReasonCode, Service, caller, endpoint
from app.liveness import pause_customer, resume_customer, stuck_cases
from domain.inputs import Identifier


class WhyBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event)")


class PauseBody(Body):
    until: str = Field(min_length=10, max_length=40, description="End of the pause: YYYY-MM-DD (dunning resumes "
                       "at 00:00 UTC that day) or a date-time with its offset")
    reason: ReasonCode = Field(description="Reason code, e.g. customer_holiday, insolvency_talks")


@endpoint("POST", "/cases/{ref:path}/plan/withdraw", "plans.withdraw",
          summary="Withdraw a plan offer nobody accepted; dunning resumes where it stopped")
async def withdraw_plan(ref: str, body: WhyBody, svc: Service, user: caller("plans.withdraw")) -> dict:
    return await svc.withdraw_plan(ref, body.reason, user.actor())


@endpoint("POST", "/cases/{ref:path}/pause", "cases.pause",
          summary="Pause dunning until a date (beyond a collector's maximum: a supervisor approves)")
async def pause_case(ref: str, body: PauseBody, svc: Service, user: caller("cases.pause")) -> dict:
    return await svc.pause(ref, body.until, body.reason, user.actor())


@endpoint("POST", "/cases/{ref:path}/resume", "cases.resume", summary="End a dunning pause now")
async def resume_case(ref: str, body: WhyBody, svc: Service, user: caller("cases.resume")) -> dict:
    return await svc.resume(ref, body.reason, user.actor())


@endpoint("POST", "/customers/{customer_id}/pause", "customers.pause",
          summary="Pause dunning on every open case of a customer until a date")
async def pause_a_customer(customer_id: Identifier, body: PauseBody, svc: Service,
                           user: caller("customers.pause")) -> dict:
    return await pause_customer(svc, customer_id, body.until, body.reason, user.actor())


@endpoint("POST", "/customers/{customer_id}/resume", "customers.resume",
          summary="End the dunning pause of every paused open case of a customer")
async def resume_a_customer(customer_id: Identifier, body: WhyBody, svc: Service,
                            user: caller("customers.resume")) -> dict:
    return await resume_customer(svc, customer_id, body.reason, user.actor())


@endpoint("GET", "/reports/stuck", "reports.stuck",
          summary="Open cases that wait on nobody (no timer, no pending human item with an owner)")
def stuck(svc: Service) -> list[dict]:
    return stuck_cases(svc)
