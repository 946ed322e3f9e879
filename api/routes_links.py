"""JSON endpoint over the customers' self-service links (app/links.py): revoke them.

Registered on the same router (and role matrix) as api/routes.py; the page itself is
api/routes_customer.py (no token: the signed link is the key)."""

from __future__ import annotations

from pydantic import Field

from api.routes import Body, Service, caller, endpoint
from domain.inputs import Identifier


class RevokeBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why (kept on the event)")


@endpoint("POST", "/customers/{customer_id}/revoke-links", "customers.revoke_links",
          summary="Stop every self-service link sent to a customer so far; the next notice carries a new one")
def revoke_links(customer_id: Identifier, body: RevokeBody, svc: Service,
                 user: caller("customers.revoke_links")) -> dict:
    from app.customers import CustomerService

    return CustomerService(svc.ctx).revoke_links(customer_id, body.reason, user.actor())
