"""The event feed over HTTP with real tokens (GET /api/events, docs/EVENTS.md): who may read it,
paging by after/limit gives every event exactly once in position order, and bad paging
parameters are refused naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from store.schema import EVENTS_TABLE
from tests.web.conftest import Web


def _positions_in_database(web: Web) -> list[int]:
    """What the table holds, read with plain SQL (not through the feed's code)."""
    with web.context.db.read() as session:
        return [p for (p,) in session.execute(text(f"SELECT id FROM {EVENTS_TABLE} ORDER BY id"))]


async def _read_all(client, after: int = 0, limit: int = 3) -> tuple[list[dict], int]:
    """Page as a consumer does: after=next_after until caught up (next_after == head)."""
    seen: list[dict] = []
    pages = 0
    while True:
        response = await client.get("/api/events", params={"after": after, "limit": limit})
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["events"]) <= limit
        seen += page["events"]
        pages += 1
        if page["next_after"] == page["head"]:
            return seen, pages
        assert page["events"], "a page short of the head must hold events"
        after = page["next_after"]


async def test_a_collector_may_not_read_the_feed(web: Web):
    response = await web.client("collector").get("/api/events")
    assert response.status_code == 403, response.text
    assert "events.read" in response.json()["error"] and "demo-collector" in response.json()["error"]


@pytest.mark.parametrize("role", ["supervisor", "finance_manager"])
async def test_paging_gives_every_event_once_in_position_order(web: Web, role: str):
    opened = [await web.new_case(amount=amount) for amount in ("120.50", "990.00", "45.10")]
    await web.client("supervisor").post(f"/api/invoices/{opened[0]}/payments",
                                        json={"amount": "20.50", "payment_id": f"P-{opened[0]}"})
    expected = _positions_in_database(web)

    events, pages = await _read_all(web.client(role), limit=3)

    positions = [e["position"] for e in events]
    assert positions == expected  # every event, once, in order: no gap, no repeat
    assert pages >= len(expected) // 3
    assert set(events[0]) == {"position", "stream", "version", "event_id", "type", "occurred_at", "recorded_at",
                              "actor", "data"}
    # a consumer can rebuild what it needs from the feed alone: the cases opened and their amounts
    opened_events = {e["data"]["invoice_id"]: e for e in events if e["type"] == "CaseOpened"}
    assert set(opened) <= set(opened_events)
    assert Decimal(opened_events[opened[1]]["data"]["original_amount"]["amount"]) == Decimal("990.00")
    paid = [e for e in events if e["type"] == "PaymentReceived" and e["stream"] == opened_events[opened[0]]["stream"]]
    assert [Decimal(e["data"]["amount"]["amount"]) for e in paid] == [Decimal("20.50")]
    assert paid[0]["actor"] == "demo-supervisor"

    # resuming after a position gives exactly the rest
    middle = positions[len(positions) // 2]
    rest, _ = await _read_all(web.client(role), after=middle, limit=1000)
    assert [e["position"] for e in rest] == [p for p in expected if p > middle]


async def test_caught_up_the_feed_answers_an_empty_page_at_the_head(web: Web):
    head = _positions_in_database(web)[-1]
    page = (await web.client("supervisor").get("/api/events", params={"after": head})).json()
    assert page == {"events": [], "next_after": head, "head": head}


@pytest.mark.parametrize("params, field", [
    ({"after": "-1"}, "after"), ({"after": "abc"}, "after"), ({"after": str(2**63)}, "after"),
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
])
async def test_bad_paging_parameters_are_refused_naming_the_field(web: Web, params: dict, field: str):
    response = await web.client("supervisor").get("/api/events", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}: "), body
