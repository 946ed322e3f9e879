"""Liveness watchdog of a worker: notices a worker that has stopped taking workflow tasks
while its task queue has work waiting (the month-end stall, docs/PERFORMANCE.md).

The evidence is the server's: ``DescribeTaskQueue`` on the workflow task queue with its
backlog statistics, and on each of its partitions for its pollers (a server splits a queue
into partitions, four on the dev server; each poll lands on one of them, and the root alone
showed a worker draining a backlog as not polling for over 15 s). A live worker polls again
as soon as one of its workflow task slots is free, so while the queue has a backlog its
poller's last access time keeps moving, however busy it is. A worker whose slots are all held
by activations that never complete (what the stall looked like: every slot used, pollers 0,
thousands of tasks queued) polls no more; when the backlog has not been empty and this worker
has not polled for ``stall_after`` seconds, the worker is stalled.

Only the workflow task queue is watched: activity work is not what stalls, and the activity
pollers kept polling through every stall seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListTaskQueuePartitionsRequest
from temporalio.client import Client
from temporalio.service import RPCError

from app.waiting import POLLER_VIEW_LAG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueView:
    """One look at the workflow task queue, as the server sees it."""

    backlog: int  # approximate count of workflow tasks waiting
    backlog_age_s: float  # how long the oldest one has waited
    dispatch_rate: float  # tasks handed to pollers per second (any worker)
    last_poll: datetime | None  # when this worker's workflow poller last polled (None: not seen)

    def describe(self) -> str:
        polled = "never seen" if self.last_poll is None else self.last_poll.isoformat(timespec="seconds")
        return (f"backlog {self.backlog} workflow tasks, the oldest {self.backlog_age_s:.0f} s old, "
                f"dispatched {self.dispatch_rate:.1f}/s, this worker's workflow poller last polled {polled}")


async def look(client: Client, task_queue: str, identity: str | None) -> QueueView:
    """The workflow task queue as the server sees it; ``last_poll`` is ``identity``'s last poll
    on any of the queue's partitions (None: any worker's)."""
    reply = await _describe(client, task_queue, stats=True)
    others = await asyncio.gather(*(_describe(client, partition, stats=False)
                                    for partition in await _other_partitions(client, task_queue)))
    pollers = [p for view in (reply, *others) for p in view.pollers]
    mine = [p.last_access_time.ToDatetime(tzinfo=timezone.utc) for p in pollers
            if identity is None or p.identity == identity]
    stats = reply.stats
    return QueueView(backlog=stats.approximate_backlog_count, backlog_age_s=stats.approximate_backlog_age.ToTimedelta()
                     .total_seconds(), dispatch_rate=stats.tasks_dispatch_rate, last_poll=max(mine) if mine else None)


async def _describe(client: Client, task_queue: str, *, stats: bool):
    """One partition's view (statistics only from the root, which sums them up)."""
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                                 report_stats=stats, report_pollers=True),
        timeout=timedelta(seconds=10))


async def _other_partitions(client: Client, task_queue: str) -> list[str]:
    """The names of the workflow task queue's partitions other than its root (none when the
    server does not list them: a namespace's API key may not be allowed to)."""
    try:
        reply = await client.workflow_service.list_task_queue_partitions(
            ListTaskQueuePartitionsRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue)),
            timeout=timedelta(seconds=10))
    except RPCError as refused:
        log.debug("cannot list the partitions of %s (%s): the root's pollers only", task_queue, refused)
        return []
    return [p.key for p in reply.workflow_task_queue_partitions if p.key != task_queue]


@dataclass(frozen=True)
class Stall:
    since_s: float  # seconds without progress
    view: QueueView

    def __str__(self) -> str:
        return f"no workflow task taken for {self.since_s:.0f} s while the queue had work: {self.view.describe()}"


class LivenessWatchdog:
    """Call :meth:`watch`; it returns a :class:`Stall` once the worker has made no progress
    for ``stall_after`` seconds. Progress: the backlog was empty, or this worker polled since
    the previous look. A look that fails (server away) starts the clock again: the worker is
    judged only on what the server has shown for ``stall_after`` seconds in a row, and never for
    less than ``POLLER_VIEW_LAG``: the server shows polls late, and a shorter wait would take a
    healthy worker for a stalled one."""

    def __init__(self, client: Client, task_queue: str, identity: str, *, stall_after: float,
                 interval: float) -> None:
        self.client, self.task_queue, self.identity = client, task_queue, identity
        self.stall_after, self.interval = stall_after, interval

    async def watch(self) -> Stall:
        progress_at = time.monotonic()
        last_poll: datetime | None = None
        while True:
            await asyncio.sleep(self.interval)
            try:
                view = await look(self.client, self.task_queue, self.identity)
            except Exception as error:  # noqa: BLE001 - the server may be away; not a stall of ours
                log.warning("watchdog: cannot describe task queue %s: %s", self.task_queue, error)
                progress_at = time.monotonic()  # what is not seen is not judged: the clock starts again
                continue
            now = time.monotonic()
            polled = view.last_poll is not None and (last_poll is None or view.last_poll > last_poll)
            if view.backlog == 0 or polled:
                progress_at = now
            last_poll = view.last_poll or last_poll
            if now - progress_at >= max(self.stall_after, POLLER_VIEW_LAG):
                return Stall(since_s=now - progress_at, view=view)
