"""The console shows an insured case's deadlines and the dashboard's collection KPIs."""

from __future__ import annotations

import html

from app.insurance import InsuranceService
from tests.web.conftest import Web
from tests.web.test_console import case_path, signed_in


async def test_the_case_page_shows_the_insurers_deadlines(web: Web):
    insurance = InsuranceService(web.service)
    insurance.add_policy("CONSOLE-POL", "ATR", "Atradius Console", "claims@insurer.test", "P60D", "P45D", "P90D", "90")
    invoice = web.new_invoice()  # due 2026-02-04
    insurance.cover(invoice, "CONSOLE-POL")
    await web.service.open_case(invoice, "overdue", web.actor("collector"))
    client, _ = await signed_in(web, "collector")
    page = html.unescape((await client.get(case_path(invoice))).text)
    assert "Insured by Atradius Console (policy CONSOLE-POL, 90% indemnity)" in page
    assert "no payment extension beyond 2026-03-21" in page  # due 2026-02-04 + 45 days
    chinese = html.unescape((await client.get(case_path(invoice), headers={"Accept-Language": "zh-CN"})).text)
    assert "CONSOLE-POL" in chinese


async def test_the_dashboard_shows_collection_kpis(web: Web):
    client, _ = await signed_in(web, "supervisor")
    page = html.unescape((await client.get("/console/dashboard?currency=USD")).text)
    assert 'data-testid="kpi-table"' in page and "Collection effectiveness index, %" in page
    assert "DSO (countback), days" in page
