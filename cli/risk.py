"""CLI commands of credit risk: customer scorecard, watchlist, credit holds and their outbox,
customer credit (unapplied cash), credit insurance, collection KPI reports, backtest.

Registered on the main app by cli/main.py (imported at its end). Every command takes
--json; bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.main import AsOpt, CsvOpt, JsonOpt, app, console, execute, print_table, reason_option, show_reply
from cli.dunning import _date, payments_app
from app.services import CaseService
from domain.errors import DomainError

customer_app = typer.Typer(help="Customers: risk score and grade, credit limit.", no_args_is_help=True)
risk_app = typer.Typer(help="Customer risk: early-warning watchlist, rescoring.", no_args_is_help=True)
hold_app = typer.Typer(help="Credit holds and their outbox for the ERP.", no_args_is_help=True)
report_app = typer.Typer(help="Collection KPIs (table, --json or --csv); formulas in docs/KPIS.md.",
                         no_args_is_help=True)
insurance_app = typer.Typer(help="Credit insurance: insurer policies, insured invoices, indemnities.",
                            no_args_is_help=True)
for sub, name in ((customer_app, "customer"), (risk_app, "risk"), (hold_app, "credit-hold"),
                  (report_app, "report"), (insurance_app, "insurance")):
    app.add_typer(sub, name=name)

AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="As of this date (YYYY-MM-DD), default today")]




def _customers(s: CaseService):
    from app.customers import CustomerService

    return CustomerService(s.ctx)


def _credit(s: CaseService):
    from app.credit import CreditService

    return CreditService(s)


def _insurance(s: CaseService):
    from app.insurance import InsuranceService

    return InsuranceService(s)


# -- customers and risk -----------------------------------------------------------------------------


def show_customer(r: dict) -> None:
    console.print(f"[bold]{r['customer_id']}[/bold] {r['name']} <{r['email']}>  grade [cyan]{r['grade']}[/cyan] "
                  f"({'scorecard' if r['graded_by'] == 'scorecard' else 'as imported'})  "
                  f"score {r['score']} -> {r['scored_grade']}", highlight=False)
    if r["previous_grade"]:
        console.print(f"grade changed from {r['previous_grade']} on {(r['graded_at'] or '')[:10]}", highlight=False)
    limit = f"{r['credit_limit']} {r['credit_limit_currency']}" if r["credit_limit"] else "none"
    a = r["assessment"]
    console.print(f"exposure {a['exposure']} {a['currency']}, credit limit {limit}"
                  + ("  [red]OVER LIMIT[/red]" if a["over_limit"] else "")
                  + (f"  [red]ON CREDIT HOLD[/red] ({r['hold']['reason']})" if r["on_hold"] else ""), highlight=False)
    table = Table("factor", "points", "why")
    for f in r["top_factors"]:
        table.add_row(f["name"], f["points"], f["detail"])
    print_table(table)
    for c in r["credit"]:
        console.print(f"customer credit {c['balance']} {c['currency']} (oldest {c['oldest']}, {c['age_days']} days)")


@customer_app.command("show")
def customer_show(customer_id: str, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Score, grade and the top factors behind it; limit, hold and credit."""
    execute(lambda s: _customers(s).show(customer_id, _date(as_of, "as-of")), as_json, show_customer)


@customer_app.command("statement")
def customer_statement(
    customer_id: str,
    as_of: AsOfOpt = None,
    pdf: Annotated[Optional[str], typer.Option("--pdf", help="Also write the statement as a PDF letter to FILE")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Statement of account: every open item as it stood at the end of the as-of day (payments by
    their value date), with fees and interest, the ageing, the credit held that day and the balance due
    net of it, and how to pay; with --pdf, the letter
    in the customer's language."""
    from datetime import datetime, timezone

    from app.account_statement import statement, statement_pdf

    def build(s: CaseService) -> dict:
        day = _date(as_of, "as-of") or datetime.now(timezone.utc).date()
        data = statement(s.ctx, customer_id, day, s.ctx.settings.payment_instructions)
        if pdf:
            Path(pdf).write_bytes(statement_pdf(data))
            data["pdf"] = pdf
        return data

    execute(build, as_json, show_statement)


def show_statement(r: dict) -> None:
    console.print(f"[bold]Statement of account[/bold] {r['name']} ({r['customer_id']}) as of {r['as_of']}")
    table = Table("invoice", "due", "days", "fees", "interest", "comp.", "open", "cur")
    for i in r["items"]:
        table.add_row(i["invoice_id"], i["due_date"], str(i["days_overdue"]), i["late_fees"], i["interest"],
                      i["compensation"], i["open"], i["currency"])
    if r["items"]:
        print_table(table)
    else:  # an empty table looked like a failed command
        console.print(f"No open items at the end of {r['as_of']}.", highlight=False)
    for currency, t in r["totals"].items():
        console.print(f"{currency}: open {t['open']}  (" + ", ".join(f"{b} {t[b]}" for b in r["buckets"]) + ")",
                      highlight=False)
    for currency, d in r["balance_due"].items():  # the credit held that day, and what is due net of it
        left = f", credit left in your favour {d['credit_left']}" if Decimal(d["credit_left"]) > 0 else ""
        console.print(f"{currency}: total open {d['total_open']}, less your credit {d['credit']}, "
                      f"balance due {d['balance_due']}{left}", highlight=False)
    if r.get("pdf"):
        console.print(f"PDF written to {r['pdf']}")


@customer_app.command("limit", context_settings={"ignore_unknown_options": True})
def customer_limit(
    customer_id: str,
    amount: Annotated[str, typer.Argument(help="Credit limit, or 'none' to remove it")],
    reason: reason_option("Why the limit changes, e.g. 'annual review'"),
    currency: Annotated[Optional[str], typer.Option(
        help="Currency of the limit (default: the currency of the customer's invoices)")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a customer's credit limit (supervisors and finance managers), with a reason (CreditLimitSet)."""
    execute(lambda s: _customers(s).set_limit(customer_id, amount, currency, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"{customer_id}: credit limit "
                                    f"{r['credit_limit'] + ' ' + r['credit_limit_currency'] if r['credit_limit'] else 'none'}"))


@risk_app.command("watchlist")
def risk_watchlist(
    days: Annotated[Optional[int], typer.Option(help="Grade worsened within this many days (default: policy)")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Early warning: customers whose grade worsened lately or whose exposure exceeds their limit."""

    def render(rows: list[dict]) -> None:
        table = Table("customer", "grade", "was", "exposure", "limit", "hold", "why")
        for r in rows:
            table.add_row(r["customer_id"], r["grade"] or "", r["previous_grade"] or "", r["exposure"] or "",
                          r["credit_limit"] or "", "yes" if r["on_hold"] else "", "; ".join(r["reasons"]))
        print_table(table)
        console.print(f"{len(rows)} customer(s) to watch")

    execute(lambda s: _customers(s).watchlist(days, _date(as_of, "as-of")), as_json, render)


@risk_app.command("rescore")
def risk_rescore(
    customer: Annotated[Optional[str], typer.Option(help="Only this customer")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score customers now; a changed grade is recorded (the worker does this as events arrive)."""

    def action(s: CaseService):
        service = _customers(s)
        day = _date(as_of, "as-of")
        return service.assess(customer, day) if customer else service.rescore_all(day)

    execute(action, as_json)


# -- credit holds ------------------------------------------------------------------------------------


@hold_app.command("place")
def hold_place(customer_id: str, reason: Annotated[str, typer.Option(help="Why")], as_user: AsOpt = None,
               as_json: JsonOpt = False) -> None:
    """Put a customer on credit hold (supervisors and finance managers); published in the outbox."""
    execute(lambda s: _customers(s).place_hold(customer_id, reason, s.ctx.actor(as_user)), as_json,
            lambda r: console.print(f"{customer_id} is on credit hold: {r['hold_reason']}"))


@hold_app.command("release")
def hold_release(customer_id: str, reason: Annotated[str, typer.Option(help="Why")], as_user: AsOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Release a customer's credit hold; published in the outbox."""
    execute(lambda s: _customers(s).release_hold(customer_id, reason, s.ctx.actor(as_user)), as_json,
            lambda r: console.print(f"{customer_id}: credit hold released"))


@hold_app.command("outbox")
def hold_outbox(all_entries: Annotated[bool, typer.Option("--all", help="Include acknowledged entries")] = False,
                as_json: JsonOpt = False) -> None:
    """Credit holds placed and released, for the ERP to read (unacknowledged ones by default)."""

    def render(rows: list[dict]) -> None:
        table = Table("outbox id", "customer", "action", "reason", "at", "acknowledged by")
        for r in rows:
            table.add_row(r["outbox_id"], r["customer_id"], r["action"], r["reason"], (r["occurred_at"] or "")[:19],
                          r["acked_by"] or "")
        print_table(table)

    execute(lambda s: _customers(s).outbox(not all_entries), as_json, render)


@hold_app.command("ack")
def hold_ack(outbox_id: str, consumer: Annotated[str, typer.Option(help="Who consumed it, e.g. erp")] = "erp",
             as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Acknowledge an outbox entry (recorded as an event on the customer's stream)."""
    execute(lambda s: _customers(s).acknowledge(outbox_id, consumer, s.ctx.actor(as_user)), as_json,
            lambda r: console.print(f"outbox entry {outbox_id} acknowledged by {r['acked_by']}"))


# -- customer credit ----------------------------------------------------------------------------------


@payments_app.command("unapplied")
def payments_unapplied(customer: Annotated[Optional[str], typer.Option(help="Only this customer")] = None,
                       as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Customer credit (overpayments, prepayments) not applied yet, with its age."""

    def render(rows: list[dict]) -> None:
        table = Table("customer", "credit", "oldest receipt", "age (days)", "receipts")
        for r in rows:
            table.add_row(r["customer_id"], f"{r['balance']} {r['currency']}", r["oldest"] or "",
                          str(r["age_days"] if r["age_days"] is not None else ""), str(r["receipts"]))
        print_table(table)

    execute(lambda s: _credit(s).unapplied(_date(as_of, "as-of"), customer), as_json, render)


@payments_app.command("apply-credit")
def payments_apply_credit(
    invoice_id: Annotated[Optional[str], typer.Argument(help="Invoice (or case) to apply the customer's credit to")] = None,
    amount: Annotated[Optional[str], typer.Option(help="How much (default: as much as fits)")] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Apply all credit to open cases, oldest due first")] = False,
    customer: Annotated[Optional[str], typer.Option(help="With --auto: only this customer")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply customer credit to an overdue invoice (recorded on the customer and the case)."""

    def action(s: CaseService):
        if auto == (invoice_id is not None):
            raise DomainError("give an INVOICE_ID or --auto (not both)", "invoice_id")
        if auto:
            return _credit(s).auto_apply(customer, s.ctx.actor(as_user))
        return _credit(s).apply(invoice_id, amount, s.ctx.actor(as_user))

    execute(action, as_json, lambda r: console.print(f"{len(r)} application(s)") if isinstance(r, list) else show_reply(r))


@payments_app.command("prepay", context_settings={"ignore_unknown_options": True})
def payments_prepay(
    customer_id: str,
    amount: str,
    currency: Annotated[str, typer.Option(help="Currency")] = "USD",
    payment_id: Annotated[Optional[str], typer.Option(help="Id that makes a repeated payment a no-op")] = None,
    received_on: Annotated[Optional[str], typer.Option(help="Date received (YYYY-MM-DD), default today")] = None,
    reference: Annotated[str, typer.Option(help="Bank reference")] = "",
    request: Annotated[Optional[str], typer.Option("--request", help="The advance request it pays")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a prepayment (no invoice): it becomes customer credit, an advance on the register."""
    execute(lambda s: _credit(s).prepay(customer_id, amount, currency, s.ctx.actor(as_user), payment_id,
                                        _date(received_on, "received-on"), reference, request), as_json,
            lambda r: console.print(f"prepayment {r['payment_id']} of {r['amount']} {r['currency']} recorded for "
                                    f"{customer_id}; {len(r['applied'])} application(s)"))


# -- credit insurance ------------------------------------------------------------------------------------


@insurance_app.command("policy-add")
def insurance_policy_add(
    policy_id: str,
    insurer: Annotated[str, typer.Option(help="Insurer id")],
    name: Annotated[str, typer.Option(help="Insurer name")],
    email: Annotated[str, typer.Option(help="Address overdue notifications go to")],
    notify_within: Annotated[str, typer.Option(help="Notification deadline after the due date, e.g. P60D")],
    max_extension: Annotated[str, typer.Option(help="Longest extension of payment after the due date, e.g. P60D")],
    claim_waiting: Annotated[str, typer.Option(help="Claim waiting period after the notification, e.g. P90D")],
    indemnity: Annotated[str, typer.Option(help="Indemnity percentage, e.g. 90")],
    reason: reason_option("Why the policy is added", "insurer policy added") = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an insurer policy with its terms (re-adding the same terms is a no-op; InsurerPolicyAdded)."""
    execute(lambda s: _insurance(s).add_policy(policy_id, insurer, name, email, notify_within, max_extension,
                                               claim_waiting, indemnity, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"insurer policy {policy_id} {'added' if r['added'] else 'unchanged'}"))


@insurance_app.command("policies")
def insurance_policies(as_json: JsonOpt = False) -> None:
    """Insurer policies and their terms."""

    def render(rows: list[dict]) -> None:
        table = Table("policy", "insurer", "email", "notify within", "max extension", "claim waiting", "indemnity %")
        for r in rows:
            table.add_row(r["policy_id"], r["insurer_name"], r["insurer_email"], r["notify_within"], r["max_extension"],
                          r["claim_waiting"], r["indemnity_percent"])
        print_table(table)

    execute(lambda s: _insurance(s).policies(), as_json, render)


@insurance_app.command("cover")
def insurance_cover(invoice_id: str, policy: Annotated[str, typer.Option(help="Insurer policy id")],
                    reason: reason_option("Why the invoice is insured", "invoice insured") = None,
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Insure an invoice under a policy (before its case opens; InvoiceInsured)."""
    execute(lambda s: _insurance(s).cover(invoice_id, policy, s.ctx.actor(as_user), reason), as_json,
            lambda r: console.print(f"invoice {invoice_id} insured under {policy}"))


@insurance_app.command("indemnity", context_settings={"ignore_unknown_options": True})
def insurance_indemnity(
    case_id: str,
    amount: str,
    reference: Annotated[str, typer.Option(help="The insurer's payment reference")] = "",
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the insurer's indemnity on a case with a filed claim (supervisors and finance managers)."""
    execute(lambda s: _insurance(s).record_indemnity(case_id, amount, s.ctx.actor(as_user), reference), as_json,
            show_reply)


# -- KPI reports ---------------------------------------------------------------------------------------------


def _report_command(name: str, help_text: str) -> None:
    def command(
        start: Annotated[Optional[str], typer.Option("--from", help="First day of the period (default: 90 days back)")] = None,
        end: Annotated[Optional[str], typer.Option("--to", help="Last day of the period (default: today)")] = None,
        currency: Annotated[Optional[str], typer.Option(help="Currency (default: the ledger's most used)")] = None,
        as_csv: CsvOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        from app import kpis

        others: list[str] = []  # the ledger's other currencies, when the default one was taken

        def action(s: CaseService):
            from app.reports import currencies

            figures = kpis.kpis(s.ctx, _date(start, "from"), _date(end, "to"), currency)
            if currency is None:
                others.extend(c for c in currencies(s.ctx) if c != figures["currency"])
            return kpis.report_view(name, figures)

        def render(result: dict) -> None:
            rows = kpis.report_rows(name, result) if name == "kpis" else result["rows"]
            if as_csv:
                sys.stdout.write(kpis.to_csv(rows))
                return
            if not rows:
                console.print("nothing in this period")
            else:
                table = Table(*rows[0].keys())
                for row in rows:
                    table.add_row(*(str(v) if v is not None else "" for v in row.values()))
                print_table(table)
            for note in result.get("notes") or []:
                console.print(f"note: {note}", highlight=False)
            if others:  # a report is of one currency: say which others the ledger holds
                console.print(f"in one currency, the ledger's most used; also invoiced in {', '.join(others)} "
                              f"(--currency {others[0]})", highlight=False)

        execute(action, as_json, render)

    command.__doc__ = help_text
    report_app.command(name)(command)


for _name, _help in (
    ("kpis", "Every KPI of the period in one table."),
    ("aging", "Receivables by days past due at the end of the period."),
    ("dso", "Days sales outstanding, standard and countback."),
    ("cei", "Collection effectiveness index."),
    ("turnover", "Receivables turnover and its days."),
    ("promises", "Promise-kept rate."),
    ("collect", "Average days from invoice to collection."),
    ("write-offs", "Write-off ratio (principal written off / credit sales), and the fees written off apart."),
    ("collectors", "Per collector: cases closed, cash collected, amount applied, average days to close, "
                   "broken promises."),
):
    _report_command(_name, _help)


@report_app.command("reconcile")
def report_reconcile(
    start: Annotated[Optional[str], typer.Option("--from", help="First day of the period (default: 90 days back)")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Last day of the period (default: today)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute balances and the period's settlements from the events alone and compare them
    with the read models, the payments table and the KPIs; exit 1 naming each difference."""
    from app.reconcile import reconcile

    found: dict = {}

    def action(s: CaseService) -> dict:
        found.update(reconcile(s.ctx, _date(start, "from"), _date(end, "to")))
        return found

    def render(result: dict) -> None:
        for line in result["differences"]:
            console.print(f"[red]difference:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        verdict = "all agree" if result["agree"] else f"{len(result['differences'])} difference(s)"
        console.print(f"{result['cases']} cases, {result['payments']} payments, {result['from']} to {result['to']}: "
                      f"{verdict}", highlight=False)

    execute(action, as_json, render)
    if not found.get("agree", False):
        raise typer.Exit(1)


# -- backtest ---------------------------------------------------------------------------------------------


ENGINES = ("simulate", "temporal")
COMPARED_KPIS = ("dso_standard", "dso_countback", "cei_percent")


@app.command("backtest")
def backtest(
    ledger: Path,
    policy: Annotated[Optional[Path], typer.Option("--policy", help="Policy file (TOML) to backtest")] = None,
    format: Annotated[str, typer.Option("--format", help="Column layout: standard | ibm-ar")] = "standard",
    customers: Annotated[Optional[int], typer.Option(help="Only the first N customers (by id): a reduced run")] = None,
    customer: Annotated[Optional[list[str]], typer.Option(help="Only this customer (repeatable)")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="simulate: the pure rules on a virtual clock, seconds (default); "
                         "temporal: the real workflows on a time-skipping server, the reference")] = "simulate",
    compare: Annotated[Optional[tuple[Path, Path]], typer.Option(
        "--compare", metavar="POLICY_A POLICY_B",
        help="Backtest two policies on the same ledger and show both reports side by side with "
             "the differences (instead of --policy)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a historical ledger under a policy (or two, --compare); report what it would have done."""
    from app.backtest import run_backtest
    from app.simulate import compare_reports, run_simulation

    if engine not in ENGINES:
        _bad(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if (policy is None) == (compare is None):
        _bad("policy: give --policy FILE, or --compare POLICY_A POLICY_B (not both)")

    def one(file: Path):
        if engine == "temporal":
            return run_backtest(ledger, file, format, customers, customer)
        return run_simulation(ledger, file, format, customers, customer)

    async def both():
        import inspect

        reports = []
        for file in compare:
            r = one(file)
            reports.append(await r if inspect.isawaitable(r) else r)
        return compare_reports(*reports)

    def render(r: dict) -> None:
        console.print(f"{r['invoices']} invoices of {r['customers']} customers, {r['period']['from']} to "
                      f"{r['period']['to']}; policy {r['policy_version']} (grace {r['grace_days']} days); "
                      f"engine {r.get('engine', 'temporal')}, {r['run_seconds']} s", highlight=False)
        table = Table("figure", "value")
        for key in ("cases_opened", "paid_without_case", "notices_sent", "escalations", "approvals_needed",
                    "disputes_opened", "fees_charged", "risk_grade_changes", "credit_holds"):
            table.add_row(key, str(r[key]))
        table.add_row("notices_by_level", ", ".join(f"{k}: {v}" for k, v in r["notices_by_level"].items()))
        table.add_row("cases_by_outcome", ", ".join(f"{k}: {v}" for k, v in r["cases_by_outcome"].items()))
        for key in ("dso_standard", "cei_percent", "average_days_to_collect", "write_off_ratio_percent"):
            table.add_row(key, str(r["kpis"][key]))
        print_table(table)
        expected = r["expected_from_ledger"]
        console.print(f"counted straight from the ledger: {expected['cases']} cases, {expected['paid_cases']} paid",
                      highlight=False)

    def render_comparison(c: dict) -> None:
        a, b = c["a"], c["b"]
        console.print(f"{c['invoices']} invoices of {c['customers']} customers; A = {a['policy_version']} "
                      f"({a['policy']}), B = {b['policy_version']} ({b['policy']}); engine {c['engine']}",
                      highlight=False)
        table = Table("figure", "A", "B", "B - A")
        for row in c["rows"]:
            style = "bold yellow" if row["differs"] else None
            table.add_row(row["figure"], str(row["a"]), str(row["b"]), str(row["difference"]), style=style)
        print_table(table)
        changed = sum(1 for row in c["rows"] if row["differs"])
        console.print(f"{changed} of {len(c['rows'])} figures differ", highlight=False)

    if compare is not None:
        execute(lambda s: both(), as_json, render_comparison)
    else:
        execute(lambda s: one(policy), as_json, render)


def _bad(message: str) -> None:
    from cli.main import fail

    fail(message, 2)
