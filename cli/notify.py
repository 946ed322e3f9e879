"""CLI commands of internal notifications: `notify run`, `notify log` (docs/CONTROLS.md).

Registered on the main app by cli/main.py (imported at its end).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from app.services import CaseService
from cli.dunning import _date
from cli.main import JsonOpt, app, console, execute, print_table

notify_app = typer.Typer(help="E-mail the team: approvals waiting for a role, lapsed SLAs, each collector's digest.",
                         no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("run")
def notify_run(
    as_of: Annotated[Optional[str], typer.Option(
        help="Work out what is due at the end of this day (YYYY-MM-DD, UTC); default: now")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the internal e-mails due now: approvals waiting for a role, lapsed SLAs, collectors' digests.

    Each approval or escalation waiting for a role goes to the users of that role, each lapsed SLA to the next tier (collector, supervisor, finance manager), each collector gets a digest of their open cases.

    Idempotent: what was sent before (same kind, item, recipient and day) is not sent again. The daily sweep runs the same step after opening cases."""
    from app.notifications import run_notifications

    def render(result: dict) -> None:
        table = Table("kind", "item", "recipient", "day", "status", "subject")
        for o in result["outcomes"]:
            table.add_row(o["kind"], o["item"], f"{o['recipient']} <{o['email']}>", o["day"], o["status"], o["subject"])
        if result["outcomes"]:
            print_table(table)
        for line in result["skipped"]:
            console.print(f"[yellow]skipped:[/yellow] {line}", highlight=False, soft_wrap=True)
        console.print(f"as of {result['as_of']}: {result['sent']} sent, {result['already_sent']} already sent "
                      f"before, {result['failed']} failed", highlight=False)

    failed: dict = {}

    def action(s: CaseService):
        result = run_notifications(s.ctx, _date(as_of, "as-of"))
        return _keep(result, failed)

    execute(action, as_json, render)
    if failed.get("failed"):
        raise typer.Exit(1)


async def _keep(result, into: dict) -> dict:
    into.update(await result)
    return into


@notify_app.command("log")
def notify_log(
    start: Annotated[Optional[str], typer.Option("--from", help="First day (YYYY-MM-DD)")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Last day (YYYY-MM-DD)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The sent log of internal notifications: who was told what, about which cases, when, and the outcome."""
    from app.notifications import sent_log

    def render(rows: list[dict]) -> None:
        if not rows:
            console.print("no internal notification in this period")
            return
        table = Table("day", "kind", "item", "recipient", "role", "status", "sent at", "subject")
        for r in rows:
            table.add_row(r["day"], r["kind"], r["item"], f"{r['recipient']} <{r['email']}>", r["role"], r["status"],
                          (r["sent_at"] or "")[:19], r["subject"])
        print_table(table)
        console.print(f"{len(rows)} notification(s)")

    execute(lambda s: sent_log(s.ctx, _date(start, "from"), _date(end, "to")), as_json, render)
