"""CLI commands of the audit trail: `audit verify`, `audit anchor`, `audit export` (docs/CONTROLS.md).

Registered on the main app by cli/main.py (imported at its end).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.main import CsvOpt, JsonOpt, app, console, err_console, execute, print_table
from cli.dunning import _date
from app.services import CaseService

audit_app = typer.Typer(help="The audit trail: verify the event store's hash chain, anchor its head, export events.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")

AnchorOpt = Annotated[Optional[Path], typer.Option(
    "--anchor", help="A file written by `audit anchor`: every head recorded there must still be in the chain")]


@contextmanager
def _progress(enabled: bool):
    """A progress bar on stderr when it is a terminal (long runs on large stores); else nothing."""
    if not (enabled and err_console.is_terminal):
        yield None
        return
    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("verify", total=None)
        yield lambda done, total: bar.update(task, total=total or None, completed=done)


def _show_verification(result: dict) -> None:
    head = result["head"]
    for problem in result["problems"]:
        where = (f"stream {problem['stream_id']} version {problem['version']}" if problem["stream_id"]
                 else "an event of unknown stream")
        at = f" (position {problem['position']})" if problem["position"] is not None else ""
        console.print(f"[red]{problem['kind']}:[/red] {escape(f'{where}{at}: ' + problem['detail'])}", highlight=False,
                      soft_wrap=True)
    for anchor in result["anchors"]:
        verdict = "[green]still in the chain[/green]" if anchor["found"] else f"[red]{anchor['detail']}[/red]"
        console.print(f"anchor at position {anchor['position']}: {verdict}", highlight=False, soft_wrap=True)
    verdict = "[green]intact[/green]" if result["intact"] else "[red]NOT INTACT[/red]"
    console.print(f"{result['events']} event(s): {verdict}; head position {head['position']} hash {head['hash']}",
                  highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(anchor: AnchorOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute the event store's hash chain: exit 1 naming each row changed, deleted or inserted out of band, 0 when intact.

    Also exit 1 when a head recorded by `audit anchor` (--anchor FILE) is no longer in the chain.
    Prints the head (position and hash) to record outside the database."""
    from app.audit import verify

    found: dict = {}

    def action(s: CaseService) -> dict:
        with _progress(not as_json) as progress:
            found.update(verify(s.ctx, anchor, progress))
        return found

    execute(action, as_json, _show_verification)
    if not found.get("intact", False):
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    file: Annotated[Path, typer.Argument(help="File to append the head to (one JSON line per anchor)")],
    as_json: JsonOpt = False,
) -> None:
    """Verify the chain, then append its head (position, hash, time) to FILE, to keep outside the database.

    E-mail the file or put it in a WORM store; `audit verify --anchor FILE` checks the chain
    still contains every head recorded there. Nothing is written when the chain is not intact (exit 1)."""
    from app.audit import anchor

    found: dict = {}

    def action(s: CaseService) -> dict:
        with _progress(not as_json) as progress:
            found.update(anchor(s.ctx, file, progress))
        return found

    def render(result: dict) -> None:
        _show_verification(result)
        if result["anchored"]:
            console.print(f"anchored position {result['anchor']['position']} hash {result['anchor']['hash']} "
                          f"in {result['file']}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[red]not anchored:[/red] the chain is not intact ({file} unchanged)", highlight=False)

    execute(action, as_json, render)
    if not found.get("anchored", False):
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    start: Annotated[Optional[str], typer.Option("--from", help="First day recorded (YYYY-MM-DD, UTC; default: the first event)")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Last day recorded (YYYY-MM-DD, UTC; default: the last event)")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="Only the events of this actor (a user name, or system)")] = None,
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail: every event of every stream recorded in the period, in the order recorded.

    Cases and customers alike, with position, recorded_at, occurred_at, actor, stream, subject
    (invoice or customer), version, type, the event's reason, note, decision and outcome, the
    amount and currency of the money it moves or names, and a payment's value date (docs/CONTROLS.md)."""
    from app.audit import COLUMNS, to_csv_lines, trail

    def action(s: CaseService):
        rows = trail(s.ctx, _date(start, "from"), _date(end, "to"), actor)
        if as_csv:
            for line in to_csv_lines(rows):
                sys.stdout.write(line)
            return None
        if as_json:  # streamed: a large trail is never held whole
            sys.stdout.write("[")
            for n, row in enumerate(rows):
                sys.stdout.write(("," if n else "") + "\n  " + json.dumps(row, ensure_ascii=False))
            sys.stdout.write("\n]\n")
            return None
        return list(rows)

    def render(rows: list[dict] | None) -> None:
        if rows is None:
            return
        if not rows:
            console.print("no event in this period")
            return
        table = Table(*COLUMNS)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in COLUMNS))
        print_table(table)
        console.print(f"{len(rows)} event(s)")

    execute(action, False, render)
