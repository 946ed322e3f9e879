"""No silent stall (docs/CONTROLS.md): plan withdraw, dunning pauses of a case or a customer,
and the stuck-case report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from app.liveness import pause_customer, resume_customer, stuck_cases
from cli.main import AsOpt, JsonOpt, _actor, case_app, console, execute, plan_app, print_table, show_reply
from cli.risk import customer_app, report_app

UntilOpt = Annotated[str, typer.Option(help="End of the pause: YYYY-MM-DD (dunning resumes at 00:00 UTC that day) "
                                            "or a date-time with its offset, e.g. 2026-12-31T09:00:00Z")]
CodeOpt = Annotated[str, typer.Option(help="Reason code, e.g. customer_holiday, insolvency_talks")]
WhyOpt = Annotated[str, typer.Option(help="Why (kept on the event)")]


@plan_app.command("withdraw")
def plan_withdraw(case_id: str, reason: WhyOpt, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Withdraw a proposed plan nobody has accepted: dunning resumes where it stopped."""
    execute(lambda s: s.withdraw_plan(case_id, reason, _actor(s, as_user)), as_json, show_reply)


@case_app.command("pause")
def case_pause(case_id: str, until: UntilOpt, reason: CodeOpt, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Pause dunning (no notices) until a date; beyond a collector's maximum it waits for a supervisor."""
    execute(lambda s: s.pause(case_id, until, reason, _actor(s, as_user)), as_json, show_reply)


@case_app.command("resume")
def case_resume(case_id: str, reason: WhyOpt, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """End a dunning pause now: the ladder continues where it stopped."""
    execute(lambda s: s.resume(case_id, reason, _actor(s, as_user)), as_json, show_reply)


_OUTCOMES = {"paused": "paused", "awaiting_approval": "waiting for approval", "not_paused": "not paused"}


def _show_customer_pause(result: dict) -> None:
    """What the pause did: to the customer (cases opened while it lasts open paused), then to
    each open case: paused, waiting for a supervisor's approval, or not paused and why."""
    until = result["until"]
    console.print(f"customer {result['customer_id']}: pause until {until} ({result['reason']}) recorded; "
                  "a case opened before then gets the same pause", highlight=False)
    for case in result["cases"]:
        if case["outcome"] == "paused":
            said = f"paused until {until}"
        elif case["outcome"] == "awaiting_approval":
            said = f"not paused yet: the pause waits for a supervisor's approval ({case['approval_id']})"
        else:
            said = f"not paused: {case['error']}"
        console.print(f"{case['invoice_id']}: {said}", highlight=False)
    counts = ", ".join(f"{sum(c['outcome'] == outcome for c in result['cases'])} {words}"
                       for outcome, words in _OUTCOMES.items() if any(c["outcome"] == outcome for c in result["cases"]))
    console.print(f"{len(result['cases'])} open case(s) of customer {result['customer_id']}"
                  + (f": {counts}" if counts else ""), highlight=False)


def _show_customer_resume(result: dict) -> None:
    for case in result["cases"]:
        console.print(f"{case['invoice_id']}: resumed (status {case['status']})", highlight=False)
    console.print(f"{len(result['cases'])} paused case(s) of customer {result['customer_id']} resumed", highlight=False)


@customer_app.command("pause")
def customer_pause(customer_id: str, until: UntilOpt, reason: CodeOpt, as_user: AsOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Pause dunning on every open case of a customer until a date."""
    execute(lambda s: pause_customer(s, customer_id, until, reason, _actor(s, as_user)), as_json,
            _show_customer_pause)


@customer_app.command("revoke-links")
def customer_revoke_links(customer_id: str, reason: WhyOpt, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Stop every self-service link sent to a customer so far (a notice went astray); the next notice carries a new one."""
    from app.customers import CustomerService

    def show(result: dict) -> None:
        console.print(f"links of customer {result['customer_id']} issued until {result['revoked_at']} no longer work",
                      highlight=False)

    execute(lambda s: CustomerService(s.ctx).revoke_links(customer_id, reason, _actor(s, as_user)), as_json, show)


@customer_app.command("resume")
def customer_resume(customer_id: str, reason: WhyOpt, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """End the dunning pause of every paused open case of a customer."""
    execute(lambda s: resume_customer(s, customer_id, reason, _actor(s, as_user)), as_json,
            _show_customer_resume)


def _show_stuck(rows: list[dict]) -> None:
    if not rows:
        console.print("no stuck cases: every open case has a timer or a pending item with an owner")
        return
    table = Table("invoice", "status", "waiting for", "since", "case id")
    for r in rows:
        table.add_row(r["invoice_id"], r["status"], r["waiting_for"], r["since"][:19], r["case_id"])
    print_table(table)
    console.print(f"{len(rows)} stuck case(s): open, with no timer and no pending item with an owner")


@report_app.command("stuck")
def report_stuck(as_json: JsonOpt = False) -> None:
    """Open cases that wait on nobody (no timer, no pending human item with an owner); should be none."""
    execute(stuck_cases, as_json, _show_stuck)
