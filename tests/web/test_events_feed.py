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
    before = _positions_in_database(web)

    events, pages = await _read_all(web.client(role), limit=3)

    # the stack's own timers may append meanwhile: the feed must hold every event up to where it
    # stopped (what the table holds now, read with SQL), each once, in order
    positions = [e["position"] for e in events]
    assert positions == [p for p in _positions_in_database(web) if p <= positions[-1]]
    assert set(before) <= set(positions)
    assert pages >= len(positions) // 3
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
    assert [e["position"] for e in rest] == [p for p in _positions_in_database(web) if middle < p <= rest[-1]["position"]]
    assert rest[:len(positions) - positions.index(middle) - 1] == events[positions.index(middle) + 1:]


async def test_caught_up_the_feed_answers_an_empty_page_at_the_head(web: Web):
    client = web.client("supervisor")
    _, _ = await _read_all(client, limit=1000)  # caught up once (the stack's timers may append later)
    head = (await client.get("/api/events", params={"after": 0, "limit": 1})).json()["head"]
    page = (await client.get("/api/events", params={"after": head})).json()
    if page["events"]:  # appended meanwhile: only what came after
        assert page["events"][0]["position"] > head and page["next_after"] == page["events"][-1]["position"]
    else:
        assert page["next_after"] == head <= page["head"]
    beyond = (await client.get("/api/events", params={"after": page["head"] + 1000})).json()
    assert beyond["events"] == [] and beyond["next_after"] == page["head"] + 1000 and beyond["head"] < 2**53


@pytest.mark.parametrize("params, field", [
    ({"after": "-1"}, "after"), ({"after": "abc"}, "after"), ({"after": str(2**63)}, "after"),
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
])
async def test_bad_paging_parameters_are_refused_naming_the_field(web: Web, params: dict, field: str):
    response = await web.client("supervisor").get("/api/events", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}: "), body


INTEGRATION_USER = '''
[[users]]
name = "erp-feed"
role = "integration"
'''


async def test_an_integration_user_reads_the_feed_and_nothing_else(web: Web):
    import re

    from fastapi.routing import APIRoute

    from api.routes import router
    from app.tokens import issue_token

    with web.users_path.open("a", encoding="utf-8") as users:
        users.write(INTEGRATION_USER)
    token = issue_token(web.users_path, "erp-feed")["token"]
    client = web.client(token=token)

    invoice = await web.new_case()
    events, _ = await _read_all(client, limit=1000)
    assert [e["position"] for e in events] == [p for p in _positions_in_database(web) if p <= events[-1]["position"]]
    assert invoice in {e["data"].get("invoice_id") for e in events if e["type"] == "CaseOpened"}
    me = await client.get("/api/me")
    assert me.status_code == 200 and me.json()["role"] == "integration"

    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.name not in ("events.read", "me")]
    assert len(routes) > 40
    before = web.events(invoice)
    for route in routes:  # every other endpoint, reads and commands alike, on a real case where it takes one
        path = re.sub(r"\{[^}]+\}", "X", re.sub(r"\{(case_id|invoice_id)\}", invoice, route.path_format))
        response = await client.request(sorted(route.methods)[0], path, json={})
        assert response.status_code == 403, (route.name, response.text)
        assert response.json()["error"].startswith("erp-feed is an integration: only a "), response.text
    assert web.events(invoice) == before  # nothing refused changed the case
