"""CollectionCaseWorkflow: one durable workflow per case, the single writer of its stream.

It holds no business rule. It feeds commands (Temporal Updates) and timer
expiries into the decider, appends the resulting events through an activity,
and waits for the next deadline. Updates are validated by the decider before
anything reaches history, and reply only after their events are durable.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid5

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        APPEND_EVENTS,
        CONCURRENCY_ERROR,
        ENQUEUE_NOTICE,
        LOAD_CASE,
        NOTICE_OUTCOME_SIGNAL,
        NOTIFY_FACTOR,
        NOTIFY_INSURER,
        SEND_NOTICE,
        AppendReply,
        AppendRequest,
        EnqueueRequest,
        FactorNoticeRequest,
        InsurerNoticeRequest,
        LoadCaseReply,
        MailboxInput,
        NoticeOutcome,
        NoticeRequest,
        NoticeResult,
        QueuedNotice,
        mailbox_workflow_id,
    )
    from domain import commands as cmd
    from domain.agenda import discount_offer, factor_notice_due, next_action, notice_due
    from domain.calendar import warm as warm_calendar
    from domain.decider import decide
    from domain.errors import DomainError
    from domain.events import Event
    from domain.state import CaseState, fold
    from domain.users import SYSTEM_ACTOR
    from workflows.options import APPEND_TIMEOUT, SMTP_HEARTBEAT, SMTP_RETRY, SMTP_TIMEOUT, STORE_RETRY
    from workflows.messages import BUSY, WORKFLOW_NAME, CaseInput, CaseResult, CommandReply, reply_for

IDLE_GUARD = timedelta(minutes=1)


# Appends and loads run as local activities inside a workflow task. Their writes are durable in
# the store at once, but they enter history only when that task completes; a task that is lost
# (worker crash, task timeout, or the server dropping the speculative task of an Update, seen
# with many Updates at once) leaves the store ahead of what a replay rebuilds. The workflow then
# reconciles on the next conflict: reload, and either find its own events there or decide again.
RECONCILE_PATCH = "reconcile-appends-with-store"
RECONCILE_ATTEMPTS = 5
# No silent stall (issue 13): plan offers lapse and overdue disputes escalate. Runs recorded before
# it decide with the policy as it was then (Policy.before_liveness), so their histories replay.
LIVENESS_PATCH = "no-silent-stall"
# Reductions made alone add up against the single-person threshold (issue 13). Runs recorded
# before it checked each on its own (Policy.before_reductions_add_up).
REDUCTIONS_ADD_UP_PATCH = "reductions-alone-add-up"
# Write-offs approved on a case add up against the next approver's authority. Runs recorded
# before it checked each write-off on its own (Policy.before_write_offs_add_up).
WRITE_OFFS_ADD_UP_PATCH = "write-offs-add-up"
# An ERP amendment below what was paid leaves the part paid beyond it as customer credit. Runs
# recorded before it stopped the reduction at the open balance (Policy.before_amended_below_paid).
AMENDED_BELOW_PAID_PATCH = "amended-below-paid-is-credit"
# Money paid before the case opened counts in such an amendment too (after the payments on the
# case). Runs recorded before it credited the payments on the case only
# (Policy.before_amended_below_paid_before_case).
PAID_BEFORE_CASE_PATCH = "amended-below-paid-before-case-is-credit"
# The customer credit applied to the case counts in such an amendment too (after the payments on
# the case, before money paid before it opened). Runs recorded before it left the credit applied
# beyond the new amount nowhere (Policy.before_amended_below_credit_applied).
CREDIT_APPLIED_PATCH = "amended-below-credit-applied-is-credit"
# Money the ERP booked as paid outside the engine counts in such an amendment too (after the
# credit applied, before money paid before the case opened). Runs recorded before it left the part
# paid outside beyond the new amount nowhere (Policy.before_amended_below_paid_outside).
PAID_OUTSIDE_PATCH = "amended-below-paid-outside-is-credit"
# A promised day is the customer's: it ends at midnight in their time zone, not UTC's.
PROMISE_IN_CUSTOMER_DAY_PATCH = "promise-in-customer-day"
# Every reduction people made on a case (write-offs, dispute credits, cancellation, interest
# waived) adds up against the next approver's authority. Runs recorded before it added write-offs
# to write-offs only (Policy.before_reductions_add_up_for_authority).
ALL_REDUCTIONS_ADD_UP_PATCH = "all-reductions-add-up"
# A new case appends its opening at version 0 without loading its (empty) stream first: one
# local activity fewer per case (docs/PERFORMANCE.md). Runs recorded before it load first.
OPEN_WITHOUT_LOAD_PATCH = "open-without-load"
# A step its own rules refuse twice in a row (a policy whose fee its currency cannot hold) is
# waited on, not retried at once: retried at once it held the worker's thread and starved every
# other case. Runs recorded before it retried at once.
REFUSED_STEP_PATCH = "refused-step-waits"
REFUSED_STEP_WAIT = (timedelta(minutes=1), timedelta(hours=1))  # the first wait, doubling up to the last


def _concurrency_conflict(error: BaseException) -> bool:
    """A local activity's failure reaches the workflow as the activity's own ApplicationError
    (temporalio 1.35), a regular activity's wrapped in an ActivityError: accept both."""
    cause = error.cause if isinstance(error, ActivityError) else error
    return isinstance(cause, ApplicationError) and cause.type == CONCURRENCY_ERROR


def _own_events(stream: list[Event], command: cmd.Command) -> list[Event]:
    """The events this command produced, found in a stream by their ids (uuid5(command id, i))."""
    by_id = {e.event_id: e for e in stream}
    found: list[Event] = []
    while (event := by_id.get(uuid5(command.command_id, str(len(found))))) is not None:
        found.append(event)
    return found


@workflow.defn(name=WORKFLOW_NAME)
class CollectionCaseWorkflow:
    def __init__(self) -> None:
        self._state: CaseState | None = None
        self._input: CaseInput | None = None
        self._lock = asyncio.Lock()
        self._ready = False  # the opening (or resuming) command is durable
        self._outcomes: dict[int, NoticeResult] = {}  # delivery results sent by the mailbox
        self._live: bool | None = None  # LIVENESS_PATCH, asked once per run
        self._add_up: bool | None = None  # REDUCTIONS_ADD_UP_PATCH, asked once per run
        self._write_offs_add_up: bool | None = None  # WRITE_OFFS_ADD_UP_PATCH, asked once per run
        self._below_paid: bool | None = None  # AMENDED_BELOW_PAID_PATCH, asked once per run
        self._before_case: bool | None = None  # PAID_BEFORE_CASE_PATCH, asked once per run
        self._credit_applied: bool | None = None  # CREDIT_APPLIED_PATCH, asked once per run
        self._paid_outside: bool | None = None  # PAID_OUTSIDE_PATCH, asked once per run
        self._customer_day: bool | None = None  # PROMISE_IN_CUSTOMER_DAY_PATCH, asked once per run
        self._all_reductions: bool | None = None  # ALL_REDUCTIONS_ADD_UP_PATCH, asked once per run

    # -- main loop -------------------------------------------------------------------------
    @workflow.run
    async def run(self, start: CaseInput) -> CaseResult:
        self._input = start
        self._rules()  # asks the rules' patches before the first decision of this run
        facts = start.state.customer if start.state else start.open.invoice.customer if start.open else None
        if facts is not None:
            self._warm_calendar(facts.country)
        self._state = start.state or await self._load_or_open(start)
        self._warm_calendar(self._state.customer.country)
        if start.resume_with is not None:
            await self._run(start.resume_with)
        self._ready = True
        refused = 0  # steps refused in a row
        while not self._state.closed:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(  # the current input: a migrated policy stays migrated
                    self._input.model_copy(update={"state": self._state, "open": None, "resume_with": None})
                )
            try:
                await self._step()
                refused = 0
            except ActivityError as error:
                if not _concurrency_conflict(error):
                    raise
                # Another writer got there first; _append reloaded the stream: decide again.
                workflow.logger.warning("case %s changed under another writer; reloaded", start.case_id)
            except (ApplicationError, DomainError) as error:
                # Reconciled with the store (RECONCILE_PATCH): the state is the store's; decide again.
                if isinstance(error, ApplicationError) and error.type != BUSY:
                    raise
                workflow.logger.warning("case %s: %s; deciding again", start.case_id, error)
                refused += 1
                if refused > 1 and workflow.patched(REFUSED_STEP_PATCH):
                    await self._wait_after_refusals(refused)
        if factor_notice_due(self._state) is not None:
            # A write-off of a case assigned with recourse (new with factoring: no history before it has
            # one) closed it: the factor still hears of the default.
            await self._notify_factor()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseResult(case_id=self._state.case_id, outcome=self._state.outcome, version=self._state.version)

    def _rules(self):
        """The policy this run decides with: the pinned (or migrated) one, as it was decided
        before LIVENESS_PATCH, REDUCTIONS_ADD_UP_PATCH, WRITE_OFFS_ADD_UP_PATCH and
        AMENDED_BELOW_PAID_PATCH, PROMISE_IN_CUSTOMER_DAY_PATCH, ALL_REDUCTIONS_ADD_UP_PATCH,
        PAID_BEFORE_CASE_PATCH, CREDIT_APPLIED_PATCH and PAID_OUTSIDE_PATCH for runs recorded
        before them."""
        if self._live is None:
            self._live = workflow.patched(LIVENESS_PATCH)
            self._add_up = workflow.patched(REDUCTIONS_ADD_UP_PATCH)
            self._write_offs_add_up = workflow.patched(WRITE_OFFS_ADD_UP_PATCH)
            self._below_paid = workflow.patched(AMENDED_BELOW_PAID_PATCH)
            self._customer_day = workflow.patched(PROMISE_IN_CUSTOMER_DAY_PATCH)
            self._all_reductions = workflow.patched(ALL_REDUCTIONS_ADD_UP_PATCH)
            self._before_case = workflow.patched(PAID_BEFORE_CASE_PATCH)
            self._credit_applied = workflow.patched(CREDIT_APPLIED_PATCH)
            self._paid_outside = workflow.patched(PAID_OUTSIDE_PATCH)
        policy = self._input.policy if self._live else self._input.policy.before_liveness()
        policy = policy if self._add_up else policy.before_reductions_add_up()
        policy = policy if self._write_offs_add_up else policy.before_write_offs_add_up()
        policy = policy if self._customer_day else policy.before_promise_in_customer_day()
        policy = policy if self._all_reductions else policy.before_reductions_add_up_for_authority()
        policy = policy if self._before_case else policy.before_amended_below_paid_before_case()
        policy = policy if self._credit_applied else policy.before_amended_below_credit_applied()
        policy = policy if self._paid_outside else policy.before_amended_below_paid_outside()
        return policy if self._below_paid else policy.before_amended_below_paid()

    @staticmethod
    def _warm_calendar(country: str) -> None:
        with workflow.unsafe.sandbox_unrestricted():
            warm_calendar(country)

    async def _load_or_open(self, start: CaseInput) -> CaseState:
        if start.open is not None and workflow.patched(OPEN_WITHOUT_LOAD_PATCH):
            return await self._open(start)
        loaded = await workflow.execute_local_activity(
            LOAD_CASE, start.case_id, result_type=LoadCaseReply,
            start_to_close_timeout=APPEND_TIMEOUT, retry_policy=STORE_RETRY,
        )
        state = fold(loaded.events)
        if state is not None:
            return state  # restarted for a case that already exists
        if start.open is None:
            raise ApplicationError(f"case {start.case_id} has no events and no opening command", non_retryable=True)
        events = decide(None, start.open, workflow.now(), start.policy)
        try:
            await self._append(start.case_id, 0, events, start.open)
        except ApplicationError as error:
            if not _concurrency_conflict(error) or not workflow.patched(RECONCILE_PATCH):
                raise
            # Opened by a workflow task that was lost before it completed: the store has it.
            state = fold(await self._load())
            if state is None:
                raise
            return state
        return fold(events)

    async def _open(self, start: CaseInput) -> CaseState:
        """Append the opening at version 0 straight away; the store says whether the case was new.
        A conflict (the stream has other events) or an append found already recorded (the same
        opening, perhaps followed by more) means the case exists: its state is the store's."""
        events = decide(None, start.open, workflow.now(), start.policy)
        try:
            reply = await self._append(start.case_id, 0, events, start.open)
        except (ActivityError, ApplicationError) as error:
            if not _concurrency_conflict(error):
                raise
            reply = None
        if reply is None or reply.already_appended:
            state = fold(await self._load())
            if state is None:
                raise ApplicationError(f"case {start.case_id} could not be opened or loaded", non_retryable=True)
            return state
        return fold(events)

    async def _wait_after_refusals(self, refused: int) -> None:
        """Wait before deciding again (a person's command, such as moving the case to a mended
        policy, ends the wait): one minute after the second refusal, doubling up to an hour."""
        first, longest = REFUSED_STEP_WAIT
        wait = min(first * 2 ** min(refused - 2, 16), longest)
        seen = self._state.version
        workflow.logger.error("case %s: its next step was refused %d times in a row; waiting %s",
                              self._state.case_id, refused, wait)
        try:
            await workflow.wait_condition(lambda: self._state.version != seen, timeout=wait,
                                          timeout_summary="a refused step")
        except asyncio.TimeoutError:
            pass

    async def _step(self) -> None:
        state = self._state
        action = next_action(state, self._input.policy)
        seen = state.version
        if action is None:  # waiting only for people
            await workflow.wait_condition(lambda: self._state.version != seen)
            return
        delay = action.at - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: self._state.version != seen, timeout=delay, timeout_summary=action.label
                )
            except asyncio.TimeoutError:
                pass
            return
        if action.kind == "remind":
            await self._send_reminder()
        elif action.kind == "notify_factor":
            await self._notify_factor()  # only cases assigned to a factor (new with factoring) take this path
        elif action.kind == "notify_insurer":
            # Only insured cases (new in this version) take this path: no history before it has one.
            await self._notify_insurer()
        elif not await self._run(cmd.Tick(command_id=workflow.uuid4(), actor=SYSTEM_ACTOR)):
            # A due deadline that changes nothing would spin; wait instead.
            workflow.logger.warning("deadline %s at %s changed nothing", action.label, action.at)
            try:
                await workflow.wait_condition(lambda: self._state.version != seen, timeout=IDLE_GUARD)
            except asyncio.TimeoutError:
                pass

    async def _send_reminder(self) -> None:
        state = self._state
        notice = notice_due(state, self._input.policy, on=workflow.now().date())
        # None for every case before factoring and discount offers (no assignment, no [discounts] in its policy)
        offer = discount_offer(state, self._input.policy, notice, workflow.now())
        request = NoticeRequest(
            case_id=state.case_id, seq=notice.seq, level=notice.level, step=notice.step, final=notice.final,
            invoice_id=state.invoice_id, customer=state.customer, amount_due=notice.amount_due,
            balance=state.balance, fee=notice.fee, due_date=state.due_date, issue_date=state.issue_date,
            interest=notice.interest, issued_on=workflow.now().date(), advance=state.advance,
            factor=state.factor_instructions, discount=offer, respond_within=notice.respond_within,
        )
        # A deposit request's notice (a case of kind advance, new in issue 16: no history before it
        # has one) is a message of its own, never batched with the customer's invoices.
        batched = self._input.policy.notices.one_message_per_customer and state.advance is None
        # Cases started before per-customer mailboxes existed keep sending directly on replay.
        if batched and workflow.patched("one-message-per-customer"):
            result = await self._through_mailbox(request)
        else:
            result = await self._send_directly(request)
        withdrawn = str(state.case_id) in result.withdrawn  # the case closed before it went out
        await self._run(
            cmd.RecordReminder(
                command_id=workflow.uuid4(), actor=SYSTEM_ACTOR, seq=notice.seq, level=notice.level,
                message_id=result.message_id, recipient=result.recipient, delivered=result.delivered and not withdrawn,
                permanent=result.permanent, error=result.error if not withdrawn else "the case closed before it was sent",
                fee=None if withdrawn else notice.fee, withdrawn=withdrawn,
                interest=None if withdrawn else notice.interest,
                letter_sha256=result.letters.get(str(state.case_id)),
                letter=self._letter(request, result),
                discount=None if withdrawn or not result.delivered else offer,
            )
        )

    @staticmethod
    def _letter(request: NoticeRequest, result: NoticeResult) -> dict | None:
        """What ``case letter`` renders the attached PDF letter again from: the request, and the customer's
        credit the letter stated (only when it stated some: letters without it read as before)."""
        if str(request.case_id) not in result.letters:
            return None
        credit = {"credit": [c.model_dump(mode="json") for c in result.credit]} if result.credit else {}
        return {**request.model_dump(mode="json"), **credit}

    async def _notify_factor(self) -> None:
        state = self._state
        f = state.financing
        request = FactorNoticeRequest(
            case_id=state.case_id, invoice_id=state.invoice_id, customer=state.customer,
            assignment_id=f.assignment_id, factor_name=f.account_name, factor_email=f.factor_email,
            assigned=f.assigned, trigger=f.default_reported, amount=f.default_amount or state.balance,
            due_date=state.due_date, issue_date=state.issue_date,
        )
        await self._mail(NOTIFY_FACTOR, request, cmd.RecordFactorNotice, f"<unsent-factor-{state.case_id}>",
                         f.factor_email)

    async def _notify_insurer(self) -> None:
        state = self._state
        ins = state.insurance
        request = InsurerNoticeRequest(
            case_id=state.case_id, invoice_id=state.invoice_id, customer=state.customer,
            insurer_name=ins.insurer_name, insurer_email=ins.insurer_email, policy_number=ins.policy_number,
            amount_due=state.balance, original_amount=state.original_amount, due_date=state.due_date,
            issue_date=state.issue_date, notify_by=ins.notify_by.date(),
        )
        await self._mail(NOTIFY_INSURER, request, cmd.RecordInsurerNotice,
                         f"<unsent-insurer-{state.case_id}-{ins.notice_attempts}>", ins.insurer_email)

    async def _mail(self, activity: str, request, record: type[cmd.Command], unsent_id: str, recipient: str) -> None:
        """Send one e-mail (to an insurer, a factor) by its activity and record its outcome."""
        try:
            result = await workflow.execute_activity(
                activity, request, result_type=NoticeResult,
                start_to_close_timeout=SMTP_TIMEOUT, heartbeat_timeout=SMTP_HEARTBEAT,
                schedule_to_close_timeout=self._input.policy.notices.smtp_give_up_after,
                retry_policy=SMTP_RETRY,
            )
        except ActivityError as error:
            result = NoticeResult(message_id=unsent_id, recipient=recipient, delivered=False,
                                  error=f"gave up: {error.cause or error}")
        await self._run(
            record(
                command_id=workflow.uuid4(), actor=SYSTEM_ACTOR, message_id=result.message_id,
                recipient=result.recipient, delivered=result.delivered, error=result.error,
            )
        )

    async def _send_directly(self, request: NoticeRequest) -> NoticeResult:
        try:
            return await workflow.execute_activity(
                SEND_NOTICE, request, result_type=NoticeResult,
                start_to_close_timeout=SMTP_TIMEOUT, heartbeat_timeout=SMTP_HEARTBEAT,
                schedule_to_close_timeout=self._input.policy.notices.smtp_give_up_after,
                retry_policy=SMTP_RETRY,
            )
        except ActivityError as error:
            return self._unsent(request, f"gave up: {error.cause or error}")

    async def _through_mailbox(self, request: NoticeRequest) -> NoticeResult:
        """Hand the notice to the customer's mailbox and wait for the shared delivery."""
        notices = self._input.policy.notices
        customer = request.customer.customer_id
        enqueue = EnqueueRequest(
            mailbox_id=mailbox_workflow_id(customer, self._input.id_prefix),
            task_queue=workflow.info().task_queue,
            start=MailboxInput(customer_id=customer, gather=notices.gather_window,
                               give_up_after=notices.smtp_give_up_after),
            queued=QueuedNotice(notice=request, reply_to=workflow.info().workflow_id),
        )
        await workflow.execute_activity(ENQUEUE_NOTICE, enqueue, start_to_close_timeout=timedelta(seconds=30),
                                        retry_policy=STORE_RETRY)
        try:
            await workflow.wait_condition(lambda: request.seq in self._outcomes,
                                          timeout=notices.gather_window + notices.smtp_give_up_after + IDLE_GUARD)
        except asyncio.TimeoutError:
            return self._unsent(request, "the customer's mailbox did not answer")
        return self._outcomes.pop(request.seq)

    @staticmethod
    def _unsent(request: NoticeRequest, why: str) -> NoticeResult:
        return NoticeResult(message_id=f"<unsent-{request.case_id}-n{request.seq}>",
                            recipient=request.customer.email, delivered=False, permanent=False, error=why)

    @workflow.signal(name=NOTICE_OUTCOME_SIGNAL)
    def notice_outcome(self, outcome: NoticeOutcome) -> None:
        self._outcomes[outcome.seq] = outcome.result

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = self._input.continue_as_new_after
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() > limit)

    # -- deciding and appending ------------------------------------------------------------
    async def _run(self, command: cmd.Command) -> list[Event]:
        """Decide on the current state and append, one command at a time.

        On a conflict the stream is reloaded (the store is the judge): when this command's
        events are already there (appended by a workflow task that was lost), they are its
        result; otherwise the command is decided again on the store's state and appended
        there. Only a command whose events are durable returns them."""
        async with self._lock:
            events = decide(self._state, command, workflow.now(), self._rules())
            if not events:
                return events
            for attempt in range(RECONCILE_ATTEMPTS):
                try:
                    await self._append(self._state.case_id, self._state.version, events, command)
                except (ActivityError, ApplicationError) as error:
                    if not _concurrency_conflict(error) or not workflow.patched(RECONCILE_PATCH):
                        raise
                    stream = await self._load()
                    self._state = fold(stream)
                    if mine := _own_events(stream, command):
                        workflow.logger.info("case %s: command %s was already recorded", self._state.case_id,
                                             command.command_id)
                        return mine
                    workflow.logger.warning("case %s changed under this workflow (attempt %d); deciding again",
                                            self._state.case_id, attempt + 1)
                    events = decide(self._state, command, workflow.now(), self._rules())
                    if not events:
                        return events
                    continue
                self._state = fold(events, self._state)
                return events
            raise ApplicationError(f"case {self._state.case_id} kept changing while this command was recorded; "
                                   "nothing was applied, try again", type=BUSY, non_retryable=True)

    async def _append(self, case_id: UUID, expected: int, events: list[Event], command: cmd.Command) -> AppendReply:
        request = AppendRequest(
            case_id=case_id, expected_version=expected, events=events,
            metadata={"command_id": str(command.command_id), "command": command.kind,
                      "actor": command.actor.name, "workflow_id": workflow.info().workflow_id},
        )
        try:
            return await workflow.execute_local_activity(
                APPEND_EVENTS, request, result_type=AppendReply,
                start_to_close_timeout=APPEND_TIMEOUT, retry_policy=STORE_RETRY,
            )
        except ActivityError as error:
            # Never taken by a local activity (its failure is not wrapped; see _concurrency_conflict):
            # kept as it was for histories recorded before RECONCILE_PATCH.
            if _concurrency_conflict(error) and expected > 0:
                await self._reload()
            raise

    async def _load(self) -> list[Event]:
        loaded = await workflow.execute_local_activity(
            LOAD_CASE, self._input.case_id, result_type=LoadCaseReply,
            start_to_close_timeout=APPEND_TIMEOUT, retry_policy=STORE_RETRY,
        )
        return loaded.events

    async def _reload(self) -> None:
        self._state = fold(await self._load())

    async def _command(self, command: cmd.Command) -> CommandReply:
        try:
            events = await self._run(command)
        except DomainError as error:  # the state changed between validation and handling
            raise ApplicationError(str(error), error.field, type="DomainError", non_retryable=True) from None
        except ActivityError as error:
            raise ApplicationError(f"could not record the command: {error.cause or error}", type="StoreError") from None
        except ApplicationError as error:
            if error.type == BUSY or (_concurrency_conflict(error) and workflow.patched(RECONCILE_PATCH)):
                raise ApplicationError(error.message, type=BUSY, non_retryable=True) from None
            raise
        if not events and not isinstance(command, cmd.Tick) and workflow.patched(RECONCILE_PATCH):
            # A repeat (same id, same content): answer with the events the command recorded.
            events = _own_events(await self._load(), command)
        return reply_for(self._state, events)

    def _validate(self, command: cmd.Command) -> None:
        if self._state is None:
            raise ApplicationError("the case is still being opened; try again in a moment", type="NotReady")
        try:
            decide(self._state, command, workflow.now(), self._input.policy)
        except DomainError as error:
            raise ApplicationError(str(error), error.field, type="DomainError", non_retryable=True) from None

    # -- queries and updates ---------------------------------------------------------------
    @workflow.query
    def state(self) -> CaseState | None:
        return self._state

    @workflow.query
    def running_policy(self) -> str | None:
        """The policy version this run decides with (pinned, or migrated to)."""
        return self._input.policy.version if self._input else None

    @workflow.update
    async def opened(self) -> CommandReply:
        """Returns once the case's first events are durable (used right after start)."""
        await workflow.wait_condition(lambda: self._ready)
        return reply_for(self._state, [])

    @workflow.update
    async def pay(self, command: cmd.RecordPayment) -> CommandReply:
        return await self._command(command)

    @pay.validator
    def _check_pay(self, command: cmd.RecordPayment) -> None:
        self._validate(command)

    @workflow.update
    async def reverse_payment(self, command: cmd.ReversePayment) -> CommandReply:
        return await self._command(command)

    @reverse_payment.validator
    def _check_reverse_payment(self, command: cmd.ReversePayment) -> None:
        self._validate(command)

    @workflow.update
    async def report_payment(self, command: cmd.ReportPayment) -> CommandReply:
        return await self._command(command)

    @report_payment.validator
    def _check_report_payment(self, command: cmd.ReportPayment) -> None:
        self._validate(command)

    @workflow.update
    async def correct_contact(self, command: cmd.CorrectContact) -> CommandReply:
        return await self._command(command)

    @correct_contact.validator
    def _check_correct_contact(self, command: cmd.CorrectContact) -> None:
        self._validate(command)

    @workflow.update
    async def open_dispute(self, command: cmd.OpenDispute) -> CommandReply:
        return await self._command(command)

    @open_dispute.validator
    def _check_open_dispute(self, command: cmd.OpenDispute) -> None:
        self._validate(command)

    @workflow.update
    async def resolve_dispute(self, command: cmd.ResolveDispute) -> CommandReply:
        return await self._command(command)

    @resolve_dispute.validator
    def _check_resolve_dispute(self, command: cmd.ResolveDispute) -> None:
        self._validate(command)

    @workflow.update
    async def promise(self, command: cmd.MakePromise) -> CommandReply:
        return await self._command(command)

    @promise.validator
    def _check_promise(self, command: cmd.MakePromise) -> None:
        self._validate(command)

    @workflow.update
    async def propose_plan(self, command: cmd.ProposePlan) -> CommandReply:
        return await self._command(command)

    @propose_plan.validator
    def _check_propose_plan(self, command: cmd.ProposePlan) -> None:
        self._validate(command)

    @workflow.update
    async def accept_plan(self, command: cmd.AcceptPlan) -> CommandReply:
        return await self._command(command)

    @accept_plan.validator
    def _check_accept_plan(self, command: cmd.AcceptPlan) -> None:
        self._validate(command)

    @workflow.update
    async def withdraw_plan(self, command: cmd.WithdrawPlan) -> CommandReply:
        return await self._command(command)

    @withdraw_plan.validator
    def _check_withdraw_plan(self, command: cmd.WithdrawPlan) -> None:
        self._validate(command)

    @workflow.update
    async def pause(self, command: cmd.PauseDunning) -> CommandReply:
        return await self._command(command)

    @pause.validator
    def _check_pause(self, command: cmd.PauseDunning) -> None:
        self._validate(command)

    @workflow.update
    async def resume(self, command: cmd.ResumeDunning) -> CommandReply:
        return await self._command(command)

    @resume.validator
    def _check_resume(self, command: cmd.ResumeDunning) -> None:
        self._validate(command)

    @workflow.update
    async def decide_escalation(self, command: cmd.DecideEscalation) -> CommandReply:
        return await self._command(command)

    @decide_escalation.validator
    def _check_decide_escalation(self, command: cmd.DecideEscalation) -> None:
        self._validate(command)

    @workflow.update
    async def request_write_off(self, command: cmd.RequestWriteOff) -> CommandReply:
        return await self._command(command)

    @request_write_off.validator
    def _check_request_write_off(self, command: cmd.RequestWriteOff) -> None:
        self._validate(command)

    @workflow.update
    async def decide_approval(self, command: cmd.DecideApproval) -> CommandReply:
        return await self._command(command)

    @decide_approval.validator
    def _check_decide_approval(self, command: cmd.DecideApproval) -> None:
        self._validate(command)

    @workflow.update
    async def migrate_policy(self, command: cmd.MigratePolicy) -> CommandReply:
        reply = await self._command(command)
        self._input = self._input.model_copy(update={"policy": command.policy})
        return reply

    @migrate_policy.validator
    def _check_migrate_policy(self, command: cmd.MigratePolicy) -> None:
        self._validate(command)

    @workflow.update
    async def assign(self, command: cmd.AssignCase) -> CommandReply:
        return await self._command(command)

    @assign.validator
    def _check_assign(self, command: cmd.AssignCase) -> None:
        self._validate(command)

    @workflow.update
    async def apply_credit(self, command: cmd.ApplyCustomerCredit) -> CommandReply:
        return await self._command(command)

    @apply_credit.validator
    def _check_apply_credit(self, command: cmd.ApplyCustomerCredit) -> None:
        self._validate(command)

    @workflow.update
    async def record_indemnity(self, command: cmd.RecordIndemnity) -> CommandReply:
        return await self._command(command)

    @record_indemnity.validator
    def _check_record_indemnity(self, command: cmd.RecordIndemnity) -> None:
        self._validate(command)

    @workflow.update
    async def waive_interest(self, command: cmd.WaiveInterest) -> CommandReply:
        return await self._command(command)

    @waive_interest.validator
    def _check_waive_interest(self, command: cmd.WaiveInterest) -> None:
        self._validate(command)

    @workflow.update
    async def cancel(self, command: cmd.CancelCase) -> CommandReply:
        return await self._command(command)

    @cancel.validator
    def _check_cancel(self, command: cmd.CancelCase) -> None:
        self._validate(command)

    @workflow.update
    async def erp_sync(self, command: cmd.SyncInvoice) -> CommandReply:
        """The ERP's view of the invoice (an import row): each difference becomes an event."""
        return await self._command(command)

    @erp_sync.validator
    def _check_erp_sync(self, command: cmd.SyncInvoice) -> None:
        self._validate(command)

    @workflow.update
    async def assign_to_factor(self, command: cmd.AssignToFactor) -> CommandReply:
        return await self._command(command)

    @assign_to_factor.validator
    def _check_assign_to_factor(self, command: cmd.AssignToFactor) -> None:
        self._validate(command)

    @workflow.update
    async def factor_outcome(self, command: cmd.RecordFactorOutcome) -> CommandReply:
        return await self._command(command)

    @factor_outcome.validator
    def _check_factor_outcome(self, command: cmd.RecordFactorOutcome) -> None:
        self._validate(command)
