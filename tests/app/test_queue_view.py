"""The watchdog and the waiting commands judge a worker on its polls as the server shows them.
The server splits a task queue into partitions (four on the dev server) and each poll lands on
one of them: the root partition alone showed a worker draining a backlog as not polling for over
15 s, and CI reported a task waiting behind a busy worker as 'no worker'. ``look`` reads them all."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import ListTaskQueuePartitionsRequest, PollWorkflowTaskQueueRequest
from temporalio.service import RPCError, RPCStatusCode

from app.watchdog import look

POLLERS = 12  # each long poll lands on a partition at random: all 12 on the root is (1/4)^12


@asynccontextmanager
async def polls_held(client, queue: str, identities: list[str]):
    """One long poll on ``queue`` per identity (a name may repeat), held open while in the block;
    no task comes, so each waits on the partition it landed on."""
    polls = [asyncio.ensure_future(client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue), identity=identity),
        timeout=timedelta(seconds=70))) for identity in identities]
    try:
        yield
    finally:
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)


async def until_seen(client, queue: str, identities: list[str], timeout: float = 20.0) -> list[str]:
    """Those of ``identities`` whose poll ``look`` has not shown within ``timeout`` seconds (a
    loaded machine delivers a poll late)."""
    deadline = time.monotonic() + timeout
    while True:
        unseen = [identity for identity in identities if (await look(client, queue, identity)).last_poll is None]
        if not unseen or time.monotonic() > deadline:
            return unseen
        await asyncio.sleep(0.5)


async def test_every_worker_s_poll_is_seen_whichever_partition_it_lands_on(dev_env):
    client = dev_env.client
    queue = f"partitioned-{uuid.uuid4().hex[:6]}"
    partitions = await client.workflow_service.list_task_queue_partitions(
        ListTaskQueuePartitionsRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue)))
    assert len(partitions.workflow_task_queue_partitions) > 1, "the server does not split the queue: nothing to prove"
    identities = [f"poller-{i}" for i in range(POLLERS)]
    async with polls_held(client, queue, identities):
        unseen = await until_seen(client, queue, identities)
        assert unseen == [], f"polls the server holds but the view missed: {unseen}"
        assert (await look(client, queue, None)).last_poll is not None


async def test_a_server_that_does_not_list_partitions_still_shows_the_root_s_pollers(dev_env, monkeypatch):
    """Some namespaces refuse ListTaskQueuePartitions (an API key's permissions): the watchdog and
    the waiting commands then judge on the root partition, as they did before, instead of failing."""
    client = dev_env.client
    queue = f"unlisted-{uuid.uuid4().hex[:6]}"

    async def refused(*args, **kwargs):
        raise RPCError("Request unauthorized.", RPCStatusCode.PERMISSION_DENIED, b"")

    monkeypatch.setattr(client.workflow_service, "list_task_queue_partitions", refused)
    async with polls_held(client, queue, ["poller"] * 3 * POLLERS):
        assert await until_seen(client, queue, ["poller"]) == []  # none of 36 polls on the root: 0.75^36
        assert (await look(client, queue, "poller")).backlog == 0
