"""Given events / when command / then events, for the case decider."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

from domain import commands as cmd
from domain.decider import case_uuid, decide
from domain.events import Customer, Event, OpenReason
from domain.money import Money
from domain.policy import Policy, RiskGrade, Role, parse_policy
from domain.state import CaseState, fold
from domain.users import SYSTEM_ACTOR, Actor

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

COLLECTOR = Actor(name="cora", role=Role.collector)
SUPERVISOR = Actor(name="sam", role=Role.supervisor, write_off_limit=10000)
SUPERVISOR_2 = Actor(name="sue", role=Role.supervisor, write_off_limit=10000)
MANAGER = Actor(name="max", role=Role.finance_manager, write_off_limit=100000)


def default_policy() -> Policy:
    return parse_policy((ROOT / "policies" / "default.toml").read_text())


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def prepayment(customer_id: str, amount: Money):
    """A prepayment, the first event of the customer's stream (customer credit, not applied)."""
    from domain.customer import PrepaymentReceived, customer_stream_id

    now = datetime.now(timezone.utc)
    return PrepaymentReceived(event_id=uuid4(), stream_id=customer_stream_id(customer_id), version=1, occurred_at=now,
                              actor="test", customer_id=customer_id, payment_id=f"PP-{customer_id}", amount=amount,
                              received_on=now.date())


def invoice(amount: str = "1000.00", grade: RiskGrade = RiskGrade.B, invoice_id: str = "INV-1", paid: str = "0") -> cmd.InvoiceFacts:
    return cmd.InvoiceFacts(
        invoice_id=invoice_id,
        customer=Customer(customer_id="C-1", name="Acme GmbH", email="ap@acme.test", country="DE", language="en"),
        risk_grade=grade,
        amount=usd(amount),
        paid=usd(paid),
        issue_date=date(2026, 1, 15),
        due_date=date(2026, 2, 14),
    )


class Case:
    """A case under test: feeds commands through decide and keeps the events."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or default_policy()
        self.events: list[Event] = []
        self.now = T0

    @property
    def state(self) -> CaseState | None:
        return fold(self.events)

    def at(self, when: datetime | timedelta) -> Case:
        self.now = when if isinstance(when, datetime) else self.now + when
        return self

    def when(self, command_type: type[cmd.Command], actor: Actor = COLLECTOR, **data) -> list[Event]:
        command = command_type(command_id=uuid4(), actor=actor, **data)
        new = decide(self.state, command, self.now, self.policy)
        self.events.extend(new)
        return new

    def open(self, facts: cmd.InvoiceFacts | None = None, reason: OpenReason = OpenReason.overdue) -> Case:
        facts = facts or invoice()
        self.when(cmd.OpenCase, actor=SYSTEM_ACTOR, case_id=case_uuid(facts.invoice_id), invoice=facts, reason=reason)
        return self

    def tick(self) -> list[Event]:
        return self.when(cmd.Tick, actor=SYSTEM_ACTOR)

    def remind(self, delivered: bool = True, fee: Money | None = None, **extra) -> list[Event]:
        s = self.state
        return self.when(
            cmd.RecordReminder,
            actor=SYSTEM_ACTOR,
            seq=s.notices + 1,
            level=s.level + 1,
            message_id=f"<{s.case_id}.{s.notices + 1}@test>",
            recipient=s.customer.email,
            delivered=delivered,
            fee=fee,
            **extra,
        )

    def pay(self, amount: str, payment_id: str | None = None, actor: Actor = COLLECTOR) -> list[Event]:
        return self.when(
            cmd.RecordPayment,
            actor=actor,
            payment_id=payment_id or str(uuid4()),
            amount=usd(amount),
            reference="bank",
            received_on=self.now.date(),
        )


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def fixed_id(n: int) -> UUID:
    return UUID(int=n)
