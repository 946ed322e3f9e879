"""Early-cash instruments: assigning invoices to a factor, the factor's report, and `report
financing` (financed amounts, fees, discounts granted). docs/FINANCING.md."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from app.services import CaseService
from cli.main import AsOpt, JsonOpt, app, console, execute, print_table, reason_option, show_reply
from cli.risk import report_app

financing_app = typer.Typer(help="Factoring: assign invoices to a factor named in the policy (financing.factors), "
                                 "and record what the factor reports (paid to it, or defaulted).",
                            no_args_is_help=True)
app.add_typer(financing_app, name="financing")


def _financing(s: CaseService):
    from app.financing import FinancingService

    return FinancingService(s)


@financing_app.command("assign")
def financing_assign(
    invoice_ids: Annotated[list[str], typer.Argument(help="The invoices (each with an open case)")],
    to: Annotated[str, typer.Option("--to", help="The factor, by its name in the policy")],
    recourse: Annotated[str, typer.Option("--recourse", help="yes: the ladder goes on and a default is reported to "
                                                             "the factor; no: the factor collects, the case waits")],
    advance_rate: Annotated[str, typer.Option("--advance-rate", help="Share of the assigned amount the factor "
                                                                     "advances, above 0 and at most 1, e.g. 0.9")],
    reason: reason_option("Why the invoices are assigned (the financing agreement)"),
    fee_rate: Annotated[Optional[str], typer.Option("--fee-rate", help="The factor's fee, a share of the assigned "
                                                                       "amount, e.g. 0.015 (default 0)")] = None,
    assignment_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated assignment a no-op")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Assign invoices to a factor: their notices then carry the factor's payment instructions and
    the notice of assignment. All invoices are checked first: one refused, none assigned."""

    def render(r: dict) -> None:
        for a in r["assigned"]:
            console.print(f"{a['invoice_id']} assigned to {r['factor']} ({'with' if r['recourse'] else 'without'} "
                          f"recourse, advance rate {r['advance_rate']}): status {a['status']}, balance "
                          f"{a['balance']}", highlight=False)

    execute(lambda s: _financing(s).assign(invoice_ids, to, recourse, advance_rate, fee_rate, reason,
                                           s.ctx.actor(as_user), assignment_id), as_json, render)


@financing_app.command("settle")
def financing_settle(
    invoice_id: str,
    reason: reason_option("What the factor reported (its statement)"),
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The factor reports the assigned invoice paid to it: the case closes as paid."""
    execute(lambda s: _financing(s).outcome(invoice_id, "collected", reason, s.ctx.actor(as_user)), as_json,
            show_reply)


@financing_app.command("default")
def financing_default(
    invoice_id: str,
    reason: reason_option("What the factor reported (its statement)"),
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The factor reports the customer defaulted: without recourse the loss is the factor's (the case
    closes as resolved); with recourse the invoice comes back and its ladder goes on."""
    execute(lambda s: _financing(s).outcome(invoice_id, "defaulted", reason, s.ctx.actor(as_user)), as_json,
            show_reply)


@report_app.command("financing")
def report_financing(as_json: JsonOpt = False) -> None:
    """Factoring per factor and recourse (assigned, advanced = advance rate x assigned, fees, still with
    the factor) and early-payment discounts granted per quarter."""

    def render(r: dict) -> None:
        if not r["factors"]:
            console.print("no invoices assigned to a factor")
        else:
            table = Table("factor", "recourse", "invoices", "assigned", "advanced", "fees", "outstanding")
            for g in r["factors"]:
                table.add_row(g["factor"], "yes" if g["recourse"] else "no", str(g["invoices"]),
                              f"{g['assigned']} {g['currency']}", g["advanced"], g["fees"], g["outstanding"])
            print_table(table)
        if r["discounts"]:
            table = Table("quarter", "discounts granted", "amount")
            for d in r["discounts"]:
                table.add_row(d["quarter"], str(d["count"]), f"{d['amount']} {d['currency']}")
            print_table(table)
        else:
            console.print("no early-payment discounts granted")

    execute(lambda s: _financing(s).report(), as_json, render)
