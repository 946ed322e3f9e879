"""Long case timelines on the time-skipping server (months pass in milliseconds)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.services import CaseService
from tests.harness import INVOICES, advance, case_state, event_types, eventually
from worker import build_worker


@pytest.fixture
async def running(time_env, make_context, sqlite_url, smtp):
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    service = CaseService(context)
    service.import_invoices(INVOICES)
    async with build_worker(time_env.client, context):
        yield service


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

