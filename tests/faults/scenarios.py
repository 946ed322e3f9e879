"""The fault scenarios: what breaks, when, and for how long.

Each injector waits until the wave has recorded a given share of its notices,
breaks one real component, brings it back, and says when it came back (recovery
is timed from there to the next progress the component allows).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from tests.faults.wave import Injector, Progress


def kill_worker_repeatedly(at: tuple[float, ...], down: float = 1.0) -> Injector:
    async def inject(stack, progress: Progress) -> None:
        for fraction in at:
            await progress.reach(fraction)
            victim = stack.live_workers()[0]
            fault = progress.fault("worker SIGKILL")
            await asyncio.to_thread(stack.kill_worker, victim)
            await asyncio.sleep(down)
            stack.start_worker()
            progress.restored(fault)

    return inject


def restart_temporal(at: float, down: float) -> Injector:
    async def inject(stack, progress: Progress) -> None:
        await progress.reach(at)
        fault = progress.fault("Temporal dev server SIGKILL")
        await asyncio.to_thread(stack.temporal.kill)
        await asyncio.sleep(down)
        await asyncio.to_thread(stack.temporal.start)
        progress.restored(fault)

    return inject


def smtp_outage(at: float, down: float) -> Injector:
    async def inject(stack, progress: Progress) -> None:
        await progress.reach(at)
        fault = progress.fault(f"smtp refusing connections {down:.0f}s")
        await asyncio.to_thread(stack.sink.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(stack.sink.start)
        progress.restored(fault)

    return inject


def restart_postgres(at: tuple[float, ...], down: float) -> Injector:
    async def inject(stack, progress: Progress) -> None:
        for fraction in at:
            await progress.reach(fraction)
            fault = progress.fault("PostgreSQL crash + restart")
            await asyncio.to_thread(stack.postgres.restart, down)
            progress.restored(fault)

    return inject


def kill_one_of_two(at: float) -> Injector:
    async def inject(stack, progress: Progress) -> None:
        await progress.reach(at)
        fault = progress.fault("1 of 2 workers SIGKILL")
        await asyncio.to_thread(stack.kill_worker, stack.live_workers()[0])
        progress.restored(fault)  # the other worker is already polling

    return inject


def kill_restart_then_kill_other(first: float, second: float) -> Injector:
    """Two workers: one is killed and restarted, later the other is killed for good."""

    async def inject(stack, progress: Progress) -> None:
        await progress.reach(first)
        victim = stack.live_workers()[0]
        fault = progress.fault("worker SIGKILL (1 of 2), restarted")
        await asyncio.to_thread(stack.kill_worker, victim)
        await asyncio.sleep(1.0)
        stack.start_worker()
        progress.restored(fault)
        await progress.reach(second)
        fault = progress.fault("the other worker SIGKILL")
        await asyncio.to_thread(stack.kill_worker, stack.live_workers()[0])
        progress.restored(fault)

    return inject


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    size: int
    injector: Callable[[], Injector | None]
    workers: int = 1
    rejected_every: int = 0  # every n-th customer's mailbox answers 550
    crash_duplicates_allowed: bool = False  # a crash may fall between SMTP acceptance and the delivery mark


FULL = 200
FULL_SCENARIOS = [
    Scenario("worker_sigkill", "worker killed (SIGKILL) 4x mid-wave, restarted", FULL,
             lambda: kill_worker_repeatedly((0.1, 0.3, 0.5, 0.7)), crash_duplicates_allowed=True),
    Scenario("temporal_restart", "Temporal dev server killed mid-wave, back after 5 s", FULL,
             lambda: restart_temporal(0.3, 5.0)),
    Scenario("smtp_outage", "SMTP refuses connections for 60 s", FULL, lambda: smtp_outage(0.2, 60.0)),
    Scenario("smtp_550", "one mailbox in ten answers 550", FULL, lambda: None, rejected_every=10),
    Scenario("postgres_restart", "PostgreSQL crashed (immediate) 2x mid-wave, back after 3 s", FULL,
             lambda: restart_postgres((0.3, 0.6), 3.0)),
    Scenario("two_workers", "two workers, one killed (SIGKILL) mid-wave", FULL,
             lambda: kill_one_of_two(0.4), workers=2, crash_duplicates_allowed=True),
]

REDUCED = 30
REDUCED_SCENARIOS = [
    Scenario("workers_sigkill", "2 workers: one SIGKILLed and restarted, later the other SIGKILLed", REDUCED,
             lambda: kill_restart_then_kill_other(0.2, 0.45), workers=2, crash_duplicates_allowed=True),
    Scenario("temporal_restart", "Temporal dev server killed mid-wave, back after 2 s", REDUCED,
             lambda: restart_temporal(0.3, 2.0)),
    Scenario("smtp_outage_550", "SMTP refuses connections for 8 s; one mailbox in ten answers 550", REDUCED,
             lambda: smtp_outage(0.2, 8.0), rejected_every=10),
    Scenario("postgres_restart", "PostgreSQL crashed (immediate) mid-wave, back after 2 s", REDUCED,
             lambda: restart_postgres((0.3,), 2.0)),
]
