"""The walk-arounds of the approval controls (issue "Controls an auditor would sign"), tried
over the HTTP API with each person's own token: each is now refused (403, nothing changed) or
routed to an approval that a second person with the authority must decide
(docs/CONTROLS.md, "Money rules")."""

from __future__ import annotations

from tests.web.conftest import Web


async def pending(web: Web, client, invoice: str, kind: str) -> dict:
    rows = (await client.get("/api/approvals")).json()
    found = [a for a in rows if a["invoice_id"] == invoice and a["kind"] == kind]
    assert len(found) == 1, rows
    return found[0]


async def test_a_collector_cannot_credit_a_disputed_invoice_alone(web: Web):
    collector, supervisor = web.client("collector"), web.client("supervisor")
    invoice = await web.new_case(amount="1000.00")
    assert (await collector.post(f"/api/cases/{invoice}/dispute", json={"reason": "pricing"})).status_code == 200
    upheld = await collector.post(f"/api/cases/{invoice}/dispute/resolve",
                                  json={"outcome": "upheld", "credit": "1000.00", "note": "price agreed"})
    assert upheld.status_code == 200 and upheld.json()["status"] == "awaiting_approval", upheld.text
    case = (await collector.get(f"/api/cases/{invoice}")).json()
    assert case["balance"] == "1000.00" and case["status"] == "awaiting_approval", case
    assert "DisputeResolved" not in web.events(invoice) and web.events(invoice)[-1] == "ReductionRequested"

    credit = await pending(web, collector, invoice, "credit")
    assert credit["requested_by"] == "demo-collector" and credit["amount"] == "1000.00", credit
    before = web.events(invoice)
    own = await collector.post(f"/api/approvals/{credit['approval_id']}/approve", json={"reason": "mine"})
    assert own.status_code == 403 and "approvals.approve" in own.json()["error"], own.text
    assert web.events(invoice) == before

    approved = await supervisor.post(f"/api/approvals/{credit['approval_id']}/approve",
                                     json={"reason": "price list error confirmed"})
    assert approved.status_code == 200 and approved.json()["balance"] == "0.00", approved.text
    events = (await supervisor.get(f"/api/cases/{invoice}")).json()["events"]
    decided = next(e for e in events if e["type"] == "ReductionApproved")
    assert decided["actor"] == "demo-supervisor" and decided["data"]["reason"] == "price list error confirmed", decided
    assert events[-1]["type"] in ("DisputeResolved", "CaseClosed") and any(
        e["type"] == "DisputeResolved" and e["data"]["outcome"] == "upheld" for e in events)


async def test_credits_split_into_pieces_add_up_to_the_threshold(web: Web):
    """60.00 USD credited alone, then 60.00 more: 120.00 alone in all is above the policy's 100.00,
    so the second piece waits for a second person as one credit of 120.00 would."""
    collector = web.client("collector")
    invoice = await web.new_case(amount="1000.00")
    for reason in ("pricing", "quality"):
        assert (await collector.post(f"/api/cases/{invoice}/dispute", json={"reason": reason})).status_code == 200
        done = await collector.post(f"/api/cases/{invoice}/dispute/resolve",
                                    json={"outcome": "upheld", "credit": "60.00", "note": reason})
        assert done.status_code == 200, done.text
    events = web.events(invoice)
    assert events[-1] == "ReductionRequested" and events.count("DisputeResolved") == 1, events
    credit = await pending(web, collector, invoice, "credit")
    assert credit["amount"] == "60.00" and credit["requested_by"] == "demo-collector", credit
    assert credit["reduced_alone"] == "60.00", credit  # why it waits: the first piece counted
    assert (await collector.get(f"/api/cases/{invoice}")).json()["balance"] == "940.00"


async def test_a_supervisor_cannot_cancel_a_large_case_alone(web: Web):
    supervisor, manager = web.client("supervisor"), web.client("finance_manager")
    invoice = await web.new_case(amount="90000.00")
    asked = await supervisor.post(f"/api/cases/{invoice}/cancel", json={"reason": "invoice_voided"})
    assert asked.status_code == 200 and asked.json()["status"] == "awaiting_approval", asked.text
    assert asked.json()["balance"] == "90000.00"
    cancellation = await pending(web, supervisor, invoice, "cancellation")

    before = web.events(invoice)
    own = await supervisor.post(f"/api/approvals/{cancellation['approval_id']}/approve", json={"reason": "voided"})
    assert own.status_code == 403 and "four eyes" in own.json()["error"], own.text
    assert web.events(invoice) == before  # refused: nothing recorded

    approved = await manager.post(f"/api/approvals/{cancellation['approval_id']}/approve",
                                  json={"reason": "credit note 7 issued in the ERP"})
    assert approved.status_code == 200 and approved.json()["status"] == "cancelled", approved.text


async def test_a_supervisor_cannot_approve_a_write_off_in_another_currency_above_her_authority(web: Web):
    """9,999.000 KWD is about 32,500 USD at the policy's pinned rate: above a 10,000 USD supervisor."""
    collector, supervisor, manager = (web.client(r) for r in ("collector", "supervisor", "finance_manager"))
    invoice = await web.new_case(amount="9999.000", currency="KWD")
    asked = await collector.post(f"/api/cases/{invoice}/write-off", json={"amount": "9999.000", "reason": "insolvency"})
    assert asked.status_code == 200 and asked.json()["status"] == "awaiting_approval", asked.text
    write_off = await pending(web, collector, invoice, "write_off")

    before = web.events(invoice)
    refused = await supervisor.post(f"/api/approvals/{write_off['approval_id']}/approve", json={"reason": "ok"})
    assert refused.status_code == 403, refused.text
    assert "KWD" in refused.json()["error"] and "authority" in refused.json()["error"], refused.text
    assert web.events(invoice) == before
    assert (await pending(web, collector, invoice, "write_off"))["status"] == "pending"

    approved = await manager.post(f"/api/approvals/{write_off['approval_id']}/approve", json={"reason": "insolvent"})
    assert approved.status_code == 200 and approved.json()["status"] == "written_off", approved.text
    events = (await manager.get(f"/api/cases/{invoice}")).json()["events"]
    decided = next(e for e in events if e["type"] == "WriteOffApproved")
    assert decided["data"]["rate"] == "3.25" and decided["data"]["authority_amount"]["amount"] == "32496.75", decided
