"""Acceptance: an overdue advance request is dunned as a case of kind advance (issue 16), through
the command line on the real stack (Temporal dev server, worker, SMTP sink, SQLite).

A customer is asked for a 30 % deposit before order SO-77 ships (the policy holds the order's
shipment while it is unpaid). The request is overdue: `sweep` (no options, as a person runs it)
opens a case whose id is the request id; the customer receives the policy's `[advances]` ladder of
"deposit due before shipment" notices naming the order and the request; the case shows in `case
list` / `case show` as kind advance. Meanwhile the KPIs and aging hold the invoice only (a deposit
asked is no receivable: no invoice was issued), compared with figures this test computes itself,
and the dashboard shows the advance case on its own. The customer pays the request
(`payments prepay --request`): the case closes as paid, the hold is released, the money is an
advance held on the register, and it is then applied to the final invoice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.acceptance.stack import FAST_POLICY, money, wait_until

TODAY = datetime.now(timezone.utc).date()
CUSTOMER = "ap@deposit.test"
ADVANCES = """
[advances]
block_shipment = true
escalation_sla = "PT20M"
"""
for grade in "ABCD":
    ADVANCES += (f'[[advances.ladders.{grade}]]\nname = "deposit-reminder"\nafter = "PT1S"\n'
                 f'[[advances.ladders.{grade}]]\nname = "deposit-final"\nafter = "PT3S"\n')


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def q1(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    text = FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-advance-cases-1"')
    policy = tmp_path_factory.mktemp("advance-cases-policy") / "fast-advance-cases.toml"
    policy.write_text(text + ADVANCES)
    return ledger_for(policy=policy)


def deposit_mails(ledger) -> list:
    return [m for m in ledger.mails(CUSTOMER) if "deposit due before shipment" in m.subject.lower()]


def test_an_overdue_deposit_is_dunned_then_paid_released_and_applied(ledger):
    # the final invoice of order 77, issued ten days ago and due in twenty: not a case yet
    ledger.import_invoices([f"DP-INV,C-DEP,Deposit Ltd,{CUSTOMER},US,en,USD,1000.00,{day(-10)},{day(20)},B"])
    ledger.ok("advance", "request", "C-DEP", "300.00", "--currency", "USD", "--due", day(-2), "--reference",
              "30 % deposit order 77", "--order", "SO-77", "--request-id", "RQ-77")
    [hold] = [o for o in ledger.ok("credit-hold", "outbox") if o["customer_id"] == "C-DEP"]
    assert hold["action"] == "hold" and "SO-77" in hold["reason"], hold

    swept = ledger.ok("sweep", timeout=120)
    assert swept["cases_opened"] == 1, swept  # the request; the invoice is not due
    cases = ledger.cases()
    assert set(cases) == {"RQ-77"}, cases
    assert (cases["RQ-77"]["kind"], cases["RQ-77"]["customer_id"], money(cases["RQ-77"]["balance"])) == (
        "advance", "C-DEP", money("300.00")), cases["RQ-77"]
    again = ledger.ok("sweep", timeout=120)
    assert again["cases_opened"] == 0 and set(ledger.cases()) == {"RQ-77"}, again  # dunned once
    table = ledger.cli("case", "list", json=False)
    assert table.code == 0 and "RQ-77" in table.stdout, table
    ledger.reconcile()  # the open deposit case is not in its customer's exposure, as a rebuild has it

    # the [advances] ladder: a reminder and a final notice, each saying the deposit is due before shipment
    wait_until(lambda: deposit_mails(ledger), lambda found: len(found) >= 2, 90, "two deposit notices to the customer")
    first, final = deposit_mails(ledger)[:2]
    for mail in (first, final):
        assert "SO-77" in mail.subject and "RQ-77" in mail.subject, mail.subject
        assert "30 % deposit order 77" in mail.text and "$300.00" in mail.text, mail.text
        assert "due before shipment" in mail.text and "late fee" not in mail.text, mail.text
        assert not [p for p in mail.message.iter_attachments()], "a deposit notice carries no invoice letter"
    assert final.subject.strip().startswith("Final notice") and first.subject.strip().startswith("Reminder"), (
        first.subject, final.subject)
    case = ledger.wait_for_case("RQ-77", lambda c: c["level"] == 2, "both notices recorded")
    assert case["kind"] == "advance" and [e["data"]["step"] for e in case["events"] if e["type"] == "ReminderSent"] == [
        "deposit-reminder", "deposit-final"], case["events"]
    assert not [e for e in case["events"] if e["type"] == "LateFeeCharged"], case["events"]
    preview = ledger.ok("template", "preview", "RQ-77", "--level", "2")  # what the final notice says
    assert preview["step"] == "deposit-final" and "deposit due before shipment" in preview["subject"], preview
    ledger.refused("template", "preview", "RQ-77", "--level", "3", match="level")  # the [advances] ladder has 2 steps

    # a deposit asked is no receivable: KPIs, aging and the dashboard, against figures computed here
    def check_kpis(ar_end: Decimal, held: str) -> None:
        k = ledger.ok("report", "kpis", "--currency", "USD")
        sales = money("1000.00")  # the one invoice issued in the 90 days; the request is no sale
        assert money(k["receivables_end"]) == ar_end and money(k["advances_held_end"]) == money(held), k
        assert k["dso_standard"] == q1(ar_end / sales * 90), k
        with ledger.api("demo-supervisor") as api:
            board = api.get("/api/reports/dashboard", params={"currency": "USD"}).json()
        assert money(board["aging"]["current"]) == ar_end, board["aging"]
        assert sum(money(v) for v in board["aging"].values()) == ar_end, board["aging"]
        return board

    board = check_kpis(money("1000.00"), "0")
    assert board["advance_cases"]["open"] == 1 and money(board["advance_cases"]["outstanding"]["USD"]) == money(
        "300.00"), board["advance_cases"]

    # paid: the case closes as paid, the order's shipment hold is released, the money is an advance held
    paid = ledger.ok("payments", "prepay", "C-DEP", "300.00", "--currency", "USD", "--request", "RQ-77",
                     "--payment-id", "PP-77")
    assert paid["advance_case"]["status"] == "paid", paid
    case = ledger.case("RQ-77")
    assert case["status"] == "paid" and case["closed_at"] and money(case["balance"]) == 0, case
    outbox = [o for o in ledger.ok("credit-hold", "outbox") if o["customer_id"] == "C-DEP"]
    assert [(o["action"], o["hold_id"]) for o in outbox] == [("hold", hold["hold_id"]), ("release", hold["hold_id"])]
    [row] = ledger.ok("report", "advances")["advances"]
    assert (row["advance_id"], row["source"], row["held"], row["status"]) == (
        "PP-77", "advance request RQ-77", "300.00", "held"), row
    board = check_kpis(money("1000.00"), "300.00")
    assert board["advance_cases"]["open"] == 0, board["advance_cases"]

    # the held advance is applied to the final invoice: only now does it settle a receivable
    applied = ledger.ok("advance", "apply", "PP-77", "DP-INV")
    assert (applied["applied"], applied["invoice_open"]) == ("300.00", "700.00"), applied
    check_kpis(money("700.00"), "0")
    ledger.refused("payments", "apply-credit", "RQ-77", match="advance request")  # a deposit request takes no credit
    ledger.reconcile()


def test_a_bank_line_assigned_to_an_overdue_request_pays_it(ledger):
    # a second deposit, overdue and dunned; the customer's bank line names nothing the engine knows
    ledger.ok("advance", "request", "C-DEP", "200.00", "--currency", "USD", "--due", day(-1), "--reference",
              "deposit order 78", "--order", "SO-78", "--request-id", "RQ-78")
    ledger.ok("sweep", timeout=120)
    assert ledger.cases()["RQ-78"]["kind"] == "advance"
    before = ledger.ok("report", "kpis", "--currency", "USD")
    imported = ledger.import_bank_file([f"BK-78,{day(0)},200.00,USD,?,"])
    assert imported["unmatched"] == 1, imported
    ledger.refused("payments", "assign", "BK-78", "RQ-77", "--reason", "remittance advice", match="amount")  # paid
    assigned = ledger.ok("payments", "assign", "BK-78", "RQ-78", "--reason", "remittance advice: deposit SO-78")
    assert assigned["applied_to"] == "advance request" and assigned["advance_case"]["status"] == "paid", assigned
    assert ledger.ok("payments", "unmatched") == []
    assert ledger.case("RQ-78")["status"] == "paid"
    rows = {r["advance_id"]: r for r in ledger.ok("report", "advances")["advances"]}
    assert (rows["BK-78"]["source"], rows["BK-78"]["held"]) == ("advance request RQ-78", "200.00"), rows
    outbox = [o for o in ledger.ok("credit-hold", "outbox") if "SO-78" in o["reason"]]
    assert [o["action"] for o in outbox] == ["hold", "release"], outbox
    after = ledger.ok("report", "kpis", "--currency", "USD")  # the deposit is an advance held, no receivable
    assert after["receivables_end"] == before["receivables_end"], (before, after)
    assert money(after["advances_held_end"]) == money(before["advances_held_end"]) + money("200.00"), after
    ledger.refused("payments", "reverse", "BK-78", "--reason", "wrong customer", match="advance")
    ledger.reconcile()

    # order 78 is cancelled: a refund above the threshold waits in the approvals inbox for a second person
    asked = ledger.ok("advance", "refund", "BK-78", "150.00", "--reason", "order 78 cancelled", "--refund-id", "RF-78",
                      "--as", "demo-collector")
    assert asked["status"] == "awaiting approval", asked
    [item] = [a for a in ledger.ok("approvals", "list") if a["approval_id"] == "RF-78"]
    assert (item["kind"], item["invoice_id"], item["amount"], item["requested_by"]) == (
        "refund", "BK-78", "150.00", "demo-collector"), item
    ledger.refused("approvals", "approve", "RF-78", "--reason", "ok", "--as", "demo-collector", match="approve")
    done = ledger.ok("approvals", "approve", "RF-78", "--reason", "order cancelled in the ERP", "--as",
                     "demo-supervisor")
    assert done["status"] == "refunded" and done["approved_by"] == "demo-supervisor", done
    rows = {r["advance_id"]: r for r in ledger.ok("report", "advances")["advances"]}
    assert (rows["BK-78"]["refunded"], rows["BK-78"]["held"]) == ("150.00", "50.00"), rows["BK-78"]
    # the read models equal a rebuild from the events
    cases, approvals = ledger.ok("case", "list"), ledger.ok("approvals", "list", "--status", "all")
    assert [a["status"] for a in approvals if a["approval_id"] == "RF-78"] == ["approved"], approvals
    ledger.ok("projections", "rebuild")
    assert ledger.ok("case", "list") == cases and ledger.ok("approvals", "list", "--status", "all") == approvals
    ledger.reconcile()


def test_a_bank_line_whose_remittance_names_the_request_pays_it_without_hand_work(ledger):
    ledger.ok("advance", "request", "C-DEP", "120.00", "--currency", "USD", "--due", day(-1), "--reference",
              "deposit order 79", "--order", "SO-79", "--request-id", "RQ-79")
    ledger.ok("sweep", timeout=120)
    assert ledger.cases()["RQ-79"]["kind"] == "advance"
    # a line naming a request but paying more than it asks is left for a person
    too_much = ledger.import_bank_file([f"BK-79X,{day(0)},500.00,USD,Deposit Payer Ltd,deposit rq-79 and more"])
    assert (too_much["unmatched"], too_much["matched_by_advance_request"]) == (1, 0), too_much
    imported = ledger.import_bank_file([f"BK-79,{day(0)},120.00,USD,Deposit Payer Ltd,Deposit rq-79/SO-79"])
    assert (imported["matched_by_advance_request"], imported["unmatched"]) == (1, 0), imported
    assert [p["payment_id"] for p in ledger.ok("payments", "unmatched")] == ["BK-79X"]
    assert ledger.case("RQ-79")["status"] == "paid"
    rows = {r["advance_id"]: r for r in ledger.ok("report", "advances")["advances"]}
    assert (rows["BK-79"]["source"], rows["BK-79"]["held"]) == ("advance request RQ-79", "120.00"), rows
    trail = [r for r in ledger.ok("audit", "export", "--actor", "demo-collector",
                                  env={"COLLECTIONS_TOKEN": ledger.token("demo-supervisor")})
             if r["type"] == "PaymentAssigned" and "RQ-79" in r["reason"]]
    assert len(trail) == 1 and "remittance names advance request RQ-79" in trail[0]["reason"], trail
    ledger.reconcile()
