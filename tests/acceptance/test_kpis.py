"""Acceptance: the collection KPIs a finance manager reads, against figures this test computes
itself from what it did (docs/KPIS.md gives the definitions; nothing here calls the project).

The scenario, all on today's date, on invoices this test imports (one customer each, EUR):
payments typed with `pay` (partial, full, over, and one on an invoice without a case), the same
kinds in a bank file (`payments import`), a bank payment reversed, a dispute upheld with a
credit note, a write-off requested by a collector and approved by the finance manager after
the supervisor is refused (beyond her limit), and a late fee charged by the fast policy on a
grade B final notice. Then every `report ... --json` and the dashboard must show our figures,
to the cent, and `report reconcile` must agree.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.acceptance.stack import money

TODAY = datetime.now(timezone.utc).date()
PERIOD_DAYS = 90  # the reports' default period: the 90 days up to today
START = TODAY - timedelta(days=PERIOD_DAYS - 1)
FEE_B = Decimal("40.00")  # tests/data/fast.toml: grade B charges 40.00 with the final notice
ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass
class Inv:
    invoice_id: str
    amount: Decimal
    issued: int  # days from today
    due: int
    grade: str = "A"
    settled: Decimal = ZERO  # payments applied, credits, write-offs (what the test did)
    fees: Decimal = ZERO
    collected: Decimal = ZERO  # money applied to the invoice (not the excess)
    excess: Decimal = ZERO  # overpayment: customer credit
    written_off: Decimal = ZERO
    credit_notes: Decimal = ZERO
    assignee: str = "unassigned"
    case: bool = True
    events: list[str] = field(default_factory=list)

    @property
    def issue_date(self) -> date:
        return TODAY + timedelta(days=self.issued)

    @property
    def due_date(self) -> date:
        return TODAY + timedelta(days=self.due)

    @property
    def owed(self) -> Decimal:
        return max(self.amount + self.fees - self.settled, ZERO)

    def row(self) -> str:
        who = self.invoice_id.lower()
        return (f"{self.invoice_id},C-{self.invoice_id},{self.invoice_id} GmbH,ap@{who}.test,DE,en,EUR,{self.amount},"
                f"{self.issue_date},{self.due_date},{self.grade}")

    def pay(self, amount: str) -> None:
        paid = money(amount)
        applied = min(paid, self.owed)
        self.settled += applied
        self.collected += applied
        self.excess += paid - applied


def q1(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    for limit, name in ((30, "1-30"), (60, "31-60"), (90, "61-90")):
        if days_past_due <= limit:
            return name
    return "90+"


@pytest.fixture(scope="module")
def ledger(ledger_for):
    return ledger_for()  # tests/data/fast.toml: the ladder in ~4 s


def test_kpis_equal_the_figures_of_what_was_done(ledger):
    book = {i.invoice_id: i for i in [
        Inv("K-OLD", Decimal("700.00"), -130, -100),  # issued before the period: receivables at the start
        Inv("K-P1", Decimal("1000.00"), -58, -28, assignee="demo-collector"),
        Inv("K-P2", Decimal("800.00"), -50, -20, assignee="demo-collector"),
        Inv("K-P3", Decimal("500.00"), -45, -15),
        Inv("K-B1", Decimal("2000.00"), -70, -40),
        Inv("K-B2", Decimal("1500.00"), -40, -10),
        Inv("K-B3", Decimal("300.00"), -35, -5),
        Inv("K-B4", Decimal("600.00"), -40, -10),
        Inv("K-FEE", Decimal("900.00"), -55, -25, grade="B"),
        Inv("K-DSP", Decimal("1200.00"), -65, -35),
        Inv("K-WO", Decimal("12000.00"), -80, -50),
        Inv("K-L1", Decimal("250.00"), -10, 20, case=False),  # not yet due, no case: paid on the ledger
        Inv("K-NEW", Decimal("400.00"), -5, 25, case=False),  # not yet due
    ]}
    assert ledger.import_invoices([i.row() for i in book.values()])["invoices_added"] == len(book)

    # a collector's integration opens the cases over the API
    with ledger.api("demo-collector") as api:
        for inv in book.values():
            if inv.case:
                answer = api.post("/api/cases", json={"invoice_id": inv.invoice_id})
                assert answer.status_code == 201, (inv.invoice_id, answer.status_code, answer.text)
    for invoice_id in ("K-P1", "K-P2"):
        assigned = ledger.ok("case", "assign", invoice_id, "demo-collector", "--as", "demo-supervisor")
        assert assigned["invoice_id"] == invoice_id, assigned
    # a dollar invoice, worked and closed by the same collector: in no figure of the euro reports
    usd = Inv("K-USD", Decimal("450.00"), -50, -20)
    assert ledger.import_invoices([usd.row().replace(",EUR,", ",USD,")])["invoices_added"] == 1
    ledger.ok("case", "open", "K-USD")
    ledger.ok("case", "assign", "K-USD", "demo-collector", "--as", "demo-supervisor")
    assert ledger.ok("pay", "K-USD", "450.00", "--reference", "dollars")["status"] == "paid"

    # the late fee: the grade B case runs its ladder (final notice + 40.00) and escalates
    fee_case = ledger.wait_for_case("K-FEE", lambda c: c["status"] == "escalated", "escalated after the final notice")
    fees = [e for e in fee_case["events"] if e["type"] == "LateFeeCharged"]
    assert len(fees) == 1 and money(fees[0]["data"]["fee"]["amount"]) == FEE_B, fees
    book["K-FEE"].fees = FEE_B
    assert money(fee_case["balance"]) == book["K-FEE"].owed

    # payments typed at the command line: partial, full, over, and one on an invoice without a case
    for invoice_id, amount, status in (("K-P1", "300.00", None), ("K-P2", "800.00", "paid"), ("K-P3", "650.00", "paid")):
        book[invoice_id].pay(amount)
        reply = ledger.ok("pay", invoice_id, amount, "--reference", f"{invoice_id} by phone")
        assert money(reply["balance"]) == book[invoice_id].owed, reply
        if status:
            assert reply["status"] == status, reply
    book["K-L1"].pay("100.00")
    reply = ledger.ok("pay", "K-L1", "100.00", "--reference", "K-L1 cheque")
    assert reply["case_id"] is None and reply["applied_to"] == "invoice", reply

    # the same kinds in a bank file, matched by reference; then one is recalled by the bank
    imported = ledger.import_bank_file([
        f"BK-1,{TODAY},500.00,EUR,K-B1 GmbH,K-B1",
        f"BK-2,{TODAY},1500.00,EUR,K-B2 GmbH,K-B2",
        f"BK-3,{TODAY},350.00,EUR,K-B3 GmbH,K-B3",
        f"BK-4,{TODAY},200.00,EUR,K-B4 GmbH,K-B4",
    ])
    assert imported["matched_by_reference"] == 4 and imported["unmatched"] == 0, imported
    for invoice_id, amount in (("K-B1", "500.00"), ("K-B2", "1500.00"), ("K-B3", "350.00")):
        book[invoice_id].pay(amount)
    reversed_ = ledger.ok("payments", "reverse", "BK-4", "--reason", "recalled by the bank")
    assert money(reversed_["balance"]) == book["K-B4"].owed == Decimal("600.00"), reversed_

    # a dispute upheld with a credit note: EUR 200 is above the policy's single-person threshold
    # (USD 100), so a second person approves the credit before it reduces the balance
    dispute = book["K-DSP"]
    ledger.ok("dispute", "open", "K-DSP", "--reason", "pricing", "--amount", "200.00")
    resolved = ledger.ok("dispute", "resolve", "K-DSP", "--outcome", "upheld", "--credit", "200.00",
                         "--as", "demo-supervisor")
    assert resolved["status"] == "awaiting_approval" and resolved["balance"] == "1200.00", resolved
    credit = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "K-DSP" and a["kind"] == "credit"]
    assert [(a["kind"], a["amount"]) for a in credit] == [("credit", "200.00")], credit
    ledger.refused("approvals", "approve", credit[0]["approval_id"], "--reason", "checked the file", "--as", "demo-supervisor", match="four eyes")
    approved = ledger.ok("approvals", "approve", credit[0]["approval_id"], "--reason", "checked the file",
                         "--as", "demo-manager")
    dispute.settled += Decimal("200.00")
    dispute.credit_notes = Decimal("200.00")
    assert money(approved["balance"]) == dispute.owed == Decimal("1000.00"), approved

    # a write-off: the collector asks; EUR 12,000 (USD 12,960 at the policy's rate) is beyond the
    # supervisor's limit (USD 10,000), so the finance manager approves
    wo = book["K-WO"]
    ledger.ok("write-off", "request", "K-WO", "--amount", "12000.00", "--reason", "insolvency")
    pending = [a for a in ledger.ok("approvals", "list") if a["kind"] == "write_off" and a["invoice_id"] == "K-WO"]
    assert len(pending) == 1 and pending[0]["amount"] == "12000.00", pending
    assert pending[0]["requested_by"] == "demo-collector", pending
    refusal = ledger.refused("approvals", "approve", pending[0]["approval_id"], "--reason", "checked the file", "--as", "demo-supervisor")
    assert "authority" in refusal or "finance_manager" in refusal, refusal
    closed = ledger.ok("approvals", "approve", pending[0]["approval_id"], "--reason", "checked the file", "--as", "demo-manager")
    assert closed["status"] == "written_off" and closed["balance"] == "0.00", closed
    wo.settled += wo.amount
    wo.written_off = wo.amount

    # -- what the cases say -------------------------------------------------------------------------
    cases = ledger.cases()
    assert sorted(cases) == sorted([*(i.invoice_id for i in book.values() if i.case), "K-USD"])
    for inv in book.values():
        if inv.case:
            assert money(cases[inv.invoice_id]["balance"]) == inv.owed, (inv.invoice_id, cases[inv.invoice_id])
    for invoice_id in ("K-P2", "K-P3", "K-B2", "K-B3", "K-WO", "K-DSP", "K-FEE"):
        totals = ledger.peek(invoice_id)["totals"]
        inv = book[invoice_id]
        assert money(totals["payments"]) == inv.collected, (invoice_id, totals)
        assert money(totals["credits"]) == inv.credit_notes and money(totals["write_offs"]) == inv.written_off, totals
        assert money(totals["fees"]) == inv.fees, (invoice_id, totals)
    credit = {r["customer_id"]: money(r["balance"]) for r in ledger.ok("payments", "unapplied")}
    assert credit == {"C-K-P3": Decimal("150.00"), "C-K-B3": Decimal("50.00")}, credit

    # -- the figures, computed here ------------------------------------------------------------------
    invoices = list(book.values())
    ar_end = sum((i.owed for i in invoices), ZERO)
    ar_begin = sum((i.amount for i in invoices if i.issue_date < START), ZERO)  # nothing settled before today
    current_end = sum((i.owed for i in invoices if i.due_date >= TODAY), ZERO)
    sales = sum((i.amount for i in invoices if START <= i.issue_date <= TODAY), ZERO)
    aging = {b: ZERO for b in ("current", "1-30", "31-60", "61-90", "90+")}
    for i in invoices:
        if i.owed > 0:
            aging[bucket((TODAY - i.due_date).days)] += i.owed
    collected_today = [i for i in invoices if i.owed == 0 and i.collected > 0]
    turnover = sales / ((ar_begin + ar_end) / 2)
    cash_received = sum((i.collected + i.excess for i in invoices), ZERO)  # BK-4 came and went
    expected = {
        "currency": "EUR", "from": START.isoformat(), "to": TODAY.isoformat(), "days": PERIOD_DAYS,
        "receivables_begin": str(ar_begin), "receivables_end": str(ar_end),
        "current_receivables_end": str(current_end), "credit_sales": str(sales),
        "aging": {b: str(v.quantize(CENT)) for b, v in aging.items()},
        "dso_standard": q1(ar_end / sales * PERIOD_DAYS),
        "dso_countback": countback(invoices, ar_end),
        "cei_percent": q1((ar_begin + sales - ar_end) / (ar_begin + sales - current_end) * 100),
        "ar_turnover": str(turnover.quantize(CENT, rounding=ROUND_HALF_UP)),
        "ar_turnover_days": q1(PERIOD_DAYS / turnover),
        "promises_kept": 0, "promises_broken": 0, "promise_kept_rate_percent": None,
        "invoices_collected": len(collected_today),
        "average_days_to_collect": q1(Decimal(sum(-i.issued for i in collected_today)) / len(collected_today)),
        # K-WO had no fee: all its write-off is principal
        "written_off": str(wo.amount), "write_off_ratio_percent": q1(wo.amount / sales * 100),
        "principal_written_off": str(wo.amount), "fees_written_off": "0.00",
        # cash received in the period (BK-4 came and went); nothing recovered after a write-off yet
        "collected": str(cash_received), "recovered": "0.00", "net_written_off": str(wo.amount),
    }
    # every case closed today (opened today: 0 days); collected = cash received on their cases in
    # the period (overpayments included), applied = what of it settled the invoices; the recalled
    # BK-4 in neither; the ledger payment on K-L1 belongs to no case
    closed_by = lambda who: [i for i in invoices if i.case and i.owed == 0 and i.assignee == who]  # noqa: E731
    mine = lambda who: [i for i in invoices if i.case and i.assignee == who]  # noqa: E731
    expected_collectors = [
        {"collector": who, "cases_closed": len(closed_by(who)),
         "collected": str(sum((i.collected + i.excess for i in mine(who)), ZERO)),
         "applied": str(sum((i.collected for i in mine(who)), ZERO)),
         "broken_promises": 0, "average_days_to_close": "0.0"}
        for who in ("demo-collector", "unassigned")
    ]
    assert expected["receivables_end"] == "5990.00" and expected["credit_sales"] == "21450.00"  # the sums by hand

    problems: list[str] = []  # every difference is named, not only the first
    figures = ledger.ok("report", "kpis")
    mismatches = {k: (figures.get(k), v) for k, v in expected.items() if figures.get(k) != v}
    if mismatches:
        problems.append(f"report kpis differs from the figures of what was done (got, expected): {mismatches}")
    if figures["collectors"] != expected_collectors:
        problems.append(f"report kpis collectors: got {figures['collectors']}, expected {expected_collectors}")

    # each report alone shows the same figures
    base = {"currency": "EUR", "from": START.isoformat(), "to": TODAY.isoformat()}
    reports = {
        "aging": [{**base, "bucket": b, "amount": v} for b, v in expected["aging"].items()],
        "dso": [{**base, "receivables_end": expected["receivables_end"], "credit_sales": expected["credit_sales"],
                 "days": PERIOD_DAYS, "dso_standard": expected["dso_standard"],
                 "dso_countback": expected["dso_countback"]}],
        "cei": [{**base, "receivables_begin": expected["receivables_begin"], "credit_sales": expected["credit_sales"],
                 "receivables_end": expected["receivables_end"],
                 "current_receivables_end": expected["current_receivables_end"],
                 "cei_percent": expected["cei_percent"]}],
        "turnover": [{**base, "credit_sales": expected["credit_sales"], "receivables_begin": expected["receivables_begin"],
                      "receivables_end": expected["receivables_end"], "ar_turnover": expected["ar_turnover"],
                      "ar_turnover_days": expected["ar_turnover_days"]}],
        "promises": [{**base, "kept": 0, "broken": 0, "promise_kept_rate_percent": None}],
        "collect": [{**base, "invoices_collected": expected["invoices_collected"],
                     "average_days_to_collect": expected["average_days_to_collect"]}],
        "write-offs": [{**base, "written_off": expected["written_off"], "credit_sales": expected["credit_sales"],
                        "write_off_ratio_percent": expected["write_off_ratio_percent"],
                        "principal_written_off": expected["principal_written_off"],
                        "fees_written_off": expected["fees_written_off"], "recovered": "0.00",
                        "net_written_off": expected["net_written_off"]}],
        "collectors": [{**base, **row} for row in expected_collectors],
    }
    for name, rows in reports.items():
        shown = ledger.ok("report", name)
        if shown != {"report": name, "rows": rows, "notes": []}:  # every figure in range: nothing to explain
            problems.append(f"report {name}: got {shown['rows']} ({shown.get('notes')}), expected {rows}")
    csv_text = ledger.cli("report", "write-offs", "--csv", json=False)
    assert csv_text.code == 0, str(csv_text)
    if f"EUR,{START},{TODAY},12000.00,21450.00," not in csv_text.stdout:
        problems.append(f"report write-offs --csv: {csv_text.stdout!r}")

    # the API and the dashboard show the same
    with ledger.api("demo-manager") as api:
        answer = api.get("/api/reports/kpis")
        assert answer.status_code == 200, answer.text
        if {k: answer.json().get(k) for k in expected} != expected:
            problems.append(f"GET /api/reports/kpis: {answer.json()}")
        board = api.get("/api/reports/dashboard")
        assert board.status_code == 200, board.text
        board = board.json()
    if board["aging"] != expected["aging"]:
        problems.append(f"dashboard aging: got {board['aging']}, expected {expected['aging']}")
    this_week = (TODAY - timedelta(days=TODAY.weekday())).isoformat()
    week = {w["week"]: w["amount"] for w in board["collected_per_week"]}
    assert str(cash_received) == "4200.00"  # by hand: 300 + 800 + 650 + 100 + 500 + 1500 + 350 (+200 - 200)
    if week.get(this_week) != str(cash_received):
        problems.append(f"dashboard cash collected this week: got {week.get(this_week)}, expected {cash_received}")
    reconciled = ledger.cli("report", "reconcile")
    if reconciled.code != 0 or not (reconciled.json or {}).get("agree"):
        problems.append(f"report reconcile: {reconciled}")
    assert not problems, "\n".join(problems)


def test_money_received_after_a_write_off_is_a_recovery(ledger):
    """A finance manager found no way to book money received on a written-off invoice: `pay` said
    the case was closed. docs/CONTROLS.md: it is a recovery of bad debt (`WriteOffRecovered`, an
    administration event): the case stays written off, the cash counts as collected on the day it
    was received, `recovered` is shown next to `written_off`, and all recoveries of an invoice
    together are at most what was written off on it.

    Here K-WO (12,000.00 written off by the first test) gets 5,000.00 from the insolvency
    administrator, received two days ago; the same payment again changes nothing, the same payment
    id with another amount and 7,000.01 more (beyond the 7,000.00 left) are refused. `report kpis`
    is recomputed from `audit export`'s events."""
    manager = {"COLLECTIONS_TOKEN": ledger.token("demo-manager")}
    received = TODAY - timedelta(days=2)
    dividend = ("--payment-id", "REC-KWO-1", "--reference", "administrator dividend", "--received-on", str(received))
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    case = ledger.peek("K-WO")
    assert case["status"] == "written_off" and money(case["totals"]["write_offs"]) == Decimal("12000.00"), case

    paid = ledger.cli("pay", "K-WO", "5000.00", *dividend, json=False)
    assert paid.code == 0, str(paid)
    assert "recovery of written-off invoice K-WO" in paid.stdout and "5000.00 EUR recorded" in paid.stdout, paid.stdout
    assert "7000.00 still recoverable" in paid.stdout, paid.stdout
    repeat = ledger.ok("pay", "K-WO", "5000.00", *dividend)
    assert (repeat["applied_to"], repeat["recorded"], repeat["recovered"]) == ("recovery", False, "5000.00"), repeat
    ledger.refused("pay", "K-WO", "4000.00", *dividend, match="payment_id")  # the id binds the amount
    ledger.refused("pay", "K-WO", "7000.01", "--payment-id", "REC-KWO-2", match="amount")

    trail = [r for r in ledger.ok("audit", "export", "--from", str(TODAY), env=manager)
             if r["type"] == "WriteOffRecovered"]
    assert [(r["subject"], r["amount"], r["currency"], r["value_date"], r["actor"]) for r in trail] == [
        ("recovery REC-KWO-1 (invoice K-WO)", "5000.00", "EUR", str(received), "demo-collector")], trail
    assert "administrator dividend" in trail[0]["reason"], trail
    shown = ledger.case("K-WO")
    assert (shown["status"], shown["balance"]) == ("written_off", "0.00"), shown
    assert [(r["type"], r["data"]["payment_id"], r["data"]["amount"]["amount"]) for r in shown["recoveries"]] == [
        ("WriteOffRecovered", "REC-KWO-1", "5000.00")], shown["recoveries"]
    assert f"recovered 5000.00 EUR received {received}" in ledger.cli("case", "show", "K-WO", json=False).stdout

    # -- the figures, from the events: the recovery is cash collected, and bad debt recovered ----------
    recovered = sum((money(r["amount"]) for r in trail if r["currency"] == "EUR"
                     and START <= date.fromisoformat(r["value_date"]) <= TODAY), ZERO)
    expected = {"recovered": str(recovered), "written_off": before["written_off"],
                "net_written_off": str(money(before["written_off"]) - recovered),
                "collected": str(money(before["collected"]) - money(before["recovered"]) + recovered),
                "receivables_end": before["receivables_end"]}  # it settles no invoice: the case stays written off
    problems = euro_kpis_differ(ledger, expected)
    reconciled = ledger.cli("report", "reconcile")
    if reconciled.code != 0 or (reconciled.json or {}).get("figures", {}).get("EUR", {}).get("recovered") != str(recovered):
        problems.append(f"report reconcile: {reconciled}")
    assert not problems, "\n".join(problems)


def test_a_reversed_payment_leaves_the_figures_as_if_never_paid(ledger):
    """A finance manager saw `report collect` still count an invoice whose payment bounced (paid in
    full, then `payments reverse`): docs/KPIS.md says a reversed payment settles nothing. Here a
    grade B invoice (2000.00 + the 40.00 fee) is paid in full with a receipt dated three days ago,
    reversed (a bounced cheque), then paid again today: after the reversal every KPI is what it was
    before the payment, and `report collect` is what the cases' events give, the re-payment
    counting on its own day (75 days after issue, not 72)."""
    rv = Inv("K-RV", Decimal("2000.00"), -75, -45, grade="B")
    assert ledger.import_invoices([rv.row()])["invoices_added"] == 1
    ledger.ok("case", "open", "K-RV")
    ledger.ok("case", "assign", "K-RV", "demo-collector", "--as", "demo-supervisor")
    case = ledger.wait_for_case("K-RV", lambda c: c["status"] == "escalated", "escalated after the final notice")
    assert money(case["balance"]) == rv.amount + FEE_B, case

    def collect_from_events() -> dict:
        figures = collected_from_events(ledger)
        days = sorted(figures.values())
        return {"currency": "EUR", "from": START.isoformat(), "to": TODAY.isoformat(),
                "invoices_collected": len(days),
                "average_days_to_collect": q1(Decimal(sum(days)) / len(days)) if days else None}

    def board_kpis() -> dict:
        with ledger.api("demo-manager") as api:
            answer = api.get("/api/reports/dashboard")
        assert answer.status_code == 200, answer.text
        return answer.json()["kpis"]

    before, board_before = ledger.ok("report", "kpis"), board_kpis()
    assert ledger.ok("report", "collect")["rows"] == [collect_from_events()]
    assert "K-RV" not in collected_from_events(ledger)

    paid = ledger.ok("pay", "K-RV", "2040.00", "--reference", "BANK-RV", "--payment-id", "PAY-KRV",
                     "--received-on", str(TODAY - timedelta(days=3)))
    assert paid["status"] == "paid" and money(paid["balance"]) == ZERO, paid
    assert collected_from_events(ledger)["K-RV"] == 72
    assert ledger.ok("report", "collect")["rows"] == [collect_from_events()]

    reversed_ = ledger.ok("payments", "reverse", "PAY-KRV", "--reason", "bounced cheque")
    assert money(reversed_["balance"]) == rv.amount + FEE_B, reversed_
    assert "K-RV" not in collected_from_events(ledger)
    problems = []
    shown = ledger.ok("report", "collect")["rows"]
    if shown != [collect_from_events()]:
        problems.append(f"report collect after the reversal: got {shown}, the events give {[collect_from_events()]}")
    after = ledger.ok("report", "kpis")
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    if changed:  # DSO, CEI, aging, collectors' collected... as if never paid (before, after)
        problems.append(f"report kpis changed by a payment that was reversed: {changed}")
    if board_kpis() != board_before:
        problems.append(f"dashboard kpis: got {board_kpis()}, before the payment {board_before}")
    assert not problems, "\n".join(problems)

    # the bounced cheque's id names that payment: sent again it is refused, not taken as a repeat
    ledger.refused("pay", "K-RV", "2040.00", "--reference", "BANK-RV", "--payment-id", "PAY-KRV",
                   "--received-on", str(TODAY - timedelta(days=3)), match="recorded and then reversed")
    assert money(ledger.case("K-RV")["balance"]) == rv.amount + FEE_B
    repaid = ledger.ok("pay", "K-RV", "2040.00", "--reference", "BANK-RV again", "--payment-id", "PAY-KRV-2")
    assert repaid["status"] == "paid", repaid
    assert collected_from_events(ledger)["K-RV"] == 75  # today, the day it was settled again
    expected = collect_from_events()
    assert ledger.ok("report", "collect")["rows"] == [expected]
    assert {k: board_kpis()[k] for k in ("average_days_to_collect",)} == {
        "average_days_to_collect": expected["average_days_to_collect"]}
    assert ledger.reconcile()["agree"]


# What each event of a case moves what the invoice still owes by (docs/KPIS.md), and whether it is
# money collected on it: read from the event's own fields, not from the project's code.
_OWED = {"PaymentReceived": ("applied", -1), "PaymentReversed": ("applied", +1), "LateFeeCharged": ("fee", +1),
         "InterestCharged": ("fee", +1), "WriteOffApproved": ("amount", -1), "SmallBalanceWrittenOff": ("amount", -1),
         "SmallBalanceWriteOffReversed": ("amount", +1), "DisputeResolved": ("credit", -1),
         "CustomerCreditApplied": ("amount", -1), "CaseCancelled": ("amount", -1)}
_MONEY = {"PaymentReceived": +1, "PaymentReversed": -1, "CustomerCreditApplied": +1}


def collected_from_events(ledger) -> dict[str, int]:
    """EUR invoices with a case fully settled in the period, money collected still standing on them:
    days from issue to the day they were last brought to nothing owed, from each case's events
    (a payment on its received date, anything else on its day). This module pays no invoice
    without a case in full, so the cases are all of them."""
    found: dict[str, int] = {}
    for invoice_id in ledger.cases():
        case = ledger.peek(invoice_id)
        opened = next(e["data"] for e in case["events"] if e["type"] == "CaseOpened")
        if opened["opening_balance"]["currency"] != "EUR":
            continue
        moves = []
        for e in case["events"]:
            field_sign = _OWED.get(e["type"])
            if field_sign is None or e["data"].get(field_sign[0]) is None:
                continue
            amount = money(e["data"][field_sign[0]]["amount"])
            day = e["data"].get("received_on") or e["occurred_at"][:10]
            moves.append((date.fromisoformat(day), e["position"], field_sign[1] * amount, _MONEY.get(e["type"], 0) * amount))
        owed, collected, settled_on = money(opened["opening_balance"]["amount"]), ZERO, None
        for day, _, change, cash in sorted(moves):
            was_owed = owed > 0
            owed += change
            collected += cash
            if owed > 0:
                settled_on = None
            elif was_owed:
                settled_on = day
        assert owed == money(case["balance"]), (invoice_id, owed, case["balance"])  # no move left out
        if settled_on is not None and collected > 0 and START <= settled_on <= TODAY:
            found[invoice_id] = (settled_on - date.fromisoformat(opened["issue_date"])).days
    return found


def countback(invoices: list[Inv], ar_end: Decimal) -> str | None:
    """docs/KPIS.md: today's month up to today, then whole months backwards; each month whose
    credit sales the receivables exceed counts all its days, the last one pro rata."""
    left, days = ar_end, ZERO
    first, last = TODAY.replace(day=1), TODAY
    for _ in range(24):
        span = (last - first).days + 1
        sales = sum((i.amount for i in invoices if first <= i.issue_date <= last), ZERO)
        if sales > 0 and left <= sales:
            return q1(days + left / sales * span)
        left -= sales
        days += span
        last = first - timedelta(days=1)
        first = last.replace(day=1)
        assert calendar.monthrange(first.year, first.month)[1] == last.day
    return None


# Where each money-moving event of a case keeps its money (read from the events' own fields, as an
# auditor reads them, not from the project's table): the fields that add up to what it moved.
_MOVED = {"LateFeeCharged": ("fee",), "PaymentReceived": ("amount",), "PaymentReversed": ("applied", "excess"),
          "DisputeResolved": ("credit",)}


def test_the_audit_export_shows_the_money_of_fees_reversals_credits_and_back_dated_payments(ledger):
    """A finance manager preparing for the auditor found `audit export --csv` leaving money out: a
    late fee, a bounced cheque's reversal and an upheld dispute's credit had no amount, and a
    back-dated payment showed only when it was recorded. Here a grade B GBP invoice gets its
    late fee (35.00 GBP), a dispute credited by one person alone (78.00 GBP: within the USD 100
    threshold), a payment received four days ago and a cheque that bounced: each row of the
    export has the amount and currency its event holds (recomputed from `case show --json`), the
    payment its value date, and `--json` shows the same."""
    inv = Inv("K-AUD", Decimal("2000.00"), -60, -30, grade="B")
    assert ledger.import_invoices([inv.row().replace(",EUR,", ",GBP,")])["invoices_added"] == 1
    ledger.ok("case", "open", "K-AUD")
    ledger.ok("case", "assign", "K-AUD", "demo-collector", "--as", "demo-supervisor")
    ledger.wait_for_case("K-AUD", lambda c: c["status"] == "escalated", "escalated after the final notice")
    ledger.ok("dispute", "open", "K-AUD", "--reason", "pricing", "--amount", "78.00")
    credited = ledger.ok("dispute", "resolve", "K-AUD", "--outcome", "upheld", "--credit", "78.00",
                         "--as", "demo-supervisor")
    assert credited["status"] != "awaiting_approval", credited  # one person alone
    value_day = TODAY - timedelta(days=4)
    ledger.ok("pay", "K-AUD", "1000.00", "--reference", "wire", "--payment-id", "PAY-AUD-1",
              "--received-on", str(value_day))
    ledger.ok("pay", "K-AUD", "500.00", "--reference", "cheque 42", "--payment-id", "PAY-AUD-2")
    bounced = ledger.ok("payments", "reverse", "PAY-AUD-2", "--reason", "bounced cheque")
    assert money(bounced["balance"]) == Decimal("2035.00") - Decimal("78.00") - Decimal("1000.00"), bounced

    case = ledger.case("K-AUD")
    expected: dict[int, tuple[str, str, str]] = {}  # position: amount, currency, value date
    for e in case["events"]:
        fields = _MOVED.get(e["type"])
        if fields is None:
            continue
        held = [e["data"][f] for f in fields if e["data"].get(f) is not None]
        assert held and {m["currency"] for m in held} == {"GBP"}, e
        total = sum((money(m["amount"]) for m in held), ZERO)
        expected[e["position"]] = (str(total.quantize(CENT)), "GBP", e["data"].get("received_on") or "")
    kinds = sorted((e["type"], expected[e["position"]][0]) for e in case["events"] if e["position"] in expected)
    assert kinds == [("DisputeResolved", "78.00"), ("LateFeeCharged", "35.00"), ("PaymentReceived", "1000.00"),
                     ("PaymentReceived", "500.00"), ("PaymentReversed", "500.00")], kinds  # what this test did
    assert sorted(v[2] for v in expected.values()) == ["", "", "", str(value_day), str(TODAY)]

    manager = {"COLLECTIONS_TOKEN": ledger.token("demo-manager")}
    text = ledger.cli("audit", "export", "--from", str(TODAY), "--to", str(TODAY), "--csv", json=False, env=manager)
    assert text.code == 0, str(text)
    table = list(csv.DictReader(io.StringIO(text.stdout)))
    assert {"amount", "currency", "value_date"} <= set(table[0]), list(table[0])
    shown = {int(r["position"]): (r["amount"], r["currency"], r["value_date"]) for r in table
             if int(r["position"]) in expected}
    problems = [f"{next(e['type'] for e in case['events'] if e['position'] == p)} at position {p}: "
                f"the export shows {shown.get(p)}, the event holds {want}"
                for p, want in sorted(expected.items()) if shown.get(p) != want]
    rows = ledger.cli("audit", "export", "--from", str(TODAY), "--to", str(TODAY), env=manager)
    assert rows.code == 0, str(rows)
    as_json = {r["position"]: (r["amount"] or "", r["currency"] or "", r["value_date"] or "") for r in rows.json
               if r["position"] in expected}
    if as_json != shown:
        problems.append(f"--json differs from --csv: {as_json} != {shown}")
    assert not problems, "\n".join(problems)


def euro_kpis_differ(ledger, expected: dict[str, str]) -> list[str]:
    """Where `report kpis --currency EUR`, as JSON and as its table, differs from ``expected``."""
    problems: list[str] = []
    figures = ledger.ok("report", "kpis", "--currency", "EUR")
    if {k: figures.get(k) for k in expected} != expected:
        problems.append(f"report kpis --json: got {({k: figures.get(k) for k in expected})}, the events give {expected}")
    table = ledger.cli("report", "kpis", "--currency", "EUR", json=False)
    assert table.code == 0, str(table)
    lines = shown_in_table(table.stdout, expected)
    if lines != expected:
        problems.append(f"report kpis (the table): got {lines}, the events give {expected}")
    return problems


def shown_in_table(text: str, keys) -> dict[str, str]:
    """What the `report kpis` table shows for each kpi in ``keys``: boxed (`│ kpi │ value │`), or
    one block of `header: value` lines per row when it does not fit the terminal."""
    found: dict[str, str] = {}
    kpi = None
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        label, _, value = line.partition(":")
        if len(cells) >= 2 and cells[-2] in keys:
            found[cells[-2]] = cells[-1]
        elif label.strip() == "kpi":
            kpi = value.strip()
        elif label.strip() == "value" and kpi in keys:
            found[kpi] = value.strip()
    return found


def written_off_from_events(case: dict) -> dict:
    """One case's write-offs, each split into principal and fees, from its events (docs/KPIS.md),
    read from each event's own fields: every settlement takes the invoice amount (principal)
    first, only what goes beyond it takes the fees."""
    opened = next(e["data"] for e in case["events"] if e["type"] == "CaseOpened")
    principal = money(opened["original_amount"]["amount"])
    settled = principal - money(opened["opening_balance"]["amount"])  # paid before the case
    out = {"currency": opened["opening_balance"]["currency"], "write_offs": []}

    def of(e: dict, name: str) -> Decimal:
        return money(e["data"][name]["amount"]) if e["data"].get(name) else ZERO

    moves = []
    for e in case["events"]:
        day = date.fromisoformat(e["data"].get("received_on") or e["occurred_at"][:10])
        settles = {"PaymentReceived": of(e, "applied"), "PaymentReversed": -of(e, "applied"),
                   "DisputeResolved": of(e, "credit"), "CustomerCreditApplied": of(e, "amount"),
                   "CaseCancelled": of(e, "amount"), "WriteOffApproved": of(e, "amount"),
                   "SmallBalanceWrittenOff": of(e, "amount"), "SmallBalanceWriteOffReversed": -of(e, "amount")}
        if e["type"] in settles:
            moves.append((day, e["position"], e["type"], settles[e["type"]]))
    clamp = lambda v: min(max(v, ZERO), principal)  # noqa: E731 - the principal settled
    for day, _, kind, amount in sorted(moves):
        if kind in ("WriteOffApproved", "SmallBalanceWrittenOff", "SmallBalanceWriteOffReversed"):
            on_principal = clamp(settled + amount) - clamp(settled)
            out["write_offs"].append((day, on_principal, amount - on_principal))
        settled += amount
    return out


def test_a_late_fee_written_off_is_not_bad_debt(ledger):
    """A finance manager saw an invoice of 1,000 written off with its late fee show a write-off
    ratio above 100 % of the invoice. docs/KPIS.md: the ratio is the principal written off over
    credit sales, every settlement taking the principal first; fees written off are their own
    figure.

    Here (grade B: a 40.00 fee on the final notice) K-WF1 (1,000.00) is written off in full,
    1,040.00: 1,000.00 of principal and 40.00 of fees; K-WF2 (1,000.00) is paid 600.00, then its
    440.00 written off: 400.00 of principal (the 600.00 took the principal first) and 40.00 of
    fees. `report kpis --json`, its table, `report write-offs`, the API and the dashboard show
    the ratio on the principal, recomputed from `case show --json`."""

    def board() -> dict:
        with ledger.api("demo-manager") as api:
            answer = api.get("/api/reports/dashboard", params={"currency": "EUR"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    sales = money(ledger.ok("report", "kpis", "--currency", "EUR")["credit_sales"])
    book = [Inv("K-WF1", Decimal("1000.00"), -40, -10, grade="B"), Inv("K-WF2", Decimal("1000.00"), -40, -10, grade="B")]
    assert ledger.import_invoices([i.row() for i in book])["invoices_added"] == 2
    sales += sum((i.amount for i in book), ZERO)  # issued in the period
    for inv in book:
        ledger.ok("case", "open", inv.invoice_id)
        ledger.ok("case", "assign", inv.invoice_id, "demo-collector", "--as", "demo-supervisor")
    for inv in book:
        case = ledger.wait_for_case(inv.invoice_id, lambda c: c["status"] == "escalated",
                                    "escalated after the final notice")
        assert money(case["balance"]) == Decimal("1000.00") + FEE_B, case

    assert money(ledger.ok("pay", "K-WF2", "600.00", "--reference", "part")["balance"]) == Decimal("440.00")
    for invoice_id, amount in (("K-WF1", "1040.00"), ("K-WF2", "440.00")):
        ledger.ok("write-off", "request", invoice_id, "--amount", amount, "--reason", "insolvency")
        pending = [a for a in ledger.ok("approvals", "list") if a["kind"] == "write_off" and a["invoice_id"] == invoice_id]
        assert [a["amount"] for a in pending] == [amount], pending
        closed = ledger.ok("approvals", "approve", pending[0]["approval_id"], "--reason", "checked the file",
                           "--as", "demo-supervisor")
        assert closed["status"] == "written_off" and closed["balance"] == "0.00", closed

    # -- the write-offs, from `case show --json` of these cases, then of every euro case ------------
    shown = {i.invoice_id: written_off_from_events(ledger.case(i.invoice_id)) for i in book}
    split = {k: [(p, f) for _, p, f in v["write_offs"]] for k, v in shown.items()}
    assert split == {"K-WF1": [(Decimal("1000.00"), Decimal("40.00"))],
                     "K-WF2": [(Decimal("400.00"), Decimal("40.00"))]}, split  # the rule, by hand
    everything = [written_off_from_events(ledger.peek(invoice_id)) for invoice_id in ledger.cases()]
    euro = [c for c in everything if c["currency"] == "EUR"]
    period = [w for c in euro for w in c["write_offs"] if START <= w[0] <= TODAY]
    principal, fees = sum((p for _, p, _ in period), ZERO), sum((f for _, _, f in period), ZERO)
    expected = {"written_off": str(principal + fees), "principal_written_off": str(principal),
                "fees_written_off": str(fees), "credit_sales": str(sales),
                "write_off_ratio_percent": q1(principal / sales * 100)}

    problems = euro_kpis_differ(ledger, expected)
    row = ledger.ok("report", "write-offs", "--currency", "EUR")["rows"][0]
    if {k: row.get(k) for k in expected} != expected:
        problems.append(f"report write-offs: got {row}, the events give {expected}")
    with ledger.api("demo-manager") as api:
        answer = api.get("/api/reports/kpis", params={"currency": "EUR"}).json()
    if {k: answer.get(k) for k in expected} != expected:
        problems.append(f"GET /api/reports/kpis: got {({k: answer.get(k) for k in expected})}, expected {expected}")
    after = board()
    if after["kpis"]["write_off_ratio_percent"] != expected["write_off_ratio_percent"]:
        problems.append(f"dashboard write-off ratio: got {after['kpis']['write_off_ratio_percent']}, "
                        f"expected {expected['write_off_ratio_percent']}")
    assert not problems, "\n".join(problems)


def cash_from_events(case: dict) -> dict[str, list[tuple[date, Decimal]]]:
    """One case's cash collected and amount applied, dated, from its events (docs/KPIS.md), read
    from each event's own fields: collected is a payment in full (an overpayment's excess
    included) on its value date, taken back in full on the day it is reversed; applied is what
    payments and customer credit settled on the invoice."""
    out: dict[str, list[tuple[date, Decimal]]] = {"collected": [], "applied": []}
    for e in case["events"]:
        day = date.fromisoformat(e["data"].get("received_on") or e["occurred_at"][:10])
        if e["type"] in ("PaymentReceived", "PaymentReversed"):
            sign = 1 if e["type"] == "PaymentReceived" else -1
            applied, excess = money(e["data"]["applied"]["amount"]), money(e["data"]["excess"]["amount"])
            out["collected"].append((day, sign * (applied + excess)))
            out["applied"].append((day, sign * applied))
        elif e["type"] == "CustomerCreditApplied":
            out["applied"].append((day, money(e["data"]["amount"]["amount"])))
    return out


def test_collected_is_cash_received_in_every_report(ledger):
    """A finance manager found "collected" meaning cash received on the dashboard and in `report
    reconcile`, but the amount applied to invoices in `report collectors`. docs/KPIS.md: collected
    is cash received everywhere (an overpayment included, customer credit applied not collected
    again); applied is its own figure. Here K-OV1 (300.00, demo-collector's) is paid 350.00 (50.00
    over: customer credit) and 20.00 of that credit is applied to K-OV2 of the same customer
    (unassigned): over this week the collectors' collected moves as the dashboard's cash does
    (+350.00), applied by 300.00 and 20.00; both add up to what the cases' `case show --json`
    events give, and `report reconcile` over the same week names the rest of the dashboard's
    cash: payments on invoices without a case."""
    monday = TODAY - timedelta(days=TODAY.weekday())
    this_week = ("--from", str(monday), "--to", str(TODAY), "--currency", "EUR")

    def week_cash() -> Decimal:
        with ledger.api("demo-manager") as api:
            answer = api.get("/api/reports/dashboard", params={"currency": "EUR"})
        assert answer.status_code == 200, answer.text
        return money(next(w["amount"] for w in answer.json()["collected_per_week"] if w["week"] == str(monday)))

    def collectors() -> dict[str, tuple[Decimal, Decimal]]:
        return {r["collector"]: (money(r["collected"]), money(r["applied"]))
                for r in ledger.ok("report", "collectors", *this_week)["rows"]}

    cash_before, before = week_cash(), collectors()
    book = [Inv("K-OV1", Decimal("300.00"), -30, -5), Inv("K-OV2", Decimal("500.00"), -30, -5)]
    rows = [i.row() for i in book]
    rows[1] = rows[1].replace("C-K-OV2,K-OV2 GmbH,ap@k-ov2.test", "C-K-OV1,K-OV1 GmbH,ap@k-ov1.test")  # one customer
    assert ledger.import_invoices(rows)["invoices_added"] == 2
    for inv in book:
        ledger.ok("case", "open", inv.invoice_id)
    ledger.ok("case", "assign", "K-OV1", "demo-collector", "--as", "demo-supervisor")
    assert ledger.ok("pay", "K-OV1", "350.00", "--reference", "over")["status"] == "paid"
    applied = ledger.ok("payments", "apply-credit", "K-OV2", "--amount", "20.00")
    assert money(applied["balance"]) == Decimal("480.00"), applied

    problems: list[str] = []
    after = collectors()
    moved = {who: (c - before.get(who, (ZERO, ZERO))[0], a - before.get(who, (ZERO, ZERO))[1])
             for who, (c, a) in after.items()}
    moved = {who: m for who, m in moved.items() if m != (ZERO, ZERO)}
    want = {"demo-collector": (Decimal("350.00"), Decimal("300.00")),  # the cash; what settled K-OV1
            "unassigned": (ZERO, Decimal("20.00"))}  # the customer's credit: applied, not collected again
    if moved != want:
        problems.append(f"report collectors this week moved by (collected, applied) {moved}, expected {want}")
    cash_after = week_cash()
    if cash_after - cash_before != Decimal("350.00"):
        problems.append(f"dashboard cash collected this week moved by {cash_after - cash_before}, expected 350.00")
    euro = [cash_from_events(ledger.peek(invoice_id)) for invoice_id, row in ledger.cases().items()
            if row["currency"] == "EUR" and row["kind"] == "invoice"]  # an advance case: no collector's
    for n, key in enumerate(("collected", "applied")):
        on_cases = sum((a for c in euro for day, a in c[key] if monday <= day <= TODAY), ZERO)
        by_collectors = sum((v[n] for v in after.values()), ZERO)
        if by_collectors != on_cases:
            problems.append(f"report collectors this week: {key} {by_collectors}, the cases' events give {on_cases}")
    reconciled = ledger.cli("report", "reconcile", "--from", str(monday), "--to", str(TODAY))
    if reconciled.code != 0:
        problems.append(f"report reconcile this week: {reconciled}")
    else:  # what the dashboard counts beyond the collectors: payments on invoices without a case
        eur = reconciled.json["figures"]["EUR"]
        by_collectors = sum((c for c, _ in after.values()), ZERO)
        without_case = money(eur["collected_without_case"])
        if (money(eur["collected"]), by_collectors + without_case) != (cash_after, cash_after):
            problems.append(f"report reconcile this week: {eur}; dashboard {cash_after}, collectors {by_collectors}")
    assert not problems, "\n".join(problems)


def test_two_output_formats_at_once_are_refused(ledger):
    """`--json --csv` printed JSON as if --csv had not been typed: every command with both refuses
    them together, whichever comes first: exit 2, one line naming both, nothing on stdout."""
    supervisor = {"COLLECTIONS_TOKEN": ledger.token("demo-supervisor")}  # audit export: supervisors
    for command in (("report", "aging"), ("report", "kpis"), ("report", "write-offs"), ("audit", "export")):
        for formats in (("--json", "--csv"), ("--csv", "--json")):
            result = ledger.cli(*command, *formats, json=False, env=supervisor)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.code == 2 and len(lines) == 1 and result.stdout == "", str(result)
            assert "--json" in lines[0] and "--csv" in lines[0], lines
    assert ledger.cli("report", "aging", "--csv", json=False).stdout.startswith("currency,")
    # a report is of one currency: without --currency the table says which others the ledger
    # holds (a plain `report aging` showed EUR and nothing told of the USD receivables)
    used = ledger.ok("report", "aging")["rows"][0]["currency"]  # the module has EUR and USD invoices
    other = next(c for c in ("EUR", "USD") if c != used)
    plain = ledger.cli("report", "aging", json=False).stdout
    assert "also invoiced in" in plain and other in plain.split("also invoiced in")[1], plain
    assert "also invoiced in" not in ledger.cli("report", "aging", "--currency", used, json=False).stdout


def test_no_open_case_waits_on_nobody(ledger):
    """Run last in the module: whatever the commands above left open has a timer or an owned item."""
    assert ledger.ok("report", "stuck") == []
    assert "no stuck cases" in ledger.cli("report", "stuck", json=False).stdout


def test_a_write_off_ratio_above_100_percent_says_why(ledger):
    """A finance manager read a write-off ratio of several hundred percent for one day and took it
    for a bug. It is not one: the principal written off that day was sold in earlier periods. The
    reports now say so beside the figure (docs/KPIS.md), from the figures they show.

    K-WR1 (500.00, issued 40 days ago) is written off today; K-WR2 (100.00, no case) is issued
    today, so today's credit sales are 100.00 and today's principal written off at least 500.00."""
    book = [Inv("K-WR1", Decimal("500.00"), -40, -10), Inv("K-WR2", Decimal("100.00"), 0, 30, case=False)]
    assert ledger.import_invoices([i.row() for i in book])["invoices_added"] == 2
    ledger.ok("case", "open", "K-WR1")
    ledger.ok("write-off", "request", "K-WR1", "--amount", "500.00", "--reason", "insolvency")
    pending = [a for a in ledger.ok("approvals", "list") if a["kind"] == "write_off" and a["invoice_id"] == "K-WR1"]
    assert ledger.ok("approvals", "approve", pending[0]["approval_id"], "--reason", "checked the file",
                     "--as", "demo-supervisor")["status"] == "written_off"

    today = ("--currency", "EUR", "--from", TODAY.isoformat(), "--to", TODAY.isoformat())
    shown = ledger.ok("report", "write-offs", *today)
    row = shown["rows"][0]
    principal, sales = money(row["principal_written_off"]), money(row["credit_sales"])
    assert sales == Decimal("100.00") and principal >= Decimal("500.00"), row  # what this test did, at least
    assert Decimal(row["write_off_ratio_percent"]) > 100, row
    explained = (f"write-off ratio above 100 %: the principal written off in the period ({row['principal_written_off']}) "
                 f"is more than its credit sales (100.00), so some of it was sold in earlier periods")
    assert shown["notes"] == [explained], shown
    assert explained in ledger.ok("report", "kpis", *today)["notes"]
    table = " ".join(ledger.cli("report", "write-offs", *today, json=False).stdout.split())
    assert f"note: {explained}" in table, table
    with ledger.api("demo-manager") as api:
        answer = api.get("/api/reports/kpis", params={"currency": "EUR", "from": TODAY.isoformat(),
                                                       "to": TODAY.isoformat(), "report": "write-offs"}).json()
    assert answer["notes"] == [explained], answer
    # the 90 days up to today: sales of the period, more than what was written off, and no note
    assert not [n for n in ledger.ok("report", "write-offs", "--currency", "EUR")["notes"] if "write-off" in n]


def test_a_bank_payment_on_a_written_off_invoice_is_assigned_as_a_recovery(ledger):
    """A finance manager's bank file brought a second dividend for K-WO (12,000.00 written off, 5,000.00
    recovered by `pay` in the test above): the import held it unmatched, "its case is closed", and
    `payments assign` refused it for the same reason, so the money could be booked only with `pay`,
    which left the bank line waiting in the unmatched list. Now the import says the invoice was written
    off and how to book it, and assigning it records bad debt recovered (as `pay` does: at most what is
    still recoverable, refused naming the amount otherwise, and nothing changes); the line leaves the
    unmatched list, the case stays written off, `report kpis` counts it as recovered and collected."""
    manager = {"COLLECTIONS_TOKEN": ledger.token("demo-manager")}
    received = TODAY - timedelta(days=1)
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    imported = ledger.import_bank_file([f"BANK-KWO-2,{received},1500.00,EUR,Administrator,second dividend K-WO",
                                        f"BANK-KWO-3,{received},6000.00,EUR,Administrator,final dividend K-WO"])
    assert imported["unmatched"] == 2, imported
    held = {p["payment_id"]: p for p in ledger.ok("payments", "unmatched")}
    assert "invoice K-WO was written off: `payments assign BANK-KWO-2 K-WO` records this money as bad debt " \
           "recovered" in held["BANK-KWO-2"]["note"], held

    done = ledger.cli("payments", "assign", "BANK-KWO-2", "K-WO", "--reason", "administrator's second dividend",
                      json=False)
    assert done.code == 0, str(done)
    said = " ".join(done.stdout.split())
    assert "recovery of written-off invoice K-WO: payment BANK-KWO-2 of 1500.00 EUR recorded" in said, said
    assert "recovered 6500.00 of 12000.00 written off (5500.00 still recoverable)" in said, said
    ledger.refused("payments", "assign", "BANK-KWO-3", "K-WO", "--reason", "final dividend", match="amount")
    ledger.refused("payments", "assign", "BANK-KWO-2", "K-WO", "--reason", "again", match="payment_id")
    assert [p["payment_id"] for p in ledger.ok("payments", "unmatched")] == ["BANK-KWO-3"]

    shown = ledger.case("K-WO")
    assert (shown["status"], shown["balance"]) == ("written_off", "0.00"), shown
    assert [(r["data"]["payment_id"], r["data"]["amount"]["amount"], r["actor"]) for r in shown["recoveries"]] == [
        ("REC-KWO-1", "5000.00", "demo-collector"), ("BANK-KWO-2", "1500.00", "demo-collector")], shown["recoveries"]
    trail = [r for r in ledger.ok("audit", "export", "--from", str(TODAY), env=manager)
             if r["type"] in ("WriteOffRecovered", "PaymentAssigned") and "BANK-KWO" in r["subject"]]
    assert sorted((r["type"], r["amount"], r["reason"]) for r in trail) == [
        ("PaymentAssigned", "1500.00", "administrator's second dividend"),
        ("WriteOffRecovered", "1500.00", "administrator's second dividend")], trail

    recovery_moves_only_recovered_and_collected(ledger, before, Decimal("1500.00"))


def test_a_recovery_the_bank_took_back_is_reversed_and_recoverable_again(ledger):
    """The administrator's second dividend for K-WO (1,500.00, assigned from the bank file in the test
    above) comes back unpaid. Before, `payments reverse` refused it ("only an applied payment can be
    reversed"), so `report kpis` went on counting it as recovered and collected. Now it is taken back
    as any payment is: once, with its reason on the invoice's recovery stream; the case stays written
    off, the KPIs lose it on the day taken back, and that much is recoverable again (the final
    dividend of 6,000.00, refused above as beyond what was still recoverable, can now be assigned)."""
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    done = ledger.cli("payments", "reverse", "BANK-KWO-2", "--reason", "dividend cheque returned unpaid", json=False)
    assert done.code == 0, str(done)
    said = " ".join(done.stdout.split())
    assert "recovery BANK-KWO-2 of 1500.00 EUR taken back; invoice K-WO stays written off" in said, said
    again = ledger.cli("payments", "reverse", "BANK-KWO-2", "--reason", "returned again", json=False)
    assert again.code == 0 and "already reversed: no change" in again.stdout, str(again)

    shown = ledger.case("K-WO")
    assert (shown["status"], shown["balance"]) == ("written_off", "0.00"), shown
    assert [(r["type"], r["data"]["payment_id"], r["data"]["amount"]["amount"]) for r in shown["recoveries"]] == [
        ("WriteOffRecovered", "REC-KWO-1", "5000.00"), ("WriteOffRecovered", "BANK-KWO-2", "1500.00"),
        ("WriteOffRecoveryReversed", "BANK-KWO-2", "1500.00")], shown["recoveries"]
    as_read = ledger.cli("case", "show", "K-WO", json=False)
    assert as_read.code == 0 and "recovery BANK-KWO-2 of 1500.00 EUR taken back" in " ".join(as_read.stdout.split())
    manager = {"COLLECTIONS_TOKEN": ledger.token("demo-manager")}
    trail = [(r["type"], r["amount"], r["reason"]) for r in ledger.ok("audit", "export", "--from", str(TODAY), env=manager)
             if r["type"] == "WriteOffRecoveryReversed"]
    assert trail == [("WriteOffRecoveryReversed", "1500.00", "dividend cheque returned unpaid")], trail

    # recounted from the events: recovered and collected lose the 1,500.00 today, nothing else moves
    recovery_moves_only_recovered_and_collected(ledger, before, Decimal("-1500.00"))

    # recoverable again: 12,000.00 written off, 5,000.00 recovered, so the final 6,000.00 fits now
    final = ledger.ok("payments", "assign", "BANK-KWO-3", "K-WO", "--reason", "administrator's final dividend")
    assert (final["recovered"], final["recoverable"]) == ("11000.00", "1000.00"), final
    ledger.reconcile()


def test_a_payment_id_names_one_payment_even_once_reversed(ledger):
    """A payment id names one payment. Before, `pay` with the id of a recovery the bank took back
    (BANK-KWO-2, reversed in the test above) said "already recorded": it reported as recorded money
    that the books no longer held. Now it is refused naming payment_id and saying why, and so is
    the id of a recovery recorded by `pay` (REC-KWO-1) sent for another written-off invoice (K-WF1)
    or for an invoice whose case is open (before, that was taken as a new payment). Nothing changes."""
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    trail = len(ledger.ok("audit", "export", "--from", str(TODAY), env={"COLLECTIONS_TOKEN": ledger.token("demo-manager")}))
    said = ledger.refused("pay", "K-WO", "1500.00", "--payment-id", "BANK-KWO-2", "--received-on",
                          str(TODAY - timedelta(days=1)), match="payment_id")
    assert "was recorded and then reversed" in said and "new payment id" in said, said
    said = ledger.refused("pay", "K-WF1", "10.00", "--payment-id", "REC-KWO-1", match="payment_id")
    assert "already recorded on another invoice (K-WO)" in said, said
    # and for an invoice whose case is open: `pay` recorded the recovery's row as a bank line has one
    open_case = next(row for invoice_id, row in sorted(ledger.cases().items())
                     if row["status"] not in ("paid", "resolved", "written_off", "cancelled"))
    said = ledger.refused("pay", open_case["invoice_id"], "10.00", "--payment-id", "REC-KWO-1", match="payment_id")
    assert "already recorded on another invoice (K-WO)" in said, said
    assert ledger.case(open_case["invoice_id"])["balance"] == open_case["balance"]
    assert ledger.case("K-WF1")["status"] == "written_off"
    assert not [r for r in ledger.case("K-WF1").get("recoveries", [])], "nothing recovered on K-WF1"
    assert ledger.ok("report", "kpis", "--currency", "EUR") == before
    after = ledger.ok("audit", "export", "--from", str(TODAY), env={"COLLECTIONS_TOKEN": ledger.token("demo-manager")})
    assert len(after) == trail, after[trail:]


def test_the_api_takes_a_recovery_back_as_the_cli_does(ledger):
    """`POST /api/payments/{id}/reverse` runs the same service as `payments reverse`. A collector's
    token is refused (403) and changes nothing; a finance manager's takes back the administrator's
    first dividend (REC-KWO-1, recorded by `pay`, so without a bank line): once, with its reason, and
    the KPIs lose it. Its id then names no new money either."""
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    body = {"reason": "administrator recalled the first dividend"}
    with ledger.api("demo-collector") as api:
        refused = api.post("/api/payments/REC-KWO-1/reverse", json=body)
    assert refused.status_code == 403, refused.text
    assert ledger.ok("report", "kpis", "--currency", "EUR") == before
    with ledger.api("demo-manager") as api:
        done = api.post("/api/payments/REC-KWO-1/reverse", json=body)
        again = api.post("/api/payments/REC-KWO-1/reverse", json={"reason": "recalled again"})
        empty = api.post("/api/payments/REC-KWO-1/reverse", json={"reason": " "})
    assert done.status_code == 200, done.text
    assert {k: done.json()[k] for k in ("payment_id", "invoice_id", "applied_to", "amount", "reversed")} == {
        "payment_id": "REC-KWO-1", "invoice_id": "K-WO", "applied_to": "recovery", "amount": "5000.00",
        "reversed": True}, done.json()
    assert again.status_code == 200 and again.json()["reversed"] is False, again.text
    assert empty.status_code == 400 and empty.json()["field"] == "reason", empty.text
    taken = [(r["data"]["payment_id"], r["data"]["reason"]) for r in ledger.case("K-WO")["recoveries"]
             if r["type"] == "WriteOffRecoveryReversed"]
    assert taken == [("BANK-KWO-2", "dividend cheque returned unpaid"),
                     ("REC-KWO-1", "administrator recalled the first dividend")], taken
    recovery_moves_only_recovered_and_collected(ledger, before, Decimal("-5000.00"))
    ledger.refused("pay", "K-WO", "5000.00", "--payment-id", "REC-KWO-1", "--reference", "administrator dividend",
                   "--received-on", str(TODAY - timedelta(days=2)), match="reversed")


def test_a_bank_statement_taking_back_a_recovered_line_reverses_the_recovery(ledger):
    """The administrator's third dividend for K-WO arrives on the bank's MT940 statement; the import
    holds it (the invoice was written off) and a finance manager assigns it as a recovery. The
    bank's next statement reverses the credit (RC, the same end-to-end reference). Before, that
    reversal was listed as matching no receipt and the money stayed recovered; now the import takes
    the recovery back, once (the same statement again changes nothing), and the KPIs are what they
    were before the dividend."""
    before = ledger.ok("report", "kpis", "--currency", "EUR")
    credit = statement_file(ledger, "STMT-KWO-1", "C1000,00NTRFNONREF//B-KWO-4", "0,00", "1000,00")
    imported = ledger.ok("payments", "import", credit)
    assert (imported["format"], imported["unmatched"]) == ("mt940", 1), imported
    [line] = [p for p in ledger.ok("payments", "unmatched") if p["amount"] == "1000.00"]
    assert "invoice K-WO was written off" in line["note"], line
    assigned = ledger.ok("payments", "assign", line["payment_id"], "K-WO", "--reason", "third dividend")
    assert (assigned["applied_to"], assigned["recovered"]) == ("recovery", "7000.00"), assigned

    debit = statement_file(ledger, "STMT-KWO-2", "RC1000,00NTRFNONREF//B-KWO-5", "1000,00", "0,00")
    back = ledger.ok("payments", "import", debit)
    assert (back["reversed"], back["reversals_unmatched"]) == (1, []), back
    again = ledger.ok("payments", "import", debit)
    assert (again["already_imported"], again["reversed"]) == (1, 0), again
    taken = [r["data"]["payment_id"] for r in ledger.case("K-WO")["recoveries"] if r["type"] == "WriteOffRecoveryReversed"]
    assert taken == ["BANK-KWO-2", "REC-KWO-1", line["payment_id"]], taken
    assert line["payment_id"] not in [p["payment_id"] for p in ledger.ok("payments", "unmatched")]
    recovery_moves_only_recovered_and_collected(ledger, before, Decimal("0.00"))


def statement_file(ledger, statement: str, entry: str, opening: str, closing: str) -> str:
    """A one-entry MT940 statement of today, as the bank sends it, written where the user keeps files."""
    day = TODAY.strftime("%y%m%d")
    path = ledger.dir / f"{statement}.sta"
    path.write_text(f":20:{statement}\n:25:DE89370400440532013000\n:28C:00001/001\n:60F:C{day}EUR{opening}\n"
                    f":61:{day}{day[2:]}{entry}\n"
                    ":86:166?00GUTSCHRIFT?20EREF+E2E-KWO-4?21SVWZ+third dividend K-WO?32ADMINISTRATOR\n"
                    f":62F:C{day}EUR{closing}\n-\n")
    return str(path)


def recovery_moves_only_recovered_and_collected(ledger, before: dict, by: Decimal) -> None:
    """`report kpis` (JSON and table) and `report reconcile` moved from ``before`` by ``by`` in
    `recovered` and `collected`, and nothing else."""
    expected = {"recovered": str(money(before["recovered"]) + by), "collected": str(money(before["collected"]) + by),
                "written_off": before["written_off"], "receivables_end": before["receivables_end"]}
    problems = euro_kpis_differ(ledger, expected)
    reconciled = ledger.cli("report", "reconcile")
    if reconciled.code != 0 or reconciled.json["figures"]["EUR"]["recovered"] != expected["recovered"]:
        problems.append(f"report reconcile: {reconciled}")
    assert not problems, "\n".join(problems)
