"""CLI commands of automated dunning: sweep, schedule, payments, templates, policy versions.

Registered on the main app by cli/main.py (imported at its end).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.main import (AsOpt, JsonOpt, app, case_app, console, execute, policy_app, print_table, reason_option,
                      show_payment, show_reply)
from app.services import CaseService
from domain.inputs import parse_date

schedule_app = typer.Typer(help="The daily sweep's Temporal Schedule.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


def _date(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    return parse_date(text, field)


def show_sweep(result: dict) -> None:
    table = Table("invoices scanned", "cases opened", "with a case", "not yet overdue", "paid", "failed")
    skipped = result["skipped"]
    table.add_row(str(result["invoices_scanned"]), str(result["cases_opened"]), str(result["already_open"]),
                  str(skipped["not_yet_overdue"]), str(skipped["paid"]), str(skipped["failed"]))
    console.print(f"sweep as of {result['as_of']} (overdue if due on or before {result['overdue_cutoff']}, "
                  f"policy {result['policy_version']})")
    print_table(table)
    for invoice_id, why in result["failures"].items():
        console.print(f"  [red]{invoice_id}[/red]: {why}")
    if result.get("openings_not_yet_recorded"):
        console.print(f"[yellow]{result['openings_not_yet_recorded']} of the cases opened had not recorded their "
                      "opening when the worker stopped making progress[/yellow]; `case list` shows them once they "
                      "have (is the worker running?)")
    if result.get("internal_notifications_sent") is not None:
        console.print(f"internal notifications sent: {result['internal_notifications_sent']} (`notify log` lists them)")


@app.command("sweep")
def sweep(
    as_of: Annotated[Optional[str], typer.Option(help="Sweep as of this date (YYYY-MM-DD), default today")] = None,
    page_size: Annotated[int, typer.Option(help="Invoices per activity", min=1, max=5000)] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Run the daily sweep now: open a case for every overdue, unpaid invoice that has none, and a case of
    kind advance for every overdue, unpaid advance request (docs/ADVANCES.md)."""
    from app.sweeps import run_sweep

    def action(s: CaseService):
        day = _date(as_of, "as-of")
        if as_json:
            return run_sweep(s.ctx, day, page_size=page_size)
        return _with_progress(s, day, page_size)

    execute(action, as_json, show_sweep)


async def _with_progress(s: CaseService, day: date | None, page_size: int) -> dict:
    """The sweep's progress over the overdue invoices, then over the openings its cases record."""
    from app.sweeps import run_sweep

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("sweeping", total=None, what="overdue invoices")
        recording = None

        def update(progress) -> None:
            bar.update(task, total=progress.plan.overdue, completed=progress.processed)

        def recorded(done: int, opened: int) -> None:
            nonlocal recording
            if recording is None:
                recording = bar.add_task("recorded", total=opened, what="openings of the cases opened")
            bar.update(recording, completed=done)

        return await run_sweep(s.ctx, day, update, page_size=page_size, on_recording=recorded)


@schedule_app.command("create")
def schedule_create(
    cron: Annotated[str, typer.Option(help="When to sweep, as a cron expression")] = "0 6 * * *",
    timezone: Annotated[str, typer.Option(help="IANA time zone the cron is read in")] = "UTC",
    reason: reason_option("Why the schedule is set", "daily sweep schedule") = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the Temporal Schedule that runs the sweep every day (ScheduleCreated)."""
    from app.sweeps import create_schedule

    execute(lambda s: create_schedule(s.ctx, cron, timezone, s.ctx.actor(as_user), reason), as_json, lambda r: console.print(
        f"schedule {r['schedule_id']} {'created' if r['created'] else 'updated'}: '{r['cron']}' in {r['timezone']}; "
        f"next runs: {', '.join(r['next_runs'])}"))


@schedule_app.command("show")
def schedule_show(as_json: JsonOpt = False) -> None:
    """The daily sweep's Schedule as Temporal runs it: its cron, next runs and latest runs."""
    from app.sweeps import show_schedule

    execute(lambda s: show_schedule(s.ctx), as_json, _show_schedule)


def _show_schedule(r: dict) -> None:
    if not r["exists"]:
        console.print(f"no schedule {r['schedule_id']}: the sweep runs only when started by hand "
                      "(set one with `collections schedule create`)")
        return
    state = "paused" if r["paused"] else "active"
    console.print(f"schedule {r['schedule_id']} ({state}): '{r['cron'] or 'set outside this engine'}' in "
                  f"{r['timezone']}" + (f", set by {r['set_by']} at {r['set_at'][:19]}" if r["set_by"] else ""))
    console.print(f"next runs: {', '.join(r['next_runs']) or 'none'}")
    for run in r["recent_runs"]:
        console.print(f"ran {run['started_at']} (scheduled {run['scheduled_at']}): workflow {run['workflow_id']}")


@schedule_app.command("delete")
def schedule_delete(
    reason: Annotated[str, typer.Option(help="Why the daily sweep stops (kept on the event, for the audit trail)")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the daily sweep's Schedule (ScheduleDeleted): the sweep then runs only by hand."""
    from app.sweeps import delete_schedule

    execute(lambda s: delete_schedule(s.ctx, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"schedule {r['schedule_id']} deleted: the sweep runs only when started by hand"))


# -- payments ---------------------------------------------------------------------------------

payments_app = typer.Typer(help="Import, match, assign and reverse incoming payments.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


def _payments(s: CaseService):
    from app.payments import PaymentService

    return PaymentService(s)


def show_payments(rows: list[dict]) -> None:
    table = Table("payment id", "received", "amount", "payer", "reference", "why unmatched", "candidates")
    for r in rows:
        candidates = "\n".join(f"{n}. {c['invoice_id']} ({c['open']} {c['currency']}): {c['why_not']}"
                                for n, c in enumerate(r.get("candidates", []), 1))
        table.add_row(r["payment_id"], r["received_on"], f"{r['amount']} {r['currency']}", r["payer"],
                      r["reference"], r["note"] or "", candidates or "none")
    print_table(table)
    console.print(f"{len(rows)} unmatched payment(s)")


@payments_app.command("import")
def payments_import(file: Path, reason: reason_option("Why this bank file is imported", "bank file import") = None,
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Import a bank file: camt.053/camt.054 XML, MT940, or CSV (payment_id, received_on, amount, currency,
    payer, reference), recognised by content. All or nothing; importing it again changes nothing (PaymentsImported)."""
    execute(lambda s: _payments(s).import_file(file, s.ctx.actor(as_user), reason), as_json, lambda r: console.print(
        (f"{r['format']}, {r['statements']} statement(s): " if "format" in r else "")
        + f"{r['rows']} payment(s): {r['matched_by_reference']} matched by reference, {r['matched_by_amount']} by "
        f"payer and amount, {r.get('matched_by_sum', 0)} by the sum of the payer's open items, {r['unmatched']} unmatched, {r['already_imported']} already imported"
        + (f"; {r['reversed']} reversed, {len(r['reversals_unmatched'])} reversal(s) matching no receipt, "
           f"{r['debits_ignored']} debit(s) ignored" if "format" in r else "")))


@payments_app.command("unmatched")
def payments_unmatched(as_json: JsonOpt = False) -> None:
    """Payments that matched no invoice, waiting for a collector: why each was held, and its candidate
    invoices ranked (nearest amount first) with why none was taken."""
    execute(lambda s: _payments(s).unmatched(), as_json, show_payments)


@payments_app.command("assign")
def payments_assign(payment_id: str, invoice_id: str,
                    reason: reason_option("Why this payment belongs to this invoice, e.g. 'remittance advice'"),
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Apply an unmatched payment to an invoice (its case, or the ledger), or to an advance request (an advance
    held on the customer; its case of kind advance sees it), with a reason (PaymentAssigned). On an invoice
    written off it is bad debt recovered (WriteOffRecovered), at most what is still recoverable."""
    execute(lambda s: _payments(s).assign(payment_id, invoice_id, s.ctx.actor(as_user), reason), as_json,
            lambda r: show_payment(r) if r.get("applied_to") == "recovery" else show_reply(r) if r.get("case_id")
            else console.print(f"payment {payment_id} applied to invoice {invoice_id}"))


@payments_app.command("reverse")
def payments_reverse(
    payment_id: str,
    reason: Annotated[str, typer.Option(help="Why, e.g. 'cheque bounced'")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reverse an applied payment: the balance is due again and dunning resumes. A recovery of bad debt
    (a payment on a written-off invoice) is taken back instead (WriteOffRecoveryReversed): no longer
    recovered nor collected, recoverable again; the case stays written off."""
    execute(lambda s: _payments(s).reverse(payment_id, reason, s.ctx.actor(as_user)), as_json,
            lambda r: console.print(_reversal_text(payment_id, r), highlight=False))


def _reversal_text(payment_id: str, r: dict) -> str:
    if r.get("reversed") is False:
        return f"payment {payment_id} was already reversed: no change"
    if r.get("applied_to") == "recovery":
        return (f"recovery {payment_id} of {r.get('amount')} {r.get('currency')} taken back; invoice "
                f"{r.get('invoice_id')} stays written off, and that much is recoverable on it again")
    if r.get("status") and r.get("balance") is not None:
        return (f"payment {payment_id} reversed; case {r.get('invoice_id')} is {r.get('status')} with "
                f"{r.get('balance')} {r.get('currency')} due")
    return f"payment {payment_id} reversed; invoice {r.get('invoice_id')} is open again"


# -- policies and templates ---------------------------------------------------------------------

template_app = typer.Typer(help="Notice templates.", no_args_is_help=True)
app.add_typer(template_app, name="template")


@template_app.command("preview")
def template_preview(
    case_id: str,
    level: Annotated[Optional[int], typer.Option(help="Ladder step to render (default: the next one due)")] = None,
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part instead of the plain text")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the notice a case would send, in the customer's language."""
    from app.policies import preview

    execute(lambda s: preview(s, case_id, level), as_json, lambda r: console.print(
        f"To: {r['to']}\nSubject: {r['subject']}\nLanguage: {r['language']} (step {r['level']}, {r['step']})\n\n"
        + (r["html"] if html else r["text"]), highlight=False, markup=False))


@case_app.command("migrate-policy")
def case_migrate_policy(
    case_id: str,
    to: Annotated[str, typer.Option("--to", help="Policy version to move the case to (see `policy list`)")],
    reason: Annotated[str, typer.Option(help="Why the case moves")] = "policy update",
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move one running case to another policy version; recorded as an event."""
    from app.policies import migrate

    execute(lambda s: migrate(s, case_id, to, reason, s.ctx.actor(as_user)), as_json, show_reply)


@policy_app.command("list")
def policy_list(as_json: JsonOpt = False) -> None:
    """Policy versions known to the engine (pinned by cases or with `policy pin`)."""
    from app.policies import versions

    execute(lambda s: versions(s), as_json, lambda rows: [
        console.print(f"{r['version']}{'  (active)' if r['active'] else ''}") for r in rows])


@policy_app.command("pin")
def policy_pin(file: Path, reason: reason_option("Why this policy version is pinned"), as_user: AsOpt = None,
               as_json: JsonOpt = False) -> None:
    """Validate a policy file and keep it under its version, so cases can move to it (PolicyPinned)."""
    from app.policies import pin_file

    execute(lambda s: pin_file(s, file, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"policy {r['version']} pinned from {r['file']}"))
