"""No silent stall on the time-skipping server: a plan offer lapses and dunning resumes, an overdue
dispute goes to a supervisor and upward, a pause holds notices until its end date."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.liveness import stuck_cases
from app.services import CaseService
from domain.policy import RiskGrade
from tests.harness import INVOICES, advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ANYTIME = Path(__file__).resolve().parents[1] / "data" / "default-anytime.toml"
MAIL = "ap@acme.test"


async def advance_until(env, check, days: int) -> None:
    """A day at a time (a workflow sets its next timer only after its task completes), at most ``days``."""
    for _ in range(days):
        await advance(env, timedelta(days=1))
        try:
            await eventually(check, timeout=2)
            return
        except AssertionError:
            continue
    await eventually(check, timeout=5)


@pytest.fixture
async def running(time_env, make_context, sqlite_url, smtp):
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    context.settings.policy_path = ANYTIME  # offers valid P14D (the default), dispute SLA P30D, escalation SLA P2D
    service = CaseService(context)
    service.import_invoices(INVOICES)
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


async def test_an_offer_nobody_accepts_lapses_and_dunning_resumes_where_it_stopped(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001")
    await advance(time_env, timedelta(days=5))  # friendly reminder on day 3
    await eventually(lambda: len(smtp.to(MAIL)) == 1)
    proposed = await service.propose_plan("INV-1001", 2, "P30D", collector)  # the firm one was due on day 14
    assert proposed["status"] == "open" and case_state(service, "INV-1001").plan.status == "proposed"
    await advance(time_env, timedelta(days=13))  # nobody accepts; within the offer: no notice
    assert "PaymentPlanExpired" not in event_types(service, "INV-1001") and len(smtp.to(MAIL)) == 1
    # day 19: the offer (P14D from day 5) lapses
    await advance_until(time_env, lambda: "PaymentPlanExpired" in event_types(service, "INV-1001"), days=3)
    state = case_state(service, "INV-1001")
    assert state.plan is None and state.clock.next_at is not None
    remaining = state.clock.next_at - state.updated_at
    assert timedelta(days=8, hours=23) < remaining <= timedelta(days=9)  # day 5 -> day 14 left 9 days
    assert stuck_cases(service) == []
    await advance_until(time_env, lambda: len(smtp.to(MAIL)) == 2, days=12)
    assert smtp.to(MAIL)[1].subject.startswith("Second reminder")


async def test_an_overdue_dispute_goes_to_a_supervisor_and_then_upward(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001")
    await service.open_dispute("INV-1001", "quality", collector)
    await advance(time_env, timedelta(days=31))  # the 30-day resolution deadline lapsed
    await eventually(lambda: "DisputeEscalated" in event_types(service, "INV-1001"))
    dispute = case_state(service, "INV-1001").dispute
    assert dispute.overdue and dispute.escalated_to.value == "supervisor"
    assert dispute.escalation_due_at - dispute.resolve_by <= timedelta(days=2, hours=1)
    shown = service.show("INV-1001")
    assert shown["next_action"] == "supervisor dispute decision due"
    assert stuck_cases(service) == []
    # the supervisor's SLA (P2D) lapses: to the finance manager
    await advance_until(time_env, lambda: event_types(service, "INV-1001").count("DisputeEscalated") == 2, days=4)
    assert case_state(service, "INV-1001").dispute.escalated_to.value == "finance_manager"
    assert smtp.to(MAIL) == []  # in dispute: no demand
    await service.resolve_dispute("INV-1001", "rejected", collector, note="goods were as ordered")
    assert case_state(service, "INV-1001").dispute is None


async def test_a_pause_holds_notices_until_its_end_date_then_dunning_resumes(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001")
    opened = case_state(service, "INV-1001")
    until = opened.opened_at + timedelta(days=20)
    paused = await service.pause("INV-1001", until.isoformat(), "customer_holiday", collector)
    assert [e["type"] for e in paused["events"]] == ["DunningPaused"]
    assert service.show("INV-1001")["pause"]["until"].startswith(until.isoformat()[:19])
    row = next(r for r in service.list() if r["invoice_id"] == "INV-1001")
    assert row["next_action"] == "paused (customer_holiday): dunning resumes"
    assert row["next_action_at"].startswith(until.isoformat()[:19])
    await advance(time_env, timedelta(days=19))  # the friendly reminder was due on day 3
    assert smtp.to(MAIL) == []
    await advance_until(time_env, lambda: "DunningResumed" in event_types(service, "INV-1001"), days=3)
    # the 3 days that were left, then the mailbox's gathering window
    await advance_until(time_env, lambda: len(smtp.to(MAIL)) == 1, days=6)
    assert smtp.to(MAIL)[0].subject.startswith("Friendly reminder")
    sent = case_state(service, "INV-1001")
    assert sent.pause is None and sent.level == 1


async def test_a_customer_pause_pauses_its_open_cases_and_the_cases_opened_while_it_lasts(running, time_env, smtp):
    from app.liveness import pause_customer, resume_customer

    service = running
    collector = service.ctx.actor("demo-collector")
    await service.open_case("INV-1001")  # customer C-100
    opened_at = case_state(service, "INV-1001").opened_at  # the skipped clock, ahead of the wall clock
    until = opened_at + timedelta(days=20)
    result = await pause_customer(service, "C-100", until.isoformat(), "customer_holiday", collector, now=opened_at)
    assert [(c["invoice_id"], c["paused"]) for c in result["cases"]] == [("INV-1001", True)]
    await advance(time_env, timedelta(days=5))
    await service.open_case("INV-1002")  # same customer, opened during the pause
    second = case_state(service, "INV-1002")
    assert second.pause is not None and second.pause.scope == "customer" and second.pause.until == until
    assert case_state(service, "INV-1001").pause.scope == "customer"
    await advance(time_env, timedelta(days=10))
    assert smtp.to(MAIL) == []
    resumed = await resume_customer(service, "C-100", "customer back early", collector,
                                    now=case_state(service, "INV-1001").updated_at)
    assert sorted(c["invoice_id"] for c in resumed["cases"]) == ["INV-1001", "INV-1002"]
    assert case_state(service, "INV-1001").pause is None and case_state(service, "INV-1002").pause is None
    await advance_until(time_env, lambda: len(smtp.to(MAIL)) >= 1, days=6)  # dunning resumed for both


async def test_a_step_its_own_policy_refuses_waits_and_the_other_cases_go_on(running, time_env, smtp):
    """A pinned policy whose CNY fee that currency cannot hold (300.005): the CNY case's notice is
    refused by its own rules each time it comes due. It was retried at once, forever, inside one
    workflow task, holding the worker's thread; now it waits between tries (one minute, doubling)."""
    service = running
    good = service.ctx.policy()
    steps = list(good.ladders[RiskGrade.C])
    steps[0] = steps[0].model_copy(update={"fee": {"CNY": Decimal("300.005")}})
    typo = good.model_copy(update={"version": f"{good.version}-typo", "ladders": {**good.ladders, RiskGrade.C: tuple(steps)}})
    service.ctx.policy = lambda: typo  # as a version pinned before policies were checked for it
    await service.open_case("INV-2001")  # grade C, CNY: the first notice (with its fee) on day 1
    del service.ctx.policy
    await service.open_case("INV-1001")  # grade B, EUR: the friendly reminder on day 3
    await advance(time_env, timedelta(days=4))
    await eventually(lambda: len(smtp.to(MAIL)) == 1)  # the other case goes on
    client = await service.ctx.client()
    history = await client.get_workflow_handle(service._workflow_id("INV-2001")).fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    failed = [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert len(timers) >= 3 and not failed, (len(timers), len(failed))  # day 1, then waits between tries
    assert event_types(service, "INV-2001") == ["CaseOpened"] and smtp.to("finance@shtrade.test") == []
