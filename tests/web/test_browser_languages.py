"""The console in German in a real browser (docs/LANGUAGES.md): a supervisor signs in, chooses
Deutsch, and works the worklist, the approvals inbox and a case page in German, with amounts and
the timeline in German formats; the choice stays for the session and switching back restores English."""

from __future__ import annotations

import re

from tests.web.conftest import Web
from tests.web.test_browser import browser, page, shot, sign_in  # noqa: F401 - the browser fixtures

NBSP = "\u00a0"


async def test_a_supervisor_works_the_console_in_german(page, web: Web):  # noqa: F811
    invoice = await web.new_case(amount="2500.00", customer="Deutsche Kunde GmbH")
    await web.service.request_write_off(invoice, "2500.00", "insolvency", web.actor("collector"))
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice)

    await sign_in(page, web, "supervisor")
    await page.click("button[value=de]")
    await page.wait_for_url("**/console/worklist")
    assert await page.get_attribute("html", "lang") == "de"
    assert await page.inner_text("h1") == "Arbeitsliste Forderungsmanagement"
    assert await page.text_content("[data-testid=who]") == "demo-supervisor (Teamleiter)"
    row = page.locator(f"tr[data-invoice='{invoice}']")  # what the case waits for, in German too
    assert "Freigabe fällig: Ausbuchung" in await row.inner_text(), await row.inner_text()
    await shot(page, "worklist-de")

    await page.click("nav >> text=Freigaben")
    await page.wait_for_url("**/console/approvals")
    assert await page.inner_text("h1") == "Freigaben"
    row = page.locator(f"tr[data-approval='{approval_id}']")
    assert f"2.500,00{NBSP}$" in await row.inner_text(), await row.inner_text()
    await row.locator("form[action$='/approve'] input[name=reason]").fill("Kunde insolvent")
    await shot(page, "approvals-inbox-de")
    await row.locator("button:has-text('Freigeben')").click()
    await page.wait_for_url("**/console/approvals")
    assert (f"Ausbuchung für {invoice} freigegeben; der Fall ist jetzt ausgebucht."
            in await page.inner_text(".flash")), await page.inner_text(".flash")

    await page.click(f"[data-testid=recent] >> text={invoice}")
    await page.wait_for_url("**/console/cases/*")
    assert await page.inner_text("[data-testid=case-status]") == "ausgebucht"
    assert await page.inner_text("[data-testid=waiting-for]") == "abgeschlossen (ausgebucht)"  # was 'closed (written_off)'
    timeline = await page.inner_text("[data-testid=timeline]")
    assert f"Ausbuchung von 2.500,00{NBSP}$ freigegeben" in timeline and "Fall abgeschlossen: ausgebucht" in timeline
    await shot(page, "case-written-off-de")
    assert web.service.show(invoice)["status"] == "written_off"

    await page.goto("/console/dashboard")  # the choice stays for the session
    assert await page.inner_text("h1") == "Übersicht"
    # the figures in German too ('83,1', not '83.1'), and the advances held with their currency
    held = await page.inner_text("[data-kpi=advances_held_end] td")
    assert held.endswith(f"{NBSP}$") and "," in held, held
    figures = [await cell.inner_text() for cell in await page.locator("[data-testid=kpi-table] td").all()]
    assert not [f for f in figures if "." in f and "," not in f], figures  # an English decimal point
    dso = await page.locator("[data-testid=chart-dso] svg text").all_text_contents()
    assert not [v for v in dso if re.fullmatch(r"[0-9]+\.[0-9]+", v)], dso  # its figures in German as well
    assert any(re.fullmatch(r"20[0-9]{2}-[01][0-9]", v) for v in dso), dso  # months as 2026-11, not 26-11
    await shot(page, "dashboard-de")
    await page.click("button[value=en]")
    await page.wait_for_url("**/console/dashboard")
    assert await page.inner_text("h1") == "Dashboard"


async def test_no_two_figures_of_a_chart_overlap_in_french(page, web: Web):  # noqa: F811
    """'0,00 $US' written above each of 13 weekly bars ran together into one unreadable line, and the
    DSO chart's last date overlapped the month before it and stood half outside the chart."""
    await sign_in(page, web, "supervisor")
    await page.click("button[value=fr]")
    await page.goto("/console/dashboard")
    for chart in await page.locator("svg.chart").all():
        frame = await chart.bounding_box()
        for kind in ("value", "label"):  # the figures above the bars, the labels under the axis
            boxes = [await t.bounding_box() for t in await chart.locator(f"text.{kind}").all()]
            for box in boxes:  # the DSO chart's last date stood half outside the chart
                assert frame["x"] - 1 <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, (
                    await chart.get_attribute("aria-label"), box, frame)
            for n, a in enumerate(boxes):
                for b in boxes[n + 1:]:
                    apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                             or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
                    assert apart, (await chart.get_attribute("aria-label"), kind, a, b)
    await shot(page, "dashboard-fr")
