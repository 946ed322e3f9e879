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
from domain.inputs import check_sweep_cadence, check_sweep_day
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


def _schedule_id(ctx: Context) -> str:
    return f"{ctx.settings.workflow_id_prefix}daily-sweep"


def _spec(cron: str, timezone: str):
    from temporalio.client import ScheduleSpec

    _zone(timezone)
    if len(cron.split()) != 5:
        raise DomainError(f"{shown(cron)} is not a five-field cron expression such as '0 6 * * *'", "cron")
    return ScheduleSpec(cron_expressions=[cron], time_zone_name=timezone)


async def _next_runs(client, spec, task_queue: str) -> list[datetime]:
    """When ``spec`` fires, as Temporal reads it: a paused probe schedule is created, described
    and deleted, so a cron Temporal refuses or one that never fires changes nothing."""
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleState
    from temporalio.service import RPCError, RPCStatusCode

    probe_id = f"cron-check-{uuid.uuid4().hex}"
    action = ScheduleActionStartWorkflow(SWEEP_WORKFLOW, SweepInput(), id=probe_id, task_queue=task_queue)
    try:
        handle = await client.create_schedule(probe_id, Schedule(action=action, spec=spec,
                                                                  state=ScheduleState(paused=True)))
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise DomainError(error.message, "cron") from None
        raise
    try:
        return list((await handle.describe()).info.next_action_times)
    finally:
        await handle.delete()


async def create_schedule(ctx: Context, cron: str, timezone: str, actor: Actor | None = None,
                          reason: str | None = None) -> dict:
    """Create or update the daily sweep's Schedule, then record ``ScheduleCreated`` (who, when,
    why: the schedule lives in Temporal, so the event follows the change, not in its transaction).
    A cron that never fires (``0 0 31 2 *``) is refused: the sweep would silently never run."""
    from app.adminlog import default_actor, record
    from domain import admin

    reason = admin.check_reason(reason, required=False, default="daily sweep schedule")
    from temporalio.client import (
        Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, SchedulePolicy, ScheduleUpdate,
    )
    from temporalio.client import ScheduleOverlapPolicy

    spec = _spec(cron, timezone)
    settings = ctx.settings
    client = await ctx.client()
    runs = await _next_runs(client, spec, settings.task_queue)
    if not runs:
        raise DomainError(f"{shown(cron)} never fires (no such day in {timezone}); the sweep would never run", "cron")
    check_sweep_cadence(cron, runs)
    schedule_id = _schedule_id(ctx)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_WORKFLOW, SweepInput(timezone=timezone),
            id=f"{settings.workflow_id_prefix}scheduled-sweep", task_queue=settings.task_queue,
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    created = True
    try:
        handle = await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        created = False
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


async def show_schedule(ctx: Context) -> dict:
    """The daily sweep's Schedule as Temporal runs it: when, its next and latest runs."""
    from temporalio.service import RPCError, RPCStatusCode

    schedule_id = _schedule_id(ctx)
    handle = (await ctx.client()).get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return {"schedule_id": schedule_id, "exists": False}
        raise
    from domain import admin

    spec, info = described.schedule.spec, described.info
    # Temporal keeps a cron as calendar specs: the expression is the one recorded when it was set
    set_by = ctx.store.load_types(admin.admin_stream_id("schedule", schedule_id), ["ScheduleCreated"])
    return {
        "schedule_id": schedule_id, "exists": True,
        "cron": set_by[-1].cron if set_by else None, "timezone": spec.time_zone_name or "UTC",
        "set_by": set_by[-1].actor if set_by else None,
        "set_at": set_by[-1].occurred_at.isoformat() if set_by else None,
        "paused": described.schedule.state.paused,
        "next_runs": [t.isoformat() for t in info.next_action_times[:3]],
        "recent_runs": [{"scheduled_at": a.scheduled_at.isoformat(), "started_at": a.started_at.isoformat(),
                         "workflow_id": a.action.workflow_id, "run_id": a.action.first_execution_run_id}
                        for a in info.recent_actions[-5:]],
    }


async def delete_schedule(ctx: Context, actor: Actor | None = None, reason: str | None = None) -> dict:
    """Delete the daily sweep's Schedule (the sweep then runs only when started by hand), then
    record ``ScheduleDeleted``. Exit 2 when there is none: nothing to delete."""
    from temporalio.service import RPCError, RPCStatusCode

    from app.adminlog import default_actor, record
    from domain import admin

    reason = admin.check_reason(reason, required=True)
    schedule_id = _schedule_id(ctx)
    handle = (await ctx.client()).get_schedule_handle(schedule_id)
    try:
        await handle.delete()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise DomainError(f"there is no schedule {schedule_id} to delete", "schedule") from None
        raise
    record(ctx, "schedule", schedule_id, admin.ScheduleDeleted, actor or default_actor(ctx), reason,
           f"schedule {schedule_id}", schedule_id=schedule_id)
    return {"schedule_id": schedule_id, "deleted": True}
