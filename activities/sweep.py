"""Sweep activities: count the ledger, then open cases one page of invoices at a time."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timezone
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from temporalio import activity

from activities.contracts import (
    SWEEP_ADVANCES, SWEEP_PAGE, SWEEP_PREPARE, SweepAdvancesRequest, SweepPageRequest, SweepPageResult, SweepPlan,
    SweepPrepareRequest,
)
from activities.opening import customer_pause, start_case
from domain.advances import case_facts, overdue_requests
from domain.commands import OpenCase
from domain.customer import customer_stream_id, fold_customer
from domain.decider import case_uuid
from domain.errors import DomainError
from domain.events import OpenReason
from domain.policy import Policy
from domain.users import SYSTEM_ACTOR
from store.ledger import SweepReads
from store.policies import PolicyStore

OPEN_CONCURRENCY = 20  # case starts in flight at once, per page


class SweepActivities:
    def __init__(self, reads: SweepReads, policies: PolicyStore, active_policy, task_queue: str, id_prefix: str,
                 store=None) -> None:
        self.reads = reads
        self.store = store  # the event store: a customer's dunning pause (None: not looked up)
        self.policies = policies
        self.active_policy = active_policy  # () -> Policy: the policy file, validated and pinned
        self.task_queue = task_queue
        self.id_prefix = id_prefix

    @activity.defn(name=SWEEP_PREPARE)
    def prepare(self, request: SweepPrepareRequest) -> SweepPlan:
        # The local date is computed here: inside the workflow sandbox ZoneInfo is a
        # restricted proxy that astimezone() refuses.
        as_of = request.as_of or request.started_at.astimezone(ZoneInfo(request.timezone)).date()
        policy: Policy = self.active_policy()
        cutoff = (datetime.combine(as_of, time(0), tzinfo=timezone.utc) - policy.grace).date()
        counts = self.reads.counts(cutoff)
        return SweepPlan(
            as_of=as_of, cutoff=cutoff, policy_version=policy.version, scanned=counts.scanned,
            not_due=counts.not_due, paid=counts.paid, overdue=counts.overdue, started_at=request.started_at,
        )

    @activity.defn(name=SWEEP_PAGE)
    async def page(self, request: SweepPageRequest) -> SweepPageResult:
        policy = await asyncio.to_thread(self.policies.get, request.policy_version)
        invoices = await asyncio.to_thread(self.reads.overdue_page, request.cutoff, request.after, request.limit)
        client = activity.client()
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        opened = already = 0
        failed: dict[str, str] = {}

        async def open_one(facts, has_case: bool) -> None:
            nonlocal opened, already
            if has_case:
                already += 1
                return
            async with gate:
                try:
                    started = await self._open(client, policy, facts, "sweep-open")
                except DomainError as error:
                    failed[facts.invoice_id] = str(error)
                    return
            if started:
                opened += 1
            else:
                already += 1
            activity.heartbeat(facts.invoice_id)

        await asyncio.gather(*(open_one(f, has_case) for f, has_case in invoices))
        return SweepPageResult(
            seen=len(invoices), last=invoices[-1][0].invoice_id if invoices else None,
            opened=opened, already_open=already, failed=failed,
        )

    @activity.defn(name=SWEEP_ADVANCES)
    async def advances(self, request: SweepAdvancesRequest) -> SweepPageResult:
        """Open a case of kind advance for every advance request overdue and unpaid (issue 16):
        the request id stands for the invoice id, so a request is dunned once however often the
        sweep runs. Requests live on the customers' streams (``AdvanceRequested``)."""
        if self.store is None:
            return SweepPageResult(seen=0, last=None, opened=0, already_open=0)
        policy = await asyncio.to_thread(self.policies.get, request.policy_version)
        due = await asyncio.to_thread(self._overdue_requests, request.cutoff)
        having = await asyncio.to_thread(self.reads.with_case, [f.invoice_id for f in due])
        client = activity.client()
        opened = already = 0
        failed: dict[str, str] = {}
        for facts in due:
            if facts.invoice_id in having:
                already += 1
                continue
            try:
                started = await self._open(client, policy, facts, "sweep-open-advance")
            except DomainError as error:
                failed[facts.invoice_id] = str(error)
                continue
            opened, already = (opened + 1, already) if started else (opened, already + 1)
            activity.heartbeat(facts.invoice_id)
        return SweepPageResult(seen=len(due), last=None, opened=opened, already_open=already, failed=failed)

    async def _open(self, client, policy, facts, key: str) -> bool:
        """Start the case of ``facts`` (paused with its customer when a pause is in force): True
        when this call started it."""
        paused = None
        if self.store is not None:
            paused = await asyncio.to_thread(customer_pause, self.store, facts.customer.customer_id,
                                             datetime.now(timezone.utc))
        opening = OpenCase(
            command_id=uuid5(NAMESPACE_URL, f"{key}:{facts.invoice_id}"), actor=SYSTEM_ACTOR,
            case_id=case_uuid(facts.invoice_id), invoice=facts, reason=OpenReason.overdue, customer_pause=paused,
        )
        return await start_case(client, task_queue=self.task_queue, id_prefix=self.id_prefix, policy=policy,
                                opening=opening)

    def _overdue_requests(self, cutoff):
        found = []
        customers = sorted({r.event.customer_id for r in self.store.read_types(("AdvanceRequested",))})
        for customer_id in customers:
            state = fold_customer(self.store.load(customer_stream_id(customer_id)))
            who = self.reads.customer_facts(customer_id) if state is not None else None
            if who is None:
                continue
            found += [case_facts(r, who[0], who[1]) for r in overdue_requests(state, cutoff)]
        return found
