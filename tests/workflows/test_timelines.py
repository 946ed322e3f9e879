"""Long case timelines on the time-skipping server (months pass in milliseconds)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from app.policies import migrate
from app.services import CaseService
from domain import commands as cmd
from domain.decider import case_uuid
from domain.state import CaseState
from domain.users import SYSTEM_ACTOR
from workflows.messages import WORKFLOW_NAME, CaseInput
from tests.harness import INVOICES, advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ANYTIME = Path(__file__).resolve().parents[1] / "data" / "default-anytime.toml"


@pytest.fixture
async def running(time_env, make_context, sqlite_url, smtp):
    # Exact days on the ladder: calendars off (they have tests of their own).
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    context.settings.policy_path = ANYTIME
    service = CaseService(context)
    service.import_invoices(INVOICES)
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


async def test_120_day_case_walks_the_whole_ladder(running, time_env, smtp):
    service = running
    manager = service.ctx.actor("demo-manager")
    opened = await service.open_case("INV-1001")
    assert opened["status"] == "open" and opened["opened"]
    await advance(time_env, timedelta(days=40))
    await eventually(lambda: "EscalatedToSupervisor" in event_types(service, "INV-1001"))
    mails = smtp.to("ap@acme.test")
    assert [m.subject.split(":")[0] for m in mails] == ["Friendly reminder", "Second reminder", "Final notice"]
    assert "INV-1001" in mails[0].body() and "€1,200.00" in mails[0].body()
    assert "€1,240.00" in mails[2].body()  # final notice includes the 40.00 late fee
    # nobody decides: the SLA lapses and the escalation goes to the finance manager
    await advance(time_env, timedelta(days=3))
    await eventually(lambda: "EscalationSlaLapsed" in event_types(service, "INV-1001"))
    assert case_state(service, "INV-1001").escalation.tier.value == "finance_manager"
    await service.decide_escalation("INV-1001", "continue", manager)
    await advance(time_env, timedelta(days=20))
    await eventually(lambda: event_types(service, "INV-1001").count("EscalatedToSupervisor") == 2)
    await service.decide_escalation("INV-1001", "agency", manager)
    await advance(time_env, timedelta(days=57))
    reply = await service.pay("INV-1001", "1240.00", "agency remittance", manager)
    assert reply["status"] == "paid"
    state = case_state(service, "INV-1001")
    assert state.closed_at - state.opened_at >= timedelta(days=120)
    assert state.original_amount + state.fees == state.payments + state.credits + state.write_offs
    assert len(smtp.to("ap@acme.test")) == 3  # no notice after escalation



async def test_dispute_pauses_the_ladder_and_rejection_resumes_where_it_stopped(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    opened = await service.open_case("INV-1001")
    await advance(time_env, timedelta(days=5))  # friendly reminder went out on day 3
    await eventually(lambda: len(smtp.to("ap@acme.test")) == 1)
    await service.open_dispute("INV-1001", "quality", collector)  # firm reminder was due on day 14
    await advance(time_env, timedelta(days=60))  # 60 days in dispute: no reminder
    assert len(smtp.to("ap@acme.test")) == 1
    assert "DisputeOverdue" in event_types(service, "INV-1001")  # the 30-day resolution deadline lapsed
    await service.resolve_dispute("INV-1001", "rejected", collector, note="goods were as ordered")
    resumed = case_state(service, "INV-1001")
    remaining = resumed.clock.next_at - resumed.updated_at
    assert timedelta(days=8, hours=23) < remaining <= timedelta(days=9)  # day 5 -> day 14 left 9 days
    await advance(time_env, timedelta(days=10))
    await eventually(lambda: len(smtp.to("ap@acme.test")) == 2)
    assert smtp.to("ap@acme.test")[1].subject.startswith("Second reminder")
    assert opened["case_id"] == str(resumed.case_id)


async def test_payment_plan_with_a_missed_instalment_defaults_and_re_escalates(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    supervisor = service.ctx.actor("demo-supervisor")
    await service.open_case("INV-1001")
    proposed = await service.propose_plan("INV-1001", 6, "P30D", collector)
    assert proposed["status"] == "awaiting_approval"  # six instalments is beyond a collector's authority
    approval = service.approvals()[0]
    assert approval["kind"] == "plan" and approval["amount"] == "1200.00"
    await service.decide_approval(approval["approval_id"], True, supervisor, "within policy")
    accepted = await service.accept_plan("INV-1001", collector)
    assert accepted["status"] == "on_plan"
    await advance(time_env, timedelta(days=31))
    await service.pay("INV-1001", "200.00", "instalment 1", collector)
    assert "InstalmentPaid" in event_types(service, "INV-1001")
    await advance(time_env, timedelta(days=40))  # instalment 2 due on day 60, grace 5 days: missed
    await eventually(lambda: "PaymentPlanDefaulted" in event_types(service, "INV-1001"))
    state = case_state(service, "INV-1001")
    assert state.status.value == "escalated" and state.escalation.reason == "plan_defaulted"
    assert smtp.to("ap@acme.test") == []  # on a plan, no dunning notices were sent



async def test_a_migrated_policy_survives_continue_as_new(running, time_env):
    """A long-lived case continues as new; the policy it was moved to goes with it."""
    service, context = running, running.ctx
    supervisor = context.actor("demo-supervisor")
    context.policies.pin(ANYTIME.read_text().replace('"test-default-anytime-1"', '"anytime-2"'), "anytime-2")
    opening = cmd.OpenCase(command_id=uuid4(), actor=SYSTEM_ACTOR, case_id=case_uuid("INV-3001"),
                           invoice=context.ledger.invoice("INV-3001"))
    handle = await time_env.client.start_workflow(  # as the sweep starts it, with a short history limit
        WORKFLOW_NAME, CaseInput(case_id=opening.case_id, policy=context.policy(), open=opening,
                                 continue_as_new_after=30, id_prefix=context.settings.workflow_id_prefix),
        id=service._workflow_id("INV-3001"), task_queue=context.settings.task_queue,
    )
    first_run = handle.result_run_id
    await handle.execute_update("opened")
    await migrate(service, "INV-3001", "anytime-2", "new terms", supervisor)
    for n in range(6):  # history grows past the limit
        await service.assign("INV-3001", ("demo-collector", "demo-supervisor")[n % 2], supervisor)
    for _ in range(10):  # the friendly reminder (day 3, then the mailbox's gathering window)
        if "ReminderSent" in event_types(service, "INV-3001"):
            break
        await advance(time_env, timedelta(days=1))
    await eventually(lambda: "ReminderSent" in event_types(service, "INV-3001"))
    latest = time_env.client.get_workflow_handle(service._workflow_id("INV-3001"))
    assert (await latest.describe()).run_id != first_run  # it did continue as new
    assert await latest.query("running_policy") == "anytime-2"


# -- opening: the workflow appends the opening at version 0 without loading first
# (OPEN_WITHOUT_LOAD_PATCH); when the stream already exists the store's state wins.


async def _start(client, context, opening: cmd.OpenCase, workflow_id: str):
    handle = await client.start_workflow(
        WORKFLOW_NAME, CaseInput(case_id=opening.case_id, policy=context.policy(), open=opening,
                                 id_prefix=context.settings.workflow_id_prefix),
        id=workflow_id, task_queue=context.settings.task_queue,
    )
    await handle.execute_update("opened")
    return handle


@pytest.mark.parametrize("same_opening", [True, False], ids=["same-opening-again", "another-opening"])
async def test_a_case_opened_again_over_an_existing_stream_takes_the_stores_state(running, time_env, same_opening):
    service, context = running, running.ctx
    supervisor = context.actor("demo-supervisor")
    invoice = "INV-3001"
    opening = cmd.OpenCase(command_id=uuid4(), actor=SYSTEM_ACTOR, case_id=case_uuid(invoice),
                           invoice=context.ledger.invoice(invoice))
    first = await _start(time_env.client, context, opening, service._workflow_id(invoice))
    assert (await first.query("state", result_type=CaseState)).version == 1
    await service.assign(invoice, "demo-collector", supervisor)  # the stream moves past its opening
    await first.terminate("the run is gone; the stream stays")

    again = opening if same_opening else opening.model_copy(update={"command_id": uuid4()})
    second = await _start(time_env.client, context, again, service._workflow_id(invoice) + "-again")
    state = await second.query("state", result_type=CaseState)
    assert state.version == 2 and state.assignee == "demo-collector"  # the store's state, not a fresh opening
    assert event_types(service, invoice) == ["CaseOpened", "CaseAssigned"]  # nothing appended twice
    history = await second.fetch_history()
    assert any(e.marker_recorded_event_attributes.marker_name == "core_patch" for e in history.events)
    await second.terminate("test finished")


async def test_a_new_case_opens_with_one_store_activity(running, time_env):
    """The opening is one local activity (its append), not a load and an append."""
    service, context = running, running.ctx
    invoice = "INV-3001"
    opening = cmd.OpenCase(command_id=uuid4(), actor=SYSTEM_ACTOR, case_id=case_uuid(invoice),
                           invoice=context.ledger.invoice(invoice))
    handle = await _start(time_env.client, context, opening, service._workflow_id(invoice))
    assert (await handle.query("state", result_type=CaseState)).version == 1
    history = await handle.fetch_history()
    local = [e for e in history.events if e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert len(local) == 1
    assert event_types(service, invoice) == ["CaseOpened"]
