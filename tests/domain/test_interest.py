"""Statutory interest and compensation (domain/interest.py): worked examples computed by hand
here, to the cent, and the rules of charging them on a case's notices."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from domain.agenda import accrued_interest, notice_due
from domain.errors import DomainError
from domain.events import Customer
from domain.interest import InterestRegime, RatePoint, Reduction, accrue
from domain.money import Money
from domain.policy import RiskGrade, parse_policy
from domain.users import Actor
from domain import commands as cmd
from tests.domain.scenario import ROOT, SUPERVISOR, Case, invoice, types

SECTION = (ROOT / "tests" / "data" / "interest.toml").read_text()
POLICY = parse_policy((ROOT / "policies" / "default.toml").read_text() + SECTION)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def regime(name: str) -> InterestRegime:
    return POLICY.interest.regimes[name]


# -- worked examples -------------------------------------------------------------------------


def test_eu_rate_is_reread_each_half_year_and_a_partial_payment_counts_from_its_date():
    # EUR 10,000.00 due 31 May 2026; ECB rate 2.15 in force on 1 January, 2.40 on 1 July (changed
    # 10 June: not before 1 July); EUR 4,000.00 paid on 20 July; interest to 14 August.
    eu = regime("eu").model_copy(update={"reference": regime("eu").reference + (
        RatePoint(since=date(2026, 6, 10), rate=Decimal("2.40")),)})
    paid = [Reduction(on=date(2026, 7, 20), amount=Decimal("4000.00"))]
    accrual = accrue("eu", eu, eur("10000.00"), date(2026, 5, 31), paid, date(2026, 8, 14))
    #  1 Jun - 30 Jun: 30 days x 10,000 x 10.15 % / 365 = 30,450 / 365
    #  1 Jul - 19 Jul: 19 days x 10,000 x 10.40 % / 365 = 19,760 / 365
    # 20 Jul - 14 Aug: 26 days x  6,000 x 10.40 % / 365 = 16,224 / 365
    # total 66,434 / 365 = 182.0109... -> EUR 182.01
    assert [(p.first, p.last, p.days, p.principal, p.rate) for p in accrual.periods] == [
        (date(2026, 6, 1), date(2026, 6, 30), 30, Decimal("10000.00"), Decimal("10.15")),
        (date(2026, 7, 1), date(2026, 7, 19), 19, Decimal("10000.00"), Decimal("10.40")),
        (date(2026, 7, 20), date(2026, 8, 14), 26, Decimal("6000.00"), Decimal("10.40")),
    ]
    assert accrual.exact == Decimal(66434) / Decimal(365)
    assert accrual.interest == eur("182.01")


def test_uk_rate_stays_that_of_the_half_year_the_debt_fell_due_in():
    # GBP 1,000.00 due 15 January 2026: BoE base rate on 1 January 2026 is 4.00 (since 7 Aug 2025)
    # -> 12.00 % for the whole debt; interest to 16 March 2026 = 16 + 28 + 16 = 60 days.
    # 1,000 x 12 % x 60 / 365 = 7,200 / 365 = 19.7260... -> GBP 19.73
    uk = regime("uk").model_copy(update={"reference": regime("uk").reference + (
        RatePoint(since=date(2026, 2, 5), rate=Decimal("3.50")),)})  # a cut after the due date changes nothing
    accrual = accrue("uk", uk, Money.of("1000.00", "GBP"), date(2026, 1, 15), [], date(2026, 3, 16))
    assert [(p.days, p.rate) for p in accrual.periods] == [(60, Decimal("12.00"))]
    assert accrual.interest == Money.of("19.73", "GBP")


def test_uk_compensation_by_size_of_the_debt():
    uk = regime("uk")
    assert uk.compensation_for(Money.of("999.99", "GBP")) == Money.of("40.00", "GBP")
    assert uk.compensation_for(Money.of("1000.00", "GBP")) == Money.of("70.00", "GBP")
    assert uk.compensation_for(Money.of("9999.99", "GBP")) == Money.of("70.00", "GBP")
    assert uk.compensation_for(Money.of("10000.00", "GBP")) == Money.of("100.00", "GBP")
    assert uk.compensation_for(Money.of("10000.00", "EUR")) is None  # no band for that currency
    assert regime("eu").compensation_for(eur("5.00")) == eur("40.00")


def test_contract_rate_rounds_half_up_to_the_cent():
    # USD 1,012.50 at 7.3 % (0.02 % a day on Actual/365) for 10 days = 2.025 exactly -> 2.03 (half-up,
    # not half-even's 2.02)
    accrual = accrue("contract", regime("contract"), Money.of("1012.50", "USD"), date(2026, 2, 1), [],
                     date(2026, 2, 11))
    assert accrual.exact == Decimal("2.025") and accrual.interest == Money.of("2.03", "USD")
    # Actual/360 at 7.2 % is the same 0.02 % a day
    act360 = regime("contract").model_copy(update={"rate": Decimal("7.2"), "day_count": "ACT/360"})
    assert accrue("c", act360, Money.of("1012.50", "USD"), date(2026, 2, 1), [], date(2026, 2, 11)).interest == \
        Money.of("2.03", "USD")


def test_nothing_accrues_on_or_before_the_due_date_nor_once_paid():
    eu = regime("eu")
    assert accrue("eu", eu, eur("500.00"), date(2026, 3, 1), [], date(2026, 3, 1)).interest == eur("0.00")
    paid = [Reduction(on=date(2026, 3, 5), amount=Decimal("600.00"))]  # paid more than the principal
    # 2 to 4 March: 3 days x 500 x 10.15 % / 365 = 152.25 / 365 = 0.4171... -> 0.42; nothing after
    assert accrue("eu", eu, eur("500.00"), date(2026, 3, 1), paid, date(2026, 12, 31)).interest == eur("0.42")


def test_countries_pick_the_regime_and_cn_has_none():
    assert POLICY.interest.regime_for("DE")[0] == "eu" and POLICY.interest.regime_for("GB")[0] == "uk"
    assert POLICY.interest.regime_for("CN") == ("none", None)


@pytest.mark.parametrize("section, field", [
    ('[interest]\ndefault = "nowhere"\n', "interest: default: unknown regime"),
    ('[interest.regimes.x]\nkind = "reference"\nmargin = "8"\n', "interest.regimes.x"),
    ('[interest.regimes.x]\nkind = "fixed"\n', "interest.regimes.x"),
    ('[interest.countries]\nGermany = "none"\n', "interest"),
])
def test_a_bad_interest_section_is_refused_naming_the_field(section, field):
    with pytest.raises(DomainError, match=field):
        parse_policy((ROOT / "policies" / "default.toml").read_text() + section)


# -- charging on a case ---------------------------------------------------------------------


def eu_invoice(amount: str = "1000.00") -> cmd.InvoiceFacts:
    return invoice(amount=amount, grade=RiskGrade.A).model_copy(update={
        "amount": eur(amount), "paid": eur("0"),
        "customer": Customer(customer_id="C-EU", name="Acme GmbH", email="ap@acme.test", country="DE")})


def remind_with_interest(case: Case) -> list:
    notice = notice_due(case.state, case.policy, on=case.now.date())
    return case.remind(fee=notice.fee, interest=notice.interest), notice


def test_each_notice_charges_what_accrued_since_and_the_compensation_once():
    # EUR 1,000.00 due 14 Feb 2026 (grade A ladder: P4D, P18D, P35D from opening on 2 March)
    case = Case(POLICY).open(eu_invoice())
    case.at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    events, notice = remind_with_interest(case)
    # 15 Feb - 6 Mar = 20 days x 1,000 x 10.15 % / 365 = 2,030 / 365 = 5.5616... -> 5.56
    assert types(events) == ["ReminderSent", "InterestCharged"]
    charged = events[1]
    assert (charged.interest, charged.compensation, charged.accrued_to) == (eur("5.56"), eur("40.00"), date(2026, 3, 6))
    assert notice.amount_due == eur("1045.56") and case.state.balance == eur("1045.56")

    case.at(datetime(2026, 3, 10, 9, tzinfo=timezone.utc))
    case.when(cmd.RecordPayment, payment_id="P1", amount=eur("400.00"), reference="bank", received_on=date(2026, 3, 10))
    case.at(datetime(2026, 3, 20, 9, tzinfo=timezone.utc))
    events, _ = remind_with_interest(case)
    # to 20 Mar: 15 Feb - 9 Mar 23 days x 1,000 + 10 - 20 Mar 11 days x 600, at 10.15 % / 365
    # = (23,000 + 6,600) x 0.1015 / 365 = 3,004.40 / 365 = 8.2312... -> 8.23 accrued; 5.56 charged before
    assert types(events) == ["ReminderSent", "InterestCharged"]
    assert (events[1].accrued, events[1].interest, events[1].compensation) == (eur("8.23"), eur("2.67"), None)
    assert case.state.interest == eur("8.23") and case.state.compensation == eur("40.00")
    assert case.state.fees == eur("48.23") and case.state.balance == eur("648.23")


def test_a_reversed_payment_takes_its_reduction_back():
    case = Case(POLICY).open(eu_invoice())
    case.when(cmd.RecordPayment, payment_id="P1", amount=eur("500.00"), reference="bank", received_on=date(2026, 2, 20))
    assert len(case.state.principal_reductions) == 1
    case.when(cmd.ReversePayment, payment_id="P1", reason="bounced", actor=SUPERVISOR)
    assert case.state.principal_reductions == ()


def test_no_interest_without_a_regime_nor_before_from_level():
    cn = eu_invoice().model_copy(update={"customer": Customer(customer_id="C-CN", name="Li", email="li@x.test",
                                                               country="CN")})
    case = Case(POLICY).open(cn).at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    assert notice_due(case.state, case.policy, on=case.now.date()).interest is None
    later = POLICY.model_copy(update={"interest": POLICY.interest.model_copy(update={"from_level": 3})})
    case = Case(later).open(eu_invoice()).at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    assert notice_due(case.state, case.policy, on=case.now.date()).interest is None
    assert notice_due(case.state, case.policy, level=3, on=case.now.date()).interest.compensation == eur("40.00")


def test_the_compensation_is_never_charged_twice():
    case = Case(POLICY).open(eu_invoice()).at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    _, first = remind_with_interest(case)
    with pytest.raises(DomainError, match="compensation was already charged"):
        case.remind(interest=first.interest)


# -- waiving ---------------------------------------------------------------------------------


def charged_case(amount: str) -> Case:
    case = Case(POLICY).open(eu_invoice(amount)).at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    remind_with_interest(case)
    return case


def test_a_collector_waives_a_small_charge_alone():
    case = charged_case("1000.00")  # 5.56 + 40.00 = EUR 45.56 = USD 49.20 at 1.08: within alone_up_to 100
    with pytest.raises(DomainError, match="exceeds the interest and compensation"):
        case.when(cmd.WaiveInterest, amount=eur("45.57"), reason="goodwill")
    events = case.when(cmd.WaiveInterest, amount=eur("40.00"), reason="goodwill")
    assert types(events) == ["InterestWaived"] and events[0].actor == "cora"
    assert case.state.balance == eur("1005.56") and case.state.fees == eur("5.56")
    case.when(cmd.WaiveInterest, reason="goodwill")  # the rest
    assert case.state.balance == eur("1000.00") and case.state.fees == eur("0.00")
    with pytest.raises(DomainError, match="no interest or compensation"):
        case.when(cmd.WaiveInterest, reason="goodwill")


def test_waivers_made_alone_add_up_to_the_threshold():
    case = charged_case("100000.00")  # EUR 596.16 charged; one person alone up to USD 100 = EUR 92.59
    assert types(case.when(cmd.WaiveInterest, amount=eur("90.00"), reason="goodwill")) == ["InterestWaived"]
    requested = case.when(cmd.WaiveInterest, amount=eur("5.00"), reason="goodwill")  # 95.00 EUR alone in all
    assert types(requested) == ["ReductionRequested"] and requested[0].kind == "waiver"
    assert case.state.fees == eur("506.16")


def test_a_large_waiver_needs_a_second_person_within_authority():
    from tests.domain.scenario import SUPERVISOR_2

    # EUR 100,000.00: 20 days x 100,000 x 10.15 % / 365 = 203,000 / 365 = 556.164... -> 556.16; + 40.00
    case = charged_case("100000.00")
    assert case.state.fees == eur("596.16")
    events = case.when(cmd.WaiveInterest, reason="goodwill", actor=SUPERVISOR)
    assert types(events) == ["ReductionRequested"] and events[0].kind == "waiver"
    approval = events[0].approval_id
    with pytest.raises(DomainError, match="four eyes"):
        case.when(cmd.DecideApproval, approval_id=approval, approve=True, reason="ok", actor=SUPERVISOR)
    decided = case.when(cmd.DecideApproval, approval_id=approval, approve=True, reason="ok", actor=SUPERVISOR_2)
    assert types(decided) == ["ReductionApproved", "InterestWaived"]
    assert decided[1].amount == eur("596.16") and decided[1].approval_id == approval
    assert case.state.balance == eur("100000.00") and case.state.fees == eur("0.00")


def test_at_close_the_interest_since_the_last_notice_is_charged_and_paying_it_closes_the_case():
    case = charged_case("1000.00")  # 6 March: 5.56 interest + 40.00 charged, balance 1,045.56
    case.at(datetime(2026, 3, 10, 9, tzinfo=timezone.utc))
    events = case.when(cmd.RecordPayment, payment_id="P1", amount=eur("1045.56"), reference="bank",
                       received_on=date(2026, 3, 10))
    # principal paid on 10 March: 15 Feb - 9 Mar = 23 days x 1,000 x 10.15 % / 365 = 2,334.50 / 365 = 6.3958...
    # -> 6.40 accrued; 5.56 charged by the notice: 0.84 more, and the case stays open for it
    assert types(events) == ["PaymentReceived", "InterestCharged"]
    assert (events[1].interest, events[1].accrued, events[1].level) == (eur("0.84"), eur("6.40"), 0)
    assert case.state.balance == eur("0.84") and not case.state.closed
    case.at(datetime(2026, 3, 20, 9, tzinfo=timezone.utc))
    events = case.when(cmd.RecordPayment, payment_id="P2", amount=eur("0.84"), reference="bank",
                       received_on=date(2026, 3, 20))
    assert types(events) == ["PaymentReceived", "CaseClosed"]  # nothing accrues on a paid principal
    closed = events[1]
    assert closed.fees == eur("46.40") and closed.payments == eur("1046.40")  # 1,000 + 46.40 = payments


def test_a_case_paid_before_any_notice_stated_interest_closes_without_it():
    case = Case(POLICY).open(eu_invoice()).at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    events = case.when(cmd.RecordPayment, payment_id="P1", amount=eur("1000.00"), reference="bank",
                       received_on=date(2026, 3, 6))
    assert types(events) == ["PaymentReceived", "CaseClosed"]


def test_the_erp_s_credit_note_counts_from_its_date_and_an_amendment_from_the_start():
    # EUR 1,000.00 due 14 Feb 2026, EU rate 10.15 %. On 2 March the ERP amends the invoice to
    # 900.00 (a corrected invoice: the principal is 900.00 from the start) and on 6 March issues a
    # credit note CN-1 of 300.00 (from that day the principal is 600.00). Interest to 16 March:
    #  15 Feb -  5 Mar: 19 days x 900 x 10.15 % / 365 = 173,565 / 36,500
    #   6 Mar - 16 Mar: 11 days x 600 x 10.15 % / 365 =  66,990 / 36,500
    # total 240,555 / 36,500 = 6.5905... -> EUR 6.59
    case = Case(POLICY).open(eu_invoice())
    erp = Actor(name="erp-sync")
    facts = dict(actor=erp, due_date=case.state.due_date, customer=case.state.customer, source="erp.csv line 2")
    case.at(datetime(2026, 3, 2, 9, tzinfo=timezone.utc))
    assert types(case.when(cmd.SyncInvoice, amount=eur("900.00"), **facts)) == ["InvoiceAmended"]
    case.at(datetime(2026, 3, 6, 9, tzinfo=timezone.utc))
    note = cmd.CreditNote(document_id="CN-1", amount=eur("300.00"))
    assert types(case.when(cmd.SyncInvoice, amount=eur("900.00"), credit_notes=(note,), **facts)) == [
        "CreditNoteApplied"]
    accrual = accrued_interest(case.state, case.policy, date(2026, 3, 16))
    assert [(p.days, p.principal) for p in accrual.periods] == [(19, Decimal("900.00")), (11, Decimal("600.00"))]
    assert accrual.interest == eur("6.59")
