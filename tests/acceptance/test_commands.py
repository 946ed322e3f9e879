"""Acceptance: every command of README's command-line table, as a person types it, with
`--json` parsed and checked. Commands proven elsewhere in this folder (and where):

* `sweep` without options, `schedule create` with its defaults: test_sweep_and_schedule.py
* `pay` (partial, full, over, on the ledger), `payments import`/`reverse`, `dispute` upheld,
  `write-off request`, `approvals approve`, every `report` kind: test_kpis.py
* `worker`, `web`: started by the fixture for every module (conftest.py / stack.py);
  stopped and restarted in test_stuck_workflows.py
* `up`: test_up.py
"""

from __future__ import annotations

import csv
import io
import time
import tomllib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.acceptance.stack import DEMO_POLICY, ROOT, money, wait_until

TODAY = datetime.now(timezone.utc).date()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def invoice(invoice_id: str, amount: str, due_in: int, grade: str = "A", currency: str = "USD",
            customer: str | None = None, language: str = "en", country: str = "US") -> str:
    who = customer or f"C-{invoice_id}"
    return (f"{invoice_id},{who},{who} Inc,ap@{who.lower()}.test,{country},{language},{currency},{amount},"
            f"{day(due_in - 30)},{day(due_in)},{grade}")


@pytest.fixture(scope="module")
def ledger(ledger_for):
    # the demo ladder (5 s / 15 s / 25 s, grade D 3 s / 12 s, escalation 10 s later) leaves a
    # person the time to type a few commands before a case escalates
    return ledger_for(policy=DEMO_POLICY)


def test_setup_users_policies_and_imports(ledger):
    upgraded = ledger.ok("db", "upgrade")
    assert upgraded["revision"] and "collections.db" in upgraded["database"], upgraded

    users = {u["name"]: u for u in ledger.ok("users", "list")}
    assert {n: (u["role"], u["write_off_limit"]) for n, u in users.items()} == {
        "demo-collector": ("collector", "0"), "demo-supervisor": ("supervisor", "10000"),
        "demo-manager": ("finance_manager", "100000")}, users
    issued = ledger.ok("users", "token", "demo-supervisor")
    assert issued["user"] == "demo-supervisor" and issued["role"] == "supervisor" and len(issued["token"]) >= 20
    assert {u["name"]: u["has_token"] for u in ledger.ok("users", "list")}["demo-supervisor"] is True
    with ledger.api() as anonymous:
        assert anonymous.get("/api/cases").status_code == 401
    headers = {"Authorization": f"Bearer {issued['token']}"}
    with ledger.api() as api:
        me = api.get("/api/me", headers=headers)
        assert me.status_code == 200 and me.json()["name"] == "demo-supervisor", me.text
        again = ledger.ok("users", "token", "demo-supervisor")  # a new token: the old one stops at once
        assert api.get("/api/me", headers=headers).status_code == 401
        assert api.get("/api/me", headers={"Authorization": f"Bearer {again['token']}"}).status_code == 200
    ledger.tokens["demo-supervisor"] = again["token"]

    # a command that changes data needs the token of the person acting, and --as must be them
    ledger.refused("case", "open", "CL-1", env={"COLLECTIONS_TOKEN": ""}, match="token")
    ledger.refused("case", "open", "CL-1", "--as", "demo-manager", env={"COLLECTIONS_TOKEN": again["token"]},
                   match="demo-supervisor")

    active = tomllib.loads(DEMO_POLICY.read_text())["version"]
    shown = ledger.ok("policy", "show")
    assert shown["version"] == active and [s["name"] for s in shown["ladders"]["B"]] == [
        "friendly", "firm", "final"], shown
    other = ledger.dir / "demo-2.toml"
    other.write_text(DEMO_POLICY.read_text().replace(f'version = "{active}"', 'version = "acceptance-2"'))
    assert ledger.ok("policy", "pin", str(other), "--reason", "acceptance")["version"] == "acceptance-2"
    # amounts a currency cannot hold, and a negative authority, are refused when pinned: a fee of
    # 300.005 CNY was refused by every CNY case when its notice came due, in a loop that starved the worker
    for typo, field in (('CNY = "300.00"', "fee.CNY"), ('JPY = "6000"', "fee.JPY"),
                        ('JPY = "700"', "tolerance.JPY"), ('supervisor = "10000"', "write_off_limits.supervisor")):
        broken = ledger.dir / "broken.toml"
        mistyped = {"fee.CNY": 'CNY = "300.005"', "fee.JPY": 'JPY = "6000.5"', "tolerance.JPY": 'JPY = "700", XYZ = "1"',
                    "write_off_limits.supervisor": 'supervisor = "-5"'}[field]
        broken.write_text(other.read_text().replace('version = "acceptance-2"', 'version = "acceptance-broken"')
                          .replace(typo, mistyped, 1))
        ledger.refused("policy", "pin", str(broken), "--reason", "typo", match=field.split(".")[0])
    assert "acceptance-broken" not in {p["version"] for p in ledger.ok("policy", "list")}
    listed = {p["version"]: p for p in ledger.ok("policy", "list")}
    assert set(listed) >= {active, "acceptance-2"} and listed[active]["active"] is True, listed

    rows = [invoice("CL-1", "1500.00", -20), invoice("CL-2", "820.00", -12, grade="D"),
            invoice("CL-3", "2400.00", -9), invoice("CL-4", "700.00", -15),
            invoice("CL-5", "310.00", -40), invoice("CL-6", "5000.00", -45),
            invoice("CL-7", "12345.60", -3, currency="CNY", language="zh-CN", country="CN")]
    first = ledger.import_invoices(rows)
    assert (first["rows"], first["invoices_added"], first["invoices_unchanged"]) == (7, 7, 0), first
    again = ledger.import_invoices(rows)
    assert (again["invoices_added"], again["invoices_unchanged"]) == (0, 7), again

    ibm = ledger.dir / "ibm.csv"
    ibm.write_text("countrycode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,InvoiceAmount,Disputed,"
                   "SettledDate,PaperlessBill,DaysToSettle,DaysLate\n"
                   "770,0379-NEVHP,04/03/2013,IBM-1,02/01/2013,01/02/2013,41.51,No,16/02/2013,Paper,45,15\n")
    imported = ledger.ok("invoices", "import", str(ibm), "--format", "ibm-ar")
    assert imported["invoices_added"] == 1, imported


def test_case_commands_from_open_to_close(ledger):
    ledger.ok("case", "open", "CL-2")  # grade D: escalates after ~22 s, decided further down
    opened = ledger.ok("case", "open", "CL-1", "--reason", "manual")
    assert opened["status"] == "open" and opened["balance"] == "1500.00" and opened["currency"] == "USD", opened
    assert ledger.ok("case", "open", "CL-1")["case_id"] == opened["case_id"]  # twice: the same case
    shown = ledger.case(opened["case_id"])  # by case id as well as by invoice id
    assert shown["invoice_id"] == "CL-1" and shown["events"][0]["type"] == "CaseOpened", shown

    assigned = ledger.ok("case", "assign", "CL-1", "demo-collector", "--as", "demo-supervisor")
    assert ledger.peek("CL-1")["assignee"] == "demo-collector", assigned

    # the same payment typed twice with its id: counted once
    paid = ledger.ok("pay", "CL-1", "500.00", "--reference", "wire 7", "--payment-id", "PAY-CL-1")
    assert paid["balance"] == "1000.00", paid
    again = ledger.cli("pay", "CL-1", "500.00", "--reference", "wire 7", "--payment-id", "PAY-CL-1", json=False)
    assert again.code == 0 and "balance 1000.00 USD" in again.stdout, str(again)
    assert "no change: already recorded" in again.stdout, again.stdout  # not read as a second payment

    promised = ledger.ok("promise", "CL-1", "--amount", "1000.00", "--date", day(7))
    assert promised["status"] == "promised" and ledger.peek("CL-1")["promise"]["amount"]["amount"] == "1000.00"
    # the payment sent again later shows the case as it is now, not as the first reply had it
    later = ledger.ok("pay", "CL-1", "500.00", "--reference", "wire 7", "--payment-id", "PAY-CL-1")
    assert (later["status"], later["balance"], later["recorded"]) == ("promised", "1000.00", False), later

    # a dispute: opened by the collector on part of the balance, rejected: dunning resumes
    disputed = ledger.ok("case", "open", "CL-3", "--reason", "dispute")
    assert disputed["status"] == "disputed", disputed
    rejected = ledger.ok("dispute", "resolve", "CL-3", "--outcome", "rejected", "--note", "goods delivered",
                         "--as", "demo-supervisor")
    assert rejected["status"] != "disputed" and rejected["balance"] == "2400.00", rejected
    again = ledger.ok("dispute", "open", "CL-3", "--reason", "quality", "--amount", "400.00")
    assert again["status"] == "disputed" and ledger.peek("CL-3")["dispute"]["amount"]["amount"] == "400.00", again

    # a payment plan within a collector's authority (fast policy: up to 3 instalments)
    ledger.ok("case", "open", "CL-4")
    proposed = ledger.ok("plan", "propose", "CL-4", "--instalments", "2", "--every", "P14D", "--first", day(3))
    plan = ledger.peek("CL-4")["plan"]
    assert plan and len(plan["instalments"]) == 2, plan
    assert sum(money(i["amount"]["amount"]) for i in plan["instalments"]) == Decimal("700.00"), plan
    accepted = ledger.ok("plan", "accept", "CL-4")
    assert accepted["status"] == "on_plan" and proposed["case_id"] == accepted["case_id"], accepted

    # the grade D case has run its ladder and escalated; the supervisor decides
    ledger.wait_for_case("CL-2", lambda c: c["status"] == "escalated", "escalated", timeout=45)
    pending = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-2"]
    assert [a["kind"] for a in pending] == ["escalation"], pending
    ledger.refused("escalation", "decide", "CL-2", "--decision", "agency")  # a collector may not
    decided = ledger.ok("escalation", "decide", "CL-2", "--decision", "write_off", "--as", "demo-supervisor",
                        "--reason", "customer insolvent")  # --reason, as every other decision takes it
    assert decided["status"] == "awaiting_approval", decided
    noted = [e for e in ledger.case("CL-2")["events"] if e["type"] == "EscalationDecided"]
    assert [e["data"]["note"] for e in noted] == ["customer insolvent"], noted
    write_off = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-2" and a["kind"] == "write_off"]
    assert len(write_off) == 1 and money(write_off[0]["amount"]) == money(ledger.peek("CL-2")["balance"]), write_off
    turned_down = ledger.ok("approvals", "reject", write_off[0]["approval_id"], "--reason", "try an agency first",
                            "--as", "demo-manager")
    assert turned_down["status"] != "written_off", turned_down
    decided_list = ledger.ok("approvals", "list", "--status", "all")
    assert {(a["kind"], a["status"]) for a in decided_list if a["invoice_id"] == "CL-2"} >= {
        ("write_off", "rejected")}, decided_list

    # a request by a collector, approved by a supervisor within her limit (four eyes)
    ledger.ok("case", "open", "CL-5")
    ledger.ok("write-off", "request", "CL-5", "--amount", "310.00", "--reason", "small_balance")
    request = next(a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-5" and a["kind"] == "write_off")
    ledger.refused("approvals", "approve", request["approval_id"], "--reason", "checked the file")  # a collector may not
    approved = ledger.ok("approvals", "approve", request["approval_id"], "--reason", "checked the file", "--as", "demo-supervisor")
    assert approved["status"] == "written_off" and approved["balance"] == "0.00", approved

    # cancel (supervisors); USD 5,000 is above the single-person threshold: a second person approves
    ledger.ok("case", "open", "CL-6")
    ledger.refused("case", "cancel", "CL-6", "--reason", "invoice_voided")  # a collector may not
    asked = ledger.ok("case", "cancel", "CL-6", "--reason", "invoice_voided", "--as", "demo-supervisor")
    assert asked["status"] == "awaiting_approval" and asked["balance"] == "5000.00", asked
    # (pick it by kind: a running ladder may escalate the case meanwhile, and that is an item too)
    cancellation = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-6" and a["kind"] == "cancellation"]
    assert len(cancellation) == 1 and cancellation[0]["amount"] == "5000.00", cancellation
    ledger.refused("approvals", "approve", cancellation[0]["approval_id"], "--reason", "checked the file", "--as", "demo-supervisor", match="four eyes")
    cancelled = ledger.ok("approvals", "approve", cancellation[0]["approval_id"], "--reason", "checked the file", "--as", "demo-manager")
    assert cancelled["status"] == "cancelled", cancelled
    moved = ledger.ok("case", "migrate-policy", "CL-4", "--to", "acceptance-2", "--as", "demo-supervisor")
    assert moved["events"][0]["type"] == "PolicyMigrated" and ledger.peek("CL-4")["policy_version"] == "acceptance-2"

    # what the customer would read
    preview = ledger.ok("template", "preview", "CL-3", "--level", "2")
    assert preview["to"] == "ap@c-cl-3.test" and preview["level"] == 2 and "CL-3" in preview["text"], preview
    html = ledger.cli("template", "preview", "CL-3", "--level", "2", "--html", json=False)
    assert html.code == 0 and "<html" in html.stdout.lower() and "CL-3" in html.stdout, str(html)

    statuses = {c["invoice_id"]: c["status"] for c in ledger.ok("case", "list")}
    assert statuses["CL-5"] == "written_off" and statuses["CL-6"] == "cancelled", statuses
    assert [c["invoice_id"] for c in ledger.ok("case", "list", "--status", "cancelled")] == ["CL-6"]
    ledger.reconcile()


def test_sweep_schedule_and_payment_matching(ledger):
    # a sweep as of a chosen day: CL-7 (due 3 days ago) is not overdue yet on the day of 5 days ago
    swept = ledger.ok("sweep", "--as-of", day(-5))
    assert swept["as_of"] == day(-5) and "CL-7" not in ledger.cases(), swept
    # a day to come is refused: it would dun invoices not yet overdue and e-mail their customers now
    # (CL-7 has no case yet: a sweep as of day 30 would open its case and e-mail its customer)
    before = set(ledger.cases())
    ledger.refused("sweep", "--as-of", day(30), match="as_of")
    ledger.refused("sweep", "--as-of", "2030-01-01", match="in the future")
    with ledger.api("demo-supervisor") as api:
        answer = api.post("/api/sweeps", json={"as_of": day(30)})
        assert answer.status_code == 400 and answer.json()["field"] == "as_of", answer.text
    # the other cases' ladders go on meanwhile: their reminders are not the sweep's
    assert (set(ledger.cases()), ledger.mails("ap@c-cl-7.test")) == (before, [])

    schedule = ledger.ok("schedule", "create", "--cron", "30 7 * * 1-5", "--timezone", "Asia/Shanghai")
    assert schedule["created"] and schedule["timezone"] == "Asia/Shanghai" and len(schedule["next_runs"]) == 3
    for run in map(datetime.fromisoformat, schedule["next_runs"]):  # 07:30 in Shanghai (UTC+8) on a weekday
        local = run.astimezone(timezone(timedelta(hours=8)))
        assert (local.hour, local.minute) == (7, 30) and local.weekday() < 5, schedule["next_runs"]
    ledger.temporal.temporal("schedule", "delete", "--schedule-id", schedule["schedule_id"], check=False)

    # a bank file: one matched by reference, one by nobody; assigned by hand
    ledger.ok("case", "open", "CL-7")
    matched = ledger.import_bank_file([f"BNK-1,{TODAY},345.60,CNY,C-CL-7 Inc,CL-7", f"BNK-2,{TODAY},1000.00,CNY,?,"])
    assert matched["matched_by_reference"] == 1 and matched["unmatched"] == 1, matched
    unmatched = ledger.ok("payments", "unmatched")
    assert [p["payment_id"] for p in unmatched] == ["BNK-2"] and unmatched[0]["amount"] == "1000.00", unmatched
    assigned = ledger.ok("payments", "assign", "BNK-2", "CL-7", "--reason", "remittance advice")
    assert assigned["balance"] == "11000.00", assigned
    assert ledger.ok("payments", "unmatched") == []

    # customer credit: a prepayment, then applied to the customer's open case
    prepaid = ledger.ok("payments", "prepay", "C-CL-7", "500.00", "--currency", "CNY", "--reference", "advance")
    assert prepaid["amount"] == "500.00" and prepaid["currency"] == "CNY", prepaid
    credit = {r["customer_id"]: r for r in ledger.ok("payments", "unapplied")}
    assert credit["C-CL-7"]["balance"] == "500.00" and credit["C-CL-7"]["currency"] == "CNY", credit
    applied = ledger.ok("payments", "apply-credit", "CL-7", "--amount", "200.00")
    assert applied["balance"] == "10800.00", applied
    auto = ledger.ok("payments", "apply-credit", "--auto")
    assert isinstance(auto, list) and len(auto) == 1, auto
    assert ledger.peek("CL-7")["balance"] == "10500.00"
    assert "C-CL-7" not in {r["customer_id"] for r in ledger.ok("payments", "unapplied")}

    # read models equal a replay of the events (the cases that can no longer move, and the
    # decided approvals: a running ladder may append between two reads)
    def settled() -> tuple[list[dict], list[dict]]:
        cases = [c for c in ledger.ok("case", "list") if c["status"] in ("paid", "written_off", "cancelled")]
        decided = [a for a in ledger.ok("approvals", "list", "--status", "all") if a["status"] != "pending"]
        return cases, decided

    before = settled()
    assert len(before[0]) >= 2 and len(before[1]) >= 2, before
    rebuilt = ledger.ok("projections", "rebuild")
    assert rebuilt["events_replayed"] > 20, rebuilt
    assert settled() == before
    ledger.reconcile()


def test_risk_holds_and_insurance(ledger):
    ledger.import_invoices([invoice("CL-R1", "700.00", -20, customer="C-RISK"),
                            invoice("CL-R2", "500.00", -10, customer="C-RISK")])
    ledger.ok("case", "open", "CL-R1")
    ledger.ok("pay", "CL-R1", "200.00", "--reference", "part")
    shown = ledger.ok("customer", "show", "C-RISK")
    assert shown["customer_id"] == "C-RISK" and shown["grade"] in "ABCD" and shown["top_factors"], shown
    assert money(shown["assessment"]["exposure"]) == Decimal("1000.00"), shown["assessment"]  # 500 + 500 open
    limited = ledger.ok("customer", "limit", "C-RISK", "600.00", "--currency", "USD", "--reason", "review", "--as", "demo-supervisor")
    assert money(str(limited["credit_limit"]).split()[0]) == Decimal("600.00"), limited
    assessment = ledger.ok("customer", "show", "C-RISK")["assessment"]
    assert assessment["over_limit"] is True, assessment
    watch = {r["customer_id"]: r for r in ledger.ok("risk", "watchlist", "--days", "30")}
    assert "C-RISK" in watch and any("limit" in why for why in watch["C-RISK"]["reasons"]), watch
    # a customer who owes in euros: the limit is in euros unless said otherwise, never in a
    # currency it owes nothing in (a dollar limit showed an exposure of 0.00 USD, never over)
    ledger.import_invoices([invoice("CL-E1", "1900.50", -20, currency="EUR", customer="C-EUR")])
    ledger.ok("case", "open", "CL-E1")
    ledger.refused("customer", "limit", "C-EUR", "1000", "--currency", "USD", "--reason", "review",
                   "--as", "demo-supervisor", match="currency")
    euro = ledger.cli("customer", "limit", "C-EUR", "1000", "--reason", "review", "--as", "demo-supervisor", json=False)
    assert euro.code == 0 and "credit limit 1000.00 EUR" in euro.stdout, euro
    assessment = ledger.ok("customer", "show", "C-EUR")["assessment"]
    assert assessment["over_limit"] is True and money(assessment["exposure"]) == Decimal("1900.50"), assessment
    assert "C-EUR" in {r["customer_id"] for r in ledger.ok("risk", "watchlist", "--days", "30")}
    rescored = ledger.ok("risk", "rescore")
    assert isinstance(rescored, dict), rescored

    placed = ledger.ok("credit-hold", "place", "C-RISK", "--reason", "over limit", "--as", "demo-supervisor")
    assert placed["hold_reason"] == "over limit", placed
    released = ledger.ok("credit-hold", "release", "C-RISK", "--reason", "limit raised", "--as", "demo-manager")
    assert released, released
    outbox = [r for r in ledger.ok("credit-hold", "outbox") if r["customer_id"] == "C-RISK"]
    assert [r["action"] for r in outbox] == ["hold", "release"], outbox
    acked = ledger.ok("credit-hold", "ack", outbox[0]["outbox_id"], "--consumer", "erp")
    assert acked["acked_by"] == "erp", acked
    assert outbox[0]["outbox_id"] not in {r["outbox_id"] for r in ledger.ok("credit-hold", "outbox")}
    assert outbox[0]["outbox_id"] in {r["outbox_id"] for r in ledger.ok("credit-hold", "outbox", "--all")}

    # credit insurance: an invoice insured before its case opens; the claim is filed after the
    # waiting period and the insurer's indemnity is recorded by a supervisor
    ledger.import_invoices([invoice("CL-INS", "8000.00", -40, customer="C-INS")])
    added = ledger.ok("insurance", "policy-add", "POL-ACC", "--insurer", "ATR", "--name", "Atradius",
                      "--email", "claims@insurer.test", "--notify-within", "P60D", "--max-extension", "P60D",
                      "--claim-waiting", "PT2S", "--indemnity", "90")
    assert added["added"] is True, added
    assert [p["policy_id"] for p in ledger.ok("insurance", "policies")] == ["POL-ACC"]
    covered = ledger.ok("insurance", "cover", "CL-INS", "--policy", "POL-ACC")
    assert covered, covered
    ledger.ok("case", "open", "CL-INS")
    claimed = ledger.wait_for_case("CL-INS", lambda c: any(e["type"] == "ClaimFiled" for e in c["events"]),
                                   "a claim filed with the insurer", timeout=45)
    assert claimed["insurance"]["insurer"] == "Atradius", claimed["insurance"]
    notices = wait_until(lambda: ledger.mails("claims@insurer.test"), bool, 30, "the insurer's notice of overdue")
    assert "CL-INS" in notices[0].subject + notices[0].text, notices[0].subject
    paid = ledger.ok("insurance", "indemnity", "CL-INS", "7200.00", "--reference", "ATR-77", "--as", "demo-manager")
    assert paid["balance"] == "800.00", paid
    ledger.reconcile()


def test_backtest_of_a_small_ledger(ledger):
    rows = [("A-1", "03/01/2013", "02/02/2013", "100.00", "10/02/2013"),   # settled 8 days late: a case
            ("A-2", "05/01/2013", "04/02/2013", "250.00", "01/02/2013"),   # settled before it was due
            ("B-1", "07/01/2013", "06/02/2013", "75.50", "20/03/2013")]    # 42 days late: a case
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["countrycode", "customerID", "PaperlessDate", "invoiceNumber", "InvoiceDate", "DueDate",
                     "InvoiceAmount", "Disputed", "SettledDate", "PaperlessBill", "DaysToSettle", "DaysLate"])
    for number, issued, due, amount, settled in rows:
        late = (date(*map(int, reversed(settled.split("/")))) - date(*map(int, reversed(due.split("/"))))).days
        writer.writerow(["770", f"CUST-{number[0]}", "01/01/2013", f"900{number[-1]}{number[0]}", issued, due, amount,
                         "No", settled, "Paper", "30", str(max(late, 0))])
    ledger_file = ledger.dir / "history.csv"
    ledger_file.write_text(text.getvalue())
    result = ledger.ok("backtest", str(ledger_file), "--format", "ibm-ar", "--policy",
                       str(ROOT / "policies" / "default.toml"), timeout=180)
    assert (result["invoices"], result["customers"]) == (3, 2), result
    assert result["cases_opened"] == 2 and result["paid_without_case"] == 1, result
    assert result["expected_from_ledger"]["cases"] == 2 and result["cases_by_outcome"] == {"paid": 2}, result


def test_no_open_case_waits_on_nobody(ledger):
    """Run last in the module: whatever the commands above left open has a timer or an owned item."""
    assert ledger.ok("report", "stuck") == []
    assert "no stuck cases" in ledger.cli("report", "stuck", json=False).stdout


def test_the_payment_that_closed_a_case_sent_again_changes_nothing(ledger):
    """An ERP retries what it is not sure went through: the repeat of the payment that closed the
    case was refused ('case is closed', exit 2 / 409) while the same repeat on an open case is a no-op."""
    ledger.import_invoices([invoice("CL-9", "800.00", -10), invoice("CL-10", "640.00", -10)])
    for said in ("case opened", "already open"):  # the first said 'no change' too
        opened = ledger.cli("case", "open", "CL-9", json=False)
        assert opened.code == 0 and said in opened.stdout, opened
    ledger.refused("approvals", "list", "--status", "foo", match="status")
    paid = ledger.ok("pay", "CL-9", "800.00", "--reference", "wire 9", "--payment-id", "PAY-CL-9")
    assert paid["status"] == "paid" and paid["balance"] == "0.00", paid
    again = ledger.ok("pay", "CL-9", "800.00", "--reference", "wire 9", "--payment-id", "PAY-CL-9")
    assert (again["status"], again["balance"], again["events"], again["recorded"]) == ("paid", "0.00", [], False), again
    ledger.refused("pay", "CL-9", "700.00", "--reference", "wire 9", "--payment-id", "PAY-CL-9", match="payment_id")
    events = ledger.case(paid["case_id"])["events"]
    assert [e["type"] for e in events].count("PaymentReceived") == 1, events
    reopened = ledger.cli("case", "open", "CL-9", json=False)  # it said 'already open' of a paid case
    assert reopened.code == 0 and "already closed (paid)" in reopened.stdout, reopened

    ledger.ok("case", "open", "CL-10")
    body = {"amount": "640.00", "reference": "wire 10", "payment_id": "PAY-CL-10"}
    with ledger.api("demo-collector") as api:
        first = api.post("/api/invoices/CL-10/payments", json=body)
        assert first.status_code == 200 and first.json()["status"] == "paid", first.text
        repeat = api.post("/api/invoices/CL-10/payments", json=body)
        assert repeat.status_code == 200 and repeat.json()["events"] == [], repeat.text
        other = api.post("/api/invoices/CL-10/payments", json={**body, "amount": "1.00"})
        assert other.status_code == 409, other.text
        assert other.json()["field"] == "payment_id", other.text


def test_an_invoice_not_yet_due_is_not_opened_as_overdue_nor_dunned_before_it_is_due(ledger):
    """`case open INV`, whose reason is 'overdue' unless told, opened a case for an invoice due in
    ten days, recorded it as overdue, and the demo ladder e-mailed its customer 5 s later. Now
    'overdue' is refused (nothing opens), and a case opened as 'manual' counts its reminders from
    the due date."""
    ledger.import_invoices([invoice("CL-11", "500.00", 10)])
    message = ledger.refused("case", "open", "CL-11", match="reason")
    assert "not due until" in message and day(10) in message, message
    with ledger.api("demo-collector") as api:
        refused = api.post("/api/cases", json={"invoice_id": "CL-11"})
    assert refused.status_code == 400 and refused.json()["field"] == "reason", refused.text
    assert "CL-11" not in ledger.cases(), "a refused opening opened a case"

    opened = ledger.ok("case", "open", "CL-11", "--reason", "manual")
    assert opened["status"] == "open", opened
    first = datetime.fromisoformat(ledger.case("CL-11")["next_action_at"])
    assert first.date() >= TODAY + timedelta(days=10), f"first reminder {first}, due {day(10)}"
    time.sleep(8)  # the demo ladder's first step (5 s) has passed, had it counted from the opening
    assert ledger.mails("ap@c-cl-11.test") == [], "a notice went out before the due date"


def test_case_show_marks_details_it_cuts(ledger):
    """`case show` cut an event's details at 100 characters with nothing to tell the text went
    on; the cut now ends with '…', and `--json` keeps the whole text."""
    ledger.import_invoices([invoice("CL-12", "450.00", -10)])
    ledger.ok("case", "open", "CL-12")
    reference = "remittance advice " + "for the pallets delivered in March, " * 4 + "END-OF-REFERENCE"
    ledger.ok("pay", "CL-12", "50.00", "--reference", reference)
    shown = ledger.cli("case", "show", "CL-12", json=False)
    assert shown.code == 0, shown
    row = next((line for line in shown.stdout.splitlines() if "PaymentReceived" in line), "")
    assert "payment_id=" in row and "END-OF-REFERENCE" not in shown.stdout, shown.stdout
    assert "…" in row, f"the payment's details are cut with no ellipsis:\n{shown.stdout}"
    paid = [e for e in ledger.case("CL-12")["events"] if e["type"] == "PaymentReceived"]
    assert paid and paid[0]["data"]["reference"] == reference, paid


def test_case_show_prints_money_in_an_events_details_as_money(ledger):
    """`case show` printed an event's money as Python's dict syntax
    ("amount={'amount': '60.00', 'currency': 'EUR'}"); it now reads "amount=60.00 EUR"."""
    ledger.import_invoices([invoice("CL-13", "450.00", -10)])
    ledger.ok("case", "open", "CL-13")
    ledger.ok("pay", "CL-13", "60.00", "--reference", "CL-13-PART")
    currency = ledger.case("CL-13")["currency"]
    shown = ledger.cli("case", "show", "CL-13", json=False)
    assert shown.code == 0, shown
    row = next((line for line in shown.stdout.splitlines() if "PaymentReceived" in line), "")
    assert f"amount=60.00 {currency}" in row, shown.stdout
    assert "{'" not in shown.stdout, shown.stdout


def test_customer_pause_says_what_it_did_to_each_case(ledger):
    """`customer pause` printed each open case with its status ('CL-P1: open'): whether the
    command paused it, asked a supervisor, or left it (already paused) was not said."""
    ledger.import_invoices([invoice("CL-P1", "300.00", -10, customer="C-PAUSE"),
                            invoice("CL-P2", "400.00", -10, customer="C-PAUSE"),
                            invoice("CL-P3", "500.00", -10, customer="C-PAUSE-LONG")])
    for ref in ("CL-P1", "CL-P2", "CL-P3"):
        ledger.ok("case", "open", ref)
    ledger.ok("case", "pause", "CL-P2", "--until", day(3), "--reason", "customer_holiday")

    paused = ledger.cli("customer", "pause", "C-PAUSE", "--until", day(7), "--reason", "insolvency_talks", json=False)
    assert paused.code == 0, paused
    lines = {line.split(":", 1)[0]: line for line in paused.stdout.splitlines()}
    assert f"paused until {day(7)}" in lines.get("CL-P1", ""), paused.stdout
    assert "not paused" in lines.get("CL-P2", "") and "already paused" in lines["CL-P2"], paused.stdout
    assert "1 paused, 1 not paused" in paused.stdout, paused.stdout

    # a collector's pause beyond the policy's 30 days: each case's pause waits for a supervisor
    asked = ledger.cli("customer", "pause", "C-PAUSE-LONG", "--until", day(45), "--reason", "insolvency_talks",
                       json=False)
    assert asked.code == 0, asked
    approval = next(a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-P3")
    line = next((line for line in asked.stdout.splitlines() if line.startswith("CL-P3")), "")
    assert "not paused yet" in line and approval["approval_id"] in line, asked.stdout

    # --json says the same of each case
    again = ledger.ok("customer", "pause", "C-PAUSE-LONG", "--until", day(45), "--reason", "insolvency_talks")
    assert [(c["invoice_id"], c["outcome"], c["paused"]) for c in again["cases"]] == [
        ("CL-P3", "not_paused", False)], again
    assert "already waiting for approval" in again["cases"][0]["error"], again


def test_no_invoice_in_gold_nor_in_no_currency_and_errors_print_what_was_typed(ledger):
    """ISO 4217's codes for no money (XAU gold, XXX 'no currency') were imported as invoices,
    dunned, and then could never be written off (no rate to the approval currency); and the CLI
    read error lines as Rich markup, so '[approval.rates]' in that very error vanished."""
    from tests.acceptance.stack import INVOICE_HEADER

    for code in ("XAU", "XXX"):
        rows = [invoice("CL-GOLD", "100.00", -10, currency=code)]
        message = ledger.refused("invoices", "import", str(ledger.write_csv(INVOICE_HEADER, rows, "gold")),
                                 match="currency")
        assert code in message and "no currency one invoices" in message, message
    ledger.refused("case", "open", "CL-GOLD", match="unknown invoice")  # nothing was imported
    typed = ledger.refused("case", "show", "[bold]CL-404[/bold]")
    assert "[bold]CL-404[/bold]" in typed, typed


def test_a_write_off_split_in_two_needs_authority_for_the_total(ledger):
    """A supervisor (10,000 USD) approved 9,000.00 then 9,540.00 written off on one invoice: the
    case was written off by 18,540.00 USD that nobody with that authority approved. The second
    approval must be refused and wait for the finance manager, as one request of 18,540 would."""
    ledger.import_invoices([invoice("CL-WO2", "18540.00", -10)])  # grade A: no fee, the balance moves only by us
    ledger.ok("case", "open", "CL-WO2")

    def pending_write_off() -> dict:
        items = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-WO2" and a["kind"] == "write_off"]
        assert len(items) == 1, items
        return items[0]

    ledger.ok("write-off", "request", "CL-WO2", "--amount", "9000.00", "--reason", "uncollectible")
    first = pending_write_off()
    part1 = ledger.ok("approvals", "approve", first["approval_id"], "--reason", "approved part 1", "--as", "demo-supervisor")
    assert money(part1["balance"]) == Decimal("9540.00"), part1

    ledger.ok("write-off", "request", "CL-WO2", "--amount", "9540.00", "--reason", "uncollectible")
    second = pending_write_off()
    # the inbox names who may approve it: the case's total is beyond a supervisor's cap
    assert (first["approver"], second["approver"]) == ("supervisor", "finance_manager"), (first, second)
    inbox = ledger.cli("approvals", "list", json=False)
    assert "finance_manager" in next(line for line in inbox.stdout.splitlines() if "CL-WO2" in line), inbox.stdout
    before = ledger.case("CL-WO2")
    refusal = ledger.refused("approvals", "approve", second["approval_id"], "--reason", "approved part 2",
                             "--as", "demo-supervisor")
    assert "9540.00 USD + 9000.00 USD already written off on this case = 18540.00 USD exceeds " \
           "demo-supervisor's write-off authority (10000 USD)" in refusal, refusal
    # nothing changed: still waiting, nothing more written off, no decision recorded
    after = ledger.case("CL-WO2")
    assert pending_write_off()["approval_id"] == second["approval_id"]
    assert (money(after["balance"]), money(after["totals"]["write_offs"])) == (Decimal("9540.00"), Decimal("9000.00"))
    assert after["balance"] == before["balance"] and after["totals"] == before["totals"], (before, after)
    decided = [e["type"] for e in after["events"] if e.get("data", {}).get("approval_id") == second["approval_id"]]
    assert decided == ["WriteOffRequested"], decided

    # the finance manager's authority covers the total: she approves it and the case is written off
    closed = ledger.ok("approvals", "approve", second["approval_id"], "--reason", "approved part 2", "--as", "demo-manager")
    assert closed["status"] == "written_off" and money(closed["balance"]) == Decimal("0.00"), closed
    written = [e for e in ledger.case("CL-WO2")["events"] if e["type"] == "WriteOffApproved"]
    assert [(money(e["data"]["amount"]["amount"]), e["actor"]) for e in written] == [
        (Decimal("9000.00"), "demo-supervisor"), (Decimal("9540.00"), "demo-manager")], written


def test_an_escalation_leaves_the_inbox_when_its_case_is_paid_in_full(ledger):
    """A finance manager found `approvals list` showing 'ES1-... 0.00 EUR pending' for a case
    escalated, then paid in full and closed, after its SLA and a rebuild too; deciding it was
    refused ('case is closed'), so nobody could ever clear it, and the dashboard counted it among
    the escalations waiting. Now the close withdraws it: out of the pending inbox, listed as
    withdrawn with the reason, the same after a rebuild, and `report reconcile` checks that no
    closed case has anything pending."""
    ledger.import_invoices([invoice("CL-ESC", "900.00", -10, grade="D", currency="EUR")])
    ledger.ok("case", "open", "CL-ESC")  # grade D under the demo policy: escalated within ~25 s
    ledger.wait_for_case("CL-ESC", lambda c: c["status"] == "escalated", "escalated", timeout=60)
    owed = ledger.peek("CL-ESC")["balance"]  # the invoice and the ladder's fees; the ladder has stopped
    waiting = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-ESC"]
    assert [(a["kind"], a["status"], a["amount"], a["currency"]) for a in waiting] == [
        ("escalation", "pending", owed, "EUR")], waiting

    paid = ledger.ok("pay", "CL-ESC", owed, "--reference", "wire ESC")
    assert (paid["status"], paid["balance"]) == ("paid", "0.00"), paid
    closed_at = next(e for e in ledger.case("CL-ESC")["events"] if e["type"] == "CaseClosed")["occurred_at"]

    assert [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-ESC"] == []
    assert "CL-ESC" not in ledger.cli("approvals", "list", json=False).stdout

    def listed() -> list[tuple]:
        return [(a["approval_id"], a["kind"], a["status"], a["decision"], a["decided_at"], a["amount"])
                for a in ledger.ok("approvals", "list", "--status", "all") if a["invoice_id"] == "CL-ESC"]

    withdrawn = listed()
    assert withdrawn == [(waiting[0]["approval_id"], "escalation", "withdrawn", "case closed (paid)", closed_at,
                          "0.00")], withdrawn
    only = ledger.ok("approvals", "list", "--status", "withdrawn")
    assert waiting[0]["approval_id"] in {a["approval_id"] for a in only}, only
    assert {a["status"] for a in only} == {"withdrawn"}, only
    table = ledger.cli("approvals", "list", "--status", "withdrawn", json=False)
    row = next((line for line in table.stdout.splitlines() if "CL-ESC" in line), "")
    assert "withdrawn" in row, table.stdout
    # a closed case still takes no decision: nothing is left to decide
    ledger.refused("escalation", "decide", "CL-ESC", "--decision", "continue", "--as", "demo-supervisor",
                   match="closed")

    assert ledger.ok("projections", "rebuild")["events_replayed"] > 0
    assert listed() == withdrawn
    assert [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-ESC"] == []
    ledger.reconcile()


def test_a_promise_for_the_customers_today_is_kept_until_their_midnight(ledger):
    """A collector in Europe records what a customer far west (or east) of UTC promised: "today"
    is the customer's day. It was judged on UTC's: refused as 'in the past' for a customer whose
    day had not ended, or broken hours before their midnight."""
    from zoneinfo import ZoneInfo

    from domain.policy import parse_policy

    now = datetime.now(timezone.utc)
    # a zone whose date differs from UTC's at this hour: American Samoa (UTC-11) or Kiribati (UTC+14)
    zone = ZoneInfo("Pacific/Pago_Pago" if now.hour < 11 else "Pacific/Kiritimati")
    local_today = now.astimezone(zone).date()
    assert local_today != now.date()
    header = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount," \
             "issue_date,due_date,risk_grade,timezone"
    row = f"CL-TZ,C-TZ,Islands Trading,ap@islands.test,US,en,USD,300.00,{day(-40)},{day(-10)},A,{zone.key}"
    ledger.ok("invoices", "import", str(ledger.write_csv(header, [row], "tz-invoices")))
    ledger.ok("case", "open", "CL-TZ")
    promised = ledger.ok("promise", "CL-TZ", "--amount", "300.00", "--date", local_today.isoformat())
    assert promised["status"] == "promised", promised
    grace = parse_policy(DEMO_POLICY.read_text()).promise.grace
    midnight = datetime.combine(local_today + timedelta(days=1), datetime.min.time(), zone)
    check_at = datetime.fromisoformat(ledger.case("CL-TZ")["promise"]["check_at"])
    assert check_at == midnight + grace, (check_at, midnight)


def test_dispute_credits_and_write_offs_add_up_against_the_approvers_authority(ledger):
    """A supervisor (10,000 USD) approved a 9,000 credit, then a 6,000 credit on one invoice:
    15,000 reduced without cash, each piece within her authority. The second waits for the
    finance manager, and the inbox says so."""
    ledger.import_invoices([invoice("CL-CR2", "25000.00", -10)])  # grade A: no fee
    ledger.ok("case", "open", "CL-CR2")

    def pending_credit() -> dict:
        [item] = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "CL-CR2"]
        return item

    for amount, reason in (("9000.00", "pricing"), ("6000.00", "quality")):
        ledger.ok("dispute", "open", "CL-CR2", "--reason", reason)
        ledger.ok("dispute", "resolve", "CL-CR2", "--outcome", "upheld", "--credit", amount)
        item = pending_credit()
        if amount == "9000.00":
            assert item["approver"] == "supervisor", item
            ledger.ok("approvals", "approve", item["approval_id"], "--reason", "credit note 1", "--as", "demo-supervisor")
    assert item["approver"] == "finance_manager", item
    refusal = ledger.refused("approvals", "approve", item["approval_id"], "--reason", "credit note 2",
                             "--as", "demo-supervisor")
    assert "6000.00 USD + 9000.00 USD already written off or credited on this case = 15000.00 USD exceeds " \
           "demo-supervisor's dispute credit authority" in refusal, refusal
    assert money(ledger.case("CL-CR2")["balance"]) == Decimal("16000.00")
    ledger.ok("approvals", "approve", item["approval_id"], "--reason", "credit note 2", "--as", "demo-manager")
    assert money(ledger.case("CL-CR2")["balance"]) == Decimal("10000.00")
