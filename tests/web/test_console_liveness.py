"""The console's case page shows a dunning pause (and a plan offer's expiry); the worklist API shows
the pause's end as the next action."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.web.conftest import Web
from tests.web.test_console import case_path, signed_in


async def test_the_case_page_and_the_worklist_show_a_pause_and_its_end_date(web: Web):
    invoice = await web.new_case()
    until = (datetime.now(timezone.utc) + timedelta(days=10)).date()
    client, _ = await signed_in(web, "collector")
    page = await client.get(case_path(invoice))
    assert 'data-testid="pause"' not in page.text
    api = web.client("collector")
    paused = await api.post(f"/api/cases/{invoice}/pause", json={"until": until.isoformat(), "reason": "customer_holiday"})
    assert paused.status_code == 200, paused.text
    page = await client.get(case_path(invoice))
    assert 'data-testid="pause"' in page.text
    assert "Dunning paused until" in page.text and "customer_holiday" in page.text and "demo-collector" in page.text
    row = next(r for r in (await api.get("/api/cases")).json() if r["invoice_id"] == invoice)
    assert row["next_action"] == "paused (customer_holiday): dunning resumes"
    assert row["next_action_at"].startswith(until.isoformat())
    resumed = await api.post(f"/api/cases/{invoice}/resume", json={"reason": "back early"})
    assert resumed.status_code == 200 and 'data-testid="pause"' not in (await client.get(case_path(invoice))).text


async def test_the_case_page_shows_when_a_plan_offer_lapses(web: Web):
    invoice = await web.new_case()
    await web.service.propose_plan(invoice, 2, "P30D", web.actor("collector"))
    client, _ = await signed_in(web, "collector")
    page = await client.get(case_path(invoice))
    assert 'data-testid="offer-lapses"' in page.text and "The offer lapses at" in page.text
