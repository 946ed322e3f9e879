"""Event-store activities: append (idempotent) and load a case's stream."""

from __future__ import annotations

import logging
from typing import Callable, Sequence
from uuid import UUID

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.contracts import (
    APPEND_EVENTS,
    CONCURRENCY_ERROR,
    LOAD_CASE,
    LOAD_POLICY,
    AppendReply,
    AppendRequest,
    LoadCaseReply,
)
from domain.policy import Policy
from store.event_store import ConcurrencyError, EventStore
from store.policies import PolicyStore


log = logging.getLogger(__name__)


class CaseStoreActivities:
    def __init__(self, store: EventStore, policies: PolicyStore,
                 after_append: Callable[[UUID, Sequence], None] | None = None) -> None:
        self.store = store
        self.policies = policies
        # Runs once the events are durable (the customer's risk rescoring); its failure never
        # fails the append, and whatever it missed the next run or `risk rescore` catches up.
        self.after_append = after_append

    @activity.defn(name=APPEND_EVENTS)
    def append_events(self, request: AppendRequest) -> AppendReply:
        """Same event ids at the same versions = success (a retry); else a
        non-retryable ConcurrencyError: retrying cannot make it succeed."""
        try:
            result = self.store.append(
                request.case_id, request.expected_version, request.events, request.metadata
            )
        except ConcurrencyError as error:
            raise ApplicationError(str(error), type=CONCURRENCY_ERROR, non_retryable=True) from error
        if not result.already_appended:  # a retry of an append already stored counts nothing
            metrics.count_appended(request.events)
        if self.after_append is not None:
            try:
                self.after_append(request.case_id, request.events)
            except Exception:  # noqa: BLE001 - reported, never fails the append
                log.warning("after-append hook failed for case %s", request.case_id, exc_info=True)
        return AppendReply(version=result.version, already_appended=result.already_appended)

    @activity.defn(name=LOAD_CASE)
    def load_case(self, case_id: UUID) -> LoadCaseReply:
        return LoadCaseReply(events=self.store.load(case_id))

    @activity.defn(name=LOAD_POLICY)
    def load_policy(self, version: str) -> Policy:
        return self.policies.get(version)
