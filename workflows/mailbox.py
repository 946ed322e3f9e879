"""CustomerMailboxWorkflow: one message per customer, however many cases are due.

Case workflows enqueue their due notice here (signal-with-start, through an
activity). The mailbox gathers for a short window, sends one message listing
every invoice, and tells each case the shared Message-ID. Each invoice keeps
its own clock; only the delivery is shared.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        MAILBOX_WORKFLOW,
        NOTICE_OUTCOME_SIGNAL,
        SEND_DIGEST,
        DigestRequest,
        MailboxInput,
        NoticeOutcome,
        NoticeResult,
        QueuedNotice,
    )
    from workflows.options import SMTP_HEARTBEAT, SMTP_RETRY, SMTP_TIMEOUT

IDLE = timedelta(hours=1)  # a quiet mailbox completes; the next notice starts it again


REMEMBERED = 500  # delivered notices kept to answer a repeated enqueue


def _key(queued: QueuedNotice) -> str:
    return f"{queued.reply_to}#{queued.notice.seq}"


@workflow.defn(name=MAILBOX_WORKFLOW)
class CustomerMailboxWorkflow:
    def __init__(self) -> None:
        self._pending: list[QueuedNotice] = []
        self._delivered: dict[str, NoticeResult] = {}  # outcome of each (case, notice) sent

    @workflow.signal
    def enqueue(self, queued: QueuedNotice) -> None:
        if all(_key(q) != _key(queued) for q in self._pending):  # a retried enqueue
            self._pending.append(queued)

    @workflow.query
    def pending(self) -> int:
        return len(self._pending)

    @workflow.run
    async def run(self, mailbox: MailboxInput) -> int:
        self._pending = [*mailbox.pending, *self._pending]
        self._delivered = dict(mailbox.delivered)
        sent = 0
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self._pending), timeout=IDLE)
            except TimeoutError:
                if not self._pending:
                    return sent
            for queued in [q for q in self._pending if _key(q) in self._delivered]:
                self._pending.remove(queued)  # asked again (a retried enqueue): answer as before
                await self._tell(queued, self._delivered[_key(queued)])
            if not self._pending:
                continue
            await workflow.sleep(mailbox.gather)  # let the other cases due now join in
            batch, self._pending = self._pending, []
            result = await self._send(batch, mailbox)
            for queued in batch:
                self._remember(queued, result)
                await self._tell(queued, result)
            sent += 1
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    mailbox.model_copy(update={"pending": self._pending, "delivered": self._delivered})
                )

    def _remember(self, queued: QueuedNotice, result: NoticeResult) -> None:
        self._delivered[_key(queued)] = result
        while len(self._delivered) > REMEMBERED:  # oldest first: dicts keep insertion order
            del self._delivered[next(iter(self._delivered))]

    @staticmethod
    async def _tell(queued: QueuedNotice, result: NoticeResult) -> None:
        """Report the delivery to the case; a case that has ended no longer needs it."""
        case = workflow.get_external_workflow_handle(queued.reply_to)
        try:
            await case.signal(NOTICE_OUTCOME_SIGNAL, NoticeOutcome(seq=queued.notice.seq, result=result))
        except Exception as error:  # noqa: BLE001 - the case workflow is gone; nothing to tell
            workflow.logger.warning("could not report notice to %s: %s", queued.reply_to, error)

    async def _send(self, batch: list[QueuedNotice], mailbox: MailboxInput) -> NoticeResult:
        request = DigestRequest(batch_id=str(workflow.uuid4()), notices=[q.notice for q in batch])
        try:
            return await workflow.execute_activity(
                SEND_DIGEST, request, result_type=NoticeResult,
                start_to_close_timeout=SMTP_TIMEOUT, heartbeat_timeout=SMTP_HEARTBEAT,
                schedule_to_close_timeout=mailbox.give_up_after,
                retry_policy=SMTP_RETRY,
            )
        except ActivityError as error:
            first = batch[0].notice
            return NoticeResult(message_id=f"<unsent-{request.batch_id}>", recipient=first.customer.email,
                                delivered=False, error=f"gave up: {error.cause or error}")
