"""Python's cyclic garbage collector, paused for a bulk job."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """For a job that builds millions of objects and keeps many of them alive to its end (every
    case's state in a projection rebuild or a policy simulation) while it drops little that
    reference counting does not free: the collector's full passes walk the ever larger heap
    again and again and find nothing (a third of a rebuild's time, a quarter of a simulation's;
    docs/PERFORMANCE.md). It is resumed after, also when the job fails; jobs on several threads
    at once leave it as the first one found it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
