"""Authority over reductions of a receivable without cash: given events, when a command,
then events. One rule for write-offs, dispute credits and cancellations: up to the
policy's single-person threshold one person acts; above it a second person whose
authority covers the amount, converted at the rate pinned in the policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import commands as cmd
from domain.authority import in_approval_currency, may_act_alone
from domain.errors import DomainError
from domain.events import DisputeOutcome
from domain.money import Money
from domain.policy import parse_policy
from domain.state import CaseStatus
from tests.conftest import ROOT
from tests.domain.scenario import COLLECTOR, MANAGER, SUPERVISOR, SUPERVISOR_2, Case, default_policy, invoice, types, usd

KWD = "KWD"


def kwd_invoice(amount: str):
    facts = invoice(amount=amount)
    return facts.model_copy(update={"amount": Money.of(amount, KWD), "paid": Money.zero(KWD)})


def test_rates_are_pinned_in_the_policy():
    policy = default_policy()
    converted = in_approval_currency(policy.approval, Money.of("9999.000", KWD))
    assert converted.rate == Decimal("3.25") and converted.amount == Money.of("32496.75", "USD")
    assert may_act_alone(policy, Money.of("100.00", "USD")) and not may_act_alone(policy, Money.of("100.01", "USD"))
    assert may_act_alone(policy, Money.of("30.000", KWD)) and not may_act_alone(policy, Money.of("31.000", KWD))
    with pytest.raises(DomainError, match="no rate from XAU"):
        in_approval_currency(policy.approval, Money.of("1", "XAU"))


def test_a_supervisor_cannot_approve_a_kwd_write_off_worth_more_than_his_limit():
    case = Case().open(kwd_invoice("9999.000"))  # about 32,500 USD
    requested = case.when(cmd.RequestWriteOff, amount=Money.of("9999.000", KWD), reason="insolvency")
    approval_id = requested[0].approval_id
    with pytest.raises(DomainError, match=r"9999.000 KWD \(= 32496.75 USD at 3.25\) exceeds sam's write-off "
                                          r"authority \(10000 USD\)"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=approval_id, approve=True, reason="ok")
    events = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=approval_id, approve=True, reason="gone")
    assert types(events) == ["WriteOffApproved", "CaseClosed"]
    assert events[0].rate == Decimal("3.25") and events[0].authority_amount == Money.of("32496.75", "USD")
    assert events[0].reason == "gone"


def test_a_collector_cannot_credit_a_whole_invoice_alone():
    case = Case().open()  # 1,000.00 USD
    case.when(cmd.OpenDispute, reason="pricing")
    requested = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("1000.00", "USD"))
    assert types(requested) == ["ReductionRequested"] and case.state.status == CaseStatus.awaiting_approval
    assert requested[0].reduced_alone is None  # nothing was reduced alone before: none to show
    with pytest.raises(DomainError, match="waiting for approval"):
        case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("1000.00", "USD"))
    with pytest.raises(DomainError, match="only a supervisor"):  # the requester's colleague without authority
        case.when(cmd.DecideApproval, actor=COLLECTOR, approval_id=requested[0].approval_id, approve=True, reason="ok")
    rejected = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=False,
                         reason="the price was right")
    assert types(rejected) == ["ReductionRejected"] and case.state.dispute is not None  # still to be resolved
    assert case.state.balance == Money.of("1000.00", "USD")


def test_the_requester_never_approves_their_own_reduction():
    case = Case().open()
    case.when(cmd.OpenDispute, actor=SUPERVISOR, reason="pricing")
    requested = case.when(cmd.ResolveDispute, actor=SUPERVISOR, outcome=DisputeOutcome.upheld)
    with pytest.raises(DomainError, match="four eyes"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True, reason="ok")
    events = case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=requested[0].approval_id, approve=True,
                       reason="credit note 4711")
    assert types(events) == ["ReductionApproved", "DisputeResolved", "CaseClosed"]


def test_a_supervisor_cannot_cancel_a_large_case_alone():
    case = Case().open(invoice(amount="90000.00"))
    requested = case.when(cmd.CancelCase, actor=SUPERVISOR, reason="invoice_voided")
    assert types(requested) == ["ReductionRequested"] and requested[0].kind == "cancellation"
    assert not case.state.closed
    with pytest.raises(DomainError, match="cancellation authority"):  # 90,000 is above a supervisor's 10,000
        case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=requested[0].approval_id, approve=True,
                  reason="voided")
    events = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested[0].approval_id, approve=True,
                       reason="voided in the ERP")
    assert types(events) == ["ReductionApproved", "CaseCancelled", "CaseClosed"]
    assert case.state.status == CaseStatus.cancelled


def test_small_reductions_need_one_person():
    case = Case().open(invoice(amount="80.00"))
    case.when(cmd.OpenDispute, reason="pricing")
    assert types(case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld)) == ["DisputeResolved", "CaseClosed"]


def test_a_payment_while_waiting_lowers_what_is_credited():
    case = Case().open()
    case.when(cmd.OpenDispute, reason="pricing", amount=Money.of("500.00", "USD"))
    requested = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld)
    case.pay("700.00")  # 300.00 left
    events = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested[0].approval_id, approve=True,
                       reason="ok")
    assert events[1].credit == Money.of("300.00", "USD") and case.state.closed


def test_flat_fees_are_per_currency():
    policy = default_policy()
    final = policy.ladder(invoice().risk_grade)[-1]
    assert final.flat_fee("EUR") == Decimal("40.00") and final.flat_fee("JPY") == Decimal("6000")
    assert final.flat_fee(KWD) is None  # no flat fee where the policy names none
    bare = (ROOT / "policies" / "default.toml").read_text().replace(
        'fee = { USD = "40.00", EUR = "40.00", GBP = "35.00", CHF = "40.00", CNY = "300.00", JPY = "6000" }',
        'fee = "40.00"')
    with pytest.raises(DomainError, match=r"fee: give the flat fee per currency"):
        parse_policy(bare)
    assert parse_policy(bare, pinned=True).ladder(invoice().risk_grade)[-1].flat_fee(KWD) == Decimal("40.00")


def test_a_policy_pinned_before_the_rules_decides_as_it_did():
    """Cases running under a version without rates keep their behaviour (their histories replay)."""
    legacy = default_policy().approval.model_copy(update={"currency": None, "rates": {}, "alone_up_to": None})
    policy = default_policy().model_copy(update={"approval": legacy})
    case = Case(policy).open()
    case.when(cmd.OpenDispute, reason="pricing")
    assert types(case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld)) == ["DisputeResolved", "CaseClosed"]


# -- reductions made alone add up: splitting one does not avoid the second person ------------


def test_dispute_credits_split_into_pieces_add_up_to_the_threshold():
    case = Case().open()  # 1,000.00 USD; one person alone up to 100 USD
    case.when(cmd.OpenDispute, reason="pricing")
    alone = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("60.00", "USD"))
    assert types(alone) == ["DisputeResolved"] and case.state.reduced_alone == Money.of("60.00", "USD")
    case.when(cmd.OpenDispute, reason="quality")
    requested = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("60.00", "USD"))
    assert types(requested) == ["ReductionRequested"] and requested[0].amount == Money.of("60.00", "USD")
    # the approver sees why 60.00 waits: 60.00 was already credited alone on this case
    assert requested[0].reduced_alone == Money.of("60.00", "USD")
    assert case.state.approvals[-1].reduced_alone == Money.of("60.00", "USD")
    approved = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True,
                         reason="credit note 4712")
    assert types(approved) == ["ReductionApproved", "DisputeResolved"]
    # what a second person approved is not counted as made alone: 40.00 more may still be credited alone
    assert case.state.reduced_alone == Money.of("60.00", "USD")
    case.when(cmd.OpenDispute, reason="freight")
    assert types(case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld,
                           credit=Money.of("40.00", "USD"))) == ["DisputeResolved"]
    case.when(cmd.OpenDispute, reason="freight")
    assert types(case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld,
                           credit=Money.of("0.01", "USD"))) == ["ReductionRequested"]


def test_a_credit_made_alone_counts_when_the_rest_is_cancelled():
    case = Case().open(invoice(amount="150.00"))
    case.when(cmd.OpenDispute, reason="pricing")
    case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("60.00", "USD"))
    requested = case.when(cmd.CancelCase, actor=SUPERVISOR, reason="invoice_voided")  # 90.00 left: 150 in all
    assert types(requested) == ["ReductionRequested"] and requested[0].kind == "cancellation"
    assert requested[0].reduced_alone == Money.of("60.00", "USD") and not case.state.closed


def test_a_tolerance_write_off_after_a_credit_made_alone_waits_for_a_person():
    from tests.domain.test_matching import _bank_pay, _tolerant

    case = Case(_tolerant("5.00")).open()
    case.when(cmd.OpenDispute, reason="pricing")
    case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("97.00", "USD"))
    assert types(_bank_pay(case, "899.00")) == ["PaymentReceived"]  # 4.00 left: 101.00 alone in all
    case2 = Case(_tolerant("5.00")).open()
    case2.when(cmd.OpenDispute, reason="pricing")
    case2.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=Money.of("90.00", "USD"))
    assert types(_bank_pay(case2, "907.00")) == ["PaymentReceived", "SmallBalanceWrittenOff", "CaseClosed"]
    assert case2.state.reduced_alone == Money.of("93.00", "USD")


def test_runs_recorded_before_the_rule_check_each_reduction_on_its_own():
    case = Case(default_policy().before_reductions_add_up()).open()
    for reason in ("pricing", "quality"):
        case.when(cmd.OpenDispute, reason=reason)
        assert types(case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld,
                               credit=Money.of("60.00", "USD"))) == ["DisputeResolved"]


# -- write-offs approved on one case add up against the approver's authority -----------------


def _write_off(case: Case, amount: str, approver, currency: str = "USD") -> list:
    requested = case.when(cmd.RequestWriteOff, amount=Money.of(amount, currency), reason="uncollectible")
    return case.when(cmd.DecideApproval, actor=approver, approval_id=requested[0].approval_id, approve=True,
                     reason="approved")


def test_a_write_off_split_in_two_needs_an_approver_with_authority_for_the_total():
    case = Case().open(invoice(amount="20000.00"))  # sam (supervisor) may approve up to 10,000 USD
    assert types(_write_off(case, "9000.00", SUPERVISOR)) == ["WriteOffApproved"]
    requested = case.when(cmd.RequestWriteOff, amount=usd("9540.00"), reason="uncollectible")
    before = case.state
    with pytest.raises(DomainError, match=r"9540.00 USD \+ 9000.00 USD already written off on this case = "
                                          r"18540.00 USD exceeds sam's write-off authority \(10000 USD\)"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True,
                  reason="approved part 2")
    # nor another supervisor: the case's total, not each approver's share, must be covered
    with pytest.raises(DomainError, match="18540.00 USD exceeds sue's write-off authority"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=requested[0].approval_id, approve=True,
                  reason="approved part 2")
    assert case.state == before and case.state.approval(requested[0].approval_id).status == "pending"
    approved = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested[0].approval_id, approve=True,
                         reason="approved part 2")
    assert types(approved) == ["WriteOffApproved"] and case.state.write_offs == usd("18540.00")
    # a supervisor may still turn one down, and approve what keeps the total within his authority
    fresh = Case().open(invoice(amount="20000.00"))
    assert types(_write_off(fresh, "9000.00", SUPERVISOR)) == ["WriteOffApproved"]
    assert types(_write_off(fresh, "1000.00", SUPERVISOR_2)) == ["WriteOffApproved"]  # 10,000.00 in all
    with pytest.raises(DomainError, match="10000.01 USD exceeds"):
        _write_off(fresh, "0.01", SUPERVISOR)


def test_write_offs_in_another_currency_add_up_at_the_pinned_rate():
    case = Case().open(kwd_invoice("5000.000"))  # 3.25 USD for one KWD: sam covers 3,076.923 KWD
    assert types(_write_off(case, "2000.000", SUPERVISOR, KWD)) == ["WriteOffApproved"]  # 6,500 USD
    requested = case.when(cmd.RequestWriteOff, amount=Money.of("1100.000", KWD), reason="uncollectible")
    with pytest.raises(DomainError, match=r"1100.000 KWD \+ 2000.000 KWD already written off on this case = "
                                          r"3100.000 KWD \(= 10075.00 USD at 3.25\) exceeds sam's write-off"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True,
                  reason="ok")
    rejected = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=False,
                         reason="ask the finance manager")
    assert types(rejected) == ["WriteOffRejected"]  # beyond authority, one may still say no


def _credit(case: Case, amount: str, approver) -> list:
    case.when(cmd.OpenDispute, reason="pricing")
    requested = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=usd(amount))
    assert types(requested) == ["ReductionRequested"], requested
    return case.when(cmd.DecideApproval, actor=approver, approval_id=requested[0].approval_id, approve=True,
                     reason="credit note")


def test_credits_and_write_offs_add_up_against_the_approvers_authority():
    """A supervisor (10,000 USD) approved a 9,000 dispute credit, a 9,000 write-off and a 6,000
    credit on one 25,000 invoice: 24,000 reduced without cash, each piece within her authority.
    Every reduction people made on the case counts with the one to approve, whatever its kind."""
    case = Case().open(invoice(amount="25000.00"))
    assert types(_credit(case, "9000.00", SUPERVISOR)) == ["ReductionApproved", "DisputeResolved"]
    requested = case.when(cmd.RequestWriteOff, amount=usd("900.00"), reason="uncollectible")
    approved = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True,
                         reason="approved")  # 9,900 in all: within her 10,000
    assert types(approved) == ["WriteOffApproved"]
    case.when(cmd.OpenDispute, reason="quality")
    second = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=usd("6000.00"))
    before = case.state
    with pytest.raises(DomainError, match=r"6000.00 USD \+ 9900.00 USD already written off or credited on this "
                                          r"case = 15900.00 USD exceeds sam's dispute credit authority"):
        case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=second[0].approval_id, approve=True,
                  reason="credit note")
    assert case.state == before
    assert types(case.when(cmd.DecideApproval, actor=MANAGER, approval_id=second[0].approval_id, approve=True,
                           reason="credit note")) == ["ReductionApproved", "DisputeResolved"]
    # runs recorded before the rule: a credit on its own, as they were decided
    old = Case(default_policy().before_reductions_add_up_for_authority()).open(invoice(amount="25000.00"))
    _credit(old, "9000.00", SUPERVISOR)
    assert types(_credit(old, "6000.00", SUPERVISOR)) == ["ReductionApproved", "DisputeResolved"]


def test_runs_recorded_before_the_rule_check_each_write_off_on_its_own():
    policy = default_policy().before_reductions_add_up_for_authority().before_write_offs_add_up()
    case = Case(policy).open(invoice(amount="20000.00"))
    assert types(_write_off(case, "9000.00", SUPERVISOR)) == ["WriteOffApproved"]
    assert types(_write_off(case, "9540.00", SUPERVISOR)) == ["WriteOffApproved"]
