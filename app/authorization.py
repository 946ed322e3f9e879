"""The one authorization point: which roles may perform each action, for the CLI, the
JSON API and the console alike; iterated by the tests (every action x every role, every
CLI command and every endpoint mapped to an action).

Collectors work cases and request write-offs; supervisors and finance managers
may also decide escalations and approvals, cancel cases and administer the ledger.
An integration user (another system, not a person) may only read the event feed.
The money rules (limits per role in the policy's currency, the single-person threshold,
four eyes) are domain rules (domain/authority.py), checked by the decider on every path.
"""

from __future__ import annotations

from domain.policy import Role

ALL = frozenset({Role.collector, Role.supervisor, Role.finance_manager})  # every person's role
APPROVERS = frozenset({Role.supervisor, Role.finance_manager})
INTEGRATION = frozenset({Role.integration})  # another system: reads the event feed, nothing else

ROLE_MATRIX: dict[str, frozenset[Role]] = {
    # who am I
    "me": ALL | INTEGRATION,
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
    "plans.withdraw": ALL,
    "cases.pause": ALL,  # beyond the collector's maximum (policy) the decider asks a supervisor's approval
    "cases.resume": ALL,
    "customers.pause": ALL,
    "customers.resume": ALL,
    "customers.revoke_links": ALL,  # the customer's self-service links (a lost or forwarded notice)
    "reports.stuck": ALL,
    "write_offs.request": ALL,
    # decisions
    "escalations.decide": APPROVERS,
    "approvals.list": ALL,
    "approvals.approve": APPROVERS,
    "approvals.reject": APPROVERS,
    "cases.cancel": APPROVERS,
    "interest.waive": ALL,  # beyond the single-person threshold a second person approves
    # ledger, reports, operations
    "invoices.import": APPROVERS,
    "reports.dashboard": ALL,
    "policy.show": ALL,
    "projections.rebuild": APPROVERS,
    # automated dunning
    "sweeps.run": APPROVERS,
    "schedule.create": APPROVERS,
    "schedule.show": ALL,
    "schedule.delete": APPROVERS,
    # internal notifications are part of the daily sweep; their sent log is part of the audit trail
    "notify.run": APPROVERS,
    "notify.log": APPROVERS,
    "payments.import": ALL,
    "payments.unmatched": ALL,
    "payments.assign": ALL,
    "payments.reverse": APPROVERS,
    "notices.preview": ALL,
    "cases.migrate_policy": APPROVERS,
    "policy.list": ALL,
    "policy.pin": APPROVERS,
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
    "advances.apply": ALL,
    "advances.request": ALL,
    "advances.refund": ALL,
    "advances.approve_refund": APPROVERS,
    "reports.advances": ALL,
    "reports.kpis": ALL,
    "insurance.policies": ALL,
    "insurance.policy_add": APPROVERS,
    "insurance.cover": APPROVERS,
    "insurance.indemnity": APPROVERS,
    # early-cash instruments (docs/FINANCING.md): selling receivables is a finance decision
    "financing.assign": APPROVERS,
    "financing.outcome": APPROVERS,  # what the factor reports: paid to it, or defaulted
    "reports.financing": ALL,
    # audit trail (docs/CONTROLS.md)
    "audit.verify": APPROVERS,
    "audit.events": APPROVERS,
    # the event feed for an ERP or a data warehouse (docs/EVENTS.md): every fact of every case and
    # customer, so not a collector's (a collector works cases); an integration user reads it and
    # may do nothing else
    "events.read": APPROVERS | INTEGRATION,
    # subscribers of the feed (the general outbox, docs/EVENTS.md): who gets every fact pushed where
    # is the ledger's administration, as reading the feed is
    "subscribers.list": APPROVERS,
    "subscribers.add": APPROVERS,
    "subscribers.pause": APPROVERS,
    "subscribers.resume": APPROVERS,
    "subscribers.remove": APPROVERS,
    "subscribers.dispatch": APPROVERS,
}


# Each CLI command, the action it performs, and whether it needs the caller's token
# (COLLECTIONS_TOKEN or --token): every command that changes anything, and the audit trail. Commands not listed here are an operator's on the machine
# itself (OPERATOR_COMMANDS): they start processes or write the users file.
CLI_ACTIONS: dict[str, tuple[str, bool]] = {
    "pay": ("payments.record", True),
    "promise": ("promises.make", True),
    "sweep": ("sweeps.run", True),
    "invoices import": ("invoices.import", True),
    "case open": ("cases.open", True),
    "case show": ("cases.show", False),
    "case list": ("cases.list", False),
    "case assign": ("cases.assign", True),
    "case cancel": ("cases.cancel", True),
    "case waive-interest": ("interest.waive", True),
    "case letter": ("cases.show", False),
    "case migrate-policy": ("cases.migrate_policy", True),
    "dispute open": ("disputes.open", True),
    "dispute resolve": ("disputes.resolve", True),
    "plan propose": ("plans.propose", True),
    "plan accept": ("plans.accept", True),
    "plan withdraw": ("plans.withdraw", True),
    "case pause": ("cases.pause", True),
    "case resume": ("cases.resume", True),
    "customer pause": ("customers.pause", True),
    "customer resume": ("customers.resume", True),
    "customer revoke-links": ("customers.revoke_links", True),
    "report stuck": ("reports.stuck", False),
    "escalation decide": ("escalations.decide", True),
    "write-off request": ("write_offs.request", True),
    "approvals list": ("approvals.list", False),
    "approvals approve": ("approvals.approve", True),
    "approvals reject": ("approvals.reject", True),
    "projections rebuild": ("projections.rebuild", True),
    "policy show": ("policy.show", False),
    "policy list": ("policy.list", False),
    "policy pin": ("policy.pin", True),
    "schedule create": ("schedule.create", True),
    "schedule show": ("schedule.show", False),
    "schedule delete": ("schedule.delete", True),
    "notify run": ("notify.run", True),
    "notify log": ("notify.log", True),
    "payments import": ("payments.import", True),
    "payments unmatched": ("payments.unmatched", False),
    "payments assign": ("payments.assign", True),
    "payments reverse": ("payments.reverse", True),
    "payments unapplied": ("payments.unapplied", False),
    "payments apply-credit": ("payments.apply_credit", True),
    "payments prepay": ("payments.prepay", True),
    "advance apply": ("advances.apply", True),
    "advance request": ("advances.request", True),
    "advance refund": ("advances.refund", True),
    "advance approve-refund": ("advances.approve_refund", True),
    "advance refunds": ("reports.advances", False),
    "report advances": ("reports.advances", False),
    "template preview": ("notices.preview", False),
    "customer show": ("customers.show", False),
    "customer statement": ("customers.show", False),
    "customer limit": ("customers.limit", True),
    "risk watchlist": ("risk.watchlist", False),
    "risk rescore": ("risk.rescore", True),
    "credit-hold place": ("credit_hold.place", True),
    "credit-hold release": ("credit_hold.release", True),
    "credit-hold outbox": ("credit_hold.outbox", False),
    "credit-hold ack": ("credit_hold.ack", True),
    **{f"report {name}": ("reports.kpis", False) for name in (
        "kpis", "aging", "dso", "cei", "turnover", "promises", "collect", "write-offs", "collectors", "reconcile")},
    "insurance policy-add": ("insurance.policy_add", True),
    "insurance policies": ("insurance.policies", False),
    "insurance cover": ("insurance.cover", True),
    "insurance indemnity": ("insurance.indemnity", True),
    "financing assign": ("financing.assign", True),
    "financing settle": ("financing.outcome", True),
    "financing default": ("financing.outcome", True),
    "report financing": ("reports.financing", False),
    # the whole trail is a supervisor's to read, from the CLI as from the API: a token is needed
    "audit verify": ("audit.verify", True),
    "audit export": ("audit.events", True),
    "audit anchor": ("audit.verify", True),
    # the event feed: as from the API, a token is needed
    "events tail": ("events.read", True),
    "subscribers add": ("subscribers.add", True),
    "subscribers list": ("subscribers.list", True),
    "subscribers pause": ("subscribers.pause", True),
    "subscribers resume": ("subscribers.resume", True),
    "subscribers remove": ("subscribers.remove", True),
    "subscribers dispatch": ("subscribers.dispatch", True),
}
OPERATOR_COMMANDS = frozenset({
    "up", "web", "worker", "db upgrade", "users add", "users token", "users revoke", "users list",
    "backtest",  # reads a file and writes nothing but its report
})


def allowed(action: str, role: Role | None) -> bool:
    """True when ``role`` may perform ``action`` (unknown actions are refused)."""
    return role is not None and role in ROLE_MATRIX.get(action, frozenset())
