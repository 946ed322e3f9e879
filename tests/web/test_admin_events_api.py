"""Administration actions over HTTP with a token (issue 13 item 4): each is an event with the
caller as actor and the reason given, read back from GET /api/audit/events; a missing required
reason is a 4xx with nothing changed; the chain stays intact."""

from __future__ import annotations

from tests.conftest import ROOT
from tests.web.conftest import HEADER, Web


async def trail(web: Web, actor: str) -> list[dict]:
    rows, after = [], 0
    async with web.client("supervisor") as client:
        while True:
            page = (await client.get("/api/audit/events", params={"actor": actor, "after": after})).json()
            rows += page["events"]
            if page["next_after"] is None:
                return rows
            after = page["next_after"]


def one(rows: list[dict], type_: str, subject: str) -> dict:
    found = [r for r in rows if r["type"] == type_ and r["subject"] == subject]
    assert len(found) == 1, (type_, subject, [(r["type"], r["subject"]) for r in rows[-20:]])
    return found[0]


async def test_admin_actions_over_the_api_are_events_with_actor_and_reason(web: Web):
    supervisor, manager = web.client("supervisor"), web.client("finance_manager")
    tag = web.new_invoice()  # a unique prefix for this test's ids
    invoice, customer = f"{tag}-X", f"C-{tag}-X"
    row = f"{invoice},{customer},Admin Test Ltd,ap@admin.test,GB,en,GBP,800.00,2026-01-05,2026-02-04,B"
    done = await supervisor.post("/api/invoices/import", params={"reason": "ERP catch-up"},
                                 content=f"{HEADER}\n{row}\n".encode(), headers={"Content-Type": "text/csv"})
    assert done.status_code == 200 and done.json()["invoices_added"] == 1, done.text

    refused = await supervisor.post(f"/api/customers/{customer}/limit", json={"amount": "900.00", "currency": "GBP"})
    assert 400 <= refused.status_code < 500 and "reason" in refused.text
    assert (await supervisor.get(f"/api/customers/{customer}")).json()["credit_limit"] is None
    done = await supervisor.post(f"/api/customers/{customer}/limit",
                                 json={"amount": "900.00", "currency": "GBP", "reason": "new customer"})
    assert done.status_code == 200 and done.json()["credit_limit"] == "900.00", done.text

    policy = (ROOT / "tests" / "data" / "policy-web.toml").read_text().replace(
        'version = "web-test-1"', f'version = "web-admin-{tag}"')
    refused = await manager.post("/api/policies", content=policy.encode(), headers={"Content-Type": "text/plain"})
    assert 400 <= refused.status_code < 500 and f"web-admin-{tag}" not in web.context.policies.versions()
    done = await manager.post("/api/policies", params={"reason": "stricter ladder"}, content=policy.encode(),
                              headers={"Content-Type": "text/plain"})
    assert done.status_code == 200, done.text

    terms = {"policy_id": f"POL-{tag}", "insurer_id": "ATR", "insurer_name": "Atradius",
             "insurer_email": "claims@insurer.test", "notify_within": "P60D", "max_extension": "P60D",
             "claim_waiting": "P90D", "indemnity_percent": "90", "reason": "framework contract"}
    assert (await manager.post("/api/insurance/policies", json=terms)).status_code == 200
    done = await manager.post(f"/api/invoices/{invoice}/insurance", json={"policy_id": f"POL-{tag}"})
    assert done.status_code == 200, done.text

    # a payment on the invoice (no case): recorded on the ledger, then reversed with a reason
    async with web.client("collector") as collector:
        paid = await collector.post(f"/api/invoices/{invoice}/payments",
                                    json={"amount": "300.00", "payment_id": f"LP-{tag}", "reference": "BACS"})
        assert paid.status_code == 200 and paid.json()["case_id"] is None, paid.text
    done = await supervisor.post(f"/api/payments/LP-{tag}/reverse", json={"reason": "recalled by the bank"})
    assert done.status_code == 200, done.text

    rows = await trail(web, "demo-supervisor")
    imported = one(rows, "InvoicesImported", "invoices from upload")
    assert imported["reason"] == "ERP catch-up"
    limit = one(rows, "CreditLimitSet", customer)
    assert (limit["reason"], limit["amount"], limit["currency"]) == ("new customer", "900.00", "GBP")
    reversal = one(rows, "LedgerPaymentReversed", f"payment LP-{tag} (invoice {invoice})")
    assert (reversal["reason"], reversal["amount"], reversal["currency"]) == ("recalled by the bank", "300.00", "GBP")
    by_manager = await trail(web, "demo-manager")
    assert one(by_manager, "PolicyPinned", f"policy web-admin-{tag}")["reason"] == "stricter ladder"
    assert one(by_manager, "InsurerPolicyAdded", f"insurer policy POL-{tag}")["reason"] == "framework contract"
    assert one(by_manager, "InvoiceInsured", f"invoice {invoice}")["reason"] == "invoice insured"
    payment = one(await trail(web, "demo-collector"), "LedgerPaymentRecorded", f"payment LP-{tag} (invoice {invoice})")
    assert payment["amount"] == "300.00" and "BACS" in payment["reason"]

    verified = (await supervisor.get("/api/audit/verify")).json()
    assert verified["intact"], verified["problems"][:3]
