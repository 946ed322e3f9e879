"""Commands as Temporal Updates on the dev server: validated before history, durable on reply."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType

from app.services import CaseService
from domain.decider import case_uuid
from domain.errors import DomainError
from tests.harness import INVOICES, event_types, eventually, terminate_cases
from worker import build_worker


@pytest.fixture
async def service(dev_env, make_context, database_url, smtp):
    context = make_context(database_url, client=dev_env.client, smtp_port=smtp.port)
    svc = CaseService(context)
    svc.import_invoices(INVOICES)
    async with build_worker(dev_env.client, context):
        yield svc
        await terminate_cases(svc)


async def accepted_updates(service: CaseService, invoice_id: str) -> int:
    handle = service.ctx._client.get_workflow_handle(service._workflow_id(invoice_id))
    history = await handle.fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)


async def test_open_twice_returns_the_same_case(service):
    first = await service.open_case("INV-3001")
    again = await service.open_case("INV-3001")
    assert first["opened"] and not again["opened"]
    assert first["case_id"] == again["case_id"] == str(case_uuid("INV-3001"))
    assert event_types(service, "INV-3001") == ["CaseOpened"]


async def test_four_eyes_and_authority_limits(service):
    collector, supervisor, manager = (service.ctx.actor(n) for n in ("demo-collector", "demo-supervisor", "demo-manager"))
    await service.open_case("INV-3001")  # 50,000.00 USD
    reply = await service.request_write_off("INV-3001", "20000.00", "insolvency", supervisor)
    assert [e["type"] for e in reply["events"]] == ["WriteOffRequested"] and reply["status"] == "awaiting_approval"
    approval_id = service.approvals()[0]["approval_id"]
    before = (event_types(service, "INV-3001"), await accepted_updates(service, "INV-3001"))

    with pytest.raises(DomainError, match="only a supervisor or finance_manager"):
        await service.decide_approval(approval_id, True, collector, "ok")
    with pytest.raises(DomainError, match="four eyes"):
        await service.decide_approval(approval_id, True, supervisor, "ok")
    other_supervisor = supervisor.model_copy(update={"name": "another-supervisor"})
    with pytest.raises(DomainError, match=r"exceeds another-supervisor's write-off authority \(10000 USD\)"):
        await service.decide_approval(approval_id, True, other_supervisor, "ok")
    # rejected before history: no event appended, no update accepted
    assert (event_types(service, "INV-3001"), await accepted_updates(service, "INV-3001")) == before

    done = await service.decide_approval(approval_id, True, manager, "uncollectable")
    assert done["status"] == "open" and done["balance"] == "30000.00"
    assert service.approvals("approved")[0]["decided_by"] == "demo-manager"


async def test_reply_is_readable_at_once_and_payments_are_idempotent(service):
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1002")
    reply = await service.pay("INV-1002", "50.50", "bank", collector, payment_id="bank-1")
    assert reply["balance"] == "400.00"
    assert service.show("INV-1002")["balance"] == "400.00"  # projection updated in the same transaction
    again = await service.pay("INV-1002", "50.50", "bank", collector, payment_id="bank-1")
    # the same update id: Temporal answers with the first result, which the service marks as a repeat
    assert again == {**reply, "recorded": False}  # nothing happened since: the same state
    assert event_types(service, "INV-1002") == ["CaseOpened", "PaymentReceived"]
    closed = await service.pay("INV-1002", "400.00", "bank", collector, payment_id="bank-2")
    assert closed["status"] == "paid"
    with pytest.raises(DomainError, match="closed"):
        await service.pay("INV-1002", "1.00", "bank", collector, payment_id="bank-3")
    state = service.ctx.store.state(case_uuid("INV-1002"))
    assert state.original_amount + state.fees == state.payments + state.credits + state.write_offs


async def test_bad_input_changes_nothing(service, smtp):
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001")
    before = event_types(service, "INV-1001")
    for call, match in [
        (service.pay("INV-1001", "-5", "x", collector), "must be positive"),
        (service.pay("INV-1001", "1.234", "x", collector), "more decimal places"),
        (service.promise("INV-1001", "10", "2020-01-01", collector), "in the past"),
        (service.promise("INV-1001", "10", "not-a-date", collector), "not a date"),
        (service.open_dispute("INV-1001", "DROP TABLE cases;", collector), "not a reason code"),
        (service.propose_plan("INV-1001", 0, "P30D", collector), "between 1 and 12"),
        (service.propose_plan("INV-1001", 2, "30 days", collector), "ISO 8601"),
        (service.decide_escalation("INV-1001", "plan", collector), "not waiting for an escalation"),
        (service.request_write_off("INV-1001", "99999", "x", collector), "exceeds the open balance"),
        (service.decide_approval("WO-unknown", True, collector, "ok"), "unknown approval"),
        (service.open_case("NO-SUCH-INVOICE"), "unknown invoice"),
    ]:
        with pytest.raises(DomainError, match=match):
            await call
    assert event_types(service, "INV-1001") == before
    assert smtp.messages == []


async def test_dispute_then_upheld_resolves_the_case(service):
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001", "dispute", collector)
    assert service.show("INV-1001")["status"] == "disputed"
    requested = await service.resolve_dispute("INV-1001", "upheld", collector, note="damaged goods")
    assert requested["status"] == "awaiting_approval"  # 1,200 EUR is above one person's threshold
    approval = next(a for a in service.approvals("pending") if a["case_id"] == requested["case_id"])
    reply = await service.decide_approval(approval["approval_id"], True, service.ctx.actor("demo-supervisor"),
                                          "damaged goods confirmed")
    assert reply["status"] == "resolved"
    await eventually(lambda: service.list("resolved"))
