"""The console in a real browser: Playwright driving Debian's chromium (never a downloaded one).

Screenshots are saved under tests/artifacts/. Without /usr/bin/chromium these
tests are skipped, unless COLLECTIONS_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.web.conftest import ROLE_USERS, Web

CHROMIUM = Path(os.environ.get("COLLECTIONS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "tests" / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


@pytest.fixture(scope="module")
async def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("COLLECTIONS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser, web: Web):
    context = await browser.new_context(base_url=web.url, viewport={"width": 1360, "height": 900}, locale="en-US")
    page = await context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: page.dialogs.append(dialog.message))
    yield page
    await context.close()


async def shot(page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page, web: Web, role: str) -> None:
    await page.goto("/console/")
    assert page.url.endswith("/console/login")
    await page.fill("input[name=token]", web.tokens[role])
    await page.click("button:has-text('Sign in')")
    await page.wait_for_url("**/console/worklist")
    assert await page.text_content("[data-testid=who]") == f"{ROLE_USERS[role]} ({role.replace('_', ' ')})"


async def test_supervisor_approves_a_write_off_and_sees_the_case_closed(page, web: Web):
    invoice = await web.new_case(amount="2500.00", customer="Written Off Ltd")
    await web.service.request_write_off(invoice, "2500.00", "insolvency", web.actor("collector"))
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice)

    await sign_in(page, web, "supervisor")
    await page.click("nav >> text=Approvals")
    await page.wait_for_url("**/console/approvals")
    row = page.locator(f"tr[data-approval='{approval_id}']")
    assert "$2,500.00" in await row.inner_text() and "demo-collector" in await row.inner_text()
    await shot(page, "approvals-inbox-supervisor")
    await row.locator("form[action$='/approve'] input[name=reason]").fill("customer insolvent")
    await row.locator("button:has-text('Approve')").click()
    await page.wait_for_url("**/console/approvals")
    assert f"Write-off for {invoice} approved; the case is now written off." in await page.inner_text(".flash")
    assert await page.locator(f"tr[data-approval='{approval_id}']").count() == 0  # gone from the pending list
    await shot(page, "approvals-inbox-after-approval")

    await page.click(f"[data-testid=recent] >> text={invoice}")
    await page.wait_for_url("**/console/cases/*")
    assert await page.inner_text("[data-testid=case-status]") == "written off"
    assert "This case is closed (written off)" in await page.inner_text("[data-testid=closed]")
    timeline = await page.inner_text("[data-testid=timeline]")
    assert "Write-off of $2,500.00 approved" in timeline and "demo-supervisor" in timeline
    assert "Case closed: written off" in timeline
    assert await page.locator("form[action$='/payment']").count() == 0  # a closed case offers no commands
    await shot(page, "case-written-off")
    assert web.service.show(invoice)["status"] == "written_off"


async def test_a_collector_signs_in_and_cannot_approve(page, web: Web):
    invoice = await web.new_case(amount="300.00")
    await web.service.request_write_off(invoice, "300.00", "small_balance", web.actor("supervisor"))
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice)

    await sign_in(page, web, "collector")
    await page.click("nav >> text=Approvals")
    row = page.locator(f"tr[data-approval='{approval_id}']")
    await row.wait_for()
    assert await row.get_attribute("class") == "locked"
    assert await row.locator("button").count() == 0
    assert await row.locator("[data-testid=cannot]").inner_text() == "Only supervisors and finance managers decide"
    await shot(page, "approvals-inbox-collector")

    # even a hand-made request with the session's own CSRF token is refused by the server
    csrf = await page.locator("input[name=csrf_token]").first.input_value()
    forced = await page.request.post(f"/console/approvals/{approval_id}/approve", form={"csrf_token": csrf},
                                     max_redirects=0)
    assert forced.status == 403 and "may not do this" in await forced.text()
    assert web.service.approval(approval_id)["status"] == "pending"


async def test_a_supervisor_is_not_offered_the_second_piece_of_a_split_write_off(page, web: Web):
    """The server refuses a supervisor (10,000 USD) the second piece of a write-off when the case's
    total passes her authority; the inbox offered her 'Approve' anyway and named her tier."""
    invoice = await web.new_case(amount="15000.00")
    await web.service.request_write_off(invoice, "8000.00", "uncollectible", web.actor("collector"))
    first = next(a for a in web.service.approvals() if a["invoice_id"] == invoice)
    await web.service.decide_approval(first["approval_id"], True, web.actor("supervisor"), reason="part one")
    await web.service.request_write_off(invoice, "7000.00", "uncollectible", web.actor("collector"))
    second = next(a for a in web.service.approvals() if a["invoice_id"] == invoice)

    await sign_in(page, web, "supervisor")
    await page.click("nav >> text=Approvals")
    row = page.locator(f"tr[data-approval='{second['approval_id']}']")
    await row.wait_for()
    assert await row.locator("button.approve").count() == 0, await row.inner_html()
    assert await row.locator("button.reject").count() == 1  # she may still reject it
    cannot = await row.locator("[data-testid=cannot]").inner_text()
    assert cannot == "Beyond your write-off authority ($10,000.00) with $8,000.00 already written off or credited " \
                     "on this case", cannot  # why 7,000 is beyond her 10,000
    assert await row.locator("[data-testid=approver]").inner_text() == "finance manager"
    await shot(page, "approvals-inbox-split-write-off")


async def test_a_customer_name_with_a_script_tag_is_shown_as_text(page, web: Web):
    name = '<script>window.__xss = 1; document.title = "pwned"</script>Evil & Co <b>Ltd</b>'
    invoice = await web.new_case(customer=name)
    await sign_in(page, web, "supervisor")
    await page.goto(f"/console/worklist?q={invoice}")
    cell = page.locator(f"tr[data-invoice='{invoice}'] td").nth(2)
    assert await cell.inner_text() == name
    await page.click(f"text={invoice}")
    await page.wait_for_url("**/console/cases/*")
    assert name in await page.inner_text("[data-testid=customer]")
    assert await page.evaluate("window.__xss") is None
    assert "pwned" not in await page.title() and page.dialogs == []
    assert await page.locator("[data-testid=customer] b").count() == 0  # markup is not interpreted either
    await shot(page, "case-script-in-customer-name")


async def test_a_supervisor_decides_an_escalation_in_chinese(page, web: Web):
    invoice = await web.escalated_case()
    await sign_in(page, web, "supervisor")
    await page.click("button[value=zh]")
    await page.wait_for_url("**/console/worklist")
    assert await page.inner_text("h1") == "催收工作清单"
    await shot(page, "worklist-zh")
    await page.click("nav >> text=审批")
    row = page.locator(f"tr[data-kind='escalation'][data-invoice='{invoice}']")
    # no decision is chosen for the supervisor: 'Decide' pressed without looking decides nothing
    # (it offered a payment plan, the first choice)
    await row.locator("button:has-text('决定')").click()
    assert await row.locator("select[name=decision]").evaluate("s => s.validity.valueMissing") is True
    assert web.service.show(invoice)["escalation"]["decision"] is None
    await row.locator("select[name=decision]").select_option("write_off")
    await row.locator("input[name=note]").fill("客户已破产")
    await shot(page, "approvals-inbox-escalation-zh")
    await row.locator("button:has-text('决定')").click()
    await page.wait_for_url("**/console/approvals")
    assert f"已决定 {invoice} 的升级（申请核销）；案件现在待审批。" in await page.inner_text(".flash")
    state = web.service.show(invoice)
    assert state["escalation"]["decision"] == "write_off" and state["escalation"]["decided_by"] == "demo-supervisor"
    await page.click("nav >> text=仪表盘")
    await page.wait_for_url("**/console/dashboard")
    assert await page.locator("svg.chart").count() == 5
    await shot(page, "dashboard-zh")
    await page.click("button[value=en]")
    await page.wait_for_url("**/console/dashboard")
    await shot(page, "dashboard-en")


async def test_a_decided_escalation_shows_the_balance_it_was_decided_on(page, web: Web):
    """Recently decided lists what was decided: after the write-off the case owes nothing, but the
    escalation was decided on its whole balance (it showed the case's balance of now, $0.00)."""
    invoice = await web.escalated_case()
    escalation = next(a for a in web.service.approvals() if a["invoice_id"] == invoice and a["kind"] == "escalation")
    await web.service.decide_escalation(invoice, "write_off", web.actor("supervisor"), note="insolvent")
    write_off = next(a for a in web.service.approvals() if a["invoice_id"] == invoice and a["kind"] == "write_off")
    await web.service.decide_approval(write_off["approval_id"], True, web.actor("finance_manager"), reason="insolvent")
    assert web.service.show(invoice)["status"] == "written_off"

    await sign_in(page, web, "supervisor")
    await page.click("nav >> text=Approvals")
    row = page.locator(f"[data-testid=recent] tr[data-decided='{escalation['approval_id']}']")
    decided_on = f"${Decimal(escalation['amount']):,.2f}"
    assert decided_on != "$0.00" and decided_on in await row.inner_text(), await row.inner_text()
    assert "Request a write-off" in await row.inner_text()
    await shot(page, "approvals-recent-escalation")


async def test_an_address_the_console_has_no_page_for_gets_the_console_s_own_page(page, web: Web):
    """A mistyped address, or a button's address opened again, showed the API's JSON body."""
    await sign_in(page, web, "collector")
    invoice = await web.new_case()  # a form's address opened as a page said 'unknown case'
    for address, status in (("/console/nothing", 404), ("/console/approvals/xyz/approve", 405),
                            (f"/console/cases/{invoice}/cancel", 405)):
        response = await page.goto(address)
        assert response.status == status and "text/html" in response.headers["content-type"], address
        assert await page.inner_text("section.card h1") == "Not found"
        assert "There is no such page in the console" in await page.inner_text("[role=alert]")
        assert await page.locator("[data-testid=who]").count() == 1  # within the console, signed in
    await page.click("button[value=de]")
    await page.goto("/console/nothing")
    assert await page.inner_text("section.card h1") == "Nicht gefunden"
    await shot(page, "console-no-such-page-de")
    api = await page.request.get("/api/nothing")
    assert api.status == 404 and (await api.json())["status"] == 404  # the API still answers JSON


async def test_every_page_fits_a_phone_s_screen(browser, web: Web):
    """At 390 px the pages were 544 to 945 px wide and Sign out sat off the header, unseen."""
    invoice = await web.new_case(amount="18540.00", customer="A Customer With A Rather Long Name GmbH & Co. KG")
    context = await browser.new_context(base_url=web.url, viewport={"width": 390, "height": 844}, locale="en-US")
    page = await context.new_page()
    try:
        await sign_in(page, web, "supervisor")
        for address in ("/console/worklist", "/console/approvals", "/console/dashboard", f"/console/cases/{invoice}",
                        "/console/advances"):
            await page.goto(address)
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390, address
            sign_out = await page.locator("header form[action='/console/logout'] button").bounding_box()
            header = await page.locator("header.top").bounding_box()
            assert sign_out["x"] + sign_out["width"] <= 390, address
            assert sign_out["y"] + sign_out["height"] <= header["y"] + header["height"], address
        await shot(page, "case-on-a-phone")
    finally:
        await context.close()


async def test_a_paid_case_is_found_by_the_worklist_s_search(page, web: Web):
    """The worklist holds open cases; a paid invoice could be reached only by typing its address."""
    invoice = await web.new_case(amount="300.00", customer="Paid Up Ltd")
    await web.service.pay(invoice, "300.00", "wire", web.actor("collector"))
    await sign_in(page, web, "collector")
    await page.fill("input[name=q]", invoice)
    async with page.expect_navigation():
        await page.press("input[name=q]", "Enter")
    row = page.locator(f"[data-testid=closed-matching] tr[data-invoice='{invoice}']")
    assert "paid" in await row.inner_text() and "$300.00" in await row.inner_text(), await row.inner_text()
    await shot(page, "worklist-closed-matching")
    await row.locator("a").click()
    await page.wait_for_url("**/console/cases/*")
    assert await page.inner_text("[data-testid=case-status]") == "paid"


async def test_the_worklist_weighs_other_currencies_at_the_policys_rates(page, web: Web):
    """1,000,000 JPY at risk is about 6,700 USD (the policy's pinned rate): it ranked above a
    100,000 USD case of the same grade and age, compared at face value."""
    yen = await web.new_case(amount="1000000", currency="JPY", customer="Rates Trading KK")
    dollars = await web.new_case(amount="100000.00", currency="USD", customer="Rates Trading Inc")
    await sign_in(page, web, "collector")
    await page.goto("/console/worklist?q=Rates+Trading")
    rows = page.locator("[data-testid=worklist] tbody tr")
    await rows.first.wait_for()
    assert [await r.get_attribute("data-invoice") for r in await rows.all()] == [dollars, yen]
    await shot(page, "worklist-two-currencies")


async def test_submitting_the_payment_form_twice_records_one_payment(page, web: Web):
    """The payment form carries an idempotency key (a hidden UUID per rendered form): the same
    form sent twice, as a double click or a resubmitted page would, is one payment."""
    invoice = await web.new_case(amount="1000.00", customer="Double Submit AG")
    await sign_in(page, web, "collector")
    await page.goto(f"/console/cases/{invoice}")
    form = page.locator("form[action$='/payment']")
    key = await form.locator("input[name=idempotency_key]").get_attribute("value")
    assert key and len(key) == 36
    await form.locator("input[name=amount]").fill("100.00")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    assert "Payment of $100.00 received" in await page.inner_text(".flash")
    fresh = await page.locator("form[action$='/payment'] input[name=idempotency_key]").get_attribute("value")
    assert fresh != key  # every rendering gets its own key
    # The same form again (its key as first rendered), e.g. the browser resending it.
    await page.locator("form[action$='/payment'] input[name=idempotency_key]").evaluate(
        "(input, key) => { input.value = key; }", key)
    await page.locator("form[action$='/payment'] input[name=amount]").fill("100.00")
    async with page.expect_navigation():
        await page.locator("form[action$='/payment'] button[type=submit]").click()
    await shot(page, "payment-form-submitted-twice")
    assert web.events(invoice).count("PaymentReceived") == 1
    assert await page.text_content("[data-testid=balance]") == "$900.00"
    assert (await page.locator("[data-testid=timeline]").inner_text()).count("100.00") == 1


async def test_a_refused_form_names_its_field_in_the_reader_s_words(page, web: Web):
    """A refusal started with the internal field name ('amount: must be positive'); the console
    names the field as its form does, in the reader's language, or gives the sentence alone."""
    invoice = await web.new_case(amount="300.00", customer="Negative Amount BV")
    await sign_in(page, web, "collector")
    for language, label, sentence in (("en", "Amount", "must be positive, got -5"),
                                      ("de", "Betrag", "muss positiv sein (eingegeben: -5)"),
                                      ("ja", "金額", "正の値を入力してください（入力値：-5）")):
        if language != "en":
            await page.click(f"button[value={language}]")
            await page.wait_for_load_state()
        await page.goto(f"/console/cases/{invoice}")
        await page.locator("form[action$='/payment'] input[name=amount]").fill("-5")
        async with page.expect_navigation():
            await page.locator("form[action$='/payment'] button[type=submit]").click()
        flash = await page.inner_text(".flash.error")
        colon = "：" if language == "ja" else ": "
        assert flash == f"{label}{colon}{sentence}", (language, flash)  # the sentence in their words too
    await shot(page, "refused-payment-ja")
    assert "PaymentReceived" not in web.events(invoice)
