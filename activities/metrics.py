"""Domain counters, incremented by the activities that make the facts happen.

Counted once per fact: an append that turns out to be a retry of one already
stored (``already_appended``) counts nothing, and a notice found already sent in
the delivery log counts as ``already_sent``, not as a second ``sent``.
Served by ``app.metrics`` (COLLECTIONS_METRICS_ADDRESS) from the worker process.
"""

from __future__ import annotations

from typing import Iterable

from prometheus_client import Counter

from domain import events as ev

CASES_OPENED = Counter("collections_cases_opened", "Collection cases opened", ["reason"])
CASES_CLOSED = Counter("collections_cases_closed", "Collection cases closed", ["outcome"])
EVENTS_APPENDED = Counter("collections_events_appended", "Domain events appended to the event store", ["type"])
NOTICES = Counter(
    "collections_notices",
    "Notice deliveries by result: sent (accepted by SMTP), failed (transient, will be retried), "
    "rejected (permanent 5xx), already_sent (a retry found it sent; nothing sent again)",
    ["result"],
)
APPROVAL_DECISIONS = Counter("collections_approval_decisions", "Approvals decided", ["kind", "decision"])

for _result in ("sent", "failed", "rejected", "already_sent"):
    NOTICES.labels(_result)


def count_appended(events: Iterable[ev.Event]) -> None:
    for event in events:
        EVENTS_APPENDED.labels(type(event).__name__).inc()
        if isinstance(event, ev.CaseOpened):
            CASES_OPENED.labels(event.reason.value).inc()
        elif isinstance(event, ev.CaseClosed):
            CASES_CLOSED.labels(event.outcome.value).inc()
        elif isinstance(event, (ev.WriteOffApproved, ev.PaymentPlanApproved)):
            APPROVAL_DECISIONS.labels("write_off" if isinstance(event, ev.WriteOffApproved) else "plan", "approved").inc()
        elif isinstance(event, (ev.WriteOffRejected, ev.PaymentPlanRejected)):
            APPROVAL_DECISIONS.labels("write_off" if isinstance(event, ev.WriteOffRejected) else "plan", "rejected").inc()
