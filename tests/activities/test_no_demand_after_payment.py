"""No demand after payment: right before the SMTP transaction the notice activity reads the
cases again; a case closed meanwhile (paid) gets no e-mail, and the result says which cases
were withdrawn so the case records `ReminderWithdrawn`, not `ReminderSent`. Real SMTP sink,
real event store."""

from __future__ import annotations

from uuid import uuid4

from activities.contracts import NoticeRequest
from activities.notices import digest_message_id
from domain import commands as cmd
from domain.events import Customer
from domain.money import Money
from store.event_store import EventStore
from tests.domain.scenario import Case, invoice


def case_in_store(store: EventStore, invoice_id: str, paid: bool) -> Case:
    case = Case().open(invoice(invoice_id=invoice_id))
    if paid:
        case.pay("1000.00")
    store.append(case.state.case_id, 0, case.events)
    return case


def notice_for(case: Case) -> NoticeRequest:
    s = case.state
    return NoticeRequest(
        case_id=s.case_id, seq=s.notices + 1, level=1, step="friendly", final=False, invoice_id=s.invoice_id,
        customer=Customer(customer_id=f"C-{s.invoice_id}", name="Acme", email="ap@acme.test", country="US"),
        amount_due=Money.of("1000.00", "USD"), balance=Money.of("1000.00", "USD"), fee=None,
        due_date=s.due_date, issue_date=s.issue_date,
    )


async def test_a_notice_for_a_case_paid_meanwhile_is_not_sent(stored, smtp):
    store, sender = stored
    paid = case_in_store(store, "PAID-1", paid=True)
    result = await sender.send_notice(notice_for(paid))
    assert not result.delivered and result.withdrawn == [str(paid.state.case_id)]
    assert smtp.messages == []
    # the case records the step as withdrawn: no demand, no fee, the sequence moves on
    events = paid.when(cmd.RecordReminder, seq=1, level=1, message_id=result.message_id, recipient="ap@acme.test",
                       delivered=False, error=result.error, withdrawn=True)
    assert [type(e).__name__ for e in events] == ["ReminderWithdrawn"] and paid.state.notices == 1


async def test_a_digest_drops_the_paid_case_and_sends_the_rest(stored, smtp):
    store, sender = stored
    paid, open_ = case_in_store(store, "PAID-2", paid=True), case_in_store(store, "OPEN-2", paid=False)
    requests = [notice_for(paid), notice_for(open_)]
    result = await sender.deliver(requests, digest_message_id(requests, "test.local"))
    assert result.delivered and result.withdrawn == [str(paid.state.case_id)]
    [mail] = smtp.messages
    assert "OPEN-2" in mail.body() and "PAID-2" not in mail.body()


async def test_an_open_case_still_gets_its_notice(stored, smtp):
    store, sender = stored
    open_ = case_in_store(store, f"OPEN-{uuid4().hex[:4]}", paid=False)
    result = await sender.send_notice(notice_for(open_))
    assert result.delivered and result.withdrawn == [] and len(smtp.messages) == 1
