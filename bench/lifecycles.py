"""Synthetic case histories made by the real decider (no Temporal): for the event-store and
read-side benchmarks.

``histories(n)`` yields, per case, the list of appends the workflow would have made (one
list of events per decision), walking the default policy's ladder with the clock jumping to
each next deadline, plus the people's commands of one of ten scenarios. Deterministic:
the same ``n`` and ``seed`` give the same events, byte for byte.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Iterator
from uuid import UUID

from domain import commands as cmd
from domain.agenda import next_action, notice_due
from domain.decider import case_uuid, decide
from domain.errors import DomainError
from domain.events import Customer, DisputeOutcome, EscalationDecision, Event, OpenReason
from domain.money import Money
from domain.policy import Policy, RiskGrade, Role, parse_policy
from domain.state import CaseState, fold
from domain.users import SYSTEM_ACTOR, Actor

from bench.common import ROOT

COLLECTORS = [Actor(name=f"collector-{i}", role=Role.collector) for i in range(8)]
SUPERVISOR = Actor(name="supervisor-1", role=Role.supervisor, write_off_limit=10000)
MANAGER = Actor(name="manager-1", role=Role.finance_manager, write_off_limit=100000)
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP")
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # the dataset's "today"


def default_policy() -> Policy:
    return parse_policy((ROOT / "policies" / "default.toml").read_text())


class Sim:
    """One case fed through decide/fold, the clock moving to each deadline."""

    def __init__(self, policy: Policy, rng: random.Random, opened_at: datetime) -> None:
        self.policy = policy
        self.rng = rng
        self.now = opened_at
        self.state: CaseState | None = None
        self.appends: list[list[Event]] = []

    def run(self, command_type: type[cmd.Command], actor: Actor = SYSTEM_ACTOR, **data) -> list[Event]:
        """Decide and keep the events; a command the case refuses (the clock moved on) is skipped."""
        command = command_type(command_id=UUID(int=self.rng.getrandbits(128)), actor=actor, **data)
        try:
            events = decide(self.state, command, self.now, self.policy)
        except DomainError:
            return []
        if events:
            self.appends.append(events)
            self.state = fold(events, self.state)
        return events

    def at(self, moment: datetime) -> Sim:
        self.now = max(self.now, min(moment, AS_OF))
        return self

    def later(self, days: float) -> Sim:
        return self.at(self.now + timedelta(days=days))

    def step(self, until: datetime = AS_OF) -> bool:
        """The next automatic action (a notice or a deadline), if it falls before ``until``."""
        if self.state is None or self.state.closed:
            return False
        action = next_action(self.state, self.policy)
        if action is None or action.at > min(until, AS_OF):
            return False
        self.now = max(self.now, action.at)
        if action.kind == "remind":
            s = self.state
            delivered = self.rng.random() > 0.03
            self.run(cmd.RecordReminder, seq=s.notices + 1, level=s.level + 1,
                     message_id=f"<case-{s.case_id}-n{s.notices + 1}@bench>", recipient=s.customer.email,
                     delivered=delivered, permanent=False, error="" if delivered else "451 try later",
                     fee=_fee(s, self.policy))
        else:
            self.run(cmd.Tick)
        return True

    def steps(self, count: int) -> None:
        for _ in range(count):
            if not self.step():
                return

    def pay(self, fraction: float = 1.0, actor: Actor | None = None) -> None:
        s = self.state
        if s is None or s.closed or not s.balance.is_positive:
            return
        amount = s.balance if fraction >= 1 else Money.of((s.balance.amount * Decimal(str(fraction))).quantize(
            Decimal(1).scaleb(-2 if s.currency != "JPY" else 0)), s.currency)
        if not amount.is_positive:
            return
        self.run(cmd.RecordPayment, actor or self.rng.choice(COLLECTORS),
                 payment_id=f"pay-{self.rng.getrandbits(48):012x}", amount=amount, reference="bank transfer",
                 received_on=self.now.date())


def _fee(state: CaseState, policy: Policy) -> Money | None:
    """The late fee the next notice announces: the engine's own rule (flat fees per currency)."""
    return notice_due(state, policy).fee


def _facts(i: int, rng: random.Random, customers: int, opened_at: datetime) -> cmd.InvoiceFacts:
    c = i % customers
    currency = CURRENCIES[c % len(CURRENCIES)]
    due = (opened_at - timedelta(days=3)).date()
    return cmd.InvoiceFacts(
        invoice_id=f"BINV-{i:07d}",
        customer=Customer(customer_id=f"BCUST-{c:05d}", name=f"Customer {c} Ltd", email=f"ap{c}@customers.test",
                          country="US", language="en"),
        risk_grade=list(RiskGrade)[rng.randrange(4)],
        amount=Money.of(Decimal(rng.randrange(10_000, 5_000_000)) / 100, currency),
        paid=Money.zero(currency),
        issue_date=due - timedelta(days=30),
        due_date=due,
    )


SCENARIOS = ("paid_after_notices", "paid_after_notices", "paid_in_parts", "escalated_continue",
             "escalated_open", "disputed", "write_off_pending", "promise_kept", "worked_open", "plan")


def history(i: int, policy: Policy, customers: int = 2000, seed: int = 1) -> tuple[cmd.InvoiceFacts, list[list[Event]]]:
    rng = random.Random(seed * 1_000_003 + i)
    # cases opened over the 13 months before AS_OF, so the aging report has every bucket
    opened_at = datetime.combine(AS_OF.date() - timedelta(days=rng.randrange(1, 400)), time(9), tzinfo=timezone.utc)
    facts = _facts(i, rng, customers, opened_at)
    sim = Sim(policy, rng, opened_at)
    collector = COLLECTORS[i % len(COLLECTORS)]
    sim.run(cmd.OpenCase, case_id=case_uuid(facts.invoice_id), invoice=facts, reason=OpenReason.overdue)
    scenario = SCENARIOS[i % len(SCENARIOS)]
    if scenario == "paid_after_notices":
        for _ in range(rng.randrange(1, 4)):
            sim.steps(1)
            sim.later(rng.randrange(1, 4)).pay(0.2)
        sim.later(rng.randrange(1, 10)).pay()
    elif scenario == "paid_in_parts":
        sim.run(cmd.AssignCase, collector, assignee=collector.name)
        for _ in range(3):
            sim.steps(1)
            sim.later(rng.randrange(1, 5)).pay(0.3, collector)
        sim.steps(2)
        sim.later(2).pay()
    elif scenario in ("escalated_continue", "escalated_open"):
        sim.steps(6)  # friendly, firm, final, escalation, its SLA
        # most escalations get decided; a few in a hundred still wait for a supervisor
        decided = scenario == "escalated_continue" or rng.random() < 0.7
        if decided and sim.state.escalation_pending:
            decision = EscalationDecision.continue_ if scenario == "escalated_continue" else EscalationDecision.agency
            for actor in (SUPERVISOR, MANAGER):  # the SLA may have sent it up a tier meanwhile
                if sim.state.escalation_pending:
                    sim.later(1).run(cmd.DecideEscalation, actor, decision=decision, note="decided")
            if scenario == "escalated_continue":
                sim.steps(1)
                sim.later(2).pay(0.5, collector)
                sim.later(5).pay()
    elif scenario == "disputed":
        sim.steps(1)
        sim.later(2).run(cmd.OpenDispute, collector, reason="goods_damaged")
        sim.later(rng.randrange(3, 20))
        if rng.random() < 0.5:
            sim.run(cmd.ResolveDispute, SUPERVISOR, outcome=DisputeOutcome.rejected, note="photos do not match")
            sim.steps(2)
        else:
            sim.run(cmd.ResolveDispute, SUPERVISOR, outcome=DisputeOutcome.upheld, note="credit note")
            sim.later(3).pay()
    elif scenario == "write_off_pending":
        sim.steps(3)
        if not sim.state.closed:
            amount = sim.state.balance.min(Money.of("5000", sim.state.currency))
            sim.later(1).run(cmd.RequestWriteOff, collector, amount=amount, reason="insolvency")
            pending = [a for a in sim.state.approvals if a.status == "pending"]
            if pending and rng.random() < 0.8:  # most are decided within days; a few wait
                sim.later(rng.randrange(1, 3)).run(cmd.DecideApproval, MANAGER, approval_id=pending[0].approval_id,
                                                   approve=rng.random() < 0.7, reason="reviewed")
    elif scenario == "promise_kept":
        sim.steps(1)
        promised = (sim.now + timedelta(days=rng.randrange(3, 20))).date()
        sim.later(1).run(cmd.MakePromise, collector, amount=sim.state.balance, promised_date=promised)
        sim.at(datetime.combine(promised, time(10), tzinfo=timezone.utc)).pay()
        sim.steps(1)
    elif scenario == "worked_open":
        sim.run(cmd.AssignCase, collector, assignee=collector.name)
        sim.steps(2)
        sim.later(1).pay(0.25, collector)
        sim.steps(2)
        sim.later(1).pay(0.25, collector)
        sim.steps(3)
    elif scenario == "plan":
        sim.steps(2)
        if not sim.state.closed:
            sim.later(1).run(cmd.ProposePlan, collector, instalments=3, every=timedelta(days=14))
            if sim.state.plan is not None and sim.state.plan.status != "accepted":
                sim.run(cmd.AcceptPlan, collector)
            sim.steps(3)
    # open cases keep receiving small part payments (customers paying down what they can)
    for _ in range(rng.randrange(0, 8)):
        if sim.state.closed:
            break
        sim.later(rng.randrange(1, 8)).pay(0.05, collector)
    return facts, sim.appends


def histories(n: int, policy: Policy | None = None, customers: int = 2000, seed: int = 1
              ) -> Iterator[tuple[cmd.InvoiceFacts, list[list[Event]]]]:
    policy = policy or default_policy()
    for i in range(n):
        yield history(i, policy, customers, seed)
