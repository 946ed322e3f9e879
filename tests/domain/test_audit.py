"""The audit trail's amount of an event (domain/audit.py): every event type carrying Money is in
the table or says why it shows none, and the money-moving events of a case show their amounts."""

from __future__ import annotations

import typing
from datetime import date, timedelta

from pydantic import BaseModel

from domain import admin, commands as cmd, customer, events
from domain.audit import LEDGER_AMOUNT, NO_LEDGER_AMOUNT, ledger_amount, value_date
from domain.events import DisputeOutcome
from domain.money import Money
from tests.domain.scenario import Case, usd


def _event_types() -> list[type[BaseModel]]:
    found = []
    for union in (events.AnyEvent, customer.AnyCustomerEvent, admin.AnyAdminEvent):
        found.extend(typing.get_args(typing.get_args(union)[0]))
    return found


def _carries_money(annotation, seen: set) -> bool:
    """Whether a field of this annotation holds Money anywhere: itself, in a union, a tuple or
    list of it, or in a model of its own (a payment plan's instalments)."""
    if annotation is Money:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(_carries_money(f.annotation, seen) for f in annotation.model_fields.values())
    return any(_carries_money(arg, seen) for arg in typing.get_args(annotation))


def _money_fields(event_type: type[BaseModel]) -> set[str]:
    return {name for name, f in event_type.model_fields.items() if _carries_money(f.annotation, set())}


def test_every_event_type_carrying_money_shows_its_amount_or_says_why_not():
    types = {t.__name__: t for t in _event_types()}
    assert len(types) == len(_event_types())  # no two streams share a type name
    carrying = {name for name, t in types.items() if _money_fields(t)}
    assert {"LateFeeCharged", "PaymentReversed", "DisputeResolved", "PaymentPlanProposed", "CreditLimitSet",
            "LedgerPaymentRecorded"} <= carrying  # the detection finds direct, optional and nested Money
    left_out = sorted(carrying - LEDGER_AMOUNT.keys() - NO_LEDGER_AMOUNT.keys())
    assert not left_out, f"event types carrying Money neither in LEDGER_AMOUNT nor in NO_LEDGER_AMOUNT: {left_out}"
    assert not LEDGER_AMOUNT.keys() & NO_LEDGER_AMOUNT.keys()
    assert not (LEDGER_AMOUNT.keys() | NO_LEDGER_AMOUNT.keys()) - carrying  # no stale or misspelt type
    for name, fields in LEDGER_AMOUNT.items():
        assert fields and set(fields) <= _money_fields(types[name]), (name, fields)
        direct = {f: types[name].model_fields[f].annotation for f in fields}
        assert all(a in (Money, Money | None) for a in direct.values()), (name, direct)  # an amount, not a schedule


def test_a_fee_a_reversed_back_dated_payment_and_a_credit_show_their_amounts():
    case = Case().open()
    opened = case.events[0]
    fee = case.remind(fee=usd("25.00"))
    back_dated = case.now.date() - timedelta(days=3)
    paid = case.when(cmd.RecordPayment, payment_id="P-1", amount=usd("400.00"), reference="cheque 7",
                     received_on=back_dated)
    bounced = case.when(cmd.ReversePayment, payment_id="P-1", reason="cheque bounced")
    case.when(cmd.OpenDispute, reason="pricing", amount=usd("78.00"))
    credited = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=usd("78.00"))

    def shown(found: list, name: str) -> tuple[Money | None, str | None]:
        event = next(e for e in found if type(e).__name__ == name)
        return ledger_amount(name, event.data()), value_date(event.data())

    assert shown([opened], "CaseOpened") == (usd("1000.00"), None)
    assert shown(fee, "LateFeeCharged") == (usd("25.00"), None)
    assert shown(paid, "PaymentReceived") == (usd("400.00"), back_dated.isoformat())
    assert shown(bounced, "PaymentReversed") == (usd("400.00"), None)
    assert shown(credited, "DisputeResolved") == (usd("78.00"), None)


def test_amounts_of_several_fields_add_up_and_a_field_left_empty_adds_nothing():
    interest = {"interest": {"amount": "12.50", "currency": "EUR"}, "compensation": {"amount": "40.00", "currency": "EUR"}}
    assert ledger_amount("InterestCharged", interest) == Money.of("52.50", "EUR")
    assert ledger_amount("InterestCharged", {**interest, "compensation": None}) == Money.of("12.50", "EUR")
    overpaid = {"applied": {"amount": "100.00", "currency": "EUR"}, "excess": {"amount": "20.00", "currency": "EUR"}}
    assert ledger_amount("PaymentReversed", overpaid) == Money.of("120.00", "EUR")
    assert ledger_amount("DisputeResolved", {"credit": None, "outcome": "rejected"}) is None
    assert ledger_amount("CreditLimitSet", {"limit": None}) is None
    assert ledger_amount("CaseClosed", {"payments": {"amount": "1.00", "currency": "EUR"}}) is None
    assert value_date({"received_on": date(2026, 3, 1).isoformat()}) == "2026-03-01"


def test_details_say_what_else_an_event_says_in_plain_values():
    from domain.audit import DETAILS_MAX, details

    assert details("UserAdded", {"user": "ivan", "role": "integration", "write_off_limit": "0", "email": None,
                                 "subject": "user ivan", "reason": "erp"}) == "user=ivan; role=integration; write_off_limit=0"
    # the amount column's money and nested records are not repeated; long text is cut with '…'
    assert details("PaymentReceived", {"payment_id": "P-1", "amount": {"amount": "5", "currency": "USD"},
                                       "reference": "wire"}) == "payment_id=P-1; reference=wire"
    long = details("CaseAssigned", {"assignee": "x" * 400})
    assert len(long) == DETAILS_MAX and long.endswith("…")
