"""No silent stall, as a property: random command sequences (those of tests/domain/test_properties.py,
plus pauses, resumes and plan withdrawals) through the pure decider; after every command an open case
has a next timer (``next_action``) or a pending human item with an owner (``human_items``)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from domain import commands as cmd
from domain.users import SYSTEM_ACTOR
from domain.agenda import human_items, next_action, stuck_reason
from tests.domain.test_properties import PEOPLE, REASONS, CaseMachine, people

PAUSES = st.sampled_from([timedelta(hours=1), timedelta(days=3), timedelta(days=29), timedelta(days=45),
                          timedelta(days=95), timedelta(days=-1)])


class LivenessMachine(CaseMachine):
    @rule(actor=people, length=PAUSES, reason=st.sampled_from(["customer_holiday", "insolvency_talks", "Bad!"]))
    def pause(self, actor, length, reason):
        self.command(cmd.PauseDunning, actor, until=self.now + length, reason=reason)

    @rule(collector=st.sampled_from(["cora", "cole"]), length=st.sampled_from([timedelta(days=45), timedelta(days=60)]))
    def long_pause_by_a_collector(self, collector, length):
        """A collector's pause beyond their maximum, which waits for a supervisor (random people and
        lengths rarely line it up)."""
        self.command(cmd.PauseDunning, PEOPLE[collector], until=self.now + length, reason="insolvency_talks")

    @rule(actor=people, reason=st.sampled_from(["back early", ""]))
    def resume(self, actor, reason):
        self.command(cmd.ResumeDunning, actor, reason=reason)

    @rule(actor=people, reason=REASONS)
    def withdraw_plan(self, actor, reason):
        self.command(cmd.WithdrawPlan, actor, reason=reason)

    @rule(proposer=people, instalments=st.integers(min_value=1, max_value=6), withdraw=st.booleans())
    def offer_left_open(self, proposer, instalments, withdraw):
        """A plan offered and then withdrawn, or left until it lapses (random steps rarely line it up)."""
        if self.command(cmd.ProposePlan, proposer, instalments=instalments, every=timedelta(days=7)) is None:
            return
        if withdraw:
            self.command(cmd.WithdrawPlan, proposer, reason="customer declined")
            return
        self.now = max(self.now, self.state.plan.expires_at)
        self.command(cmd.Tick, SYSTEM_ACTOR)

    @invariant()
    def no_silent_stall(self):
        s = self.state
        if s is None or s.closed:
            return
        action = next_action(s)
        items = human_items(s)
        assert action is not None or items, f"open case waits on nobody: {stuck_reason(s)}"
        assert all(i.owner for i in items)
        if action is None:
            # only owned items: each carries an SLA, or it has already gone to the top of its ladder
            assert all(i.due_at is not None or i.owner in ("finance_manager", "agency", "legal") for i in items), items


LivenessMachine.TestCase.settings = settings(
    max_examples=400, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestNoSilentStall = LivenessMachine.TestCase


def test_the_machine_reaches_pauses_expiries_and_escalated_disputes():
    """Guard against a property that holds only because the interesting states are never reached."""
    from hypothesis.stateful import run_state_machine_as_test

    seen: set[str] = set()

    class Counting(LivenessMachine):
        def teardown(self):
            seen.update(type(e).__name__ for e in self.events)

    run_state_machine_as_test(Counting, settings=settings(max_examples=300, stateful_step_count=40, deadline=None,
                                                        derandomize=True, database=None))
    must = {"DunningPaused", "DunningResumed", "PauseRequested", "PaymentPlanExpired", "PaymentPlanWithdrawn",
            "DisputeEscalated"}
    assert must <= seen, must - seen
