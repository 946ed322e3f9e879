"""Running the daily sweep now, and scheduling it every day (a Temporal Schedule)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from datetime import timezone as dt_timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.context import Context
from app.waiting import await_workflow
from domain.errors import DomainError, shown
from domain.inputs import check_sweep_day
from domain.users import Actor
from store.ledger import SweepReads
from workflows.sweep import SWEEP_WORKFLOW, SweepInput, SweepProgress

DEFAULT_CRON = "0 6 * * *"
RECORDING_POLL = 0.5  # seconds between two counts of the openings recorded


def summary(progress: SweepProgress) -> dict:
    plan = progress.plan
    return {
        "as_of": plan.as_of.isoformat(),
        "overdue_cutoff": plan.cutoff.isoformat(),
        "policy_version": plan.policy_version,
        "invoices_scanned": plan.scanned,
        "cases_opened": progress.opened,
        "already_open": progress.already_open,
        "skipped": {"not_yet_overdue": plan.not_due, "paid": plan.paid, "failed": len(progress.failed)},
        "failures": progress.failed,
        "done": progress.done,
        "internal_notifications_sent": progress.notified,
    }


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(f"{shown(name)} is not an IANA time zone such as Asia/Shanghai", "timezone") from None
    return name


async def run_sweep(ctx: Context, as_of: date | None, on_progress: Callable[[SweepProgress], None] | None = None,
                    page_size: int = 500, timezone: str = "UTC",
                    on_recording: Callable[[int, int], None] | None = None) -> dict:
    """Run the sweep now; without ``as_of`` it sweeps for today in ``timezone``. It returns once
    the cases it opened have recorded their opening (``openings_recorded``)."""
    policy = ctx.policy()  # a broken policy file is reported here, not inside the workflow
    check_sweep_day(as_of, datetime.now(dt_timezone.utc), policy.inputs)
    client = await ctx.client()
    settings = ctx.settings
    label = as_of.isoformat() if as_of else "today"
    handle = await client.start_workflow(
        SWEEP_WORKFLOW, SweepInput(as_of=as_of, timezone=_zone(timezone), page_size=page_size),
        id=f"{settings.workflow_id_prefix}sweep-{label}-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue,
        result_type=SweepProgress,
    )
    # No overall deadline (a large ledger takes minutes), but a sweep whose workflow task
    # fails is reported at once instead of waited on forever.
    result = asyncio.ensure_future(
        await_workflow(client, handle.id, handle.result(), timeout=None, task_queue=settings.task_queue,
                       unattended_after=settings.command_timeout)
    )
    while not result.done():
        await asyncio.wait({result}, timeout=0.5)
        if on_progress and not result.done():
            try:
                progress = await asyncio.wait_for(handle.query("progress", result_type=SweepProgress | None), 2)
            except Exception:  # between runs of continue-as-new, or a busy worker
                continue
            if progress is not None:
                on_progress(progress)
    final = result.result()
    if on_progress:
        on_progress(final)
    started = final.plan.started_at
    left = await openings_recorded(ctx, started, final.opened, on_recording) if started is not None else 0
    return {**summary(final), "openings_not_yet_recorded": left}


async def openings_recorded(ctx: Context, since: datetime, opened: int,
                            on_recording: Callable[[int, int], None] | None = None) -> int:
    """Wait until the ``opened`` cases a sweep started at ``since`` have recorded their opening.

    The sweep's workflow is done once its cases are started; each case records its opening when
    the worker runs its first task, up to minutes later after a large sweep. Whoever ran the
    sweep then lists the cases, so the command waits while the count grows, and gives up once
    it has not grown for COLLECTIONS_COMMAND_TIMEOUT seconds (a stopped worker). Cases opened
    meanwhile by anything else count too: the count is a floor, never a wait for nothing.
    Returns how many had not recorded their opening (0 normally)."""
    reads = SweepReads(ctx.db)
    loop = asyncio.get_running_loop()
    recorded, last_change = -1, loop.time()
    while True:
        count = await asyncio.to_thread(reads.cases_opened_since, since)
        if count != recorded:
            recorded, last_change = count, loop.time()
            if on_recording:
                on_recording(min(recorded, opened), opened)
        if recorded >= opened:
            return 0
        if loop.time() - last_change > ctx.settings.command_timeout:
            return opened - recorded
        await asyncio.sleep(RECORDING_POLL)


async def create_schedule(ctx: Context, cron: str, timezone: str, actor: Actor | None = None,
                          reason: str | None = None) -> dict:
    """Create or update the daily sweep's Schedule, then record ``ScheduleCreated`` (who, when,
    why: the schedule lives in Temporal, so the event follows the change, not in its transaction)."""
    from app.adminlog import default_actor, record
    from domain import admin

    reason = admin.check_reason(reason, required=False, default="daily sweep schedule")
    from temporalio.client import (
        Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, SchedulePolicy, ScheduleSpec,
        ScheduleUpdate,
    )
    from temporalio.client import ScheduleOverlapPolicy
    from temporalio.service import RPCError, RPCStatusCode

    _zone(timezone)
    if len(cron.split()) != 5:
        raise DomainError(f"{shown(cron)} is not a five-field cron expression such as '0 6 * * *'", "cron")
    settings = ctx.settings
    client = await ctx.client()
    schedule_id = f"{settings.workflow_id_prefix}daily-sweep"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_WORKFLOW, SweepInput(timezone=timezone),
            id=f"{settings.workflow_id_prefix}scheduled-sweep", task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    created = True
    try:
        handle = await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        created = False
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise DomainError(error.message, "cron") from None
        raise
    described = await handle.describe()
    record(ctx, "schedule", schedule_id, admin.ScheduleCreated, actor or default_actor(ctx), reason,
           f"schedule {schedule_id}", schedule_id=schedule_id, cron=cron, timezone=timezone, created=created)
    return {
        "schedule_id": schedule_id,
        "created": created,
        "cron": cron,
        "timezone": timezone,
        "next_runs": [t.isoformat() for t in described.info.next_action_times[:3]],
    }
