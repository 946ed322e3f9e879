"""The credit-risk commands from the command line: each in its table form and with --json
(and --csv for the reports), against a real worker on the Temporal dev server, SQLite
and an SMTP sink. Commands run through the CLI's own main() in a thread while the
worker runs on the test's event loop."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, timedelta

import pytest

from app.context import Context, connect
from app.mailsink import MailSink
from app.settings import Settings
from tests.e2e.test_bad_inputs_cli import Run, cli
from tests.harness import cli_environment, patched_environment, terminate_cases
from app.services import CaseService
from worker import build_worker

from tests.conftest import ROOT

HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


def ledger_text() -> str:
    due = date.today() - timedelta(days=10)
    issue = due - timedelta(days=30)
    rows = [f"{n},C-RISK,Risky Ltd,ap@risky.test,US,en,USD,{amount},{issue},{due},B"
            for n, amount in (("R-1", "1000.00"), ("R-2", "300.00"), ("R-3", "500.00"))]
    return "\n".join([HEADER, *rows]) + "\n"


async def run(*args: str) -> Run:
    return await asyncio.to_thread(cli, *args)


async def ok(*args: str) -> str:
    result = await run(*args)
    assert result.code == 0, (args, result.stderr)
    return result.stdout


async def js(*args: str):
    return json.loads(await ok(*args, "--json"))


@pytest.fixture
async def stack(dev_env, tmp_path):
    sink = MailSink(tmp_path / "mail").start()
    env = cli_environment(dev_env, tmp_path, sink.port, ROOT / "policies" / "default.toml", "risk")
    with patched_environment(env):
        settings = Settings()
        client = await connect(settings)  # the CLI's own (encrypting) converter
        context = Context(settings, client=client)
        try:
            async with build_worker(client, context):
                yield tmp_path
                await terminate_cases(CaseService(context))
        finally:
            sink.stop()
            context.db.dispose()


async def test_credit_risk_from_the_command_line(stack):
    (stack / "ledger.csv").write_text(ledger_text())
    await ok("invoices", "import", str(stack / "ledger.csv"))
    # insure R-3 before its case opens; the case page then shows the insurer's deadlines
    added = await js("insurance", "policy-add", "POL-CLI", "--insurer", "ATR", "--name", "Atradius Test",
                     "--email", "claims@insurer.test", "--notify-within", "P60D", "--max-extension", "P45D",
                     "--claim-waiting", "P90D", "--indemnity", "90")
    assert added["added"] and added["claim_waiting"] == "P90D"
    assert [p["policy_id"] for p in await js("insurance", "policies")] == ["POL-CLI"]
    assert (await js("insurance", "cover", "R-3", "--policy", "POL-CLI"))["insured"]
    for invoice in ("R-1", "R-2", "R-3"):
        await ok("case", "open", invoice)
    shown = await js("case", "show", "R-3")
    assert shown["insurance"]["policy"] == "POL-CLI" and shown["insurance"]["stage"] == "insured"
    assert "insured: Atradius Test policy POL-CLI" in await ok("case", "show", "R-3")

    # an overpayment is customer credit, with its age; applied to another invoice
    await ok("pay", "R-1", "1100.00", "--payment-id", "P-1")
    [credit] = await js("payments", "unapplied")
    assert (credit["customer_id"], credit["balance"], credit["age_days"]) == ("C-RISK", "100.00", 0)
    applied = await js("payments", "apply-credit", "R-2")
    assert applied["balance"] == "200.00" and applied["applied"] == "100.00"
    assert await js("payments", "unapplied") == []
    prepaid = await js("payments", "prepay", "C-RISK", "50", "--payment-id", "PP-1")
    assert prepaid["recorded"] and (await js("payments", "unapplied"))[0]["balance"] == "50.00"
    assert "C-RISK" in await ok("payments", "unapplied")

    # scorecard, limit, watchlist, hold and its outbox
    customer = await js("customer", "show", "C-RISK")
    assert customer["grade"] == "B" and customer["graded_by"] == "import" and len(customer["top_factors"]) == 3
    assert "factor" in await ok("customer", "show", "C-RISK")
    limit = await js("customer", "limit", "C-RISK", "500", "--reason", "review", "--as", "demo-supervisor")
    assert limit["credit_limit"] == "500.00"
    [watch] = await js("risk", "watchlist")
    assert watch["customer_id"] == "C-RISK" and "above the limit 500.00" in watch["reasons"][0]
    assert (await js("risk", "rescore"))["customers"] == 1
    held = await js("credit-hold", "place", "C-RISK", "--reason", "over limit", "--as", "demo-supervisor")
    assert held["on_hold"]
    [entry] = await js("credit-hold", "outbox")
    assert entry["action"] == "hold" and entry["reason"] == "over limit"
    acked = await js("credit-hold", "ack", entry["outbox_id"], "--consumer", "erp")
    assert acked["acked_by"] == "erp"
    assert await js("credit-hold", "outbox") == [] and len(await js("credit-hold", "outbox", "--all")) == 1
    assert not (await js("credit-hold", "release", "C-RISK", "--reason", "paid", "--as", "demo-manager"))["on_hold"]

    # KPI reports: table, JSON and CSV
    today = date.today().isoformat()
    figures = await js("report", "kpis", "--to", today)
    assert figures["collectors"][0]["cases_closed"] == 1 and figures["invoices_collected"] == 1
    dso = list(csv.DictReader(io.StringIO(await ok("report", "dso", "--csv", "--to", today))))
    assert len(dso) == 1 and dso[0]["currency"] == "USD" and dso[0]["dso_standard"]
    aging = (await js("report", "aging", "--to", today))["rows"]
    assert {r["bucket"]: r["amount"] for r in aging}["1-30"] == "700.00"  # R-2 200.00 + R-3 500.00
    assert "collector" in await ok("report", "collectors")
