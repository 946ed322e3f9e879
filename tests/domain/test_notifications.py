"""Who on the team is e-mailed about what (domain/notifications.py): given the pending items,
the collectors' cases and the users, at a moment, then these notifications with these keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from domain.notifications import DigestCase, PendingItem, next_tier, plan_notifications
from domain.policy import Role, parse_policy
from domain.users import User

ROOT = Path(__file__).resolve().parents[2]
POLICY = parse_policy((ROOT / "policies" / "default.toml").read_text(encoding="utf-8"))
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
USERS = (
    User(name="cora", role=Role.collector, email="cora@example.com"),
    User(name="cy", role=Role.collector, email=None),
    User(name="sam", role=Role.supervisor, email="sam@example.com"),
    User(name="sue", role=Role.supervisor, email="sue@example.com", language="zh-CN"),
    User(name="fay", role=Role.finance_manager, email="fay@example.com"),
)


def item(kind="write_off", tier=Role.supervisor, requested_by="cora", at=T0, sla_due_at="policy", item_id="wo-1"):
    sla = POLICY.escalation.sla if kind in ("escalation", "dispute") else POLICY.approval.sla
    return PendingItem(item_id=item_id, kind=kind, case_id="c-1", invoice_id="INV-1", customer_name="Acme",
                       amount="5000.00", currency="USD", tier=tier, requested_by=requested_by, requested_at=at,
                       sla_due_at=at + sla if sla_due_at == "policy" else sla_due_at)


def plan(items=(), cases=(), now=T0 + timedelta(minutes=1), day=T0.date()):
    return plan_notifications(items, cases, USERS, POLICY, now, day)


def test_the_ladder_goes_up_and_stops_at_the_top():
    assert next_tier(Role.collector) == Role.supervisor
    assert next_tier(Role.supervisor) == Role.finance_manager
    assert next_tier(Role.finance_manager) == Role.finance_manager


def test_an_approval_waiting_for_supervisors_goes_to_each_supervisor_once_in_their_language():
    found = plan([item()]).notifications
    assert [(n.kind, n.recipient, n.language, n.role) for n in found] == [
        ("waiting", "sam", "en", Role.supervisor), ("waiting", "sue", "zh-CN", Role.supervisor)]
    assert {n.key for n in found} == {("waiting", "wo-1@supervisor", "sam", T0.date()),
                                      ("waiting", "wo-1@supervisor", "sue", T0.date())}
    # a later run (another day) has the same keys: the sent log sends them once
    later = plan([item()], now=T0 + timedelta(hours=30), day=T0.date() + timedelta(days=1)).notifications
    assert {n.key for n in later} == {n.key for n in found}


def test_the_requester_is_not_asked_to_approve_their_own_request():
    found = plan([item(requested_by="sam")]).notifications
    assert [n.recipient for n in found] == ["sue"]


def test_a_lapsed_sla_goes_to_the_next_tier_and_replaces_the_waiting_mail():
    lapse = T0 + POLICY.approval.sla
    found = plan([item()], now=lapse + timedelta(seconds=1)).notifications
    assert [(n.kind, n.recipient, n.role, n.lapsed_tier) for n in found] == [
        ("lapsed", "fay", Role.finance_manager, Role.supervisor)]
    assert found[0].key == ("lapsed", "wo-1", "fay", lapse.date())
    # one second before the SLA lapses: still only waiting, for the supervisors
    assert {n.kind for n in plan([item()], now=lapse - timedelta(seconds=1)).notifications} == {"waiting"}


def test_a_lapse_the_case_already_raised_keeps_its_key():
    """Once the case's timer raised the item to finance_manager (new deadline ahead), the same
    finance managers are told under the same key: no second e-mail."""
    lapse = T0 + POLICY.approval.sla
    before = plan([item()], now=lapse + timedelta(seconds=1)).notifications
    raised = item(tier=Role.finance_manager, sla_due_at=lapse + POLICY.approval.sla)
    after = plan([raised], now=lapse + timedelta(minutes=5)).notifications
    assert [n.key for n in after] == [n.key for n in before]


def test_an_escalation_lapses_after_the_escalation_sla():
    esc = item(kind="escalation", requested_by="system", item_id="esc-1")
    assert {n.kind for n in plan([esc], now=T0 + POLICY.escalation.sla - timedelta(seconds=1)).notifications} == {"waiting"}
    assert [(n.kind, n.recipient) for n in plan([esc], now=T0 + POLICY.escalation.sla).notifications] == [
        ("lapsed", "fay")]


def test_a_dispute_past_its_deadline_waits_for_the_supervisors_then_lapses_after_the_escalation_sla():
    """An overdue dispute escalated to a supervisor is an item like an escalation: only the tier
    that owns it is asked, and past the escalation SLA (not the approval SLA) the next tier hears."""
    sla = timedelta(hours=8)
    policy = POLICY.model_copy(update={"escalation": POLICY.escalation.model_copy(update={"sla": sla})})
    assert policy.approval.sla > sla  # else this test could not tell the two SLAs apart
    dispute = PendingItem(item_id="dsp-1", kind="dispute", case_id="c-1", invoice_id="INV-1", customer_name="Acme",
                          amount="800.00", currency="USD", tier=Role.supervisor, requested_by="system",
                          requested_at=T0, sla_due_at=T0 + sla)
    waiting = plan_notifications([dispute], (), USERS, policy, T0 + sla - timedelta(seconds=1), T0.date()).notifications
    assert [(n.kind, n.recipient, n.item) for n in waiting] == [
        ("waiting", "sam", "dsp-1@supervisor"), ("waiting", "sue", "dsp-1@supervisor")]
    assert {n.sla for n in waiting} == {sla}
    lapsed = plan_notifications([dispute], (), USERS, policy, T0 + sla, T0.date()).notifications
    assert [(n.kind, n.recipient, n.lapsed_tier) for n in lapsed] == [("lapsed", "fay", Role.supervisor)]


def test_a_lapse_at_the_top_tier_goes_to_the_top_tier():
    top = item(tier=Role.finance_manager, sla_due_at=None)
    assert [(n.kind, n.recipient) for n in plan([top], now=T0 + timedelta(days=30)).notifications] == [
        ("lapsed", "fay")]


def test_each_collector_gets_one_digest_of_their_own_open_cases_a_day():
    case = lambda n: DigestCase(case_id=f"c-{n}", invoice_id=f"INV-{n}", customer_name="Acme", status="dunning",  # noqa: E731
                                balance="10.00", currency="USD", next_action="firm", next_action_at=T0 + timedelta(days=n))
    found = plan(cases=[("cora", case(2)), ("cora", case(1)), ("sam", case(3)), ("cy", case(4))])
    assert [(n.kind, n.recipient, [c.invoice_id for c in n.cases]) for n in found.notifications] == [
        ("digest", "cora", ["INV-1", "INV-2"])]  # sam is not a collector; cy has no e-mail address
    assert found.notifications[0].key == ("digest", "cora", "cora", T0.date())
    assert any("cy" in why for why in found.skipped)
