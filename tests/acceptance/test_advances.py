"""Acceptance: the advances register through the command line, on the real stack (Temporal dev
server, worker, SMTP sink, SQLite), each command a `starter.py` subprocess with the user's token.

A customer is asked for a deposit (an advance request, overdue until paid) and pays two advances
(one received 100 days ago: it lingers past the default 90 days; the other pays the request);
one is applied to an invoice that has no case, the other to an invoice whose case is open (the
case sees it); `report advances` shows source, age and status; the KPIs keep advances out of
receivables, DSO and CEI and show them as their own line, checked against figures this test
computes itself; a refund above the policy's single-person threshold waits for a second person:
the requester cannot approve it (exit 2), a finance manager does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.acceptance.stack import FAST_POLICY, money

TODAY = datetime.now(timezone.utc).date()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def invoice(invoice_id: str, amount: str, issued: int, due: int) -> str:
    return f"{invoice_id},C-ADV,Advance Ltd,ap@advance.test,US,en,USD,{amount},{day(issued)},{day(due)},A"


def q1(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    # tests/data/fast.toml (one person alone up to 100.00, above that four eyes) with an unpaid
    # advance request holding its order's shipment
    text = FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-advances-1"')
    policy = tmp_path_factory.mktemp("advances-policy") / "fast-advances.toml"
    policy.write_text(text + "\n[advances]\nblock_shipment = true\n")
    return ledger_for(policy=policy)


def register(ledger, *flags: str) -> dict:
    return ledger.ok("report", "advances", *flags)


def unapplied(ledger, held: str) -> None:
    """`payments unapplied` and `customer show` age C-ADV's credit as the register ages PP-OLD."""
    [credit] = ledger.ok("payments", "unapplied", "--customer", "C-ADV")
    assert (credit["balance"], credit["oldest"], credit["age_days"], credit["receipts"]) == (
        held, day(-100), 100, 1), credit
    [shown] = ledger.ok("customer", "show", "C-ADV")["credit"]
    assert (shown["balance"], shown["oldest"], shown["age_days"]) == (held, day(-100), 100), shown
    table = ledger.cli("payments", "unapplied", json=False)
    assert table.code == 0 and day(-100) in table.stdout, table


def test_advances_from_receipt_to_application_refund_and_kpis(ledger):
    ledger.import_invoices([invoice("AV-NOCASE", "1000.00", -10, 20),  # not due: no case
                            invoice("AV-CASE", "400.00", -40, -10)])
    ledger.ok("case", "open", "AV-CASE")

    ledger.ok("payments", "prepay", "C-ADV", "500.00", "--currency", "USD", "--payment-id", "PP-OLD",
              "--received-on", day(-100), "--reference", "deposit order 77")
    # a 30 % deposit asked before shipment, due five days ago: overdue until it is paid
    ledger.ok("advance", "request", "C-ADV", "300.00", "--currency", "USD", "--due", day(-5), "--reference",
              "30 % deposit order 77", "--order", "SO-77", "--request-id", "RQ-77")
    [asked] = register(ledger)["requests"]
    assert (asked["request_id"], asked["status"], asked["days_overdue"], asked["outstanding"], asked["order_id"]) == (
        "RQ-77", "overdue", 5, "300.00", "SO-77"), asked
    # the ERP reads the credit-hold outbox: do not ship order SO-77
    [hold] = [o for o in ledger.ok("credit-hold", "outbox") if o["customer_id"] == "C-ADV"]
    assert hold["action"] == "hold" and "SO-77" in hold["reason"], hold
    ledger.refused("payments", "prepay", "C-ADV", "300.01", "--currency", "USD", "--request", "RQ-77",
                   match="amount")
    ledger.ok("payments", "prepay", "C-ADV", "300.00", "--currency", "USD", "--payment-id", "PP-NEW",
              "--request", "RQ-77")
    assert [r["status"] for r in register(ledger)["requests"]] == ["paid"]
    outbox = [o for o in ledger.ok("credit-hold", "outbox") if o["customer_id"] == "C-ADV"]
    assert [(o["action"], o["hold_id"]) for o in outbox] == [("hold", hold["hold_id"]), ("release", hold["hold_id"])]
    assert "SO-77" in outbox[1]["reason"] and "paid" in outbox[1]["reason"], outbox

    rows = {r["advance_id"]: r for r in register(ledger)["advances"]}
    assert {k: (r["customer_id"], r["source"], r["held"], r["age_days"], r["status"], r["lingering"])
            for k, r in rows.items()} == {
        "PP-OLD": ("C-ADV", "prepayment", "500.00", 100, "held", True),
        "PP-NEW": ("C-ADV", "advance request RQ-77", "300.00", 0, "held", False)}
    lingering = register(ledger, "--lingering")
    assert [r["advance_id"] for r in lingering["advances"]] == ["PP-OLD"] and lingering["lingering_held"] == {
        "USD": "500.00"}
    assert [r["advance_id"] for r in register(ledger, "--as-of", day(-50))["advances"]] == []  # recorded today
    table = ledger.cli("report", "advances", "--lingering", json=False)  # what a person reads in a terminal
    assert table.code == 0 and "PP-OLD" in table.stdout and "PP-NEW" not in table.stdout, table
    assert "lingering" in table.stdout and "500.00 USD" in table.stdout, table

    # an invoice without a case: its open amount goes down (the ledger's payment row says so)
    applied = ledger.ok("advance", "apply", "PP-OLD", "AV-NOCASE", "--amount", "200.00")
    assert (applied["case_id"], applied["applied"], applied["invoice_open"]) == (None, "200.00", "800.00"), applied
    paid = [p for p in ledger.ok("customer", "statement", "C-ADV")["items"] if p["invoice_id"] == "AV-NOCASE"]
    assert paid and money(paid[0]["open"]) == money("800.00"), paid
    # an invoice with an open case: the case sees the application
    ledger.ok("advance", "apply", "PP-NEW", "AV-CASE")
    case = ledger.case("AV-CASE")
    assert money(case["balance"]) == money("100.00"), case
    assert "CustomerCreditApplied" in [e["type"] for e in case["events"]], case["events"]

    rows = {r["advance_id"]: r for r in register(ledger)["advances"]}
    assert {k: (r["held"], r["applied"], r["status"]) for k, r in rows.items()} == {
        "PP-OLD": ("300.00", "200.00", "partly applied"), "PP-NEW": ("0.00", "300.00", "applied")}
    # the unapplied credit is the same money with the same age: PP-OLD's 300.00, received 100 days ago
    # (it said 300.00 received today: the applications used up the oldest receipt first, not PP-NEW)
    unapplied(ledger, "300.00")

    # the KPIs, recomputed here: receivables are the invoices less what settled them; the
    # advances' 300.00 still held is a liability, on its own line, not a negative receivable
    def check_kpis(held: str) -> None:
        k = ledger.ok("report", "kpis", "--currency", "USD")
        ar_end = (money("1000.00") - money("200.00")) + (money("400.00") - money("300.00"))
        sales = money("1400.00")  # both invoices were issued in the 90 days
        current = money("800.00")  # AV-NOCASE is not due yet
        assert money(k["receivables_end"]) == ar_end and money(k["receivables_begin"]) == 0, k
        assert k["dso_standard"] == q1(ar_end / sales * 90), k
        assert k["cei_percent"] == q1((sales - ar_end) / (sales - current) * 100), k
        assert money(k["advances_held_end"]) == money(held), k
        table = ledger.cli("report", "kpis", "--currency", "USD", json=False)
        assert table.code == 0 and "advances_held_end" in table.stdout, table

    check_kpis("300.00")

    # a refund above the threshold waits for a second person; the requester cannot approve it
    asked = ledger.ok("advance", "refund", "PP-OLD", "250.00", "--reason", "order 77 cancelled",
                      "--refund-id", "RF-77", "--as", "demo-supervisor")
    assert asked["status"] == "awaiting approval", asked
    ledger.refused("advance", "approve-refund", "RF-77", "--as", "demo-supervisor", match="four eyes")
    ledger.refused("advance", "approve-refund", "RF-77", "--as", "demo-collector", match="approve")
    ledger.refused("advance", "apply", "PP-OLD", "AV-NOCASE", "--amount", "60.00",
                   match="exceeds what advance PP-OLD still holds (50.00 USD)")  # it said 'the customer's credit'
    assert [r["refund_id"] for r in ledger.ok("advance", "refunds")] == ["RF-77"]
    # turned down in the approvals inbox, with a reason: the 250.00 is held on the advance again
    ledger.refused("approvals", "reject", "RF-77", "--reason", "not ours to decide", "--as", "demo-collector",
                   match="supervisor")
    rejected = ledger.ok("approvals", "reject", "RF-77", "--reason", "customer keeps it for order 78",
                         "--as", "demo-manager")
    assert rejected["status"] == "rejected" and rejected["rejected_by"] == "demo-manager", rejected
    assert ledger.ok("advance", "refunds") == []
    inbox = {a["approval_id"]: a for a in ledger.ok("approvals", "list", "--status", "all")}
    assert (inbox["RF-77"]["status"], inbox["RF-77"]["decided_by"]) == ("rejected", "demo-manager"), inbox["RF-77"]
    asked = ledger.ok("advance", "refund", "PP-OLD", "250.00", "--reason", "order 77 cancelled after all",
                      "--refund-id", "RF-78", "--as", "demo-supervisor")
    assert asked["status"] == "awaiting approval", asked
    done = ledger.cli("approvals", "approve", "RF-78", "--reason", "cancellation confirmed by sales",
                      "--as", "demo-manager", json=False)  # it printed 'case PP-OLD (None): ... balance None None'
    assert done.code == 0 and "refund RF-78 of customer" in done.stdout and "None" not in done.stdout, done
    assert "refunded by demo-manager" in done.stdout, done
    rows = {r["advance_id"]: r for r in register(ledger)["advances"]}
    assert (rows["PP-OLD"]["held"], rows["PP-OLD"]["refunded"], rows["PP-OLD"]["status"]) == (
        "50.00", "250.00", "partly applied"), rows
    # bad input: clear error naming the field, nothing changed
    ledger.refused("advance", "refund", "PP-OLD", "60.00", "--reason", "too much", match="amount")
    ledger.refused("advance", "refund", "PP-NONE", "1.00", "--reason", "x", match="advance")
    assert register(ledger)["held"] == {"USD": "50.00"}
    unapplied(ledger, "50.00")  # the refund came out of PP-OLD, as the register says
    check_kpis("50.00")
    reconciled = ledger.ok("report", "reconcile")  # the advance's payment row on AV-NOCASE equals its event
    assert reconciled["agree"] is True, reconciled["differences"]


def over(invoice_id: str, amount: str, issued: int, due: int) -> str:
    return f"{invoice_id},C-OVR,Over Paid SA,ap@overpaid.test,FR,en,EUR,{amount},{day(issued)},{day(due)},A"


def test_an_overpayment_on_an_invoice_without_a_case_is_the_customers_credit(ledger):
    """A customer pays 1,050.00 on a 1,000.00 invoice before any dunning: the receipt is recorded,
    the invoice is paid (no case), the 50.00 is credit aged from the day received, applied to
    another invoice's case; a bank line paying beyond another invoice adds to it, and its reversal
    takes it back (already applied: the customer owes it, as when a case's overpayment is reversed)."""
    ledger.import_invoices([over("OV-1", "1000.00", -40, -10),  # overdue, no case yet
                            over("OV-2", "400.00", -40, -10),  # overdue: the sweep opens its case
                            over("OV-3", "300.00", -5, 25)])  # not due
    paid = ledger.ok("pay", "OV-1", "1050.00", "--payment-id", "OVP-1", "--received-on", day(-3),
                     "--reference", "OV-1 and a bit")
    assert (paid["case_id"], paid["applied_to"], paid["amount"], paid["excess"]) == (None, "invoice", "1050.00",
                                                                                    "50.00"), paid
    # what the events say: the receipt in full on the audit trail, its excess on the event
    manager = {"COLLECTIONS_TOKEN": ledger.token("demo-manager")}
    [row] = [r for r in ledger.ok("audit", "export", env=manager)
             if r["type"] == "LedgerPaymentRecorded" and "OVP-1" in r["subject"]]
    assert (row["amount"], row["currency"], row["value_date"]) == ("1050.00", "EUR", day(-3)), row
    excess = money(row["amount"]) - money("1000.00")  # the receipt beyond the invoice
    [event] = [e for e in ledger.ok("events", "tail", "--limit", "1000", env=manager)["events"]
               if e["type"] == "LedgerPaymentRecorded" and e["data"]["payment_id"] == "OVP-1"]
    assert money(event["data"]["excess"]["amount"]) == excess == money("50.00"), event

    [credit] = ledger.ok("payments", "unapplied", "--customer", "C-OVR")
    assert (credit["currency"], money(credit["balance"]), credit["oldest"], credit["age_days"]) == (
        "EUR", excess, day(-3), 3), credit
    [shown] = ledger.ok("customer", "show", "C-OVR")["credit"]
    assert (money(shown["balance"]), shown["oldest"]) == (excess, day(-3)), shown

    ledger.ok("sweep", timeout=120)  # OV-1 is paid: no case; OV-2 is overdue and unpaid: a case
    cases = ledger.cases()
    assert "OV-1" not in cases and cases["OV-2"]["balance"] == "400.00", cases.get("OV-2")

    # a bank line paying 320.00 on OV-3 (300.00, no case): 20.00 more credit
    imported = ledger.import_bank_file([f"OVB-1,{day(0)},320.00,EUR,Over Paid SA,OV-3"])
    assert (imported["matched_by_reference"], imported["unmatched"]) == (1, 0), imported
    [credit] = ledger.ok("payments", "unapplied", "--customer", "C-OVR")
    assert (credit["balance"], credit["receipts"]) == ("70.00", 2), credit

    applied = ledger.ok("payments", "apply-credit", "OV-2")
    assert (applied["applied"], applied["balance"]) == ("70.00", "330.00"), applied
    assert ledger.ok("payments", "unapplied", "--customer", "C-OVR") == []

    # the bank takes OVB-1 back: OV-3 owes 300.00 again, and the 20.00 already applied is owed
    ledger.ok("payments", "reverse", "OVB-1", "--reason", "returned by the bank")
    [credit] = ledger.ok("payments", "unapplied", "--customer", "C-OVR")
    assert credit["balance"] == "-20.00", credit
    reconciled = ledger.ok("report", "reconcile")
    assert reconciled["agree"] is True, reconciled["differences"]
