"""The Advances page and an advance case in the console, in a real browser (issue 16): the
register with what lingers, the overdue advance requests with their cases of kind advance, the
case page of such a case, a refund above the threshold approved in the approvals inbox by a
second person, and the page in Chinese."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.advances import AdvanceService
from app.credit import CreditService
from app.sweeps import run_sweep
from tests.web.conftest import Web
from tests.web.test_browser import browser, page, shot, sign_in  # noqa: F401 - the browser fixtures

TODAY = datetime.now(timezone.utc).date()


async def test_advances_page_advance_case_and_refund_approval(page, web: Web):  # noqa: F811
    invoice = web.new_invoice(grade="B", customer="Deposit Web Ltd")
    customer = f"C-{invoice}"
    collector = web.actor("collector")
    advances = AdvanceService(web.service)
    request_id = f"RQ-{invoice}"
    advances.request(customer, "300.00", "USD", TODAY - timedelta(days=3), "deposit order 88", collector,
                     order_id="SO-88", request_id=request_id)
    old = f"PP-{invoice}"
    await CreditService(web.service).prepay(customer, "500.00", "USD", collector, payment_id=old,
                                            received_on=TODAY - timedelta(days=120), reference="old deposit")
    alone = advances.refund(old, "50.00", "order 65 cancelled", collector, refund_id=f"RF-{invoice}-A")
    assert alone["status"] == "refunded"  # within the policy's 100.00: one person
    refund = advances.refund(old, "250.00", "order 66 cancelled", collector, refund_id=f"RF-{invoice}")
    assert refund["status"] == "awaiting approval"  # above the policy's 100.00: four eyes
    await run_sweep(web.context, TODAY)  # it returns once the case it opened has recorded its opening
    assert web.service.show(request_id)["kind"] == "advance"

    await sign_in(page, web, "supervisor")
    await page.click("nav >> text=Advances")
    await page.wait_for_url("**/console/advances")
    overdue = page.locator(f"[data-testid=overdue-requests] tr[data-request='{request_id}']")
    text = await overdue.inner_text()
    assert "SO-88" in text and "deposit order 88" in text and "$300.00" in text and "3" in text, text
    lingering = page.locator(f"[data-testid=lingering] tr[data-advance='{old}']")
    assert "$500.00" in await lingering.inner_text() and "120" in await lingering.inner_text()
    await shot(page, "advances-en")

    await overdue.locator("a").click()  # the case of kind advance
    await page.wait_for_url("**/console/cases/*")
    badge = await page.inner_text("[data-testid=case-kind]")
    assert "deposit due before shipment" in badge and "SO-88" in badge, badge
    assert await page.inner_text("[data-testid=balance]") == "$300.00"
    await shot(page, "case-advance")

    await page.click("nav >> text=Approvals")
    row = page.locator(f"tr[data-approval='{refund['refund_id']}']")
    assert "Advance refund" in await row.inner_text() and "$250.00" in await row.inner_text()
    # why it waits, beside the amount: what was refunded alone from the advance before counts
    assert await row.locator("[data-testid=reduced-alone]").inner_text() == "$50.00 already refunded alone from this advance"
    assert await row.locator("button:has-text('Reject')").count() == 1  # it may be turned down too
    await row.locator("form[action$='/approve'] input[name=reason]").fill("order cancelled, deposit returned")
    await row.locator("button:has-text('Approve')").click()
    await page.wait_for_url("**/console/approvals")
    assert "approved" in await page.inner_text(".flash")
    assert await page.locator(f"tr[data-approval='{refund['refund_id']}']").count() == 0
    recent = await page.inner_text("[data-testid=recent]")
    assert "Advance refund" in recent and old in recent and "demo-supervisor" in recent, recent
    decided = web.service.approval(refund["refund_id"])
    assert (decided["status"], decided["decided_by"], decided["requested_by"]) == (
        "approved", "demo-supervisor", "demo-collector"), decided
    [held] = [r for r in advances.report()["advances"] if r["advance_id"] == old]
    assert (held["refunded"], held["held"]) == ("300.00", "200.00"), held

    await page.click("button[value=zh]")
    await page.click("nav >> text=预收款")
    await page.wait_for_url("**/console/advances")
    assert await page.inner_text("h1") == "预收款"
    assert "逾期的预收款申请" in await page.inner_text("main")
    await shot(page, "advances-zh")
    await page.click("nav >> text=仪表盘")
    assert "催收中的定金申请" in await page.inner_text("[data-testid=advance-cases]")
    await page.click("button[value=en]")


async def test_a_collector_cannot_approve_a_refund_of_their_own(web: Web):
    invoice = web.new_invoice(grade="B", customer="Own Refund Ltd")
    collector = web.actor("supervisor")
    await CreditService(web.service).prepay(f"C-{invoice}", "400.00", "USD", collector, payment_id=f"PP-{invoice}")
    assert AdvanceService(web.service).refund(f"PP-{invoice}", "40.00", "part", collector)["status"] == "refunded"
    refund = AdvanceService(web.service).refund(f"PP-{invoice}", "300.00", "cancelled", collector)
    async with web.client("supervisor") as api:
        mine = await api.post(f"/api/approvals/{refund['refund_id']}/approve", json={"reason": "mine"})
    assert mine.status_code in (400, 403, 409, 422) and "four eyes" in mine.text, mine.text
    async with web.client("finance_manager") as api:
        listed = (await api.get("/api/approvals")).json()
        assert [(a["kind"], a["reduced_alone"]) for a in listed if a["approval_id"] == refund["refund_id"]] == [
            ("refund", "40.00")]  # the 40.00 refunded alone before counted against the threshold
        done = await api.post(f"/api/approvals/{refund['refund_id']}/approve", json={"reason": "checked"})
    assert done.status_code == 200 and done.json()["status"] == "refunded", done.text
    async with web.client("finance_manager") as api:
        again = await api.post(f"/api/approvals/{refund['refund_id']}/approve", json={"reason": "twice"})
    assert again.status_code >= 400 and "already approved" in again.text, again.text
