"""CLI commands of the general outbox: `subscribers add/list/pause/resume/remove/dispatch`
(docs/EVENTS.md, "Pushed to you").

Registered on the main app by cli/main.py (imported at its end).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.main import AsOpt, JsonOpt, app, console, cut, err_console, execute, print_table, reason_option

subscribers_app = typer.Typer(
    help="Subscribers of the event feed: their events are pushed to a webhook, in position order, with retries.",
    no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


def _service(s):
    from app.subscribers import SubscriberService

    return SubscriberService(s.ctx)


def _state(r: dict) -> str:
    if r["paused"]:
        return "paused"
    if r["attempts"]:
        return f"retrying ({r['attempts']} failed; next {(r['next_attempt_at'] or '')[:19]})"
    return "active"


@subscribers_app.command("add")
def subscribers_add(
    name: Annotated[str, typer.Argument(help="The subscriber's name: lower-case letters, digits, '.', '_', '-'")],
    url: Annotated[str, typer.Option("--url", help="The webhook its batches are POSTed to (http:// or https://)")],
    types: Annotated[str, typer.Option("--types", help="The event types it wants, comma-separated, e.g. "
                                                       "CaseOpened,PaymentReceived,CaseClosed")],
    from_position: Annotated[int, typer.Option("--from-position", help="Deliver the events after this position "
                                                                       "(0: from the first event)")] = 0,
    reason: reason_option("Why it is added", "subscriber added") = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a subscriber: the worker pushes its events after --from-position to --url (SubscriberAdded)."""
    execute(lambda s: _service(s).add(name, url, types, from_position, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"subscriber {r['name']} added: {', '.join(r['types'])} after position "
                                    f"{r['position']} to {r['url']}", highlight=False, soft_wrap=True))


@subscribers_app.command("list")
def subscribers_list(as_json: JsonOpt = False) -> None:
    """Every subscriber: its types, webhook, last acknowledged position, retries and last error."""

    def render(rows: list[dict]) -> None:
        if not rows:
            console.print("no subscriber (add one with `subscribers add NAME --url URL --types T1,T2`)")
            return
        table = Table("name", "position", "delivered", "state", "types", "url", "last error")
        for r in rows:
            table.add_row(r["name"], str(r["position"]), str(r["delivered"]), _state(r), ",".join(r["types"]),
                          r["url"], cut(r["last_error"] or "", 60))
        print_table(table)

    execute(lambda s: _service(s).list(), as_json, render)


def _change(verb: str, name: str, reason: str | None, as_user: str | None, as_json: bool) -> None:
    """Pause, resume or remove ``name`` and say what became of it."""
    def say(r: dict) -> None:
        if r.get("changed", True):
            console.print(f"subscriber {name} {verb}d at position {r['position']}")
        else:
            console.print(f"subscriber {name} unchanged ({'already paused' if verb == 'pause' else 'not paused'}) "
                          f"at position {r['position']}")

    execute(lambda s: getattr(_service(s), verb)(name, s.ctx.actor(as_user), reason), as_json, say)


@subscribers_app.command("pause")
def subscribers_pause(name: str, reason: reason_option("Why it is paused", "subscriber paused") = None,
                      as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Stop pushing to a subscriber (its position is kept; SubscriberPaused)."""
    _change("pause", name, reason, as_user, as_json)


@subscribers_app.command("resume")
def subscribers_resume(name: str, reason: reason_option("Why it is resumed", "subscriber resumed") = None,
                       as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Push to a paused subscriber again, from its position, at once (SubscriberResumed)."""
    _change("resume", name, reason, as_user, as_json)


@subscribers_app.command("remove")
def subscribers_remove(name: str, reason: reason_option("Why it is removed", "subscriber removed") = None,
                       as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Remove a subscriber (SubscriberRemoved, with the position it had reached)."""
    _change("remove", name, reason, as_user, as_json)


@subscribers_app.command("dispatch")
def subscribers_dispatch(
    name: Annotated[list[str] | None, typer.Argument(help="Only these subscribers (default: every one)")] = None,
    once: Annotated[bool, typer.Option("--once", help="One batch per subscriber, then stop (default: until each "
                                                      "is caught up or waits for a retry)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Push due subscribers' events now (the worker does it every few seconds by itself).

    A progress line per batch on stderr; --json prints every attempt: subscriber, outcome (delivered,
    caught_up, failed, waiting, paused), events, positions, HTTP status, error, next attempt."""
    from dataclasses import asdict

    from app.subscribers import Dispatcher

    def progress(a) -> None:
        if a.outcome == "delivered":
            line = f"{a.subscriber}: delivered {a.events} event(s), positions {a.first_position}-{a.last_position}"
        elif a.outcome == "failed":
            line = (f"{a.subscriber}: batch {a.first_position}-{a.last_position} not acknowledged ({a.error}); "
                    f"attempt {a.attempts}, next at {(a.next_attempt_at or '')[:19]}")
        elif a.outcome == "waiting":
            line = f"{a.subscriber}: waiting to retry at {(a.next_attempt_at or '')[:19]}"
        else:
            line = f"{a.subscriber}: {a.outcome.replace('_', ' ')} at position {a.position}"
        err_console.print(line, highlight=False, soft_wrap=True)

    def run(s) -> list[dict]:
        service = _service(s)
        names = list(name) if name else None
        for n in names or ():
            service.get(n)  # an unknown name: exit 2 before anything is sent
        dispatcher = Dispatcher(s.ctx)
        try:
            if once:
                attempts = dispatcher.run_once(names)
                for a in attempts:
                    progress(a)
            else:
                attempts = dispatcher.drain(names, progress)
        finally:
            dispatcher.close()
        return [asdict(a) for a in attempts]

    def render(rows: list[dict]) -> None:
        delivered = sum(r["events"] for r in rows if r["outcome"] == "delivered")
        failed = sum(1 for r in rows if r["outcome"] == "failed")
        console.print(f"{delivered} event(s) delivered; {failed} batch(es) not acknowledged")

    execute(run, as_json, render)
    # a failed batch is a result (reported above and retried later), not a bad command: exit 0
