"""The walk-arounds of the approval controls, tried in the console in Chromium as each person
would: a collector crediting a disputed invoice in full (or in two pieces, each under the threshold),
a supervisor cancelling a 90,000 USD case, a supervisor approving a write-off in KWD above her USD
authority. Each is routed to a second person who has the authority (docs/CONTROLS.md, "Money rules")."""

from __future__ import annotations

from tests.web.conftest import ROLE_USERS, Web
from tests.web.test_browser import browser, page, shot, sign_in  # noqa: F401 - the browser fixtures


async def as_someone(browser, web: Web, role: str):  # noqa: F811
    """A second person at another desk: their own browser context and session."""
    context = await browser.new_context(base_url=web.url, viewport={"width": 1360, "height": 900}, locale="en-US")
    other = await context.new_page()
    await sign_in(other, web, role)
    return context, other


async def open_case_page(page, invoice: str) -> None:  # noqa: F811
    await page.goto(f"/console/cases/{invoice}")
    await page.wait_for_selector("[data-testid=case-status]")


async def uphold_dispute(page, invoice: str, reason: str, credit: str, note: str) -> str:  # noqa: F811
    """On the case page: open a dispute for ``reason`` and resolve it upheld with ``credit``;
    the flash the console answers with."""
    await open_case_page(page, invoice)
    await page.fill("form[action$='/dispute'] input[name=reason]", reason)
    await page.click("form[action$='/dispute'] button")
    await page.wait_for_selector("form[action$='/dispute-resolve']")
    await page.select_option("form[action$='/dispute-resolve'] select[name=outcome]", "upheld")
    await page.fill("form[action$='/dispute-resolve'] input[name=credit]", credit)
    await page.fill("form[action$='/dispute-resolve'] input[name=note]", note)
    await page.click("form[action$='/dispute-resolve'] button")
    await page.wait_for_selector(".flash")
    return await page.inner_text(".flash")


async def approval_row(page, invoice: str, kind: str):  # noqa: F811
    await page.goto("/console/approvals")
    row = page.locator(f"tr[data-invoice='{invoice}'][data-kind='{kind}']")
    await row.wait_for()
    return row


async def test_a_collector_upholding_a_dispute_in_full_waits_for_a_supervisor(page, browser, web: Web):  # noqa: F811
    invoice = await web.new_case(amount="1000.00", customer="Disputed Credit Ltd")
    await sign_in(page, web, "collector")
    flash = await uphold_dispute(page, invoice, "pricing", "1000.00", "price list error")
    assert "awaiting approval" in flash, flash
    assert await page.inner_text("[data-testid=case-status]") == "awaiting approval"
    assert await page.inner_text("[data-testid=balance]") == "$1,000.00"
    assert "DisputeResolved" not in web.events(invoice)

    row = await approval_row(page, invoice, "credit")
    assert await row.get_attribute("class") == "locked" and await row.locator("button").count() == 0
    await shot(page, "controls-credit-collector")

    context, supervisor = await as_someone(browser, web, "supervisor")
    try:
        row = await approval_row(supervisor, invoice, "credit")
        await row.locator("form[action$='/approve'] input[name=reason]").fill("price list error confirmed")
        await row.locator("button:has-text('Approve')").click()
        await supervisor.wait_for_selector(".flash")
        assert f"for {invoice} approved" in await supervisor.inner_text(".flash")
    finally:
        await context.close()
    assert web.service.show(invoice)["balance"] == "0.00"
    approved = [e for e in web.context.store.load(web.service.show(invoice)["case_id"])
                if type(e).__name__ == "ReductionApproved"]
    assert [(e.actor, e.reason) for e in approved] == [(ROLE_USERS["supervisor"], "price list error confirmed")]


async def test_a_supervisor_cancelling_a_large_case_needs_a_second_person(page, browser, web: Web):  # noqa: F811
    invoice = await web.new_case(amount="90000.00", customer="Voided Order SA")
    await sign_in(page, web, "supervisor")
    await open_case_page(page, invoice)
    await page.fill("form[action$='/cancel'] input[name=reason]", "invoice_voided")
    await page.click("form[action$='/cancel'] button")
    await page.wait_for_selector(".flash")
    assert await page.inner_text("[data-testid=case-status]") == "awaiting approval"

    row = await approval_row(page, invoice, "cancellation")
    assert await row.locator("[data-testid=cannot]").inner_text() == "Your own request (four eyes)"
    assert await row.locator("form[action$='/approve']").count() == 0
    await shot(page, "controls-cancellation-own-request")
    csrf = await page.locator("input[name=csrf_token]").first.input_value()
    approval_id = await row.get_attribute("data-approval")
    forced = await page.request.post(f"/console/approvals/{approval_id}/approve",
                                     form={"csrf_token": csrf, "reason": "voided"}, max_redirects=0)
    assert forced.status in (303, 403)  # refused, whichever way the console reports it
    assert web.service.approval(approval_id)["status"] == "pending"
    await page.goto("/console/approvals")  # the refusal in plain words, not 'as: four eyes: ...'
    assert await page.inner_text(".flash.error") == "four eyes: the requester cannot decide their own request"

    context, manager = await as_someone(browser, web, "finance_manager")
    try:
        row = await approval_row(manager, invoice, "cancellation")
        await row.locator("form[action$='/approve'] input[name=reason]").fill("credit note 7 issued in the ERP")
        await row.locator("button:has-text('Approve')").click()
        await manager.wait_for_selector(".flash")
    finally:
        await context.close()
    assert web.service.show(invoice)["status"] == "cancelled"


async def test_a_write_off_in_kwd_above_a_supervisors_usd_authority_goes_to_the_finance_manager(page, web: Web):  # noqa: F811
    invoice = await web.new_case(amount="9999.000", currency="KWD", customer="Kuwait Trading KSC")
    await web.service.request_write_off(invoice, "9999.000", "insolvency", web.actor("collector"))
    await sign_in(page, web, "supervisor")
    row = await approval_row(page, invoice, "write_off")
    text = await row.inner_text()
    assert "KWD" in text and "9,999.000" in text, text
    # her limit is shown in the currency it is written in, not in the write-off's
    assert await row.locator("[data-testid=cannot]").inner_text() == "Beyond your write-off authority ($10,000.00)"
    assert await row.locator("form[action$='/approve']").count() == 0
    await shot(page, "controls-kwd-beyond-authority")


async def test_a_collector_crediting_in_two_small_pieces_waits_for_a_supervisor(page, web: Web):  # noqa: F811
    """60.00 credited alone, then 60.00 more on another dispute: 120.00 alone in all is above the
    policy's 100.00, so the second piece waits for a second person as one credit of 120.00 would."""
    invoice = await web.new_case(amount="1000.00", customer="Credit In Pieces GmbH")
    await sign_in(page, web, "collector")
    flashes = [await uphold_dispute(page, invoice, reason, "60.00", f"{reason} credit")
               for reason in ("pricing", "quality")]
    assert "awaiting approval" not in flashes[0] and "awaiting approval" in flashes[1], flashes
    assert await page.inner_text("[data-testid=case-status]") == "awaiting approval"
    assert await page.inner_text("[data-testid=balance]") == "$940.00"
    assert web.events(invoice).count("DisputeResolved") == 1 and web.events(invoice)[-1] == "ReductionRequested"

    row = await approval_row(page, invoice, "credit")
    assert await row.get_attribute("class") == "locked" and await row.locator("button").count() == 0
    # beside the 60.00 asked, why it waits: the first piece was credited alone
    assert await row.locator("[data-testid=reduced-alone]").inner_text() == "$60.00 already reduced alone on this case"
    await shot(page, "controls-credit-in-pieces")
