"""The customer's self-service page as a customer meets it: the link in the notice the SMTP sink
received, opened in Chromium (Debian's, driven by Playwright), in English and in Chinese; a
promise and a "we have paid" made there appear on the case (`case show`) with the actor
customer:<id>; an altered and an expired link are refused and change nothing. Only `starter.py`
in subprocesses, the .eml files and the browser: imports nothing of the project.

Without /usr/bin/chromium the test is skipped, unless COLLECTIONS_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter

from tests.acceptance.stack import ROOT, eventually, money

CHROMIUM = Path(os.environ.get("COLLECTIONS_CHROMIUM", "/usr/bin/chromium"))
POLICY = ROOT / "tests" / "data" / "selfservice.toml"  # the demo ladder; links valid for seconds
TODAY = date.today()
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots of the page, for a person to look at
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_.\-]+)")


@pytest.fixture(scope="module")
def ledger(ledger_for):
    return ledger_for(policy=POLICY)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("COLLECTIONS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        yield chromium
        chromium.close()


def first_notice(ledger, address: str):
    """The self-service link in the first notice to ``address``, as its text shows it."""
    mail = eventually(lambda: ledger.mails(address), 45, f"a notice to {address}")[0]
    found = LINK.search(mail.text)
    assert found, f"no self-service link in the notice:\n{mail.text}"
    assert found.group(1).startswith(ledger.url + "/c/")  # COLLECTIONS_PUBLIC_URL
    return found.group(1)


def events(ledger, invoice: str) -> list[dict]:
    """A case's events as the collector's API shows them (cheaper than `case show` to repeat)."""
    return ledger.peek(invoice)["events"]


def test_customers_promise_and_report_a_payment_from_the_link_in_their_notice(ledger, browser):
    ledger.import_invoices([
        (f"SS-1,C-SS1,Harbour Supplies Ltd,ap@harbour.test,GB,en,GBP,1250.40,{TODAY - timedelta(days=45)},"
         f"{TODAY - timedelta(days=15)},A"),
        (f"SS-2,C-SS2,上海明远贸易有限公司,ap@mingyuan.test,CN,zh-CN,CNY,8800.00,{TODAY - timedelta(days=40)},"
         f"{TODAY - timedelta(days=10)},A"),
        (f"SS-3,C-SS3,Solent Marine plc,ap@solent.test,GB,en,USD,900.00,{TODAY - timedelta(days=40)},"
         f"{TODAY - timedelta(days=10)},A"),
        (f"SS-4,C-SS3,Solent Marine plc,ap@solent.test,GB,en,USD,3000.00,{TODAY - timedelta(days=40)},"
         f"{TODAY - timedelta(days=10)},A"),
    ])
    for invoice in ("SS-1", "SS-2", "SS-3", "SS-4"):
        ledger.ok("case", "open", invoice)
    link_en = first_notice(ledger, "ap@harbour.test")
    link_zh = first_notice(ledger, "ap@mingyuan.test")
    link_plan = first_notice(ledger, "ap@solent.test")
    issued_en = time.time()

    # English: the page lists the invoice with its balance; the customer promises to pay it
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    answer = page.goto(link_en)
    assert answer.status == 200
    assert "Harbour Supplies Ltd" in page.text_content("[data-testid=greeting]")
    row = page.locator("[data-testid=items] tr[data-invoice='SS-1']")
    assert "£1,250.40" in row.text_content()
    assert page.locator("[data-testid=items] tr[data-invoice='SS-2']").count() == 0  # another customer's
    assert page.locator("[data-testid=history] tr[data-type=ReminderSent]").count() >= 1
    promised = (TODAY + timedelta(days=10)).isoformat()
    form = page.locator("[data-testid=promise-form]")
    form.locator("input[name=amount]").fill("1250.40")
    form.locator("input[name=date]").fill(promised)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=done]")
    assert "promise to pay £1,250.40" in page.text_content("[data-testid=done]")
    assert page.locator("[data-testid=history] tr[data-type=PromiseMade]").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer-page-en.png"), full_page=True)
    # the billing contact was wrong: the customer corrects it
    assert "ap@harbour.test" in page.text_content("[data-testid=contact]")
    page.locator("[data-testid=contact-form] input[name=email]").fill("payables@harbour.test")
    page.locator("[data-testid=contact-form] button[type=submit]").click()
    page.wait_for_selector("[data-testid=done]")
    assert "payables@harbour.test" in page.text_content("[data-testid=done]")
    assert "payables@harbour.test" in page.text_content("[data-testid=contact]")
    context.close()

    case = ledger.case("SS-1")  # what the collector sees
    made = [e for e in case["events"] if e["type"] == "PromiseMade"]
    assert len(made) == 1 and made[0]["actor"] == "customer:C-SS1", made
    assert money(made[0]["data"]["amount"]["amount"]) == money("1250.40")
    assert made[0]["data"]["promised_date"] == promised
    assert case["status"] == "promised"
    corrected = [e for e in case["events"] if e["type"] == "ContactCorrected"]
    assert len(corrected) == 1 and corrected[0]["actor"] == "customer:C-SS1", corrected
    assert corrected[0]["data"]["previous"] == "ap@harbour.test" and case["customer_email"] == "payables@harbour.test"

    # Chinese: the page speaks the customer's language; the customer tells us it was paid
    context = browser.new_context(locale="en-US")  # the customer's language, not the browser's, decides
    page = context.new_page()
    assert page.goto(link_zh).status == 200
    assert "未付发票" in page.text_content("body")
    assert "8,800.00" in page.text_content("[data-testid=items] tr[data-invoice='SS-2']")
    form = page.locator("[data-testid=paid-form]")
    form.locator("input[name=amount]").fill("8800.00")
    form.locator("input[name=paid_on]").fill(TODAY.isoformat())
    form.locator("input[name=reference]").fill("MY-2026-1207")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=done]")
    assert "MY-2026-1207" in page.text_content("[data-testid=done]") and "谢谢" in page.text_content("[data-testid=done]")
    # a promise beyond the policy's horizon (60 days) is refused with the reason, nothing recorded
    before = len(events(ledger, "SS-2"))
    form = page.locator("[data-testid=promise-form]")
    form.locator("input[name=amount]").fill("8800.00")
    form.locator("input[name=date]").fill((TODAY + timedelta(days=90)).isoformat())
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=error]")
    refusal = page.text_content("[data-testid=error]")  # the field in the page's words, not 'date: ...'
    # and the sentence in the page's language too ('... is beyond the longest promise allowed (...)')
    assert "晚于允许的最远承诺日期" in refusal and "日期" in refusal and "date:" not in refusal, refusal
    assert "longest promise" not in refusal, refusal
    # a dispute: a reason of the policy's list (in Chinese on the page) and a comment
    form = page.locator("[data-testid=dispute-form]")
    form.locator("select[name=reason]").select_option(label="质量问题")
    form.locator("input[name=comment]").fill("十箱中有两箱破损")
    photo = ledger.dir / "damage-report.pdf"
    photo.write_bytes(b"%PDF-1.4\n% damaged pallets, delivery note 7731\n%%EOF\n")
    form.locator("input[name=attachment]").set_input_files(str(photo))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=done]")
    assert "异议" in page.text_content("[data-testid=done]")
    assert "争议" in page.text_content("[data-testid=items] tr[data-invoice='SS-2']")  # its status
    page.screenshot(path=str(ARTIFACTS / "customer-page-zh.png"), full_page=True)
    context.close()

    # payment plans: three instalments (a collector's authority here) are agreed at once; six wait
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    assert page.goto(link_plan).status == 200
    assert page.locator("[data-testid=items] tr[data-invoice]").count() == 2  # both invoices of the customer
    for invoice, count in (("SS-3", "3"), ("SS-4", "6")):
        form = page.locator("[data-testid=plan-form]")
        form.locator("select[name=invoice_id]").select_option(invoice)
        form.locator("input[name=instalments]").fill(count)
        form.locator("select[name=every]").select_option(label="30 days")
        form.locator("button[type=submit]").click()
        page.wait_for_selector("[data-testid=done]")
        done = page.text_content("[data-testid=done]")
        assert ("Agreed: invoice SS-3 is now on a plan of 3" in done if invoice == "SS-3"
                else "6 instalments for invoice SS-4 needs our approval" in done), done
    acted = time.time()
    context.close()

    # the team revokes the Chinese customer's links (a notice went astray): refused, nothing changed
    revoked = ledger.ok("customer", "revoke-links", "C-SS2", "--reason", "notice forwarded to a third party")
    assert revoked["events"] == ["CustomerLinksRevoked"]
    before = len(events(ledger, "SS-2"))
    with httpx.Client(timeout=30) as http:
        gone = http.get(link_zh)
        assert gone.status_code == 410 and "撤销" in gone.text
        late = http.post(link_zh + "/paid", data={"invoice_id": "SS-2", "amount": "1.00",
                                                  "paid_on": TODAY.isoformat(), "reference": "x"})
        assert late.status_code == 410
        assert http.get(link_plan).status_code == 200  # another customer's link still opens
    assert len(events(ledger, "SS-2")) == before
    ledger.refused("customer", "revoke-links", "C-SS2", "--reason", "", match="reason")

    disputed = [e for e in events(ledger, "SS-2") if e["type"] == "DisputeOpened"]
    assert len(disputed) == 1 and disputed[0]["actor"] == "customer:C-SS2", disputed
    assert disputed[0]["data"]["reason"] == "quality" and disputed[0]["data"]["note"] == "十箱中有两箱破损"
    assert money(disputed[0]["data"]["amount"]["amount"]) == money("8800.00")
    sent = disputed[0]["data"]["attachment"]
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert sent == {"name": "damage-report.pdf", "content_type": "application/pdf", "size": len(photo.read_bytes()),
                    "sha256": digest}
    assert (ledger.dir / "data" / "attachments" / digest).read_bytes() == photo.read_bytes()  # kept as sent
    agreed = ledger.peek("SS-3")
    assert agreed["status"] == "on_plan" and len(agreed["plan"]["instalments"]) == 3
    assert [(e["type"], e["actor"]) for e in agreed["events"] if e["type"].startswith("PaymentPlan")] == [
        ("PaymentPlanProposed", "customer:C-SS3"), ("PaymentPlanAccepted", "customer:C-SS3")]
    assert sum(money(i["amount"]["amount"]) for i in agreed["plan"]["instalments"]) == money("900.00")
    waiting = ledger.peek("SS-4")
    assert waiting["status"] == "awaiting_approval", waiting["status"]
    plans = [a for a in ledger.ok("approvals", "list") if a["invoice_id"] == "SS-4" and a["kind"] == "plan"]
    assert len(plans) == 1 and plans[0]["requested_by"] == "customer:C-SS3", plans
    approval = plans[0]
    ledger.ok("approvals", "approve", approval["approval_id"], "--reason", "long-standing customer",
              "--as", "demo-supervisor")
    assert ledger.peek("SS-4")["status"] == "on_plan"
    reported = [e for e in events(ledger, "SS-2") if e["type"] == "PaymentReported"]
    assert len(reported) == 1 and reported[0]["actor"] == "customer:C-SS2", reported
    assert reported[0]["data"]["reference"] == "MY-2026-1207"
    assert not [e for e in events(ledger, "SS-2") if e["type"] == "PromiseMade"]
    # the bank file: the payer's name is not the customer's and the reference names no invoice, but it is
    # what the customer reported: the matcher takes the hint
    imported = ledger.import_bank_file([f"BK-77,{TODAY},8800.00,CNY,SH MINGYUAN TRADING CO,MY-2026-1207"])
    assert imported["matched_by_reference"] == 1 and imported["unmatched"] == 0, imported
    paid = ledger.peek("SS-2")
    assert paid["status"] == "paid" and money(paid["balance"]) == 0, paid["status"]
    assert [e["data"]["payment_id"] for e in paid["events"] if e["type"] == "PaymentReceived"] == ["BK-77"]
    assert len(events(ledger, "SS-2")) >= before  # (its reminders may go on meanwhile)

    # an altered link opens nothing and changes nothing
    token = link_en.rsplit("/", 1)[1]
    altered = link_en[:-len(token)] + token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    versions = len(events(ledger, "SS-1"))
    with httpx.Client(timeout=30) as http:
        for bad in (altered, link_en + "x", link_en[:-len(token)] + "not-a-token"):
            assert http.get(bad).status_code == 403
            refused = http.post(bad + "/promise", data={"invoice_id": "SS-1", "amount": "1.00",
                                                        "date": promised})
            assert refused.status_code == 403 and "not valid" in refused.text
        # the link reaches nothing else of the engine
        assert http.get(f"{ledger.url}/api/cases/SS-1", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # the link expires (after the policy's link_valid_for, as `policy show` gives it): refused with 410, nothing changed
    valid_for = TypeAdapter(timedelta).validate_python(ledger.ok("policy", "show")["self_service"]["link_valid_for"])
    time.sleep(max(0.0, issued_en + valid_for.total_seconds() + 2 - time.time()))
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    answer = page.goto(link_en)
    assert answer.status == 410 and "expired" in page.text_content("[data-testid=refused]")
    context.close()
    with httpx.Client(timeout=30) as http:
        late = http.post(link_en + "/paid", data={"invoice_id": "SS-1", "amount": "1250.40",
                                                  "paid_on": TODAY.isoformat(), "reference": "late"})
    assert late.status_code == 410
    assert len(events(ledger, "SS-1")) == versions
    print(f"acted {acted - issued_en:.1f}s after the first notice "
          f"(links are valid for {valid_for.total_seconds():.0f}s)")
