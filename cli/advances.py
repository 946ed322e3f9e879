"""Advance receipts: the register, applying an advance to an invoice, refunds under four eyes,
and `report advances` (those that linger past the policy's limit). docs/ADVANCES.md."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from app.services import CaseService
from cli.dunning import _date
from cli.main import AsOpt, JsonOpt, app, console, execute, print_table, reason_option
from cli.risk import AsOfOpt, report_app

advance_app = typer.Typer(help="Advance receipts (prepayments): apply to invoices, refund (four eyes above the "
                               "policy's threshold). The register: `report advances`.", no_args_is_help=True)
app.add_typer(advance_app, name="advance")


def _advances(s: CaseService):
    from app.advances import AdvanceService

    return AdvanceService(s)


def _register_table(result: dict) -> None:
    rows = result["advances"]
    if not rows:
        console.print("no advances" + (" linger" if result.get("lingering_only") else ""))
    else:
        table = Table("advance", "customer", "source", "held", "amount", "received", "age (days)", "status")
        for r in rows:
            status = r["status"] + (" (lingering)" if r["lingering"] else "")
            table.add_row(r["advance_id"], r["customer_id"], r["source"], f"{r['held']} {r['currency']}",
                          r["amount"], r["received_on"], str(r["age_days"]), status)
        print_table(table)
    if result.get("requests") and not result.get("lingering_only"):
        _requests_table(result["requests"])
    for currency, amount in result["held"].items():
        console.print(f"held (a liability, not in receivables): {amount} {currency}; lingering "
                      f"(over {result['linger_after_days']} days): {result['lingering_held'][currency]} {currency}",
                      highlight=False)


@report_app.command("advances")
def report_advances(
    as_of: AsOfOpt = None,
    lingering: Annotated[bool, typer.Option("--lingering", help="Only advances held longer than the policy's "
                                                                "advances.linger_after")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The advances register: each advance with its customer, source, age and status (held, partly
    applied, applied, refunded), and what they hold per currency."""

    def action(s: CaseService) -> dict:
        return {**_advances(s).report(_date(as_of, "as-of"), lingering), "lingering_only": lingering}

    execute(action, as_json, _register_table)


def _requests_table(rows: list[dict]) -> None:
    table = Table("request", "customer", "outstanding", "due", "status", "order")
    for r in rows:
        status = r["status"] + (f" ({r['days_overdue']} days)" if r["status"] == "overdue" else "")
        table.add_row(r["request_id"], r["customer_id"], f"{r['outstanding']} {r['currency']}", r["due_date"], status,
                      r["order_id"] or "")
    print_table(table)


@advance_app.command("request")
def advance_request(
    customer_id: str,
    amount: str,
    due: Annotated[str, typer.Option("--due", help="Date the advance is due (YYYY-MM-DD)")],
    reference: Annotated[str, typer.Option(help="What it is for, e.g. \"30 % deposit order 77\"")],
    currency: Annotated[str, typer.Option(help="Currency")] = "USD",
    order: Annotated[Optional[str], typer.Option("--order", help="The sales order it is a deposit for")] = None,
    request_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated request a no-op")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask a customer for an advance (a deposit before delivery); pay it with
    `payments prepay CUSTOMER_ID AMOUNT --request REQUEST_ID`."""
    execute(lambda s: _advances(s).request(customer_id, amount, currency, _date(due, "due"), reference,
                                           s.ctx.actor(as_user), order, request_id), as_json,
            lambda r: console.print(f"advance request {r['request_id']}: {r['amount']} {r['currency']} due "
                                    f"{r['due_date']}", highlight=False))


@advance_app.command("apply")
def advance_apply(
    advance_id: str,
    invoice_id: str,
    amount: Annotated[Optional[str], typer.Option(help="How much (default: as much as fits)")] = None,
    allocation_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated application a no-op")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply an advance to an invoice of its customer, whether or not the invoice has a case."""
    execute(lambda s: _advances(s).apply(advance_id, invoice_id, amount, s.ctx.actor(as_user), allocation_id),
            as_json, lambda r: console.print(f"{r['applied']} {r['currency']} of advance {advance_id} applied to "
                                             f"invoice {invoice_id}", highlight=False))


@advance_app.command("refund")
def advance_refund(
    advance_id: str,
    amount: str,
    reason: reason_option("Why the advance is paid back"),
    refund_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated request a no-op")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pay an advance (or part of it) back: at once up to the policy's single-person threshold,
    above it the refund waits for a second person (`advance approve-refund`)."""
    execute(lambda s: _advances(s).refund(advance_id, amount, reason, s.ctx.actor(as_user), refund_id), as_json,
            lambda r: console.print(f"refund {r['refund_id']} of {r['amount']} {r['currency']}: {r['status']}",
                                    highlight=False))


@advance_app.command("approve-refund")
def advance_approve_refund(refund_id: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a refund that waits (four eyes: not the requester; within your authority)."""
    execute(lambda s: _advances(s).approve_refund(refund_id, s.ctx.actor(as_user)), as_json,
            lambda r: console.print(f"refund {refund_id} approved by {r['approved_by']}: refunded", highlight=False))


@advance_app.command("refunds")
def advance_refunds(as_json: JsonOpt = False) -> None:
    """Refunds waiting for a second person."""

    def render(rows: list[dict]) -> None:
        table = Table("refund", "advance", "customer", "amount", "requested by", "reason")
        for r in rows:
            table.add_row(r["refund_id"], r["advance_id"], r["customer_id"], f"{r['amount']} {r['currency']}",
                          r["requested_by"], r["reason"])
        print_table(table)

    execute(lambda s: _advances(s).pending_refunds(), as_json, render)
