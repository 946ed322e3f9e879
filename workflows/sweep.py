"""The daily sweep: open a case for every overdue, unpaid invoice that has none.

One activity per page of invoices (not one per invoice) and continue-as-new
every few pages keep the history small however large the ledger. Running it
twice, or two at once, opens each case once: case workflow ids are unique.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        NOTIFY_TEAM, NotifyRequest, NotifyResult,
        SWEEP_ADVANCES, SWEEP_PAGE, SWEEP_PREPARE, SweepAdvancesRequest, SweepPageRequest, SweepPageResult, SweepPlan, SweepPrepareRequest,
    )

SWEEP_WORKFLOW = "DailySweep"
# Overdue advance requests are dunned as cases of kind advance (issue 16), once the invoices' pages
# are done; runs recorded before it replay without the step.
ADVANCE_CASES_PATCH = "advance-request-cases"


class SweepInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    as_of: date | None = None  # None: today in ``timezone`` (scheduled runs)
    timezone: str = "UTC"
    page_size: int = 500
    pages_per_run: int = 20
    progress: SweepProgress | None = None  # carried over by continue-as-new


class SweepProgress(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: SweepPlan
    cursor: str = ""
    opened: int = 0
    already_open: int = 0
    failed: dict[str, str] = {}
    done: bool = False
    notified: int | None = None  # internal e-mails sent after the cases were opened (None: not run)

    @property
    def processed(self) -> int:
        return self.opened + self.already_open + len(self.failed)

    def advanced(self, page: SweepPageResult) -> SweepProgress:
        failed = {**self.failed, **dict(list(page.failed.items())[: max(0, 100 - len(self.failed))])}
        return self.model_copy(update={
            "cursor": page.last or self.cursor,
            "opened": self.opened + page.opened,
            "already_open": self.already_open + page.already_open,
            "failed": failed,
        })


SweepInput.model_rebuild()


@workflow.defn(name=SWEEP_WORKFLOW)
class SweepWorkflow:
    def __init__(self) -> None:
        self._progress: SweepProgress | None = None

    @workflow.run
    async def run(self, sweep: SweepInput) -> SweepProgress:
        progress = sweep.progress
        if progress is None:
            prepare = SweepPrepareRequest(as_of=sweep.as_of, started_at=workflow.now(), timezone=sweep.timezone)
            plan = await workflow.execute_activity(
                SWEEP_PREPARE, prepare, result_type=SweepPlan, start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            progress = SweepProgress(plan=plan)
        self._progress = progress
        for _ in range(sweep.pages_per_run):
            page = await workflow.execute_activity(
                SWEEP_PAGE,
                SweepPageRequest(cutoff=progress.plan.cutoff, policy_version=progress.plan.policy_version,
                                 after=progress.cursor, limit=sweep.page_size),
                result_type=SweepPageResult,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            progress = progress.advanced(page)
            self._progress = progress
            if page.seen < sweep.page_size:
                if workflow.patched(ADVANCE_CASES_PATCH):
                    progress = progress.advanced(await self._advances(progress.plan))
                self._progress = progress.model_copy(update={"done": True})
                if workflow.patched("internal-notifications"):
                    self._progress = self._progress.model_copy(update={"notified": await self._notify(sweep)})
                return self._progress
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(sweep.model_copy(update={"progress": progress}))

    async def _advances(self, plan: SweepPlan) -> SweepPageResult:
        return await workflow.execute_activity(
            SWEEP_ADVANCES, SweepAdvancesRequest(cutoff=plan.cutoff, policy_version=plan.policy_version),
            result_type=SweepPageResult, start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=2), retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )

    async def _notify(self, sweep: SweepInput) -> int | None:
        """E-mail the team what waits for them (activities/internal_mail.py), once the cases are open.
        A failure here does not fail the sweep: the next run (or `notify run`) sends what is left."""
        try:
            result = await workflow.execute_activity(
                NOTIFY_TEAM, NotifyRequest(as_of=sweep.as_of, now=workflow.now()), result_type=NotifyResult,
                start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5),
            )
        except ActivityError as error:
            workflow.logger.warning("internal notifications failed: %s", error)
            return None
        return result.sent

    @workflow.query
    def progress(self) -> SweepProgress | None:
        return self._progress
