"""Payments made through the CLI count once in the KPIs, and `report reconcile` finds
any read model that disagrees with the events (here: one changed behind its back)."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from decimal import Decimal

from tests.e2e.test_cli import ROOT, running_stack, wait_for

TODAY = date.today()
DEFAULT_POLICY = ROOT / "policies" / "default.toml"


def _ledger(path):
    issued, due = TODAY - timedelta(days=40), TODAY - timedelta(days=10)
    rows = [
        "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade",
        f"R-1,C-1,One Ltd,ap@one.test,US,en,USD,1000.00,{issued},{due},B",
        f"R-2,C-2,Two Ltd,ap@two.test,US,en,USD,300.00,{issued},{TODAY + timedelta(days=20)},B",
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _erp_export(tmp_path, invoice: str, paid: str | None = None) -> str:
    """An ERP export of one invoice overdue by 10 days, ``invoice`` its columns up to the amount;
    with ``paid``, the ERP's paid column too."""
    path = tmp_path / f"erp-{invoice.replace(',', '_').replace('@', '_')}-{paid or ''}.csv"
    extra = ("", "") if paid is None else (",document_type,references,status,paid", f",,,,{paid}")
    path.write_text("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,"
                    f"issue_date,due_date,risk_grade{extra[0]}\n{invoice},{TODAY - timedelta(days=40)},"
                    f"{TODAY - timedelta(days=10)},B{extra[1]}\n")
    return str(path)


def _credit(cli, customer_id: str) -> list[tuple[str, str]]:
    """The customer's credit as `customer show` gives it: (currency, balance)."""
    return [(c["currency"], c["balance"]) for c in cli.json("customer", "show", customer_id)["credit"]]


def _credit_after_amendment(cli, invoice_id: str, customer_id: str, credit: str) -> dict:
    """An amendment below what was paid: the customer's credit in EUR in `customer show` and
    `payments unapplied`, and the case resolved at 0.00 (returned, with its events)."""
    assert _credit(cli, customer_id) == [("EUR", credit)]
    unapplied = cli.json("payments", "unapplied", "--customer", customer_id)
    assert [(r["currency"], r["balance"]) for r in unapplied] == [("EUR", credit)], unapplied
    case = cli.json("case", "show", invoice_id)
    assert case["status"] == "resolved" and case["balance"] == "0.00", case
    return case


def _reconciled(cli) -> None:
    """`report reconcile` agrees: no difference."""
    reconciled = cli.run("report", "reconcile", "--json", ok=False)
    assert reconciled.returncode == 0, reconciled.stdout
    assert json.loads(reconciled.stdout)["differences"] == []


def test_payments_count_once_and_reconcile_names_a_difference(dev_env, tmp_path, smtp, sqlite_url):
    with running_stack(dev_env, tmp_path, smtp, sqlite_url) as cli:
        cli.json("invoices", "import", str(_ledger(tmp_path / "ledger.csv")))
        case_id = cli.json("case", "open", "R-1")["case_id"]
        cli.json("pay", "R-1", "400.00", "--reference", "part one")
        cli.json("pay", "R-2", "100.00", "--reference", "no case yet", "--payment-id", "LEDGER-1")
        cli.json("pay", "R-2", "50.00", "--reference", "bounced later", "--payment-id", "LEDGER-2")
        cli.json("payments", "reverse", "LEDGER-2", "--reason", "bounced", "--as", "demo-supervisor")

        def fees() -> Decimal:  # the fast policy may charge a late fee on its final notice
            events = cli.json("case", "show", case_id)["events"]
            return sum((Decimal(e["data"]["fee"]["amount"]) for e in events if e["type"] == "LateFeeCharged"),
                       Decimal(0))

        def steady_kpis() -> tuple[dict, Decimal]:  # the fee may land while the report is read: read again
            while True:
                before = fees()
                figures = cli.json("report", "kpis")
                if fees() == before:
                    return figures, before

        figures, fee = steady_kpis()
        # 1,000 - 400 (+ any fee) on the case, 300 - 100 on the invoice without a case
        assert Decimal(figures["receivables_end"]) == Decimal("800.00") + fee, figures
        reconciled = cli.run("report", "reconcile", "--json", ok=False)
        assert reconciled.returncode == 0, reconciled.stdout
        collected = __import__("json").loads(reconciled.stdout)["figures"]["USD"]["collected"]
        assert Decimal(collected) == Decimal("500.00")  # 400 + 100; the reversed 50 not

        wait_for(lambda: cli.json("case", "show", case_id)["version"] >= 2)
        chained = cli.json("audit", "verify")  # the worker's appends are one intact hash chain
        assert chained["intact"] and chained["events"] >= 3, chained
        trail = cli.json("audit", "export", "--actor", "demo-collector", "--from", str(TODAY - timedelta(days=1)),
                         "--to", str(TODAY + timedelta(days=1)))  # recorded_at is UTC
        assert {("CaseOpened", "R-1"), ("PaymentReceived", "R-1")} <= {(e["type"], e["subject"]) for e in trail}, trail
        # the two payments on R-2 (no case) are the collector's too, each in its own payment stream
        ledger_payments = [e for e in trail if e["type"] == "LedgerPaymentRecorded"]
        assert len(ledger_payments) == 2 and len({e["stream"] for e in ledger_payments}) == 2, ledger_payments
        assert {e["stream"] for e in trail if e not in ledger_payments} == {case_id}
        assert {e["actor"] for e in trail} == {"demo-collector"}
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:  # a read model changed out of band
            db.execute("UPDATE case_summary SET balance_minor = balance_minor - 1 WHERE case_id = ?", (case_id,))
        broken = cli.run("report", "reconcile", ok=False)
        assert broken.returncode == 1
        assert f"case {case_id} (R-1): case_summary balance" in broken.stdout, broken.stdout


def test_an_amendment_below_what_was_paid_before_the_case_is_the_customers_credit(dev_env, tmp_path, smtp,
                                                                                  database_url):
    """On either database: 100.00 EUR with 40.00 paid before its case opened, amended to 30.00 by the
    ERP's export: `customer show` gives 10.00 EUR of credit and `report reconcile` agrees."""
    def export(amount: str):
        return _erp_export(tmp_path, f"R-PB,C-PB,Pre Ltd,ap@pre.test,DE,en,EUR,{amount}")

    # the default policy: no notice (nor its fee) within the test, so the 10.00 is the whole story
    with running_stack(dev_env, tmp_path, smtp, database_url, policy=DEFAULT_POLICY) as cli:
        cli.json("invoices", "import", export("100.00"))
        assert cli.json("pay", "R-PB", "40.00", "--reference", "before the case")["applied_to"] == "invoice"
        cli.json("case", "open", "R-PB")
        assert cli.json("case", "show", "R-PB")["balance"] == "60.00"
        changed = cli.json("invoices", "import", export("30.00"))
        assert (changed["invoices_changed"], changed["case_events"]) == (1, 2), changed

        assert _credit(cli, "C-PB") == [("EUR", "10.00")]
        case = cli.json("case", "show", "R-PB")
        assert case["status"] == "resolved" and case["balance"] == "0.00", case
        _reconciled(cli)


def test_an_amendment_below_the_customer_credit_applied_gives_it_back(dev_env, tmp_path, smtp, database_url):
    """On either database: 100.00 EUR with 20.00 paid before its case opened and 70.00 of the
    customer's credit (a prepayment) applied to the case (10.00 open), amended to 15.00 by the ERP's
    export: the 70.00 applied, then 5.00 of the 20.00 paid before, are the customer's credit again
    (75.00 EUR in `customer show` and `payments unapplied`), and `report reconcile` agrees."""
    def export(amount: str):
        return _erp_export(tmp_path, f"R-CA,C-CA,Applied Ltd,ap@applied.test,DE,en,EUR,{amount}")

    # the default policy: no notice (nor its fee) within the test, and credit is applied by hand only
    with running_stack(dev_env, tmp_path, smtp, database_url, policy=DEFAULT_POLICY) as cli:
        cli.json("invoices", "import", export("100.00"))
        assert cli.json("pay", "R-CA", "20.00", "--reference", "before the case")["applied_to"] == "invoice"
        cli.json("case", "open", "R-CA")
        cli.json("payments", "prepay", "C-CA", "70.00", "--currency", "EUR", "--reference", "advance")
        assert cli.json("payments", "apply-credit", "R-CA", "--amount", "70.00")["balance"] == "10.00"
        changed = cli.json("invoices", "import", export("15.00"))
        assert (changed["invoices_changed"], changed["case_events"]) == (1, 2), changed

        case = _credit_after_amendment(cli, "R-CA", "C-CA", "75.00")
        amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
        assert (amended["change"]["amount"], amended["credit"]["amount"], amended["credit_applied"]["amount"]) == (
            "-85.00", "75.00", "70.00"), amended
        _reconciled(cli)


def test_an_amendment_below_what_the_erp_booked_as_paid_outside_the_engine_is_the_customers_credit(
        dev_env, tmp_path, smtp, database_url):
    """On either database: 100.00 EUR with an open case, the ERP's export saying 30.00 paid (outside
    the engine) and 20.00 paid on the case (50.00 open), amended to 15.00 by the ERP's export (its
    paid empty: at most the amount): the 20.00 paid on the case, then 15.00 of the 30.00 paid
    outside, are the customer's credit (35.00 EUR in `customer show` and `payments unapplied`), the
    ERP's 30.00 is booked once, and `report reconcile` agrees."""
    def export(amount: str, paid: str):
        return _erp_export(tmp_path, f"R-PO,C-PO,Outside Ltd,ap@outside.test,DE,en,EUR,{amount}", paid)

    # the default policy: no notice (nor its fee) within the test
    with running_stack(dev_env, tmp_path, smtp, database_url, policy=DEFAULT_POLICY) as cli:
        cli.json("invoices", "import", export("100.00", ""))
        cli.json("case", "open", "R-PO")
        booked = cli.json("invoices", "import", export("100.00", "30.00"))
        assert booked["case_events"] == 1, booked  # PaidOutsideEngine
        cli.json("pay", "R-PO", "20.00", "--reference", "on the case")
        assert cli.json("case", "show", "R-PO")["balance"] == "50.00"
        changed = cli.json("invoices", "import", export("15.00", ""))
        assert (changed["invoices_changed"], changed["case_events"]) == (1, 2), changed

        case = _credit_after_amendment(cli, "R-PO", "C-PO", "35.00")
        amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
        assert (amended["change"]["amount"], amended["credit"]["amount"], amended["paid_outside"]["amount"]) == (
            "-85.00", "35.00", "15.00"), amended
        assert [e["data"]["amount"]["amount"] for e in case["events"] if e["type"] == "PaidOutsideEngine"] == ["30.00"]
        _reconciled(cli)


def test_what_the_erp_booked_as_paid_before_the_case_opened_is_not_booked_again(dev_env, tmp_path, smtp,
                                                                                 database_url):
    """The ERP exports its whole view every day, its `paid` column included. 100.00 EUR of which
    the ERP booked 40.00 as paid before the case opened (the case opens for 60.00): the next
    export, saying the same 40.00, changes nothing, and a later one saying 50.00 books the 10.00
    that is new, not 50.00."""
    header = ("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,"
              "due_date,risk_grade,document_type,references,status,paid")

    def export(paid: str, n: int):
        path = tmp_path / f"erp-{n}.csv"
        path.write_text(f"{header}\nR-EP,C-EP,Erp Paid Ltd,ap@erp-paid.test,DE,en,EUR,100.00,"
                        f"{TODAY - timedelta(days=40)},{TODAY - timedelta(days=10)},B,,,,{paid}\n")
        return str(path)

    with running_stack(dev_env, tmp_path, smtp, database_url, policy=DEFAULT_POLICY) as cli:
        cli.json("invoices", "import", export("40.00", 1))
        cli.json("case", "open", "R-EP")
        assert cli.json("case", "show", "R-EP")["balance"] == "60.00"
        again = cli.json("invoices", "import", export("40.00", 2))
        assert again["case_events"] == 0, again
        case = cli.json("case", "show", "R-EP")
        assert case["balance"] == "60.00" and "PaidOutsideEngine" not in [e["type"] for e in case["events"]], case
        cli.json("invoices", "import", export("50.00", 3))
        case = cli.json("case", "show", "R-EP")
        booked = [e["data"] for e in case["events"] if e["type"] == "PaidOutsideEngine"]
        assert case["balance"] == "50.00" and [b["amount"]["amount"] for b in booked] == ["10.00"], case
        reconciled = cli.run("report", "reconcile", "--json", ok=False)
        assert reconciled.returncode == 0, reconciled.stdout
