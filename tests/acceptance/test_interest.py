"""Acceptance: statutory interest and compensation (docs/INTEREST.md) through the command line
and the real stack. A team adds the [interest] section to its policy; an EU customer's overdue
invoice is opened as a case; the notices it receives state the interest and the EUR 40, the case
shows the charge, and the figures are those the test computes itself from the dates."""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.acceptance.stack import FAST_POLICY, ROOT, console_case_page, eventually, money

TODAY = datetime.now(timezone.utc).date()
DUE = TODAY - timedelta(days=20)
# The ECB main refinancing rate in force on 1 January and 1 July of 2025 and 2026 in the
# section's table is 2.15 (since 11 June 2025): 2.15 + 8 points.
EU_RATE = Decimal("10.15")


def row(invoice_id: str, customer: str, country: str, language: str, currency: str, amount: str) -> str:
    return (f"{invoice_id},{customer},{customer} Ltd,ap@{customer.lower()}.test,{country},{language},{currency},"
            f"{amount},{DUE - timedelta(days=30)},{DUE},A")


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    policy = tmp_path_factory.mktemp("interest-policy") / "policy.toml"
    section = (ROOT / "tests" / "data" / "interest.toml").read_text()
    policy.write_text(FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-interest"')
                      + "\n" + section)
    return ledger_for(policy=policy)


def notices_to(ledger, address: str, count: int) -> list:
    return eventually(lambda: (lambda found: found if len(found) >= count else None)(ledger.mails(address)), 45,
                      f"{count} notices to {address}")


def test_an_eu_customers_notice_states_interest_and_compensation_and_the_case_shows_the_charge(ledger):
    ledger.import_invoices([row("INT-EU-1", "C-DE-1", "DE", "en", "EUR", "1000.00"),
                            row("INT-CN-1", "C-CN-1", "CN", "zh-CN", "CNY", "5000.00")])
    ledger.ok("case", "open", "INT-EU-1")
    ledger.ok("case", "open", "INT-CN-1")

    mails = notices_to(ledger, "ap@c-de-1.test", 3)  # friendly, firm, final (grade A ladder)
    first = min(mails, key=lambda m: m.path.name)
    sent_on = email.utils.parsedate_to_datetime(first.message["Date"]).astimezone(timezone.utc).date()
    days = (sent_on - DUE).days  # from the day after the due date through the day of the notice
    interest = (Decimal("1000.00") * EU_RATE / 100 * days / 365).quantize(Decimal("0.01"), ROUND_HALF_UP)
    due_total = Decimal("1000.00") + interest + Decimal("40.00")
    for mail in mails:
        assert "statutory interest to" in mail.text and f"€{interest}" in mail.text, mail.text
        assert "fixed compensation for recovery costs: €40.00" in mail.text, mail.text
        assert f"€{due_total:,} outstanding" in mail.text, mail.text

    case = ledger.case("INT-EU-1")
    charges = [e for e in case["events"] if e["type"] == "InterestCharged"]
    assert charges, case["events"]
    assert charges[0]["data"]["accrued_to"] == sent_on.isoformat()
    assert money(charges[0]["data"]["interest"]["amount"]) == interest
    assert charges[0]["data"]["compensation"] == {"amount": "40.00", "currency": "EUR"}
    assert sum(money(e["data"]["interest"]["amount"]) for e in charges) == interest  # no interest twice
    assert sum(1 for e in charges if e["data"]["compensation"]) == 1  # the compensation once
    assert money(case["totals"]["interest"]) == interest and money(case["totals"]["compensation"]) == 40
    assert money(case["balance"]) == due_total and money(case["totals"]["fees"]) == interest + 40

    page = " ".join(re.sub(r"<[^>]+>", " ", console_case_page(ledger, case["case_id"])).split())
    assert f"statutory interest €{interest} (accrued to {sent_on.isoformat()}) · fixed compensation €40.00" in page, page

    shown = ledger.cli("case", "show", "INT-EU-1", json=False)
    assert shown.code == 0 and f"statutory interest {interest} EUR" in " ".join(shown.stdout.split()), shown

    # the collector waives the compensation: EUR 40.00 (USD 43.20) is within what one person may waive
    waived = ledger.ok("case", "waive-interest", "INT-EU-1", "--amount", "40.00", "--reason", "goodwill")
    assert money(waived["balance"]) == due_total - 40, waived
    case = ledger.case("INT-EU-1")
    waiver = [e for e in case["events"] if e["type"] == "InterestWaived"]
    assert [(e["actor"], e["data"]["amount"]["amount"], e["data"]["reason"]) for e in waiver] == [
        ("demo-collector", "40.00", "goodwill")]
    assert money(case["totals"]["fees"]) == interest
    ledger.refused("case", "waive-interest", "INT-EU-1", "--amount", "999.00", "--reason", "goodwill", match="amount")

    # a Chinese customer: no interest under this policy (CN is not listed: the default "none")
    cn = notices_to(ledger, "ap@c-cn-1.test", 1)
    assert all("利息" not in m.text for m in cn), cn[0].text
    assert not [e for e in ledger.case("INT-CN-1")["events"] if e["type"] == "InterestCharged"]
    ledger.reconcile()  # interest and compensation agree between events, read models and reports


def test_the_final_notice_carries_a_pdf_letter_that_case_letter_reproduces(ledger):
    """Runs after the test above: INT-EU-1's ladder (grade A) ends with its final notice, seq 3."""
    import hashlib
    import io

    from pypdf import PdfReader

    final = next(m for m in notices_to(ledger, "ap@c-de-1.test", 3) if m.subject.startswith("Final notice"))
    pdfs = [part for part in final.message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and pdfs[0].get_filename() == "final-notice-INT-EU-1-3.pdf", final.message
    attached = pdfs[0].get_content()
    letter = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(attached)).pages).split())
    figures = " ".join(final.text.split())  # the e-mail's amount and interest, as the letter must state them
    outstanding = re.search(r"(€[\d,]+\.\d\d) outstanding", figures).group(1)  # €1,045.56
    accrued_to, interest = re.search(r"of which statutory interest to ([^:]+): (€[\d,]+\.\d\d)", figures).groups()
    assert "Final notice" in letter and "INT-EU-1" in letter and f"{outstanding} It includes" in letter, letter
    assert f"statutory interest to {accrued_to} of {interest}" in letter and "€40.00" in letter, letter
    sent = [e for e in ledger.case("INT-EU-1")["events"] if e["type"] == "ReminderSent"]
    assert [e["data"].get("letter_sha256") is not None for e in sent] == [False, False, True]
    assert sent[2]["data"]["letter_sha256"] == hashlib.sha256(attached).hexdigest()

    out = ledger.dir / "again.pdf"
    again = ledger.ok("case", "letter", "INT-EU-1", "--seq", "3", "--out", str(out))
    assert again["same"] is True and out.read_bytes() == attached, again
    ledger.refused("case", "letter", "INT-EU-1", "--seq", "1", match="seq")  # a friendly reminder has none


def test_a_statement_of_account_lists_open_items_with_interest_and_ageing_as_json_and_pdf(ledger):
    """Runs after the tests above: INT-EU-1 is open with its interest (the compensation waived)."""
    import io

    from pypdf import PdfReader

    ledger.import_invoices([f"INT-EU-2,C-DE-1,C-DE-1 Ltd,ap@c-de-1.test,DE,en,EUR,250.00,{TODAY},"
                            f"{TODAY + timedelta(days=10)},A"])
    pdf = ledger.dir / "statement.pdf"
    shown = ledger.ok("customer", "statement", "C-DE-1", "--as-of", TODAY.isoformat(), "--pdf", str(pdf))
    days = (TODAY - DUE).days  # 20
    interest = (Decimal("1000.00") * EU_RATE / 100 * days / 365).quantize(Decimal("0.01"), ROUND_HALF_UP)
    items = {i["invoice_id"]: i for i in shown["items"]}
    assert list(items) == ["INT-EU-1", "INT-EU-2"], shown  # by due date
    first = items["INT-EU-1"]
    assert (first["bucket"], first["days_overdue"], money(first["interest"]), money(first["compensation"]),
            money(first["settled"]), money(first["open"])) == ("1-30", days, interest, 40, 40, 1000 + interest)
    assert (items["INT-EU-2"]["bucket"], money(items["INT-EU-2"]["open"])) == ("current", 250)
    eur = shown["totals"]["EUR"]
    assert (money(eur["open"]), money(eur["current"]), money(eur["1-30"])) == (1250 + interest, 250, 1000 + interest)

    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages).split())
    assert "Statement of account" in text and "INT-EU-1" in text and "INT-EU-2" in text, text
    assert f"€{1250 + interest:,}" in text and "quoting the invoice numbers" in text, text
    again = ledger.dir / "statement-again.pdf"
    ledger.ok("customer", "statement", "C-DE-1", "--as-of", TODAY.isoformat(), "--pdf", str(again))
    assert again.read_bytes() == pdf.read_bytes()  # the same statement, the same bytes
    ledger.refused("customer", "statement", "NOBODY", match="customer_id")

    # the Chinese customer's statement in Chinese, its CJK font embedded (make install adds it)
    cn = ledger.dir / "statement-cn.pdf"
    ledger.ok("customer", "statement", "C-CN-1", "--as-of", TODAY.isoformat(), "--pdf", str(cn))
    reader = PdfReader(io.BytesIO(cn.read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert "对账单" in text and "INT-CN-1" in text and "¥5,000.00" in text and "利息" in text, text
    fonts = {str(f.get_object()["/BaseFont"]) for p in reader.pages for f in p["/Resources"]["/Font"].values()}
    assert any("WenQuanYi" in f or "CJK" in f for f in fonts), fonts


def test_a_statement_as_of_an_earlier_day_shows_that_days_figures_and_agrees_with_the_aging(ledger):
    """A back-dated payment, later payments and a late fee charged today: the statement as of
    the earlier day shows each invoice as it stood at the end of that day (the test computes it
    from the dates itself), in the table, the JSON and the PDF, and agrees with `report aging
    --to` that day. CH has no interest regime (no accrual to add); CHF is this customer's alone."""
    import io

    from pypdf import PdfReader

    day = TODAY - timedelta(days=10)

    def invoice(invoice_id: str, amount: str, issued: int, due: int) -> str:
        return (f"{invoice_id},C-CH-FM,C-CH-FM AG,ap@c-ch-fm.test,CH,en,CHF,{amount},"
                f"{TODAY - timedelta(days=issued)},{TODAY - timedelta(days=due)},B")

    ledger.import_invoices([invoice("FM-8", "3000.00", 60, 30),    # case: fee today, 1000 received `day`, 10 today
                            invoice("FM-9", "500.00", 80, 50),     # no case: 200 received `day`, the rest today
                            invoice("FM-10", "800.00", 45, 25),    # case: fee today, paid in full today (closed)
                            invoice("FM-11", "250.00", 5, -25)])   # issued after `day`
    for ref in ("FM-8", "FM-10"):
        ledger.ok("case", "open", ref)
    for ref in ("FM-8", "FM-10"):  # grade B: the final notice charges CHF 40.00 (today)
        ledger.wait_for_case(ref, lambda c: money(c["totals"]["fees"]) == 40, "the final notice's fee")
    ledger.ok("pay", "FM-8", "1000.00", "--reference", "BANK-008", "--received-on", day.isoformat())
    ledger.ok("pay", "FM-8", "10.00", "--reference", "BANK-009")
    ledger.ok("pay", "FM-9", "200.00", "--reference", "BANK-010", "--received-on", day.isoformat())
    ledger.ok("pay", "FM-9", "300.00", "--reference", "BANK-011")
    ledger.ok("pay", "FM-10", "840.00", "--reference", "BANK-012")
    assert ledger.case("FM-10")["status"] == "paid"

    # at the end of `day`: the amount less what was received by then; no fee yet; FM-11 not issued
    expected = {"FM-8": (Decimal("2000.00"), 20, "1-30"), "FM-9": (Decimal("300.00"), 40, "31-60"),
                "FM-10": (Decimal("800.00"), 15, "1-30")}
    then = ledger.ok("customer", "statement", "C-CH-FM", "--as-of", day.isoformat())
    items = {i["invoice_id"]: i for i in then["items"]}
    assert {k: (money(i["open"]), i["days_overdue"], i["bucket"]) for k, i in items.items()} == expected, then
    assert all(money(i["late_fees"]) == 0 for i in items.values()), then
    assert (money(items["FM-8"]["settled"]), money(items["FM-9"]["settled"]), money(items["FM-10"]["settled"])) == (
        1000, 200, 0), then
    total = sum(v[0] for v in expected.values())
    assert list(then["totals"]) == ["CHF"] and {k: money(v) for k, v in then["totals"]["CHF"].items()} == {
        "open": total, "current": 0, "1-30": 2800, "31-60": 300, "61-90": 0, "90+": 0}, then

    # the same day's aging report for CHF (this customer's invoices only)
    aging = {r["bucket"]: money(r["amount"]) for r in ledger.ok("report", "aging", "--to", day.isoformat(),
                                                                  "--currency", "CHF")["rows"]}
    assert aging == {b: money(then["totals"]["CHF"][b]) for b in then["buckets"]}, (aging, then["totals"])

    table = ledger.cli("customer", "statement", "C-CH-FM", "--as-of", day.isoformat(), json=False)
    assert table.code == 0 and "2000.00" in table.stdout and "FM-11" not in table.stdout, table
    assert "3030.00" not in table.stdout and "open 3100.00" in " ".join(table.stdout.split()), table

    pdf = ledger.dir / "statement-ch-then.pdf"
    ledger.ok("customer", "statement", "C-CH-FM", "--as-of", day.isoformat(), "--pdf", str(pdf))
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages).split())
    assert "FM-10" in text and "FM-11" not in text and "2,000.00" in text and "3,100.00" in text, text

    # today: the fee, both FM-8 payments; FM-9 and FM-10 paid; FM-11 current
    now = ledger.ok("customer", "statement", "C-CH-FM", "--as-of", TODAY.isoformat())
    items = {i["invoice_id"]: i for i in now["items"]}
    assert {k: money(i["open"]) for k, i in items.items()} == {"FM-8": Decimal("2030.00"),
                                                               "FM-11": Decimal("250.00")}, now
    assert money(items["FM-8"]["late_fees"]) == 40 and money(items["FM-8"]["settled"]) == 1010, now
    aging = {r["bucket"]: money(r["amount"]) for r in ledger.ok("report", "aging", "--to", TODAY.isoformat(),
                                                                  "--currency", "CHF")["rows"]}
    assert aging == {b: money(now["totals"]["CHF"][b]) for b in now["buckets"]}, (aging, now["totals"])
    ledger.reconcile()


def test_a_statement_shows_the_credit_the_customer_holds_and_the_balance_due_net_of_it(ledger):
    """A customer overpaid one invoice (its case closes paid, the excess is their credit) and still
    owes another: the statement shows the credit held that day and the balance due net of it, in
    the JSON, the table and the PDF, the same credit as `payments unapplied` that day; as of the day
    before the money was received there is no credit yet. The test computes the figures from the
    case's events itself. CH has no interest regime; EUR amounts of this customer are its own."""
    import io

    from pypdf import PdfReader

    received = TODAY - timedelta(days=3)

    def invoice(invoice_id: str, amount: str, issued: int, due: int) -> str:
        return (f"{invoice_id},C-CREDIT,C-CREDIT AG,ap@c-credit.test,CH,en,EUR,{amount},"
                f"{TODAY - timedelta(days=issued)},{TODAY - timedelta(days=due)},A")

    ledger.import_invoices([invoice("CR-1", "400.00", 40, 20),     # overpaid by bank transfer `received`
                            invoice("CR-2", "300.00", 10, -20)])   # not yet due, still owed
    ledger.ok("case", "open", "CR-1")
    ledger.ok("pay", "CR-1", "450.00", "--reference", "BANK-CR-1", "--received-on", received.isoformat())

    # from the case's events: what the invoice owed when paid, so what was paid beyond it
    case = ledger.case("CR-1")
    assert case["status"] == "paid", case
    charged = sum(money(e["data"]["fee"]["amount"]) for e in case["events"] if e["type"] == "LateFeeCharged")
    paid = [e["data"] for e in case["events"] if e["type"] == "PaymentReceived"]
    assert [(p["received_on"], money(p["amount"]["amount"])) for p in paid] == [(received.isoformat(), 450)], paid
    credit = Decimal("450.00") - (Decimal("400.00") + charged)
    assert credit > 0 and money(paid[0]["excess"]["amount"]) == credit, paid
    owed = Decimal("300.00")  # CR-2, nothing paid on it

    pdf = ledger.dir / "statement-credit.pdf"
    now = ledger.ok("customer", "statement", "C-CREDIT", "--as-of", TODAY.isoformat(), "--pdf", str(pdf))
    assert [(i["invoice_id"], money(i["open"])) for i in now["items"]] == [("CR-2", owed)], now
    assert {k: money(v) for k, v in now["balance_due"]["EUR"].items()} == {
        "total_open": owed, "credit": credit, "balance_due": owed - credit, "credit_left": 0}, now
    assert list(now["balance_due"]) == ["EUR"], now
    assert [(c["currency"], money(c["balance"]), c["oldest"], c["age_days"]) for c in now["credit"]] == [
        ("EUR", credit, received.isoformat(), 3)], now
    # the same credit as `payments unapplied` that day
    unapplied = ledger.ok("payments", "unapplied", "--customer", "C-CREDIT", "--as-of", TODAY.isoformat())
    assert [{k: r[k] for k in ("currency", "balance", "oldest", "age_days", "receipts")} for r in unapplied] == \
        now["credit"], (unapplied, now["credit"])

    table = ledger.cli("customer", "statement", "C-CREDIT", "--as-of", TODAY.isoformat(), json=False)
    shown = " ".join(table.stdout.split())
    assert table.code == 0 and (f"EUR: total open {owed}, less your credit {credit}, balance due {owed - credit}"
                                in shown), table

    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages).split())
    assert (f"Your balance Currency Total open Less your credit Balance due EUR €{owed:,} €{credit:,} "
            f"€{owed - credit:,}" in text), text
    assert "CR-2" in text and "CR-1" not in text and "what you paid beyond your invoices" in text, text

    # the day before the money was received: both invoices open, no credit held yet
    before = (received - timedelta(days=1)).isoformat()
    then = ledger.ok("customer", "statement", "C-CREDIT", "--as-of", before)
    assert {i["invoice_id"]: money(i["open"]) for i in then["items"]} == {"CR-1": 400, "CR-2": owed}, then
    assert then["credit"] == [] and {k: money(v) for k, v in then["balance_due"]["EUR"].items()} == {
        "total_open": 400 + owed, "credit": 0, "balance_due": 400 + owed, "credit_left": 0}, then
    assert ledger.ok("payments", "unapplied", "--customer", "C-CREDIT", "--as-of", before) == []
    table = ledger.cli("customer", "statement", "C-CREDIT", "--as-of", before, json=False)
    assert "less your credit 0.00, balance due 700.00" in " ".join(table.stdout.split()), table


def test_a_statement_with_no_open_items_says_so(ledger):
    """A customer who has paid everything got an empty table and nothing else: it looked like a
    failed command. The statement now says there is nothing open that day."""
    ledger.import_invoices([row("NONE-1", "C-PAIDUP", "CH", "en", "EUR", "120.00")])
    ledger.ok("pay", "NONE-1", "120.00", "--reference", "BANK-NONE-1")
    data = ledger.ok("customer", "statement", "C-PAIDUP")
    assert data["items"] == [], data
    shown = ledger.cli("customer", "statement", "C-PAIDUP", json=False)
    assert shown.code == 0 and f"No open items at the end of {TODAY}." in " ".join(shown.stdout.split()), shown
