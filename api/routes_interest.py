"""JSON endpoint of statutory interest (docs/INTEREST.md): waive interest and compensation
charged on a case, under the authority rules (above one person's threshold: four eyes).

Registered on the same router (and role matrix) as api/routes.py.
"""

from __future__ import annotations

from pydantic import Field

from api.routes import Body, ReasonCode, Service, caller, endpoint
from domain.money import AmountText


class WaiverBody(Body):
    reason: ReasonCode = Field(description="Reason code, e.g. goodwill")
    amount: AmountText | None = Field(None, description="How much to waive (default: all interest and compensation "
                                      "charged and not waived)")


@endpoint("POST", "/cases/{ref:path}/waive-interest", "interest.waive",
          summary="Waive statutory interest and compensation (beyond one person's threshold: a second person approves)")
async def waive_interest(ref: str, body: WaiverBody, svc: Service, user: caller("interest.waive")) -> dict:
    return await svc.waive_interest(ref, body.amount, body.reason, user.actor())
