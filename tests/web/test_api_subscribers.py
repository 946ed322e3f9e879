"""Subscribers over HTTP with a token (docs/EVENTS.md, "Pushed to you"): add one, push to a real
webhook on loopback, the errors with their fields and statuses, and nothing changed by a refusal."""

from __future__ import annotations

from tests.e2e.test_subscribers_cli import receiver  # noqa: F401  (the webhook fixture)
from tests.web.conftest import Web
from tests.web.test_role_matrix import _last_position


async def test_a_supervisor_adds_a_subscriber_and_its_new_events_are_pushed(web: Web, receiver):  # noqa: F811
    supervisor = web.client("supervisor")
    start = _last_position(web)
    added = await supervisor.post("/api/subscribers", json={
        "name": "api-erp", "url": f"http://127.0.0.1:{receiver.port}/erp", "types": ["CaseOpened"],
        "from_position": start, "reason": "ERP over HTTP"})
    assert added.status_code == 201, added.text
    assert (added.json()["position"], added.json()["types"]) == (start, ["CaseOpened"])
    invoice = await web.new_case()
    pushed = await supervisor.post("/api/subscribers/dispatch")
    assert pushed.status_code == 200
    mine = [a for a in pushed.json() if a["subscriber"] == "api-erp"]
    assert mine[0]["outcome"] == "delivered" and mine[-1]["outcome"] == "caught_up"
    events = receiver.unique()
    assert [e["data"]["invoice_id"] for e in events] == [invoice]
    assert all(e["position"] > start and e["type"] == "CaseOpened" for e in events)
    assert receiver.posts[0]["key"] == f"api-erp:{events[0]['position']}-{events[0]['position']}"
    listed = {s["name"]: s for s in (await supervisor.get("/api/subscribers")).json()}
    assert listed["api-erp"]["delivered"] == 1 and listed["api-erp"]["position"] >= events[0]["position"]

    paused = await supervisor.post("/api/subscribers/api-erp/pause", json={"reason": "maintenance"})
    assert paused.json()["paused"] and paused.json()["changed"]
    removed = await supervisor.post("/api/subscribers/api-erp/remove", json={})
    assert removed.status_code == 200 and removed.json()["removed"]
    trail = web.context.store.read_page(start, 1000, ["SubscriberAdded", "SubscriberPaused", "SubscriberRemoved"])[0]
    assert [(type(r.event).__name__, r.event.actor, r.event.reason) for r in trail if r.event.name == "api-erp"] == [
        ("SubscriberAdded", "demo-supervisor", "ERP over HTTP"), ("SubscriberPaused", "demo-supervisor", "maintenance"),
        ("SubscriberRemoved", "demo-supervisor", "subscriber removed")]


async def test_bad_requests_name_the_field_and_change_nothing(web: Web):
    manager = web.client("finance_manager")
    ok = {"name": "api-bad", "url": "http://127.0.0.1:9/x", "types": ["CaseOpened"]}
    await manager.post("/api/subscribers", json={**ok, "name": "api-taken"})
    # the subscribers' own events (the shared stack's cases append theirs meanwhile)
    subscriber_types = ("SubscriberAdded", "SubscriberPaused", "SubscriberResumed", "SubscriberRemoved")
    count = len(list(web.context.store.read_types(subscriber_types)))
    cases = [
        ("POST", "/api/subscribers", {**ok, "name": "Bad Name"}, 400, "name"),
        ("POST", "/api/subscribers", {**ok, "url": "ftp://x/"}, 400, "url"),
        ("POST", "/api/subscribers", {**ok, "types": ["Nope"]}, 400, "types"),
        ("POST", "/api/subscribers", {**ok, "types": []}, 422, "types"),
        ("POST", "/api/subscribers", {**ok, "from_position": -1}, 422, "from_position"),
        ("POST", "/api/subscribers", {**ok, "name": "api-taken"}, 409, "subscriber"),
        ("POST", "/api/subscribers/nobody/pause", {}, 404, "subscriber"),
        ("POST", "/api/subscribers/nobody/remove", {}, 404, "subscriber"),
    ]
    for method, path, body, status, field in cases:
        response = await manager.request(method, path, json=body)
        assert (response.status_code, response.json()["field"]) == (status, field), (path, body, response.text)
    assert len(list(web.context.store.read_types(subscriber_types))) == count
    names = [s["name"] for s in (await manager.get("/api/subscribers")).json()]
    assert "api-bad" not in names and names.count("api-taken") == 1
