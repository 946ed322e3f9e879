"""Handing a due notice to the customer's mailbox workflow (signal-with-start)."""

from __future__ import annotations

from temporalio import activity

from activities.contracts import ENQUEUE_NOTICE, MAILBOX_WORKFLOW, EnqueueRequest


@activity.defn(name=ENQUEUE_NOTICE)
async def enqueue_notice(request: EnqueueRequest) -> None:
    """Starts the mailbox if it is not running; either way it receives the notice.
    A retry enqueues the same notice again, which the mailbox ignores."""
    await activity.client().start_workflow(
        MAILBOX_WORKFLOW,
        request.start,
        id=request.mailbox_id,
        task_queue=request.task_queue,
        start_signal="enqueue",
        start_signal_args=[request.queued],
    )
