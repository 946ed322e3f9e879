"""The JSON API on a real stack: errors, tokens, imports, reports, OpenAPI."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from app.authorization import ROLE_MATRIX
from cli.main import app as cli
from tests.conftest import ROOT
from tests.web.conftest import HEADER, Web


async def test_openapi_documents_every_endpoint_with_bearer_auth(web: Web):
    response = await web.client().get("/openapi.json")  # public: no token needed
    assert response.status_code == 200
    spec = response.json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["HTTPBearer"]["description"]}
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert sorted(op["operationId"] for _, _, op in operations) == sorted(ROLE_MATRIX)  # one per action
    assert all(op.get("security") == [{"HTTPBearer": []}] for _, _, op in operations)
    assert spec["paths"]["/api/invoices/import"]["post"]["requestBody"]["content"]["text/csv"]
    assert not any(p.startswith("/console") for p in spec["paths"])


async def test_errors_are_json_with_the_field_and_the_right_status(web: Web):
    collector, manager = web.client("collector"), web.client("finance_manager")
    invoice = await web.new_case()
    before = web.events(invoice)
    C, M = collector, manager
    cases = [
        # malformed requests: 422, naming the field
        (C, "POST", f"/api/invoices/{invoice}/payments", {"json": {"amount": 12.5}}, 422, "amount"),
        (C, "POST", f"/api/cases/{invoice}/promise", {"json": {"amount": "5.00"}}, 422, "date"),
        (C, "POST", f"/api/cases/{invoice}/dispute", {"json": {"reason": "pricing", "colour": "red"}}, 422, "colour"),
        (C, "POST", f"/api/invoices/{invoice}/payments",
         {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, None),
        # values the business rules refuse: 400, naming the field
        (C, "POST", f"/api/invoices/{invoice}/payments", {"json": {"amount": "-5"}}, 400, "amount"),
        (C, "POST", f"/api/invoices/{invoice}/payments", {"json": {"amount": "1.234"}}, 400, "amount"),
        (C, "POST", f"/api/cases/{invoice}/promise", {"json": {"amount": "5.00", "date": "2020-01-01"}}, 400, "date"),
        # the schema refuses (a reason code's pattern, a status enum): 422, naming the field
        (C, "POST", f"/api/cases/{invoice}/dispute", {"json": {"reason": "DROP TABLE cases;"}}, 422, "reason"),
        (C, "POST", f"/api/cases/{invoice}/plan", {"json": {"instalments": 2, "every": "30 days"}}, 400, "every"),
        (C, "POST", f"/api/cases/{invoice}/assign", {"json": {"assignee": "nobody"}}, 400, "assignee"),
        (C, "GET", "/api/cases?status=lost", {}, 422, "status"),
        # unknown ids: 404
        (C, "GET", "/api/cases/NO-SUCH-CASE", {}, 404, "case_id"),
        (C, "POST", "/api/cases/NO-SUCH-CASE/dispute", {"json": {"reason": "pricing"}}, 404, "case_id"),
        (C, "POST", "/api/cases", {"json": {"invoice_id": "NO-SUCH-INVOICE"}}, 404, "invoice_id"),
        (M, "POST", "/api/approvals/WO-unknown/approve", {"json": {"reason": "ok"}}, 404, "approval_id"),
        # the state says no: 409
        (C, "POST", f"/api/cases/{invoice}/plan/accept", {}, 409, "case"),
        (M, "POST", f"/api/cases/{invoice}/escalation", {"json": {"decision": "legal"}}, 409, "case"),
    ]
    for client, method, path, options, status, field in cases:
        response = await client.request(method, path, **options)
        body = response.json()
        assert (response.status_code, body["field"]) == (status, field), (path, response.text)
        assert body["status"] == status and body["error"]
    assert web.events(invoice) == before  # nothing was changed by any of them
    assert (await collector.post(f"/api/invoices/{invoice}/payments", json={"amount": 12.5})).json()["error"] == \
        "amount: Input should be a valid string"


async def test_closed_cases_and_decided_approvals_are_conflicts(web: Web):
    collector, supervisor, manager = (web.client(r) for r in ("collector", "supervisor", "finance_manager"))
    invoice = await web.new_case(amount="300.00")
    requested = await supervisor.post(f"/api/cases/{invoice}/write-off", json={"amount": "300.00", "reason": "insolvency"})
    assert requested.status_code == 200 and requested.json()["status"] == "awaiting_approval"
    approval = (await supervisor.get("/api/approvals")).json()
    approval_id = next(a["approval_id"] for a in approval if a["invoice_id"] == invoice)

    own = await supervisor.post(f"/api/approvals/{approval_id}/approve", json={"reason": "ok"})  # four eyes: the domain refuses
    assert own.status_code == 403 and own.json()["error"] == "as: four eyes: the requester cannot decide their own request"
    no_reason = await manager.post(f"/api/approvals/{approval_id}/reject", json={"reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert (await collector.get(f"/api/cases/{invoice}")).json()["status"] == "awaiting_approval"

    approved = await manager.post(f"/api/approvals/{approval_id}/approve", json={"reason": "uncollectable"})
    assert approved.status_code == 200 and approved.json()["status"] == "written_off"
    again = await manager.post(f"/api/approvals/{approval_id}/approve", json={"reason": "again"})
    assert again.status_code == 409 and "already approved" in again.json()["error"]
    closed = await collector.post(f"/api/cases/{invoice}/promise", json={"amount": "1.00", "date": "2026-12-31"})
    assert closed.status_code == 409 and closed.json()["error"] == "case: case is closed (written_off); it accepts no further commands"
    # money received on it is a recovery of bad debt (WriteOffRecovered), not a conflict
    recovered = await collector.post(f"/api/invoices/{invoice}/payments", json={"amount": "1.00"})
    assert recovered.status_code == 200, recovered.text
    assert (await collector.get(f"/api/cases/{invoice}")).json()["status"] == "written_off"
    decided = (await collector.get("/api/approvals?status=approved")).json()
    assert any(a["approval_id"] == approval_id and a["decided_by"] == "demo-manager" for a in decided)


async def test_supervisor_limit_is_enforced_by_the_domain(web: Web):
    invoice = await web.new_case(amount="20000.00")
    await web.service.request_write_off(invoice, "20000.00", "insolvency", web.actor("collector"))
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice)
    response = await web.client("supervisor").post(f"/api/approvals/{approval_id}/approve", json={"reason": "ok"})
    assert response.status_code == 403
    assert response.json()["error"] == "as: 20000.00 USD exceeds demo-supervisor's write-off authority (10000 USD)"
    assert web.service.approval(approval_id)["status"] == "pending"


async def test_open_is_201_then_200_and_commands_reply_with_the_new_state(web: Web):
    collector = web.client("collector")
    invoice = web.new_invoice(amount="450.50", currency="EUR")
    first = await collector.post("/api/cases", json={"invoice_id": invoice})
    again = await collector.post("/api/cases", json={"invoice_id": invoice})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["case_id"] == again.json()["case_id"] and again.json()["opened"] is False
    paid = await collector.post(f"/api/invoices/{invoice}/payments",
                                json={"amount": "50.50", "reference": "bank", "payment_id": "p-1"})
    assert paid.json()["balance"] == "400.00" and paid.json()["currency"] == "EUR"
    repeat = await collector.post(f"/api/invoices/{invoice}/payments",
                                  json={"amount": "50.50", "reference": "bank", "payment_id": "p-1"})
    assert repeat.json()["balance"] == "400.00"  # the same payment id is applied once
    shown = (await collector.get(f"/api/cases/{invoice}")).json()
    assert [e["type"] for e in shown["events"]] == ["CaseOpened", "PaymentReceived"]
    assert shown["events"][1]["actor"] == "demo-collector"  # the actor comes from the token


async def test_import_is_all_or_nothing_with_a_line_number(web: Web):
    manager = web.client("finance_manager")
    good = "IMPORT-OK-1,C-9,Nine Ltd,ap@nine.test,US,en,USD,10.00,2026-01-01,2026-01-31,B"
    bad = "IMPORT-BAD-2,C-9,Nine Ltd,ap@nine.test,US,en,USD,ten,2026-01-01,2026-01-31,B"
    response = await manager.post("/api/invoices/import", content=f"{HEADER}\n{good}\n{bad}\n".encode(),
                                  headers={"content-type": "text/csv"})
    assert response.status_code == 400 and response.json()["error"].startswith("line 3: amount:")
    with pytest.raises(Exception, match="unknown invoice"):
        web.context.ledger.invoice("IMPORT-OK-1")
    latin1 = await manager.post("/api/invoices/import", content=f"{HEADER}\n{good}\n".replace("Nine", "Nïne").encode("latin-1"),
                                headers={"content-type": "text/csv"})
    assert latin1.status_code == 400 and "not UTF-8" in latin1.json()["error"]
    empty = await manager.post("/api/invoices/import", content=b"", headers={"content-type": "text/csv"})
    assert empty.status_code == 400 and empty.json()["field"] == "file"
    ok = await manager.post("/api/invoices/import", content=f"{HEADER}\n{good}\n".encode(),
                            headers={"content-type": "text/csv"})
    assert ok.status_code == 200 and ok.json()["invoices_added"] == 1
    assert web.context.ledger.invoice("IMPORT-OK-1").amount.amount == 10


async def test_dashboard_and_worklist_over_http(web: Web):
    collector = web.client("collector")
    board = await collector.get("/api/reports/dashboard?currency=usd")
    assert board.status_code == 200
    data = board.json()
    assert data["currency"] == "USD" and len(data["collected_per_week"]) == 12 and len(data["dso"]) == 12
    assert sum(data["cases_by_status"].values()) == len([c for c in web.service.list(limit=100000)
                                                         if c["currency"] == "USD"])
    bad = await collector.get("/api/reports/dashboard?currency=XYZ")
    assert bad.status_code == 400 and bad.json()["field"] == "currency"
    invoice = await web.new_case(grade="C", amount="999999.00")
    listed = (await collector.get("/api/worklist?risk_grade=C")).json()
    assert listed["items"][0]["invoice_id"] == invoice  # the biggest risk comes first
    assert (await collector.get("/api/worklist?risk_grade=Z")).json()["field"] == "risk_grade"


def test_users_token_issues_a_token_once_and_keeps_only_its_hash(tmp_path, monkeypatch):
    users = tmp_path / "users.toml"
    committed = ROOT / "config" / "users.toml"
    original = committed.read_text()
    users.write_text(original)
    monkeypatch.setenv("COLLECTIONS_USERS", str(users))
    runner = CliRunner()
    result = runner.invoke(cli, ["users", "token", "demo-manager", "--json"])
    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout)
    assert issued["user"] == "demo-manager" and issued["token"].startswith("ce_") and len(issued["token"]) > 40
    text = users.read_text()
    assert issued["token"] not in text  # only the hash is stored
    assert text.startswith(original.splitlines()[0])  # comments are kept
    stored = {u["name"]: u.get("token_hash") for u in tomllib.loads(text)["users"]}
    assert stored["demo-manager"].startswith("hmac-sha256$") and stored["demo-collector"] is None

    unknown = runner.invoke(cli, ["users", "token", "nobody"])
    assert unknown.exit_code == 2 and "unknown user 'nobody'" in unknown.stderr
    assert users.read_text() == text  # a refused command changes nothing
    listed = json.loads(runner.invoke(cli, ["users", "list", "--json"]).stdout)
    assert {u["name"]: u["has_token"] for u in listed} == {"demo-collector": False, "demo-supervisor": False,
                                                            "demo-manager": True}
    assert committed.read_text() == original


async def test_a_new_token_replaces_the_old_one_at_once(web: Web):
    from app.tokens import issue_token

    old = web.client("supervisor")
    assert (await old.get("/api/me")).status_code == 200
    fresh = issue_token(web.users_path, "demo-supervisor")["token"]
    try:
        assert (await old.get("/api/me")).status_code == 401
        assert (await web.client(token=fresh).get("/api/me")).json()["name"] == "demo-supervisor"
    finally:
        web.tokens["supervisor"] = fresh
