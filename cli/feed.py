"""CLI command of the event feed: `events tail` (docs/EVENTS.md).

Registered on the main app by cli/main.py (imported at its end).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from rich.table import Table

from app.services import CaseService
from cli.main import JsonOpt, app, console, execute, fail, print_table

events_app = typer.Typer(help="The event feed: every event in global order, for an ERP or a data warehouse.",
                         no_args_is_help=True)
app.add_typer(events_app, name="events")

COLUMNS = ("position", "recorded_at", "stream", "version", "type", "actor")


def _line(event: dict) -> str:
    return (f"{event['position']:>8}  {event['recorded_at'][:19]}  {event['stream']}  v{event['version']:<3} "
            f"{event['type']}  by {event['actor']}")


@events_app.command("tail")
def events_tail(
    after: Annotated[int, typer.Option("--after", help="The last position already read: start after it (0: from the "
                                                       "first event)")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="Most events per page (1 to 1000)")] = 100,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep reading new events as they are recorded "
                                                                  "(Ctrl-C or SIGTERM stops it, exit 0)")] = False,
    interval: Annotated[float, typer.Option("--interval", help="With --follow: seconds between polls when caught up "
                                                               "(0.1 to 60)")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Events after position --after, in global order: position, stream, type, occurred_at, recorded_at, actor, data.

    Without --follow: one page (at most --limit events); --json prints {"events": [...], "next_after": N,
    "head": N}: run again with --after next_after to go on. With --follow: every event from --after on,
    as it is recorded; --json prints one JSON object per event per line. Delivery is at least once and
    ordered by position; keep the last position you processed and resume after it (docs/EVENTS.md)."""
    from app import feed
    from domain.errors import DomainError

    try:  # bad input: one line on stderr, exit 2, before anything is read
        feed.check_after(after)
        feed.check_limit(limit)
        if follow and not 0.1 <= interval <= 60:
            raise DomainError(f"interval: must be from 0.1 to 60 seconds (got {interval})", "interval")
    except DomainError as error:
        fail(str(error))

    if not follow:
        def render(result: dict) -> None:
            if not result["events"]:
                console.print(f"no event after position {after} (head {result['head']})")
                return
            table = Table(*COLUMNS)
            for event in result["events"]:
                table.add_row(*(str(event[c]) for c in COLUMNS))
            print_table(table)
            console.print(f"{len(result['events'])} event(s); continue with --after {result['next_after']} "
                          f"(head {result['head']})")

        execute(lambda s: feed.page(s.ctx, after, limit), as_json, render)
        return

    def tail(s: CaseService) -> None:
        position = after
        with _stop_on_signal() as stopped:
            while not stopped:
                result = feed.page(s.ctx, position, limit)
                for event in result["events"]:
                    if as_json:
                        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                    else:
                        console.print(_line(event), highlight=False, soft_wrap=True)
                sys.stdout.flush()
                position = result["next_after"]
                if position >= result["head"]:
                    _pause(interval, stopped)

    execute(tail, False, lambda _: None)


@contextmanager
def _stop_on_signal() -> Iterator[list[int]]:
    """Ctrl-C or SIGTERM ends --follow between two reads: the first signal is only noted (a
    KeyboardInterrupt raised inside a database read could leave its connection pool locked and
    the exit hanging); a second one interrupts whatever is running."""
    stopped: list[int] = []

    def note(signum, frame) -> None:
        if stopped:
            raise KeyboardInterrupt
        stopped.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pause(seconds: float, stopped: list[int]) -> None:
    """Sleep between polls in short steps, so a noted signal ends the wait within 0.1 s."""
    end = time.monotonic() + seconds
    while not stopped and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
