"""Internal notifications over HTTP with real tokens (POST /api/notify/run, GET /api/notify/log,
docs/CONTROLS.md): a write-off above the single-person threshold waits for a supervisor; the
supervisors' e-mail arrives in the SMTP sink once, however often the run is called, and the sent
log says so."""

from __future__ import annotations

from datetime import date

from tests.harness import eventually
from tests.web.conftest import Web


async def test_a_waiting_write_off_is_mailed_to_the_supervisors_once(web: Web):
    invoice = await web.new_case(amount="900.00")
    requested = await web.client("collector").post(f"/api/cases/{invoice}/write-off",
                                                   json={"amount": "500.00", "reason": "small_balance"})
    assert requested.status_code == 200 and requested.json()["status"] == "awaiting_approval", requested.text

    refused = await web.client("collector").post("/api/notify/run", json={})
    assert refused.status_code == 403 and "notify.run" in refused.json()["error"]
    bad = await web.client("supervisor").post("/api/notify/run", json={"as_of": "2026-13-40"})
    assert bad.status_code == 422 and "as_of" in bad.text

    first = await web.client("supervisor").post("/api/notify/run", json={})
    assert first.status_code == 200, first.text
    mine = [o for o in first.json()["outcomes"] if o["kind"] == "waiting" and o["status"] == "sent"
            and o["recipient"] == "demo-supervisor" and invoice in o["subject"]]
    assert len(mine) == 1, first.json()

    def supervisor_mail():
        return [m for m in web.sink.to("supervisor@example.com") if invoice in m.subject]

    mail = await eventually(lambda: supervisor_mail() or None, timeout=10)
    assert len(mail) == 1 and "500.00 USD" in mail[0].body() and "demo-collector" in mail[0].body()

    again = await web.client("finance_manager").post("/api/notify/run", json={})
    assert [o["status"] for o in again.json()["outcomes"] if o["item"] == mine[0]["item"]
            and o["recipient"] == "demo-supervisor"] == ["already_sent"]
    assert len(supervisor_mail()) == 1

    log = await web.client("finance_manager").get("/api/notify/log", params={"from": str(date.today())})
    assert log.status_code == 200, log.text
    rows = [r for r in log.json() if r["item"] == mine[0]["item"] and r["recipient"] == "demo-supervisor"]
    assert [(r["status"], r["message_id"]) for r in rows] == [("sent", mine[0]["message_id"])]
    assert (await web.client("collector").get("/api/notify/log")).status_code == 403
    bad_day = await web.client("supervisor").get("/api/notify/log", params={"to": "0"})
    assert bad_day.status_code == 422 and "to" in bad_day.text
