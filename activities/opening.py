"""Starting a case workflow: one per invoice, however often or concurrently asked."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from datetime import datetime

from domain.commands import CustomerPauseFacts, OpenCase
from domain.policy import Policy
from workflows.messages import WORKFLOW_NAME, CaseInput, case_workflow_id


async def start_case(client: Client, *, task_queue: str, id_prefix: str, policy: Policy, opening: OpenCase) -> bool:
    """True when this call started the case; False when the invoice already has one.

    The workflow id is derived from the invoice id and never reused, so two
    sweeps (or a sweep and a collector) racing for one invoice open one case.
    """
    try:
        await client.start_workflow(
            WORKFLOW_NAME,
            CaseInput(case_id=opening.case_id, policy=policy, open=opening, id_prefix=id_prefix),
            id=case_workflow_id(opening.invoice.invoice_id, id_prefix),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            # From a worker's own client (the sweep's activity), the case's first workflow task
            # comes back with the start and runs on this worker at once; elsewhere a no-op.
            request_eager_start=True,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


def customer_pause(store, customer_id: str, now: datetime) -> CustomerPauseFacts | None:
    """The customer-wide dunning pause in force at ``now`` (``customer pause``), read from the
    customer's stream in ``store``: a case opened while it lasts opens paused."""
    from domain.customer import customer_stream_id, fold_customer

    state = fold_customer(store.load(customer_stream_id(customer_id)))
    pause = state.pause_in_force(now) if state is not None else None
    if pause is None:
        return None
    return CustomerPauseFacts(pause_id=pause.pause_id, until=pause.until, reason=pause.reason,
                              requested_by=pause.requested_by, requested_by_role=pause.requested_by_role)
