"""ERP changes of invoices without a case: their ledger rows follow, once, and reconcile agrees."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.context import Context
from app.reconcile import reconcile
from app.services import CaseService
from domain.errors import DomainError
from store.schema import customers, invoices, payments
from tests.conftest import make_settings

TODAY = date.today()
HEADER = ("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,"
          "due_date,risk_grade,document_type,references,status,paid")


def row(invoice_id: str, amount: str = "500.00", due: int = 10, kind: str = "", ref: str = "", status: str = "",
        paid: str = "", email: str = "ap@lg.test", customer: str = "C-LG") -> str:
    return (f"{invoice_id},{customer},Ledger Co,{email},DE,en,EUR,{amount},{TODAY - timedelta(days=20)},"
            f"{TODAY + timedelta(days=due)},B,{kind},{ref},{status},{paid}")


@pytest.fixture
def service(sqlite_url):
    context = Context(make_settings(sqlite_url))
    yield CaseService(context)
    context.db.dispose()


def load(service: CaseService, tmp_path, rows: list[str], name: str) -> dict:
    path = tmp_path / name
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return service.import_invoices(path)


def ledger_row(service: CaseService, invoice_id: str):
    with service.ctx.db.read() as session:
        return session.execute(select(invoices).where(invoices.c.invoice_id == invoice_id)).one()


def test_changes_of_invoices_without_a_case_reach_the_ledger_once(service, tmp_path):
    first = load(service, tmp_path, [row("LG-1"), row("LG-2"), row("LG-3"), row("LG-4")], "erp-1.csv")
    assert first["invoices_added"] == 4
    changed = [row("LG-1", amount="450.00"),
               row("LG-2"), row("CN-LG-2", amount="120.00", kind="credit_note", ref="LG-2"),
               row("LG-3", status="cancelled"),
               row("LG-4", due=25, paid="200.00", email="billing@lg.test")]
    result = load(service, tmp_path, changed, "erp-2.csv")
    assert (result["invoices_changed"], result["credit_notes"]) == (4, 1)
    assert {c["invoice_id"]: c["changes"] for c in result["changes"]} == {
        "LG-1": ["amount"], "LG-2": ["amount"], "LG-3": ["cancelled"], "LG-4": ["due date", "paid outside"]}
    assert ledger_row(service, "LG-1").amount_minor == 45000
    assert ledger_row(service, "LG-2").amount_minor == 50000 - 12000
    assert ledger_row(service, "LG-3").amount_minor == ledger_row(service, "LG-3").paid_minor == 0
    lg4 = ledger_row(service, "LG-4")
    assert (lg4.due_date, lg4.paid_minor) == (TODAY + timedelta(days=25), 20000)
    with service.ctx.db.read() as session:
        paid = session.execute(select(payments).where(payments.c.invoice_id == "LG-4")).one()
        email = session.execute(select(customers.c.email).where(customers.c.customer_id == "C-LG")).scalar()
    assert (paid.payment_id, paid.matched_by, paid.amount_minor) == ("erp:LG-4:20000", "erp", 20000)
    assert email == "billing@lg.test"

    again = load(service, tmp_path, changed, "erp-3.csv")
    assert (again["invoices_changed"], again["invoices_unchanged"], again["changes"]) == (0, 4, [])
    assert ledger_row(service, "LG-2").amount_minor == 38000 and ledger_row(service, "LG-4").paid_minor == 20000
    more = load(service, tmp_path, [row("LG-4", due=25, paid="300.00", email="billing@lg.test")], "erp-4.csv")
    assert more["changes"][0]["changes"] == ["paid outside"] and ledger_row(service, "LG-4").paid_minor == 30000
    checked = reconcile(service.ctx)
    assert checked["agree"], checked["differences"]


@pytest.mark.parametrize("rows, match", [
    ([row("LG-1", paid="100.00")], "line 2: paid: 100.00 is less than the 200.00"),
    ([row("LG-1", customer="C-OTHER")], "line 2: customer_id: invoice LG-1 belongs to customer C-LG"),
    ([row("CN-9", amount="5.00", kind="credit_note", ref="LG-1")], "line 2: references: .* not in the file"),
    ([row("LG-1"), row("CN-9", amount="5.00", kind="credit_note")], "line 3: references: a credit note names"),
    ([row("LG-1", status="voided")], "line 2: status: 'voided' is not one of open, cancelled"),
    ([row("LG-1", paid="600.00")], "line 2: paid: 600.00 is more than the invoice amount"),
])
def test_a_contradicting_row_refuses_the_file_and_changes_nothing(service, tmp_path, rows, match):
    load(service, tmp_path, [row("LG-1", paid="200.00")], "erp-1.csv")
    before = ledger_row(service, "LG-1")
    with pytest.raises(DomainError, match=match):
        load(service, tmp_path, [*rows, row("LG-2")], "erp-2.csv")
    assert ledger_row(service, "LG-1") == before
    with service.ctx.db.read() as session:
        assert session.execute(select(invoices.c.invoice_id).where(invoices.c.invoice_id == "LG-2")).first() is None


@pytest.mark.parametrize("paid_outside", [False, True], ids=["paid-on-the-case", "paid-outside-the-engine"])
@pytest.mark.parametrize("before_the_rule", [True, False], ids=["recorded-before-the-rule", "today"])
def test_reconcile_names_money_paid_beyond_an_amended_invoice_left_nowhere(service, tmp_path, before_the_rule,
                                                                            paid_outside):
    """A case paid 100.00 of 800.00 (on the case, or outside the engine as the ERP's export booked
    it) and amended to 50.00 in the ERP. Recorded by a workflow run before the rule (the reduction
    stopped at the open balance), the 50.00 paid beyond the new amount was nobody's credit:
    reconcile says so. Decided today it is the customer's credit, and all agree."""
    from domain import commands as cmd
    from domain.decider import case_uuid
    from domain.events import Customer
    from domain.money import Money
    from domain.policy import RiskGrade
    from domain.users import Actor
    from tests.domain.scenario import Case

    load(service, tmp_path, [row("LG-AM", amount="800.00", due=-10)], "erp-1.csv")
    customer = Customer(customer_id="C-LG", name="Ledger Co", email="ap@lg.test", country="DE", language="en")
    policy = service.ctx.policy()
    if before_the_rule:
        policy = policy.before_amended_below_paid_outside() if paid_outside else policy.before_amended_below_paid()
    case = Case(policy)
    case.now = datetime.now(timezone.utc) - timedelta(days=2)
    case.open(cmd.InvoiceFacts(invoice_id="LG-AM", customer=customer, risk_grade=RiskGrade.B,
                               amount=Money.of("800.00", "EUR"), paid=Money.of("0", "EUR"),
                               issue_date=TODAY - timedelta(days=20), due_date=TODAY - timedelta(days=10)))
    erp_paid = Money.of("100.00", "EUR") if paid_outside else None

    def sync(amount: str, source: str):
        case.when(cmd.SyncInvoice, actor=Actor(name="erp-sync"), amount=Money.of(amount, "EUR"),
                  due_date=case.state.due_date, customer=customer, paid=erp_paid, source=source)

    if paid_outside:
        sync("800.00", "paid.csv line 2")
    else:
        case.when(cmd.RecordPayment, payment_id="P-AM", amount=Money.of("100.00", "EUR"), reference="part",
                  received_on=case.now.date())
    sync("50.00", "amend.csv line 2")
    service.ctx.store.append(case_uuid("LG-AM"), 0, case.events)

    checked = reconcile(service.ctx)
    lost = [d for d in checked["differences"] if "paid beyond it" in d]
    if before_the_rule:
        assert lost == checked["differences"] and "100.00 paid on it settles an invoice that owes at most 50.00" in lost[0], checked
        assert "the 50.00 paid beyond it is not the customer's credit" in lost[0]
    else:
        assert checked["agree"], checked["differences"]
