"""The role matrix: which roles may call each endpoint. One table, used by the JSON
API and the console alike, and iterated by the tests (every endpoint x every role).

Collectors work cases and request write-offs; supervisors and finance managers
may also decide escalations and approvals (the domain then checks the tier, the
authority limit and four eyes), cancel cases and administer the ledger.
"""

from __future__ import annotations

from domain.policy import Role

ALL = frozenset(Role)
APPROVERS = frozenset({Role.supervisor, Role.finance_manager})

ROLE_MATRIX: dict[str, frozenset[Role]] = {
    # who am I
    "me": ALL,
    # cases: reads
    "cases.list": ALL,
    "cases.worklist": ALL,
    "cases.show": ALL,
    # cases: work
    "cases.open": ALL,
    "cases.assign": ALL,
    "payments.record": ALL,
    "disputes.open": ALL,
    "disputes.resolve": ALL,
    "promises.make": ALL,
    "plans.propose": ALL,
    "plans.accept": ALL,
    "write_offs.request": ALL,
    # decisions
    "escalations.decide": APPROVERS,
    "approvals.list": ALL,
    "approvals.approve": APPROVERS,
    "approvals.reject": APPROVERS,
    "cases.cancel": APPROVERS,
    # ledger, reports, operations
    "invoices.import": APPROVERS,
    "reports.dashboard": ALL,
    "policy.show": ALL,
    "projections.rebuild": APPROVERS,
    # automated dunning
    "sweeps.run": APPROVERS,
    "schedule.create": APPROVERS,
    "payments.import": ALL,
    "payments.unmatched": ALL,
    "payments.assign": ALL,
    "payments.reverse": APPROVERS,
    "notices.preview": ALL,
    "cases.migrate_policy": APPROVERS,
    "policy.list": ALL,
    # credit risk, customer credit, credit insurance, KPIs
    "customers.show": ALL,
    "customers.limit": APPROVERS,
    "risk.watchlist": ALL,
    "risk.rescore": APPROVERS,
    "credit_hold.place": APPROVERS,
    "credit_hold.release": APPROVERS,
    "credit_hold.outbox": ALL,
    "credit_hold.ack": ALL,
    "payments.unapplied": ALL,
    "payments.apply_credit": ALL,
    "payments.prepay": ALL,
    "reports.kpis": ALL,
    "insurance.policies": ALL,
    "insurance.policy_add": APPROVERS,
    "insurance.cover": APPROVERS,
    "insurance.indemnity": APPROVERS,
    # audit trail (docs/CONTROLS.md)
    "audit.verify": APPROVERS,
    "audit.events": APPROVERS,
}


def allowed(action: str, role: Role | None) -> bool:
    """True when ``role`` may perform ``action`` (unknown actions are refused)."""
    return role is not None and role in ROLE_MATRIX.get(action, frozenset())
