"""Acceptance: the ERP's export imported again with changes, as a person runs it
(`invoices import FILE`, `POST /api/invoices/import`), and what each open case does with it:
the next e-mail shows the new amount or goes to the new address, a cancelled invoice's case
shows `cancelled`, a moved due date moves the ladder, and the same file again changes nothing.

The ledger runs policies/demo.toml with grade A slowed down (notices 5 s, 60 s and 90 s after opening), and
the SMTP sink refuses every address starting with "bounce" (a permanent 550).
"""

from __future__ import annotations

import email.utils
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from tests.acceptance.stack import DEMO_POLICY, INVOICE_HEADER, money, wait_until

TODAY = datetime.now(timezone.utc).date()
ERP_HEADER = INVOICE_HEADER + ",document_type,references,status,paid"
ERP_TYPES = {"InvoiceAmended", "CreditNoteApplied", "PaidOutsideEngine", "DueDateMoved", "CustomerDetailsChanged",
             "CaseCancelled"}


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def row(invoice_id: str, amount: str = "1000.00", due_in: int = -12, email: str | None = None,
        name: str | None = None, document_type: str = "", references: str = "", status: str = "",
        paid: str = "", customer: str | None = None) -> str:
    """An export row: one customer per invoice (no batching), issued 30 days before the original due date."""
    who = customer or f"C-{invoice_id}"
    email = email or f"ap@{invoice_id.lower()}.test"
    return (f"{invoice_id},{who},{name or who + ' Ltd'},{email},DE,en,USD,{amount},{day(-42)},{day(due_in)},A,"
            f"{document_type},{references},{status},{paid}")


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    """The demo policy with grade A's second and third notices 60 s and 90 s after opening, so
    that on a loaded machine the import still comes before the ladder ends: there is a next
    notice to read."""
    text = DEMO_POLICY.read_text()
    active = tomllib.loads(text)["version"]
    slow = text.replace(f'version = "{active}"', 'version = "acceptance-erp-sync"', 1)
    ladder_a = 'name = "firm"\nafter = "PT15S"\n[[ladders.A]]\nname = "final"\nafter = "PT25S"'
    assert ladder_a in slow
    slow = slow.replace(ladder_a, 'name = "firm"\nafter = "PT60S"\n[[ladders.A]]\nname = "final"\nafter = "PT90S"', 1)
    path = tmp_path_factory.mktemp("erp-policy") / "erp-sync.toml"
    path.write_text(slow)
    return ledger_for(policy=path)


def erp_events(ledger, invoice_id: str) -> list[dict]:
    """The ERP's events in the case's history (GET /api/cases/REF: cheaper than a CLI process)."""
    return [e for e in ledger.peek(invoice_id)["events"] if e["type"] in ERP_TYPES]


def next_mail(ledger, address: str, seen: int, what: str):
    mails = wait_until(lambda: ledger.mails(address), lambda m: len(m) > seen, 150, what)
    return mails[seen]


def notice_after(ledger, address: str, seen: int, changed_at: datetime, text: str, what: str):
    """The first notice showing `text` after the change. A notice whose first attempt came before
    the import returned was already on its way with the old figure (its Date header is that
    attempt's time): at most that one may precede it."""
    mails = wait_until(lambda: ledger.mails(address)[seen:], lambda m: any(text in x.text for x in m), 150, what)
    first = next(i for i, m in enumerate(mails) if text in m.text)
    for early in mails[:first]:
        sent = email.utils.parsedate_to_datetime(early.message["Date"])
        assert first == 1 and sent <= changed_at, (changed_at, early.text)
    return mails[first]


def test_each_erp_change_reaches_its_open_case(ledger):
    original = [row("ER-1"), row("ER-2"), row("ER-3"), row("ER-4"), row("ER-5"),
                row("ER-6", email="bounce.er6@er-6.test")]
    first = ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, original, "erp")))
    assert (first["invoices_added"], first["invoices_changed"]) == (6, 0), first
    swept = ledger.ok("sweep")
    assert swept["cases_opened"] == 6, swept
    assert {f"ER-{n}" for n in range(1, 7)} <= set(ledger.cases())  # `sweep` returned once they were open

    # the first notice to ER-6's address is refused: a contact problem for a collector
    ledger.wait_for_case("ER-6", lambda c: c["contact_problem"], "the bounce flags the contact", timeout=40)
    addresses = {i: f"ap@{i.lower()}.test" for i in ("ER-1", "ER-2", "ER-3")}
    addresses["ER-6"] = "ap@er-6-new.test"
    seen = {i: len(ledger.mails(a)) for i, a in addresses.items()}

    changed = [row("ER-1", amount="800.00"),                                    # amount amended
               row("ER-2"), row("CN-2", amount="300.00", customer="C-ER-2", email="ap@er-2.test",
                                document_type="credit_note", references="ER-2"),  # a credit note
               row("ER-3", paid="250.00"),                                      # paid outside the engine
               row("ER-4", status="cancelled"),                                 # cancelled
               row("ER-5", due_in=8),                                           # due date moved 20 days
               row("ER-6", email="ap@er-6-new.test", name="ER Six GmbH")]       # new address and name
    path = ledger.write_csv(ERP_HEADER, changed, "erp")
    result = ledger.ok("invoices", "import", str(path))
    changed_at = datetime.now(timezone.utc)
    assert (result["invoices_added"], result["invoices_changed"], result["credit_notes"]) == (0, 6, 1), result
    # one event per change, and the cancellation closes its case: 1 + 1 + 1 + 2 + 1 + 1
    assert result["case_events"] == 7, result

    cases = ledger.cases()  # `case list`, as the collector reads it
    assert cases["ER-4"]["status"] == "cancelled" and cases["ER-4"]["balance"] == "0.00", cases["ER-4"]
    assert {i: cases[i]["balance"] for i in ("ER-1", "ER-2", "ER-3")} == {
        "ER-1": "800.00", "ER-2": "700.00", "ER-3": "750.00"}
    moved = ledger.case("ER-5")
    assert moved["due_date"] == day(8), moved
    assert datetime.fromisoformat(moved["next_action_at"]) > datetime.now(timezone.utc) + timedelta(days=19), moved
    six = ledger.case("ER-6")
    assert not six["contact_problem"] and six["customer_email"] == "ap@er-6-new.test", six
    assert six["customer_name"] == "ER Six GmbH"

    # who and why: erp-sync, naming the file and line; no approval was asked for any reduction
    [note] = erp_events(ledger, "ER-2")
    assert note["type"] == "CreditNoteApplied" and note["actor"] == "erp-sync", note
    assert note["data"]["document_id"] == "CN-2" and f"{path.name} line 4" in note["data"]["reason"], note
    reductions = ("write_off", "credit", "cancellation", "waiver")  # an escalation is no reduction
    assert not [a for a in ledger.ok("approvals", "list") if a["invoice_id"].startswith("ER-") and a["kind"] in reductions]
    auditor = {"COLLECTIONS_TOKEN": ledger.token("demo-supervisor")}
    trail = [r for r in ledger.ok("audit", "export", "--actor", "erp-sync", env=auditor)
             if r["subject"].startswith("ER-")]
    assert {(r["subject"], r["type"]) for r in trail} >= {
        ("ER-1", "InvoiceAmended"), ("ER-2", "CreditNoteApplied"), ("ER-3", "PaidOutsideEngine"),
        ("ER-4", "CaseCancelled"), ("ER-5", "DueDateMoved"), ("ER-6", "CustomerDetailsChanged")}, trail
    assert next(r for r in trail if r["type"] == "CreditNoteApplied")["amount"] == "300.00"
    assert all(path.name in r["reason"] for r in trail if r["type"] != "CaseClosed"), trail

    # the next e-mail: the new amount, or the new address
    expected = {"ER-1": "$800.00 outstanding", "ER-2": "$700.00 outstanding", "ER-3": "$750.00 outstanding"}
    for invoice_id, text in expected.items():
        mail = notice_after(ledger, addresses[invoice_id], seen[invoice_id], changed_at, text,
                            f"the next notice of {invoice_id}")
        assert invoice_id in mail.text and "1,000.00" not in mail.text, mail.text
    mail = next_mail(ledger, "ap@er-6-new.test", 0, "a notice of ER-6 at the new address")
    assert "ER-6" in mail.text and "ER Six GmbH" in mail.text, mail.text

    # the same file again: nothing changes
    before = {i: erp_events(ledger, i) for i in ("ER-1", "ER-2", "ER-3", "ER-4", "ER-5", "ER-6")}
    again = ledger.ok("invoices", "import", str(path))
    assert (again["invoices_changed"], again["case_events"], again["changes"]) == (0, 0, []), again
    assert {i: erp_events(ledger, i) for i in before} == before
    ledger.reconcile()


def test_a_bad_row_refuses_the_whole_file_and_changes_nothing(ledger):
    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [row("EB-1")], "erp")))
    ledger.ok("case", "open", "EB-1")
    bad = ledger.write_csv(ERP_HEADER, [row("EB-1", amount="600.00"),
                                        row("EB-2", amount="12.345")], "erp")  # USD has two decimals
    ledger.refused("invoices", "import", str(bad), match="line 3: amount")
    assert ledger.case("EB-1")["balance"] == "1000.00" and not erp_events(ledger, "EB-1")
    # a credit note for an invoice of another customer
    wrong = ledger.write_csv(ERP_HEADER, [row("EB-1"), row("CN-EB", amount="10.00", customer="C-OTHER",
                                                          document_type="credit_note", references="EB-1")], "erp")
    ledger.refused("invoices", "import", str(wrong), match="line 3: customer_id")
    assert not erp_events(ledger, "EB-1")


def test_the_api_import_records_the_change_by_the_importing_user(ledger):
    rows = [row("EA-1"), row("EA-2", customer="C-EA-1", email="ap@ea-1.test")]  # one customer, two invoices
    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, rows, "erp")))
    ledger.ok("case", "open", "EA-1")
    ledger.ok("case", "open", "EA-2")
    # EA-1 amended and its customer renamed; EA-2 is not in the file, its case learns the new name too
    body = ERP_HEADER + "\n" + row("EA-1", amount="900.00", name="EA Holdings") + "\n"
    with ledger.api("demo-supervisor") as api:
        answer = api.post("/api/invoices/import", content=body.encode(), headers={"Content-Type": "text/csv"})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["invoices_changed"], answer.json()["case_events"]) == (2, 3), answer.json()
        repeated = api.post("/api/invoices/import", content=body.encode(), headers={"Content-Type": "text/csv"})
        assert repeated.json()["case_events"] == 0, repeated.json()
        refused = api.post("/api/invoices/import", content=(body.replace("900.00", "-5")).encode(),
                           headers={"Content-Type": "text/csv"})
        assert refused.status_code == 400 and "amount" in refused.text, refused.text
    renamed, amended = erp_events(ledger, "EA-1")
    assert amended["type"] == "InvoiceAmended" and amended["actor"] == "demo-supervisor", amended
    assert renamed["type"] == "CustomerDetailsChanged" and renamed["data"]["changed"] == ["name"], renamed
    assert ledger.case("EA-1")["balance"] == "900.00"
    [other] = erp_events(ledger, "EA-2")
    assert other["type"] == "CustomerDetailsChanged" and ledger.case("EA-2")["customer_name"] == "EA Holdings"
    ledger.reconcile()


def test_amended_below_what_was_paid_leaves_the_part_paid_beyond_as_customer_credit(ledger):
    """800.00 EUR, 100.00 paid, the ERP re-imports it at 50.00: the 50.00 paid beyond the new amount
    is the customer's credit (unapplied cash) and the amendment records the whole 750.00."""
    def eur_row(amount: str) -> str:
        return (f"OPS-AM-1,C-OPS-AM,OPS AM GmbH,ap@ops-am.test,DE,en,EUR,{amount},{day(-42)},{day(-12)},A,,,,")

    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("800.00")], "erp")))
    ledger.ok("case", "open", "OPS-AM-1")
    ledger.ok("pay", "OPS-AM-1", "100.00", "--reference", "part")
    result = ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("50.00")], "erp")))
    assert (result["invoices_changed"], result["case_events"]) == (1, 2), result  # amended, closed

    # the customer's credit, where a person looks for it
    unapplied = ledger.ok("payments", "unapplied", "--customer", "C-OPS-AM")
    assert [(r["currency"], r["balance"]) for r in unapplied] == [("EUR", "50.00")], unapplied
    shown = ledger.ok("customer", "show", "C-OPS-AM")
    assert [(c["currency"], c["balance"]) for c in shown["credit"]] == [("EUR", "50.00")], shown["credit"]
    # the statement lists nothing open: the invoice of 50.00 is settled
    assert ledger.ok("customer", "statement", "C-OPS-AM")["items"] == []

    case = ledger.case("OPS-AM-1")
    assert case["status"] == "resolved" and case["balance"] == "0.00", case
    amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
    assert (amended["previous"]["amount"], amended["amount"]["amount"]) == ("800.00", "50.00"), amended
    assert amended["change"]["amount"] == "-750.00" and (amended["credit"] or {}).get("amount") == "50.00", amended
    closed = next(e for e in case["events"] if e["type"] == "CaseClosed")["data"]
    # of the 100.00 paid, 50.00 settles the invoice of 50.00; 750.00 came off it in the ERP
    assert (closed["payments"]["amount"], closed["erp_adjustments"]["amount"]) == ("50.00", "750.00"), closed
    # recomputed from the events alone: 100.00 paid less the 50.00 of credit is what settles the 50.00
    paid = sum(money(e["data"]["applied"]["amount"]) for e in case["events"] if e["type"] == "PaymentReceived")
    assert paid - money(amended["credit"]["amount"]) == money(amended["amount"]["amount"])
    ledger.reconcile()


def credit_shown(ledger, customer_id: str, balance: str) -> None:
    """The customer's credit in EUR, where a person looks for it; the statement lists nothing open."""
    shown = ledger.ok("customer", "show", customer_id)
    assert [(c["currency"], c["balance"]) for c in shown["credit"]] == [("EUR", balance)], shown["credit"]
    as_read = ledger.cli("customer", "show", customer_id, json=False)
    assert as_read.code == 0 and f"customer credit {balance} EUR" in as_read.stdout, as_read
    unapplied = ledger.ok("payments", "unapplied", "--customer", customer_id)
    assert [(r["currency"], r["balance"]) for r in unapplied] == [("EUR", balance)], unapplied
    assert ledger.ok("customer", "statement", customer_id)["items"] == []  # nothing open


def test_amended_below_what_was_paid_before_the_case_opened_leaves_the_part_paid_beyond_as_customer_credit(ledger):
    """100.00 EUR, 40.00 paid on the ledger before its case opened (the case opens for 60.00), the
    ERP re-imports it at 30.00: the 10.00 paid beyond the new amount is the customer's credit."""
    def eur_row(amount: str) -> str:
        return f"OPS-PB-1,C-OPS-PB,OPS PB GmbH,ap@ops-pb.test,DE,en,EUR,{amount},{day(-42)},{day(-12)},A,,,,"

    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("100.00")], "erp")))
    paid = ledger.ok("pay", "OPS-PB-1", "40.00", "--reference", "part")
    assert paid["applied_to"] == "invoice", paid  # no case yet: paid on the ledger
    ledger.ok("case", "open", "OPS-PB-1")
    assert ledger.case("OPS-PB-1")["balance"] == "60.00"
    result = ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("30.00")], "erp")))
    assert (result["invoices_changed"], result["case_events"]) == (1, 2), result  # amended, closed

    credit_shown(ledger, "C-OPS-PB", "10.00")

    case = ledger.case("OPS-PB-1")
    assert case["status"] == "resolved" and case["balance"] == "0.00", case
    amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
    assert amended["change"]["amount"] == "-70.00" and (amended["credit"] or {}).get("amount") == "10.00", amended
    # the case closes with what of the 40.00 paid before it opened settled the invoice (30.00) and
    # what came off in the ERP (70.00): together the invoice's 100.00
    closed = next(e for e in case["events"] if e["type"] == "CaseClosed")["data"]
    assert (closed["paid_before_open"]["amount"], closed["erp_adjustments"]["amount"]) == ("30.00", "70.00"), closed
    ledger.reconcile()


def test_amended_below_the_customer_credit_applied_to_it_gives_that_credit_back(ledger):
    """100.00 EUR; 70.00 of the customer's credit (a prepayment) applied to its case (30.00 open);
    the ERP re-imports it at 20.00: 50.00 of the credit applied no longer settles the invoice and is
    the customer's credit again."""
    def eur_row(amount: str) -> str:
        return f"OPS-CA-1,C-OPS-CA,OPS CA GmbH,ap@ops-ca.test,DE,en,EUR,{amount},{day(-42)},{day(-12)},A,,,,"

    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("100.00")], "erp")))
    ledger.ok("case", "open", "OPS-CA-1")
    prepaid = ledger.ok("payments", "prepay", "C-OPS-CA", "70.00", "--currency", "EUR", "--reference", "advance")
    assert prepaid["amount"] == "70.00", prepaid
    applied = ledger.ok("payments", "apply-credit", "OPS-CA-1", "--amount", "70.00")
    assert applied["balance"] == "30.00", applied
    assert ledger.ok("payments", "unapplied", "--customer", "C-OPS-CA") == []  # all of it applied
    result = ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("20.00")], "erp")))
    assert (result["invoices_changed"], result["case_events"]) == (1, 2), result  # amended, closed

    credit_shown(ledger, "C-OPS-CA", "50.00")

    case = ledger.case("OPS-CA-1")
    assert case["status"] == "resolved" and case["balance"] == "0.00", case
    amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
    assert amended["change"]["amount"] == "-80.00" and (amended["credit"] or {}).get("amount") == "50.00", amended
    closed = next(e for e in case["events"] if e["type"] == "CaseClosed")["data"]
    # of the 70.00 of credit applied, 20.00 settles the invoice of 20.00
    assert (closed["credit_applied"]["amount"], closed["erp_adjustments"]["amount"]) == ("20.00", "80.00"), closed
    ledger.reconcile()


def test_amended_below_what_the_erp_booked_as_paid_outside_the_engine_leaves_the_part_paid_beyond_as_credit(ledger):
    """100.00 EUR with an open case; the ERP's export says 60.00 paid (outside the engine: 40.00
    open), then amends it to 20.00 (its paid column empty: the ERP's paid is at most the amount):
    the 40.00 paid beyond the new amount is the customer's credit, and the ERP's 60.00 is booked
    once."""
    def eur_row(amount: str, paid: str) -> str:
        return f"OPS-PO-1,C-OPS-PO,OPS PO GmbH,ap@ops-po.test,DE,en,EUR,{amount},{day(-42)},{day(-12)},A,,,,{paid}"

    ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("100.00", "")], "erp")))
    ledger.ok("case", "open", "OPS-PO-1")
    booked = ledger.ok("invoices", "import", str(ledger.write_csv(ERP_HEADER, [eur_row("100.00", "60.00")], "erp")))
    assert (booked["invoices_changed"], booked["case_events"]) == (1, 1), booked  # PaidOutsideEngine
    assert ledger.case("OPS-PO-1")["balance"] == "40.00"
    amended_file = str(ledger.write_csv(ERP_HEADER, [eur_row("20.00", "")], "erp"))
    result = ledger.ok("invoices", "import", amended_file)
    assert (result["invoices_changed"], result["case_events"]) == (1, 2), result  # amended, closed

    credit_shown(ledger, "C-OPS-PO", "40.00")

    case = ledger.case("OPS-PO-1")
    assert case["status"] == "resolved" and case["balance"] == "0.00", case
    amended = next(e for e in case["events"] if e["type"] == "InvoiceAmended")["data"]
    assert (amended["change"]["amount"], (amended["credit"] or {}).get("amount"),
            (amended.get("paid_outside") or {}).get("amount")) == ("-80.00", "40.00", "40.00"), amended
    # the ERP's 60.00 is booked once; the case closes with what of it settled the invoice (20.00)
    # and what came off in the ERP (80.00): together the invoice's 100.00, nothing counted twice
    assert [e["data"]["amount"]["amount"] for e in case["events"] if e["type"] == "PaidOutsideEngine"] == ["60.00"]
    closed = next(e for e in case["events"] if e["type"] == "CaseClosed")["data"]
    assert (closed["paid_outside"]["amount"], closed["erp_adjustments"]["amount"]) == ("20.00", "80.00"), closed

    # the same file again: nothing to record, not even on the closed case
    again = ledger.ok("invoices", "import", amended_file)
    assert (again["invoices_changed"], again["case_events"], again["closed_cases_not_changed"]) == (0, 0, []), again
    ledger.reconcile()
