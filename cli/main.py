"""The command line for the collections team (`python starter.py ...` or `collections ...`).

Every command takes --json for machine-readable output. Bad input prints one
line on stderr and exits 2 with nothing changed; an unreachable server exits 1.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from typer._click import exceptions as click_errors  # typer vendors its click
from rich.console import Console
from rich.table import Table
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from rich.text import Text

from app.context import Context
from app.services import CaseService
from cli.helptext import reflow_tree
from domain.errors import DomainError
from domain.inputs import parse_date

console = Console()
err_console = Console(stderr=True)

OUTPUT_FORMATS = {"as_json": "--json", "as_csv": "--csv"}  # a command prints one of them at most


def _one_output_format(ctx: typer.Context, param: typer.CallbackParam, value: bool) -> bool:
    """Refuse two output formats asked at once (`--json --csv`) instead of printing one of them.

    On each format option: click handles the options in the order typed, so whichever of the
    two comes second finds the other already set."""
    if value:
        asked = [flag for name, flag in OUTPUT_FORMATS.items() if name != param.name and ctx.params.get(name)]
        if asked:
            flags = " and ".join([*asked, OUTPUT_FORMATS[param.name]])
            raise click_errors.UsageError(f"{flags} exclude each other: choose one output format", ctx)
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.",
                                       callback=_one_output_format)]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.", callback=_one_output_format)]
AsOpt = Annotated[
    Optional[str],
    typer.Option("--as", help="The user you act as: must be the user of your token ($COLLECTIONS_TOKEN)."),
]

def reason_option(help: str, default: str | None = None):
    """A --reason option (kept on the event, for the audit trail): required unless ``default``."""
    text = f"{help} (kept on the event, for the audit trail)"
    if default is None:
        return Annotated[str, typer.Option("--reason", help=text)]
    return Annotated[Optional[str], typer.Option("--reason", help=f"{text}; default '{default}'")]


app = typer.Typer(
    help="Collections engine: event-sourced dunning cases on Temporal. Commands that change anything act "
         "as the user whose API token is in $COLLECTIONS_TOKEN (or --token TOKEN, anywhere on the line).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
invoices_app = typer.Typer(help="Import invoices into the ledger.", no_args_is_help=True)
case_app = typer.Typer(help="Open, inspect, list, assign and cancel collection cases.", no_args_is_help=True)
dispute_app = typer.Typer(help="Open and resolve disputes.", no_args_is_help=True)
plan_app = typer.Typer(help="Propose and accept payment plans.", no_args_is_help=True)
escalation_app = typer.Typer(help="Decide escalated cases (supervisors).", no_args_is_help=True)
write_off_app = typer.Typer(help="Request write-offs.", no_args_is_help=True)
approvals_app = typer.Typer(help="List and decide approvals (four eyes, within authority).", no_args_is_help=True)
projections_app = typer.Typer(help="Maintain the read models.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
policy_app = typer.Typer(help="Collection policies.", no_args_is_help=True)
for sub, name in (
    (invoices_app, "invoices"), (case_app, "case"), (dispute_app, "dispute"), (plan_app, "plan"),
    (escalation_app, "escalation"), (write_off_app, "write-off"), (approvals_app, "approvals"),
    (projections_app, "projections"), (db_app, "db"), (policy_app, "policy"),
):
    app.add_typer(sub, name=name)


# -- plumbing ---------------------------------------------------------------------------------


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def execute(action: Callable[[CaseService], Any], as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Run one service call; print JSON or a human view; map errors to exit codes."""
    context = Context()
    service = CaseService(context)
    try:
        result = action(service)
        if inspect.isawaitable(result):
            result = asyncio.run(result)
    except DomainError as error:
        fail(str(error), 2)
    except RuntimeError as error:
        if "client connect" in str(error).lower() or "connection refused" in str(error).lower():
            fail(f"cannot reach Temporal at {context.settings.temporal_address} "
                 "(start the stack with `python starter.py up`)", 1)
        fail(str(error), 1)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False) + "\n")
    elif render is not None:
        render(result)
    else:
        console.print_json(json.dumps(result, default=str, ensure_ascii=False))


def _actor(service: CaseService, name: str | None):
    return service.ctx.actor(name)


def _show_early_cash(result: dict) -> None:
    """The factor an invoice is assigned to and the discount a notice offered (docs/FINANCING.md)."""
    f = result.get("financing")
    if f:
        console.print(f"assigned to factor {f['factor']} ({'with' if f['recourse'] else 'without'} recourse, "
                      f"assignment {f['assignment_id']}): {f['assigned']['amount']} assigned, "
                      f"{f['advanced']['amount']} advanced, fee {f['fee']['amount']}; {f['status']}"
                      + (f"; default reported ({f['default_reported']})" if f.get("default_reported") else ""),
                      highlight=False)
    d = result.get("discount_offer")
    if d:
        console.print(f"early-payment discount offered: pay {d['pay']['amount']} by {d['pay_by'][:19]} "
                      f"({d['percent']} % off: {d['discount']['amount']})", highlight=False)


def show_reply(result: dict) -> None:
    if "refund_id" in result:  # an advance's refund, decided on its customer (approvals approve/reject)
        by = result.get("approved_by") or result.get("rejected_by")
        console.print(f"refund [bold]{result['refund_id']}[/bold] of customer {result['customer_id']} (advance "
                      f"{result.get('invoice_id')}): [cyan]{result['status']}[/cyan] by {by}"
                      + ("" if result.get("recorded", True) else " — no change (already decided so)"))
        return
    events = ", ".join(e["type"] for e in result.get("events", []))
    if not events and result.get("opened") is False:  # `case open` found the invoice's case
        events = f"already closed ({result.get('status')})" if result.get("closed_at") else "already open"
    elif not events:
        events = "case opened" if result.get("opened") else "no change"
    elif result.get("recorded") is False:  # a repeated command: Temporal answered with its first reply
        events = f"no change: already recorded ({events})"
    console.print(
        f"case [bold]{result.get('invoice_id')}[/bold] ({result.get('case_id')}): "
        f"status [cyan]{result.get('status')}[/cyan], balance {result.get('balance')} {result.get('currency')} — {events}"
    )


def cut(text: str, width: int) -> Text:
    """Data for a table cell (never markup), cut at ``width`` terminal cells with Rich's '…'."""
    cell = Text(text)
    cell.truncate(width, overflow="ellipsis")
    return cell


def print_table(table: Table) -> None:
    """A table when it fits the terminal (or the pipe's 80 columns); else one block per row of
    `header: value` lines, so that no header or value is cut to `approv…`. --json and --csv
    are the machine formats."""
    headers = [str(c.header) for c in table.columns]
    cells = [[str(v) for v in c.cells] for c in table.columns]
    # Rich wraps at spaces but cuts a word that does not fit its column: the table fits
    # when every column can hold its longest word (plus one space each side and the rules).
    longest = [max(len(word) for text in [h, *column] for word in (text.split() or [""]))
               for h, column in zip(headers, cells)]
    if sum(w + 2 for w in longest) + len(longest) + 1 <= console.width:
        console.print(table)
        return
    width = max(len(h) for h in headers)
    for n in range(table.row_count):
        for header, column in zip(headers, cells):
            console.print(f"{header:>{width}}: {column[n]}", highlight=False, soft_wrap=True)
        if n < table.row_count - 1:
            console.print()


def show_cases(rows: list[dict]) -> None:
    table = Table("invoice", "customer", "status", "balance", "level", "next action", "at", "case id")
    for r in rows:
        table.add_row(r["invoice_id"], r["customer_name"], r["status"], f"{r['balance']} {r['currency']}",
                      str(r["level"]), r["next_action"] or r["waiting_for"], (r["next_action_at"] or "")[:19],
                      r["case_id"])
    print_table(table)
    console.print(f"{len(rows)} case(s)")


DETAILS_WIDTH = 100  # an event's details in `case show`'s history, in terminal cells


def event_details(data: dict) -> str:
    """An event's fields as a reader scans them: money as '120.00 EUR', nested records as
    'field=value' inside braces, empty fields left out (not Python's dict syntax)."""
    def value(v) -> str:
        if isinstance(v, dict):
            if set(v) == {"amount", "currency"}:
                return f"{v['amount']} {v['currency']}"
            return "{" + event_details(v) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(map(value, v)) + "]"
        return str(v)

    return ", ".join(f"{k}={value(v)}" for k, v in data.items() if v not in (None, "", [], {}))


def show_case(result: dict) -> None:
    console.print(f"[bold]Case {result['case_id']}[/bold]  invoice {result['invoice_id']}  {result['customer_name']}")
    console.print(f"status [cyan]{result['status']}[/cyan]  balance {result['balance']} {result['currency']}  "
                  f"(original {result['original_amount']})  level {result['level']}  waiting for: {result['waiting_for']}")
    pause = result.get("pause")
    if pause:
        console.print(f"[yellow]dunning paused[/yellow] until {pause['until'][:19]} ({pause['reason']}), "
                      f"asked by {pause['requested_by']}" + (f", approved as {pause['approval_id']}"
                                                             if pause.get("approval_id") else ""), highlight=False)
    elif result.get("pause_request"):
        req = result["pause_request"]
        console.print(f"pause until {req['until'][:19]} ({req['reason']}) waits for approval {req['approval_id']}",
                      highlight=False)
    plan = result.get("plan")
    if plan and plan.get("expires_at") and plan["status"] in ("proposed", "approved"):
        console.print(f"plan {plan['plan_id']} offered; the offer lapses at {plan['expires_at'][:19]}", highlight=False)
    totals = result.get("totals") or {}
    if totals.get("interest_accrued_to"):
        console.print(f"statutory interest {totals['interest']} {result['currency']} (accrued to "
                      f"{totals['interest_accrued_to']}), fixed compensation {totals['compensation']} "
                      f"{result['currency']}: both within fees {totals['fees']}", highlight=False)
    ins = result.get("insurance")
    if ins:
        console.print(f"insured: {ins['insurer']} policy {ins['policy']} ({ins['indemnity_percent']}% indemnity), "
                      f"{ins['stage']}; notify insurer by {(ins['notify_by'] or '')[:10]} "
                      f"(planned {(ins['notify_at'] or '')[:10]}), no extension beyond {ins['extension_until']}"
                      + (f", claim from {ins['claim_at'][:10]}" if ins.get("claim_at") else ""), highlight=False)
    _show_early_cash(result)
    table = Table("#", "when", "event", "by", "details")
    for e in result["events"]:
        # Text: the details are data, not markup; cut at DETAILS_WIDTH cells with Rich's '…'
        # so that a reader sees there is more (`case show --json` has it all)
        details = cut(event_details(e["data"]), DETAILS_WIDTH)
        table.add_row(str(e["version"]), e["occurred_at"][:19], e["type"], e["actor"], details)
    print_table(table)
    for r in result.get("recoveries") or []:  # after the write-off, on the invoice (administration events)
        d = r["data"]
        what = (f"recovery {d['payment_id']} of {d['amount']['amount']} {d['amount']['currency']} taken back"
                if r["type"] == "WriteOffRecoveryReversed" else
                f"recovered {d['amount']['amount']} {d['amount']['currency']} received {d['received_on']} "
                f"(payment {d['payment_id']})")
        console.print(f"{what} by {r['actor']} at {r['occurred_at'][:19]}: {d['reason']}", highlight=False)


def _approver(row: dict) -> str:
    """Who may approve a pending item (by the policy's caps, a write-off by its case's total)."""
    if row["status"] != "pending":
        return row["tier"]
    return row.get("approver") or "nobody (reject only)"


def show_approvals(rows: list[dict]) -> None:
    table = Table("approval id", "kind", "invoice", "amount", "requested by", "approver", "SLA due", "status")
    for r in rows:
        amount = f"{r['amount']} {r['currency']}"
        if r.get("reduced_alone"):  # why a small reduction waits: what was already reduced alone counts
            amount += f" (+{r['reduced_alone']} alone before)"
        table.add_row(r["approval_id"], r["kind"], r["invoice_id"], amount,
                      r["requested_by"], _approver(r), (r["sla_due_at"] or "")[:19], r["status"])
    print_table(table)


# -- invoices & cases -----------------------------------------------------------------------------


@invoices_app.command("import")
def invoices_import(
    file: Path,
    format: Annotated[str, typer.Option("--format", help="Column layout: standard | ibm-ar")] = "standard",
    currency: Annotated[str, typer.Option(help="Currency for ledgers that carry none")] = "USD",
    country: Annotated[str, typer.Option(help="Country (ISO 3166) for ledgers that carry none")] = "US",
    language: Annotated[str, typer.Option(help="Language for ledgers that carry none")] = "en",
    reason: reason_option("Why these invoices are imported", "invoice import") = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import invoices, credit notes and customers from a CSV export of the ERP (all rows or none).

    New invoices go onto the ledger. A known invoice whose row changed (amount, credit note, due
    date, cancelled, paid outside the engine, customer details) is changed on the ledger or, when
    it has an open case, recorded as events of that case by `erp-sync` (by the --as user when
    given). Re-importing the same file changes nothing. Recorded as an InvoicesImported event
    (who, when, why, the file and its counts) in `audit export`. Layout: docs/IMPORT.md."""
    from app.imports import ImportDefaults

    defaults = ImportDefaults(currency=currency.upper(), country=country.upper(), language=language)
    execute(lambda s: s.sync_invoices(file, format, defaults, _actor(s, as_user), reason,
                                      _actor(s, as_user) if as_user else None), as_json, show_import)


def show_import(r: dict) -> None:
    console.print(f"{r['rows']} row(s): {r['invoices_added']} new invoice(s), {r['invoices_changed']} changed, "
                  f"{r['invoices_unchanged']} unchanged, {r['customers']} customer(s), "
                  f"{r['case_events']} case event(s)")
    if r["changes"]:
        table = Table("line", "invoice", "where", "changes")
        for c in r["changes"]:
            table.add_row(str(c["line"]), c["invoice_id"], c["where"], ", ".join(c["changes"]))
        print_table(table)
    for c in r.get("case_errors", []):
        console.print(f"line {c['line']}: {c['invoice_id']}: not changed: {c['error']} (import the file again)")
    for c in r["closed_cases_not_changed"]:
        console.print(f"line {c['line']}: {c['invoice_id']}: case closed ({c['case']}), not changed: "
                      f"{', '.join(c['changes'])}")


@case_app.command("open")
def case_open(
    invoice_id: str,
    reason: Annotated[str, typer.Option(help="overdue (the invoice's due date has come) | dispute | manual")] = "overdue",
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a case for an invoice (opening twice returns the existing case).

    A case opened before the invoice's due date (as manual or dispute) sends no reminder before it."""
    execute(lambda s: s.open_case(invoice_id, reason, _actor(s, as_user)), as_json, show_reply)


@case_app.command("show")
def case_show(case_id: Annotated[str, typer.Argument(help="Case id or invoice id")], as_json: JsonOpt = False) -> None:
    """Show a case's state and its full event history."""
    execute(lambda s: s.show(case_id), as_json, show_case)


@case_app.command("list")
def case_list(
    status: Annotated[Optional[str], typer.Option(help="Only cases with this status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List case summaries."""
    execute(lambda s: s.list(status), as_json, show_cases)


@case_app.command("assign")
def case_assign(case_id: str, assignee: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Assign a case to a collector."""
    execute(lambda s: s.assign(case_id, assignee, _actor(s, as_user)), as_json, show_reply)


@case_app.command("letter")
def case_letter(
    case_id: str,
    seq: Annotated[int, typer.Option(help="The notice's number on the case (ReminderSent seq)")],
    out: Annotated[Optional[str], typer.Option(help="Write the PDF here (default: final-notice-INVOICE-SEQ.pdf)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a final notice's PDF letter again, byte for byte, and check it against the SHA-256
    recorded when it was sent (exit 1 when the bytes differ)."""
    def show(result: dict) -> None:
        console.print(f"{result['file']}: {result['bytes']} bytes, sha256 {result['sha256']}", highlight=False)
        if not result["same"]:
            console.print(f"[red]differs from the letter sent (sha256 {result['sent_sha256']})[/red]")

    context = Context()
    try:
        result = CaseService(context).letter(case_id, seq, out)
    except DomainError as error:
        fail(str(error), 2)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        show(result)
    if not result["same"]:
        raise typer.Exit(1)


@case_app.command("waive-interest")
def case_waive_interest(
    case_id: str,
    reason: Annotated[str, typer.Option(help="Reason code, e.g. goodwill")],
    amount: Annotated[Optional[str], typer.Option(help="How much to waive (default: all interest and "
                                                  "compensation charged and not waived)")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Waive statutory interest and compensation charged on a case; above the policy's
    single-person threshold it waits for a second person's approval (four eyes)."""
    execute(lambda s: s.waive_interest(case_id, amount, reason, _actor(s, as_user)), as_json, show_reply)


@case_app.command("cancel")
def case_cancel(
    case_id: str,
    reason: Annotated[str, typer.Option(help="Reason code, e.g. invoice_voided")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a case (supervisors; e.g. the invoice was voided)."""
    execute(lambda s: s.cancel(case_id, reason, _actor(s, as_user)), as_json, show_reply)


@app.command("pay", context_settings={"ignore_unknown_options": True})
def pay(
    invoice_id: str,
    amount: str,
    reference: Annotated[str, typer.Option(help="Bank or remittance reference")] = "",
    payment_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated payment a no-op")] = None,
    received_on: Annotated[Optional[str], typer.Option(help="Date received (YYYY-MM-DD), default today")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a payment for an invoice (to its open case, or on the ledger when it has none; on an
    invoice written off, a recovery of bad debt, at most what was written off)."""

    def action(s: CaseService):
        day = None
        if received_on:
            day = parse_date(received_on, "received_on")
        return s.pay(invoice_id, amount, reference, _actor(s, as_user), payment_id, day)

    execute(action, as_json, show_payment)


def show_payment(r: dict) -> None:
    if r.get("applied_to") == "recovery":  # the invoice's case was written off: bad debt recovered
        done = "recorded" if r["recorded"] else "no change: already recorded"
        console.print(f"recovery of written-off invoice [bold]{r['invoice_id']}[/bold]: payment {r['payment_id']} of "
                      f"{r['amount']} {r['currency']} {done}; recovered {r['recovered']} of {r['written_off']} "
                      f"written off ({r['recoverable']} still recoverable)", highlight=False)
    elif r.get("case_id"):
        show_reply(r)
    else:
        console.print(f"payment {r['payment_id']} of {r['amount']} {r['currency']} recorded on invoice {r['invoice_id']}")


# -- disputes, promises, plans ------------------------------------------------------------------------


@dispute_app.command("open")
def dispute_open(
    case_id: str,
    reason: Annotated[str, typer.Option(help="Reason code, e.g. pricing, quality, not_received")],
    amount: Annotated[Optional[str], typer.Option(help="Disputed amount (default: the whole balance)")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a dispute: dunning stops for the disputed amount."""
    execute(lambda s: s.open_dispute(case_id, reason, _actor(s, as_user), amount), as_json, show_reply)


@dispute_app.command("resolve")
def dispute_resolve(
    case_id: str,
    outcome: Annotated[str, typer.Option(help="upheld | rejected")],
    credit: Annotated[Optional[str], typer.Option(help="Credit note amount when upheld (default: disputed amount)")] = None,
    note: Annotated[str, typer.Option(help="Resolution note")] = "",
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve the open dispute: upheld credits the customer; rejected resumes dunning where it stopped."""
    execute(lambda s: s.resolve_dispute(case_id, outcome, _actor(s, as_user), credit, note), as_json, show_reply)


@app.command("promise")
def promise(
    case_id: str,
    amount: Annotated[str, typer.Option(help="Promised amount")],
    on: Annotated[str, typer.Option("--date", help="Promised payment date (YYYY-MM-DD)")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a promise to pay; dunning pauses until the date (+ grace)."""
    execute(lambda s: s.promise(case_id, amount, on, _actor(s, as_user)), as_json, show_reply)


@plan_app.command("propose")
def plan_propose(
    case_id: str,
    instalments: Annotated[int, typer.Option(help="Number of instalments")],
    every: Annotated[str, typer.Option(help="Interval as an ISO 8601 duration, e.g. P30D")],
    first: Annotated[Optional[str], typer.Option(help="First due date (YYYY-MM-DD), default now + interval")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose a payment plan over the balance (beyond a collector's authority it needs approval)."""
    execute(lambda s: s.propose_plan(case_id, instalments, every, _actor(s, as_user), first), as_json, show_reply)


@plan_app.command("accept")
def plan_accept(case_id: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Record the customer's acceptance of the proposed (and, if needed, approved) plan."""
    execute(lambda s: s.accept_plan(case_id, _actor(s, as_user)), as_json, show_reply)


@escalation_app.command("decide")
def escalation_decide(
    case_id: str,
    decision: Annotated[str, typer.Option(help="plan | agency | legal | credit_hold | write_off | continue")],
    note: Annotated[str, typer.Option("--note", "--reason", help="Why (kept on the event)")] = "",
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide an escalated case (--reason, as every other decision takes it, is the same as --note)."""
    execute(lambda s: s.decide_escalation(case_id, decision, _actor(s, as_user), note), as_json, show_reply)


@write_off_app.command("request")
def write_off_request(
    case_id: str,
    amount: Annotated[str, typer.Option(help="Amount to write off")],
    reason: Annotated[str, typer.Option(help="Reason code, e.g. insolvency, small_balance")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Request a write-off; someone else with enough authority must approve it."""
    execute(lambda s: s.request_write_off(case_id, amount, reason, _actor(s, as_user)), as_json, show_reply)


# -- approvals ----------------------------------------------------------------------------------------


@approvals_app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending | approved | rejected | decided | withdrawn | all")] = "pending",
    as_json: JsonOpt = False,
) -> None:
    """The approvals inbox: escalations, plans and write-offs."""
    execute(lambda s: s.approvals(status), as_json, show_approvals)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str,
    reason: Annotated[str, typer.Option(help="Why it is approved (kept on the event, for the audit trail)")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a write-off, dispute credit, cancellation or plan (not your own; within your authority)."""
    execute(lambda s: s.decide_approval(approval_id, True, _actor(s, as_user), reason), as_json, show_reply)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: str,
    reason: Annotated[str, typer.Option(help="Why it is rejected")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a write-off, dispute credit, cancellation or plan, with a reason."""
    execute(lambda s: s.decide_approval(approval_id, False, _actor(s, as_user), reason), as_json, show_reply)


# -- operations -----------------------------------------------------------------------------------------


@projections_app.command("rebuild")
def projections_rebuild(as_json: JsonOpt = False) -> None:
    """Replay every event into fresh projection tables."""
    execute(lambda s: s.rebuild_projections(), as_json,
            lambda r: console.print(f"projections rebuilt from {r['events_replayed']} event(s)"))


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the database schema to the latest revision."""
    from store.db import Database
    from store.migrate import upgrade

    def action(s: CaseService):
        db = Database(s.ctx.settings.database_url, migrate=False)
        try:
            return {"database": db.engine.url.render_as_string(hide_password=True), "revision": upgrade(db.engine)}
        finally:
            db.dispose()

    execute(action, as_json, lambda r: console.print(f"{r['database']} is at revision {r['revision']}"))


@policy_app.command("show")
def policy_show(as_json: JsonOpt = False) -> None:
    """Print the active policy (validated)."""
    execute(lambda s: s.ctx.policy().model_dump(mode="json"), as_json)


users_app = typer.Typer(help="People in the users file and their API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("token")
def users_token(name: str, reason: reason_option("Why a token is issued", "API token issued") = None,
                as_json: JsonOpt = False) -> None:
    """Issue a new API token for NAME (the old one stops working). It is printed once; only its hash is stored.

    Recorded as an ApiTokenIssued event (the operator's login, when, why; never the token) in `audit export`."""
    from app.tokens import issue_recorded

    execute(lambda s: issue_recorded(s.ctx, name, reason), as_json, lambda r: console.print(
        f"API token for [bold]{r['user']}[/bold] ({r['role']}):\n{r['token']}\n"
        f"[dim]Shown only this once; {r['users_file']} keeps only its hash.[/dim]", highlight=False, soft_wrap=True))


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="collector | supervisor | finance_manager | integration")],
    write_off_limit: Annotated[str, typer.Option("--write-off-limit", help="The most this person may approve "
                                                  "(the policy caps each role too)")] = "0",
    email: Annotated[Optional[str], typer.Option("--email", help="Where internal notifications go")] = None,
    language: Annotated[str, typer.Option("--language", help="Of internal e-mails (en, zh-CN...)")] = "en",
    reason: reason_option("Why the user is added", "user added") = None,
    as_json: JsonOpt = False,
) -> None:
    """Add NAME to the users file (comments and layout kept), without a token: `users token NAME` issues one.

    Recorded as a UserAdded event (the operator's login, when, why, the role and limit) in `audit export`."""
    from app.users import add_recorded

    execute(lambda s: add_recorded(s.ctx, name, role, write_off_limit, email, language, reason), as_json,
            lambda r: console.print(
                f"Added [bold]{escape(r['user'])}[/bold] ({r['role']}, write-off limit {r['write_off_limit']}) "
                f"to {escape(r['users_file'])}.\nNo token yet: issue one with `collections {escape(r['token_command'])}`.",
                highlight=False, soft_wrap=True))


@users_app.command("revoke")
def users_revoke(name: str, reason: reason_option("Why the token is taken away"), as_json: JsonOpt = False) -> None:
    """Take NAME's API token away without issuing a new one: it stops working at once (CLI, API),
    and console sessions signed in with it end. `users token NAME` can issue a new one later.

    Recorded as an ApiTokenRevoked event (the operator's login, when, why, which token) in `audit export`."""
    from app.tokens import revoke_recorded

    execute(lambda s: revoke_recorded(s.ctx, name, reason), as_json, lambda r: console.print(
        f"The API token of [bold]{escape(r['user'])}[/bold] ({r['role']}) is revoked; "
        f"{escape(r['users_file'])} holds no token for them now.", highlight=False, soft_wrap=True))


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the users, their roles and limits, and whether they have a token."""

    def rows(s: CaseService) -> list[dict]:
        return [{"name": u.name, "role": u.role.value, "write_off_limit": str(u.write_off_limit),
                 "email": u.email, "has_token": bool(u.token_hash)} for u in s.ctx.users.users]

    def render(result: list[dict]) -> None:
        table = Table("name", "role", "write-off limit", "token")
        for r in result:
            table.add_row(r["name"], r["role"], r["write_off_limit"], "yes" if r["has_token"] else "no")
        print_table(table)

    execute(rows, as_json, render)


@app.command("web")
def web(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API (/api, OpenAPI at /openapi.json) and the console (/console). Ctrl-C stops it."""
    from api.server import check_port, serve

    context = Context()
    try:
        context.users  # a missing or invalid users file is reported before the server starts
        check_port(host, port)
        console.print(f"console: http://{host}:{port}/console/  API: http://{host}:{port}/openapi.json", highlight=False)
        serve(host, port, context)
    except DomainError as error:
        fail(str(error), 2)


@app.command("worker")
def run_worker() -> None:
    """Run a worker in the foreground (configuration from the environment)."""
    import worker

    worker.main()


@app.command("up")
def up(
    demo: Annotated[bool, typer.Option(help="Import sample invoices, open cases, use the demo policy")] = False,
    exit_after_demo: Annotated[bool, typer.Option(help="Stop once the demo scenario has played (for tests)")] = False,
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port")] = 8233,
    smtp_port: Annotated[int, typer.Option(help="Local SMTP sink port")] = 1025,
    web_port: Annotated[int, typer.Option(help="Port of the HTTP API and console")] = 8000,
) -> None:
    """Start the embedded stack in the foreground: Temporal dev server, SMTP sink, worker, API and console. Ctrl-C stops it."""
    from app.stack import run_stack

    try:
        code = asyncio.run(run_stack(demo=demo, exit_after_demo=exit_after_demo, temporal_port=temporal_port,
                                     ui_port=ui_port, smtp_port=smtp_port, web_port=web_port))
    except DomainError as error:
        fail(str(error), 2)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code. Usage errors are one line on stderr and
    code 2, like every bad input."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = authenticate(args)
    except DomainError as error:
        err_console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    try:
        code = _click_command(_group_in(args)).main(args=args, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:
        console.print(error.ctx.get_help())
        return 0
    except click_errors.UsageError as error:
        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        err_console.print(f"[red]error:[/red] {escape(error.format_message() + where)}", highlight=False,
                          soft_wrap=True)
        return 2
    except typer.Abort:
        return 130
    except typer.Exit as done:
        return done.exit_code
    except SQLAlchemyError as error:  # the database named by the settings: one line, not a traceback
        code, message = database_problem(error)
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        return code
    return code if isinstance(code, int) else 0


def database_problem(error: SQLAlchemyError) -> tuple[int, str]:
    """Exit code and one line for a database that cannot be used: 2 for a URL that names no
    database SQLAlchemy can open (a typo in COLLECTIONS_DATABASE_URL), 1 for one that does not answer."""
    from app.settings import Settings

    raw = Settings().database_url
    url = make_url(raw).render_as_string(hide_password=True) if _parses(raw) else repr(raw[:80])
    first = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
    if isinstance(error, ArgumentError):
        return 2, (f"database_url: {first} (COLLECTIONS_DATABASE_URL={url}; e.g. "
                   "postgresql+psycopg://USER@HOST:5432/NAME or sqlite:///PATH)")
    return 1, f"cannot use the database {url}: {first}"


def _parses(url: str) -> bool:
    try:
        make_url(url)
        return True
    except ArgumentError:
        return False


def main() -> None:
    sys.exit(run())


def _article(words: str) -> str:
    """``words`` with its indefinite article: a collector, an integration."""
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


@functools.cache
def _click_command(group: str | None = None):
    """The command tree, built once per process: both the token check and the run need it.
    Building it reads the signature of every command in it, about 0.1 s for all of them, so a
    command line that names a group (`case show`) gets the root with that group alone under it
    (and the top-level commands); anything else gets the whole tree. Calling it directly is what
    ``app(...)`` does, less typer's pretty tracebacks, which this app turns off. Its help is
    reflowed for the terminal's width (``cli.helptext``)."""
    source = app
    if group is not None:
        source = copy.copy(app)  # the app itself keeps every group
        source.registered_groups = [g for g in app.registered_groups if g.name == group]
    root = typer.main.get_command(source)
    reflow_tree(root)
    return root


def _group_in(args: list[str]) -> str | None:
    """The command group the first word of ``args`` names, if it names one."""
    first = args[0] if args else None
    return first if any(g.name == first for g in app.registered_groups) else None


def _command_path(args: list[str]) -> str:
    """The command an argument list names (`case open`), as far as the CLI knows it."""
    command, path = _click_command(_group_in(args)), []
    for word in args:
        if word.startswith("-") or word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    return " ".join(path)


def _take_option(args: list[str], name: str) -> tuple[list[str], str | None]:
    """``args`` without ``--name VALUE`` / ``--name=VALUE``, and that value."""
    rest, value, it = [], None, iter(args)
    for word in it:
        if word == name:
            value = next(it, "")
        elif word.startswith(name + "="):
            value = word.split("=", 1)[1]
        else:
            rest.append(word)
    return rest, value


def authenticate(args: list[str]) -> list[str]:
    """Who runs this command, from their API token (--token, else $COLLECTIONS_TOKEN), and
    may they? The same role matrix as the API's (app/authorization.py). A command that changes
    anything needs a valid token; `--as`, where given, must name the token's user. The
    authenticated user becomes the actor of the command. Returns the arguments without --token."""
    from app.authorization import CLI_ACTIONS, ROLE_MATRIX, allowed
    from domain.authority import ROLE_RANK
    from app.settings import Settings
    from app.tokens import user_for_token
    from domain.users import parse_users

    args, token = _take_option(args, "--token")
    token = token if token is not None else os.environ.get("COLLECTIONS_TOKEN", "")
    path = _command_path(args)
    if path not in CLI_ACTIONS or "--help" in args:
        return args  # an operator's command on this machine (up, worker, users token...), or help
    action, needs_token = CLI_ACTIONS[path]
    if not token:
        if needs_token:
            raise DomainError(f"`{path}` needs your API token: set COLLECTIONS_TOKEN or pass --token; "
                              "an operator issues one with `collections users token NAME`", "token")
        return args
    settings = Settings()
    users_file = settings.users_path
    if not users_file.is_file():
        raise DomainError(f"users file {users_file} not found (set COLLECTIONS_USERS)", "users")
    user = user_for_token(parse_users(users_file.read_text(encoding="utf-8"), str(users_file)), token)
    if user is None:
        raise DomainError("COLLECTIONS_TOKEN (or --token) is not a valid token; ask an operator for a new one "
                          "(`collections users token NAME`)", "token")
    _, as_user = _take_option(args, "--as")
    if as_user is not None and as_user != user.name:
        raise DomainError(f"--as {as_user} does not match the user of the token ({user.name})", "as")
    if not allowed(action, user.role):
        roles = " or ".join(r.value for r in sorted(ROLE_MATRIX[action], key=lambda r: ROLE_RANK[r]))
        raise DomainError(f"only {_article(roles)} may {action} ({user.name} is {_article(user.role.value)})", "as")
    os.environ["COLLECTIONS_USER"] = user.name  # the actor of this command, for Context.actor
    return args


from cli import dunning as _dunning_commands  # noqa: E402,F401  registers sweep, schedule, payments and policy commands
from cli import risk as _risk_commands  # noqa: E402,F401  registers customer, risk, credit-hold, report, insurance, backtest
from cli import audit as _audit_commands  # noqa: E402,F401  registers audit verify, anchor and export
from cli import feed as _feed_commands  # noqa: E402,F401  registers events tail
from cli import notify as _notify_commands  # noqa: E402,F401  registers notify run and notify log
from cli import liveness as _liveness_commands  # noqa: E402,F401  registers pauses, plan withdraw, report stuck
from cli import advances as _advance_commands  # noqa: E402,F401  registers advance and report advances
from cli import subscribers as _subscriber_commands  # noqa: E402,F401  registers subscribers add/list/pause/resume/remove/dispatch
from cli import financing as _financing_commands  # noqa: E402,F401  registers financing and report financing
