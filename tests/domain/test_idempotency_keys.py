"""A client's payment id is an idempotency key bound to what it paid (issue 14, part 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import commands as cmd
from domain.errors import DomainError
from tests.domain.scenario import Case, invoice, types, usd


def _repeat(case: Case, **changes):
    data = dict(payment_id="P-1", amount=usd("100.00"), reference="bank", received_on=case.now.date())
    data.update(changes)
    return case.when(cmd.RecordPayment, **data)


def test_the_same_payment_again_is_a_repeat():
    case = Case().open(invoice())
    assert types(case.pay("100.00", "P-1")) == ["PaymentReceived"]
    assert _repeat(case) == []
    assert _repeat(case, amount=usd("100")) == []  # the same amount written otherwise


@pytest.mark.parametrize("changes, named", [
    (dict(amount=usd("90.00")), "amount"),
    (dict(reference="other"), "reference"),
    (dict(received_on_days=-1), "received_on"),
])
def test_the_same_payment_id_with_other_content_is_a_conflict(changes, named):
    case = Case().open(invoice())
    case.pay("100.00", "P-1")
    if "received_on_days" in changes:
        changes = dict(received_on=case.now.date() + timedelta(days=changes.pop("received_on_days")))
    with pytest.raises(DomainError) as raised:
        _repeat(case, **changes)
    assert raised.value.field == "payment_id"
    assert "already recorded" in raised.value.message and named in raised.value.message
    assert types(case.events).count("PaymentReceived") == 1


def test_a_bank_file_compares_what_it_sends_by_the_same_rule():
    """``check_same_payment``: what the decider, `pay` and a bank file import (app/payments.py) apply
    to a payment id already recorded; only the fields given are compared."""
    from datetime import date

    from domain.inputs import check_same_payment

    recorded = {"amount": usd("1000.00"), "received_on": date(2026, 12, 5)}
    check_same_payment("CSV-1", recorded, {"amount": usd("1000"), "received_on": date(2026, 12, 5)})  # a repeat
    with pytest.raises(DomainError) as refused:
        check_same_payment("CSV-1", recorded, {"amount": usd("999.00"), "received_on": date(2026, 12, 5)})
    assert refused.value.field == "payment_id"
    assert refused.value.message == ("payment 'CSV-1' was already recorded with a different amount "
                                     "1000.00 USD (sent 999.00 USD); send it again as it was recorded, or give "
                                     "a new payment id")
    # a reference left out is shown as an empty text, not as nothing at all ('(sent )')
    with pytest.raises(DomainError, match=r"reference 'wire 1' \(sent ''\)"):
        check_same_payment("CSV-1", {"reference": "wire 1"}, {"reference": ""})
