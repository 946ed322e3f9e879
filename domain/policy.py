"""Collection policy: the versioned rules a case is opened under.

Durations are ISO 8601 (``P3D``, ``PT30S``) so a demo policy can run a whole
ladder in a minute. Parsing is pure: callers read the TOML text themselves.
"""

from __future__ import annotations

import tomllib
from datetime import date, time, timedelta
from decimal import Decimal
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.errors import DomainError
from domain.interest import InterestPolicy


ANY_CURRENCY = "*"


class RiskGrade(str, Enum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class Role(str, Enum):
    collector = "collector"
    supervisor = "supervisor"
    finance_manager = "finance_manager"
    # Not a person: another system (an ERP, a data warehouse) reading the event feed. It may do
    # nothing else (app/authorization.py) and ranks below every person (domain/authority.py).
    integration = "integration"


APPROVER_ROLES = (Role.supervisor, Role.finance_manager)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _positive(value: timedelta, name: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be a positive duration")
    return value


class LadderStep(_Model):
    """One reminder of the ladder, ``after`` counted from case opening."""

    name: str
    after: timedelta
    # Flat late fee per invoice currency ({EUR = "40.00", USD = "40.00"}): 40 means nothing
    # without its currency. A currency not listed is charged no flat fee. A bare amount,
    # from policies pinned before fees had currencies, is kept as "*": any currency.
    fee: dict[str, Decimal] | None = None
    fee_percent: Decimal | None = None  # late fee as a percentage of the balance

    @field_validator("fee", mode="before")
    @classmethod
    def _legacy_fee(cls, value):
        return {ANY_CURRENCY: value} if isinstance(value, (str, int, float, Decimal)) else value

    @field_validator("fee")
    @classmethod
    def _fees_positive(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        for currency, amount in (value or {}).items():
            if currency != ANY_CURRENCY and not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
                raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
            if amount <= 0:
                raise ValueError(f"{currency}: must be positive")
        return value

    @field_validator("fee_percent")
    @classmethod
    def _fee_positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("must be positive")
        return value

    def flat_fee(self, currency: str) -> Decimal | None:
        if self.fee is None:
            return None
        return self.fee.get(currency, self.fee.get(ANY_CURRENCY))


class EscalationPolicy(_Model):
    after_final: timedelta = Field(description="wait after the final notice before escalating")
    sla: timedelta = Field(description="time a supervisor has to decide before it goes upward")
    continue_for: timedelta = Field(description="dunning continues this long after a 'continue' decision")
    tiers: tuple[Role, ...] = (Role.supervisor, Role.finance_manager)

    @model_validator(mode="after")
    def _check(self) -> EscalationPolicy:
        for name in ("after_final", "sla", "continue_for"):
            _positive(getattr(self, name), name)
        if not self.tiers or any(t not in APPROVER_ROLES for t in self.tiers):
            raise ValueError("tiers must list supervisor and/or finance_manager")
        return self


class DisputePolicy(_Model):
    resolution_sla: timedelta
    # False only for cases decided before this rule (see workflows/case.py)
    escalate_overdue: bool = Field(True, description="a dispute past its deadline goes to the first escalation "
                                   "tier, with the escalation SLA")

    @field_validator("resolution_sla")
    @classmethod
    def _p(cls, v: timedelta) -> timedelta:
        return _positive(v, "resolution_sla")


class PromisePolicy(_Model):
    grace: timedelta = timedelta(0)
    max_horizon: timedelta
    in_customer_day: bool = Field(
        True, description="a promised day is the customer's: it is kept until that day ends in the customer's time "
        "zone (False only for workflow runs recorded before this rule: it ended at midnight UTC)")

    @field_validator("max_horizon")
    @classmethod
    def _p(cls, v: timedelta) -> timedelta:
        return _positive(v, "max_horizon")


class PlanPolicy(_Model):
    max_instalments: int = Field(ge=1, le=120)
    collector_max_instalments: int = Field(ge=1)
    min_interval: timedelta
    max_interval: timedelta
    instalment_grace: timedelta = timedelta(0)
    max_renegotiations: int = Field(ge=0, default=1)
    max_horizon: timedelta = Field(timedelta(days=1096), description="every instalment falls due within this "
                                   "long of the proposal (the first one included)")
    # None: offers never lapse (only how cases were decided before this rule; see workflows/case.py)
    offer_valid_for: timedelta | None = Field(timedelta(days=14), description="a proposed plan nobody accepted "
                                              "lapses this long after the proposal and dunning resumes")

    @model_validator(mode="after")
    def _check(self) -> PlanPolicy:
        _positive(self.min_interval, "min_interval")
        if self.max_horizon < self.max_interval:
            raise ValueError("max_horizon must not be shorter than max_interval")
        if self.max_interval < self.min_interval:
            raise ValueError("max_interval must not be shorter than min_interval")
        if self.collector_max_instalments > self.max_instalments:
            raise ValueError("collector_max_instalments must not exceed max_instalments")
        if self.offer_valid_for is not None:
            _positive(self.offer_valid_for, "offer_valid_for")
        return self


class PausePolicy(_Model):
    """Deliberate dunning pauses (``case pause``, ``customer pause``)."""

    max: timedelta = Field(timedelta(days=90), description="no pause ends later than this after it starts")
    collector_max: timedelta = Field(timedelta(days=30), description="a longer pause asked by a collector waits "
                                     "for a supervisor's approval")

    @model_validator(mode="after")
    def _check(self) -> PausePolicy:
        _positive(self.max, "max")
        _positive(self.collector_max, "collector_max")
        if self.collector_max > self.max:
            raise ValueError("collector_max must not exceed max")
        return self


class SelfServicePolicy(_Model):
    """The customer's page behind the signed link in every notice (app/links.py, api/routes_customer.py)."""

    link_valid_for: timedelta = Field(timedelta(days=30), description="a notice's link opens the page this long")
    requests_per_minute: int = Field(30, ge=1, le=10000, description="requests one link may make in a minute")
    attachment_max_bytes: int = Field(5_000_000, ge=1, le=50_000_000, description="one dispute attachment at most")
    attachment_types: tuple[str, ...] = Field(("application/pdf", "image/png", "image/jpeg"),
                                              description="the kinds of document a dispute may carry")
    dispute_reasons: tuple[str, ...] = Field(
        ("not_received", "wrong_amount", "quality", "already_paid", "other"),
        description="the reasons a customer may give for a dispute on the page (reason codes)")

    @field_validator("link_valid_for")
    @classmethod
    def _p(cls, v: timedelta) -> timedelta:
        return _positive(v, "link_valid_for")

    @field_validator("dispute_reasons")
    @classmethod
    def _reasons(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import re

        if not v or any(not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,39}", code) for code in v):
            raise ValueError("dispute_reasons: give at least one reason code (lowercase letters, digits, '_', '-', '.')")
        return v


class ApprovalPolicy(_Model):
    """Authority over reductions of a receivable without cash (write-off, a dispute's credit,
    cancelling an open balance). Limits and the threshold are in ``currency``; an amount in
    another currency is converted at the rate pinned here (and the rate is stated on the event)."""

    sla: timedelta
    write_off_limits: dict[Role, Decimal] = Field(
        description="the most each role may approve, whatever a user's own limit says (in `currency`)"
    )
    # None in versions pinned before these rules: limits then compared in the invoice's own
    # currency and every reduction allowed alone, as those cases were decided (replay).
    currency: str | None = Field(None, description="the currency of the limits and of `alone_up_to`")
    rates: dict[str, Decimal] = Field(
        default_factory=dict, description="units of `currency` for one unit of another currency"
    )
    alone_up_to: Decimal | None = Field(
        None, description="a reduction up to this much (in `currency`) one person may make alone; "
        "above it a second person must approve (four eyes)"
    )
    alone_adds_up: bool = Field(
        True, description="what people reduced a case by alone adds up against `alone_up_to`, so a reduction "
        "split into small pieces needs the second person the whole would (False only for workflow runs "
        "recorded before this rule)"
    )
    reductions_add_up: bool = Field(
        True, description="an approver's authority must cover everything people already reduced the case by "
        "without cash (written off, dispute credits, a cancellation, interest waived) with the reduction they "
        "approve, whatever its kind (False only for workflow runs recorded before this rule: write-offs added "
        "up with write-offs only)"
    )
    write_offs_add_up: bool = Field(
        True, description="an approver's write-off authority must cover everything already written off on the "
        "case with the write-off they approve, so a write-off split into pieces needs the authority the whole "
        "would (False only for workflow runs recorded before this rule)"
    )

    @field_validator("rates")
    @classmethod
    def _rates_positive(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, rate in value.items():
            if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
                raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
            if rate <= 0:
                raise ValueError(f"{currency}: a rate must be positive")
        return value

    @field_validator("sla")
    @classmethod
    def _p(cls, v: timedelta) -> timedelta:
        return _positive(v, "sla")


class NoticePolicy(_Model):
    business_days_only: bool = True
    send_window: tuple[time, time] | None = (time(9, 0), time(17, 0))  # None: any time
    one_message_per_customer: bool = True
    gather_window: timedelta = timedelta(minutes=5)
    smtp_give_up_after: timedelta = timedelta(days=1)

    @field_validator("send_window", mode="before")
    @classmethod
    def _window(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "any":
            return None
        if isinstance(value, str):
            start, _, end = value.partition("-")
            return (start.strip(), end.strip())
        return value

    @model_validator(mode="after")
    def _check(self) -> NoticePolicy:
        if self.send_window is not None and self.send_window[0] >= self.send_window[1]:
            raise ValueError("send_window must start before it ends, e.g. '09:00-17:00'")
        return self


RISK_FACTORS = ("avg_days_late", "max_days_late", "late_share", "dispute_share", "broken_promises",
                "defaulted_plans", "exposure_ratio")


class RiskFactor(_Model):
    """points = weight x min(value, cap) / cap: linear up to the cap, flat beyond it."""

    weight: Decimal = Field(ge=0, le=100)
    cap: Decimal = Field(gt=0)


def _default_factors() -> dict[str, RiskFactor]:
    table = {"avg_days_late": (25, 30), "max_days_late": (15, 60), "late_share": (20, 1),
             "dispute_share": (10, "0.5"), "broken_promises": (10, 3), "defaulted_plans": (10, 2),
             "exposure_ratio": (10, "1.5")}
    return {k: RiskFactor(weight=Decimal(w), cap=Decimal(str(c))) for k, (w, c) in table.items()}


class RiskPolicy(_Model):
    """The customer scorecard (see docs/RISK.md): 0 (no risk) to the sum of the weights."""

    enabled: bool = True
    min_settled: int = Field(3, ge=1, description="settled invoices (payment history) needed before the score "
                             "replaces the imported grade")
    factors: dict[str, RiskFactor] = Field(default_factory=_default_factors)
    grade_from: dict[RiskGrade, Decimal] = Field(
        default_factory=lambda: {RiskGrade.B: Decimal(20), RiskGrade.C: Decimal(40), RiskGrade.D: Decimal(60)},
        description="lowest score of each grade after A")
    hold_at_grade: RiskGrade | None = Field(None, description="a customer graded this or worse is put on credit hold")
    hold_over_limit: bool = Field(False, description="exposure above the credit limit puts the customer on hold")
    watch_window: timedelta = timedelta(days=30)

    @model_validator(mode="after")
    def _check(self) -> RiskPolicy:
        unknown = sorted(set(self.factors) - set(RISK_FACTORS))
        if unknown:
            raise ValueError(f"factors: unknown factor(s) {', '.join(unknown)} (known: {', '.join(RISK_FACTORS)})")
        bounds = [self.grade_from.get(g) for g in (RiskGrade.B, RiskGrade.C, RiskGrade.D)]
        if RiskGrade.A in self.grade_from or None in bounds or any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ValueError("grade_from: give increasing scores for B, C and D")
        return self

    def grade(self, score: Decimal) -> RiskGrade:
        grade = RiskGrade.A
        for candidate in (RiskGrade.B, RiskGrade.C, RiskGrade.D):
            if score >= self.grade_from[candidate]:
                grade = candidate
        return grade


class CreditPolicy(_Model):
    """Customer credit (overpayments and prepayments)."""

    auto_apply: bool = Field(False, description="apply customer credit to open cases, oldest due first, as soon as it arises")
    amended_below_paid: bool = Field(
        True, description="an ERP amendment below what was already paid on the case leaves what was paid beyond the "
        "new amount with the customer as credit, as an overpayment's excess (False only for workflow runs recorded "
        "before this rule: the part paid beyond it was left nowhere)"
    )
    amended_below_paid_before_case: bool = Field(
        True, description="with amended_below_paid, money paid before the case opened (the ledger's paid) counts "
        "as paid too: an amendment below it leaves the part paid beyond the new amount with the customer as "
        "credit, after the payments on the case (False only for workflow runs recorded before this rule: only "
        "the payments on the case became credit)"
    )
    amended_below_credit_applied: bool = Field(
        True, description="with amended_below_paid, the customer credit applied to the case counts as paid too: an "
        "amendment below it gives the part applied beyond the new amount back to the customer as credit, after the "
        "payments on the case and before money paid before the case opened (False only for workflow runs recorded "
        "before this rule: the credit applied beyond the new amount was left nowhere)"
    )
    amended_below_paid_outside: bool = Field(
        True, description="with amended_below_paid, money the ERP booked as paid outside the engine on the case "
        "counts as paid too: an amendment below it leaves the part paid beyond the new amount with the customer as "
        "credit, after the customer credit applied and before money paid before the case opened (False only for "
        "workflow runs recorded before this rule: the part paid outside beyond the new amount was left nowhere)"
    )


class MatchingPolicy(_Model):
    """How bank receipts settle cases (app/payments.py, domain/matching.py)."""

    tolerance: dict[str, Decimal] = Field(
        default_factory=dict,
        description="per currency: a matched receipt that leaves at most this much open (bank charges) closes the "
                    "case, the rest written off as a small balance (within one person's authority); none: no tolerance")

    @field_validator("tolerance")
    @classmethod
    def _tolerance_positive(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, amount in value.items():
            if amount < 0:
                raise ValueError(f"tolerance for {currency} must not be negative, got {amount}")
        return value

    def tolerance_for(self, currency: str) -> Decimal:
        return self.tolerance.get(currency, Decimal(0))


def check_ladders(ladders: dict[RiskGrade, tuple[LadderStep, ...]], where: str) -> None:
    """Every risk grade has a ladder of at least one step, its offsets increasing."""
    missing = [g.value for g in RiskGrade if g not in ladders]
    if missing:
        raise ValueError(f"{where}: missing risk grade(s) {', '.join(missing)}")
    for grade, steps in ladders.items():
        if not steps:
            raise ValueError(f"{where}.{grade.value}: needs at least one step")
        offsets = [s.after for s in steps]
        if offsets[0] < timedelta(0) or any(b <= a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"{where}.{grade.value}: step offsets must increase")


class AdvancesPolicy(_Model):
    """Advance receipts (prepayments held for the customer): a liability until applied."""

    # Cases of kind advance (an overdue advance request): their own ladder per risk grade (None:
    # the invoice ladders without their fees) and escalation SLA (None: the invoices' one). A
    # deposit carries no late fee nor interest: no invoice was issued.
    ladders: dict[RiskGrade, tuple[LadderStep, ...]] | None = Field(
        None, description="the reminders of an overdue advance request, per risk grade")
    escalation_sla: timedelta | None = Field(None, description="how long a supervisor has to decide on an "
                                             "escalated advance case")

    @model_validator(mode="after")
    def _check_advance_ladders(self) -> AdvancesPolicy:
        if self.ladders is not None:
            check_ladders(self.ladders, "advances.ladders")
            if any(s.fee is not None or s.fee_percent is not None for steps in self.ladders.values() for s in steps):
                raise ValueError("advances.ladders: a deposit request carries no late fee")
        if self.escalation_sla is not None and self.escalation_sla <= timedelta(0):
            raise ValueError("advances.escalation_sla must be positive")
        return self

    linger_after: timedelta = Field(timedelta(days=90), description="an advance held (not applied nor refunded) "
                                    "longer than this is reported as lingering")
    block_shipment: bool = Field(False, description="an unpaid advance request for a sales order holds that order's "
                                 "shipment (an entry in the credit-hold outbox for the ERP) until it is paid")


class InsurancePolicy(_Model):
    """How insured cases deal with the insurer (the insurer's own terms come with each invoice's cover)."""

    notify_after: timedelta = Field(timedelta(days=30), description="notify the insurer this long after the due date "
                                    "(or at the insurer's deadline if that comes first)")


class Factor(_Model):
    """A factor (receivables financier) invoices may be assigned to, with the payment
    instructions its notice of assignment gives the customer (docs/FINANCING.md)."""

    name: str = Field(min_length=1, max_length=64, description="how commands name it (`financing assign --to`)")
    account_name: str = Field(min_length=1, max_length=200, description="the account holder customers pay")
    iban: str = Field(min_length=5, max_length=34)
    bic: str = Field(min_length=8, max_length=11)
    email: str = Field(min_length=3, max_length=320, description="the factor's contact: defaults are reported there")


class FinancingPolicy(_Model):
    """Factoring and receivables financing: the factors invoices may be assigned to."""

    factors: tuple[Factor, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> FinancingPolicy:
        names = [f.name for f in self.factors]
        if len(names) != len(set(names)):
            raise ValueError("factors: each factor needs its own name")
        return self

    def factor(self, name: str) -> Factor | None:
        return next((f for f in self.factors if f.name == name), None)


class DiscountPolicy(_Model):
    """Early-payment discount offers: the notice offers good payers a discount for paying soon."""

    percent: Decimal | None = Field(None, description="the discount offered, in percent of the balance (none: no "
                                    "offers)")
    grades: tuple[RiskGrade, ...] = Field((RiskGrade.A, RiskGrade.B), description="the risk grades offered it")
    within: timedelta = Field(timedelta(days=10), description="the offer holds this long after the notice (whole "
                              "days: to the end of that day, UTC)")
    minimum: dict[str, Decimal] = Field(default_factory=dict, description="per currency: the smallest balance "
                                        "offered it; a currency not listed is offered none")

    @field_validator("percent")
    @classmethod
    def _percent(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not Decimal(0) < value < Decimal(100):
            raise ValueError("percent must be above 0 and below 100")
        return value

    @field_validator("within")
    @classmethod
    def _p(cls, v: timedelta) -> timedelta:
        return _positive(v, "within")

    @field_validator("minimum")
    @classmethod
    def _minimum(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, amount in value.items():
            if amount < 0:
                raise ValueError(f"minimum for {currency} must not be negative, got {amount}")
        return value


class InputPolicy(_Model):
    """How far the dates people and files give may stray (checked at every entry; see domain/inputs.py)."""

    earliest_date: date = Field(date(2000, 1, 1), description="no issue, payment, report or as-of date before this")
    latest_ahead: timedelta = Field(timedelta(days=366), description="no issue, report or as-of date later than "
                                    "today plus this")
    max_terms: timedelta = Field(timedelta(days=730), description="an invoice falls due within this long of its "
                                 "issue date")
    payment_before_issue: timedelta = Field(timedelta(days=366), description="a payment of an invoice is received "
                                            "no earlier than this before the invoice's issue date")

    @model_validator(mode="after")
    def _check(self) -> InputPolicy:
        from domain.inputs import EARLIEST_DATE, LATEST_DATE

        if not EARLIEST_DATE <= self.earliest_date <= LATEST_DATE:
            raise ValueError(f"earliest_date must be between {EARLIEST_DATE} and {LATEST_DATE}")
        for name in ("latest_ahead", "max_terms", "payment_before_issue"):
            value = getattr(self, name)
            if value < timedelta(0) or value > timedelta(days=36500):
                raise ValueError(f"{name} must be between P0D and P36500D")
        return self


class Policy(_Model):
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    grace: timedelta = Field(description="the sweep opens a case this long after the due date")
    ladders: dict[RiskGrade, tuple[LadderStep, ...]]
    escalation: EscalationPolicy
    dispute: DisputePolicy
    promise: PromisePolicy
    plan: PlanPolicy
    approval: ApprovalPolicy
    notices: NoticePolicy = NoticePolicy()
    risk: RiskPolicy = RiskPolicy()
    credit: CreditPolicy = CreditPolicy()
    matching: MatchingPolicy = MatchingPolicy()
    advances: AdvancesPolicy = AdvancesPolicy()
    insurance: InsurancePolicy = InsurancePolicy()
    inputs: InputPolicy = InputPolicy()
    financing: FinancingPolicy = FinancingPolicy()
    discounts: DiscountPolicy = DiscountPolicy()
    pause: PausePolicy = PausePolicy()
    self_service: SelfServicePolicy = SelfServicePolicy()
    # None: no statutory interest or compensation (every version pinned before it; domain/interest.py)
    interest: InterestPolicy | None = None

    @model_validator(mode="after")
    def _check(self) -> Policy:
        if self.grace < timedelta(0):
            raise ValueError("grace must not be negative")
        check_ladders(self.ladders, "ladders")
        return self

    def for_case(self, advance: bool) -> Policy:
        """The rules a case decides with: for a case of kind advance, the ``[advances]`` ladder
        (default: the invoice ladders without fees), its escalation SLA, and no interest."""
        if not advance:
            return self
        a = self.advances
        ladders = a.ladders or {g: tuple(s.model_copy(update={"fee": None, "fee_percent": None}) for s in steps)
                                for g, steps in self.ladders.items()}
        escalation = (self.escalation.model_copy(update={"sla": a.escalation_sla}) if a.escalation_sla is not None
                      else self.escalation)
        return self.model_copy(update={"ladders": ladders, "escalation": escalation, "interest": None})

    def before_liveness(self) -> Policy:
        """This policy as cases were decided before "no silent stall" (issue 13): offers never
        lapsed and an overdue dispute was only flagged. Only for workflow runs recorded then."""
        return self.model_copy(update={
            "plan": self.plan.model_copy(update={"offer_valid_for": None}),
            "dispute": self.dispute.model_copy(update={"escalate_overdue": False}),
        })

    def before_reductions_add_up(self) -> Policy:
        """This policy as cases were decided before reductions made alone added up (issue 13):
        each was checked against the threshold on its own. Only for workflow runs recorded then."""
        return self.model_copy(update={"approval": self.approval.model_copy(update={"alone_adds_up": False})})

    def before_write_offs_add_up(self) -> Policy:
        """This policy as cases were decided before approved write-offs added up: each was checked
        against the approver's authority on its own. Only for workflow runs recorded then."""
        return self.model_copy(update={"approval": self.approval.model_copy(update={"write_offs_add_up": False})})

    def before_reductions_add_up_for_authority(self) -> Policy:
        """This policy as cases were decided before all reductions added up against an approver's
        authority: a dispute credit on its own, a write-off with earlier write-offs only. Only for
        workflow runs recorded then."""
        return self.model_copy(update={"approval": self.approval.model_copy(update={"reductions_add_up": False})})

    def before_amended_below_paid(self) -> Policy:
        """This policy as cases were decided before an amendment below what was paid left the
        excess as customer credit: the reduction stopped at the open balance and the part paid
        beyond the new amount went nowhere. Only for workflow runs recorded then."""
        return self.model_copy(update={"credit": self.credit.model_copy(update={"amended_below_paid": False})})

    def before_amended_below_paid_before_case(self) -> Policy:
        """This policy as cases were decided before money paid before the case opened counted in
        an amendment below what was paid: only the payments on the case became credit, and what
        was paid before the case beyond the new amount went nowhere. Only for workflow runs
        recorded then."""
        return self.model_copy(update={"credit": self.credit.model_copy(
            update={"amended_below_paid_before_case": False})})

    def before_amended_below_credit_applied(self) -> Policy:
        """This policy as cases were decided before the customer credit applied to a case counted in
        an amendment below what was paid: the credit applied beyond the new amount went nowhere.
        Only for workflow runs recorded then."""
        return self.model_copy(update={"credit": self.credit.model_copy(
            update={"amended_below_credit_applied": False})})

    def before_amended_below_paid_outside(self) -> Policy:
        """This policy as cases were decided before money the ERP booked as paid outside the engine
        counted in an amendment below what was paid: the part paid outside beyond the new amount
        went nowhere. Only for workflow runs recorded then."""
        return self.model_copy(update={"credit": self.credit.model_copy(
            update={"amended_below_paid_outside": False})})

    def before_promise_in_customer_day(self) -> Policy:
        """This policy as cases were decided before a promised day was the customer's: it ended at
        midnight UTC. Only for workflow runs recorded then."""
        return self.model_copy(update={"promise": self.promise.model_copy(update={"in_customer_day": False})})

    def ladder(self, grade: RiskGrade) -> tuple[LadderStep, ...]:
        return self.ladders[grade]

    def write_off_cap(self, role: Role) -> Decimal:
        return self.approval.write_off_limits.get(role, Decimal(0))


def parse_policy(text: str, source: str = "policy", pinned: bool = False) -> Policy:
    """Parse and validate a policy from TOML text; errors name the field. ``pinned``: a
    version kept before today's rules (a bare flat fee then meant any currency)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DomainError(f"{source}: not valid TOML: {error}") from None
    if not pinned:
        _require_fee_currencies(raw, source)
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as error:
        raise DomainError(f"{source}: {_first_error(error)}") from None
    if not pinned:
        _require_money_in_currency_units(policy, source)
    return policy


def _require_money_in_currency_units(policy: Policy, source: str) -> None:
    """Every amount a new policy file writes per currency is one that currency can hold (no
    3.005 CNY, no 6000.5 JPY, no XYZ), and no limit is negative: such a fee was refused by the
    case at the moment it came due, every time (pinned versions keep what they were decided with)."""
    from domain.money import Money, currency_exponent

    def check(where: str, currency: str, amount: Decimal | None = None) -> None:
        try:
            currency_exponent(currency)
            if amount is not None:
                Money.of(amount, currency)
        except DomainError as error:
            raise DomainError(f"{source}: {where}: {error.message}") from None

    for grade, steps in policy.ladders.items():
        for n, step in enumerate(steps):
            for currency, fee in (step.fee or {}).items():
                if currency != ANY_CURRENCY:
                    check(f"ladders.{grade.value}.{n}.fee.{currency}", currency, fee)
    for currency, amount in policy.matching.tolerance.items():
        check(f"matching.tolerance.{currency}", currency, amount)
    approval = policy.approval
    for currency in approval.rates:
        check(f"approval.rates.{currency}", currency)
    if approval.currency is not None:
        check("approval.currency", approval.currency)
    for role, limit in approval.write_off_limits.items():
        if limit < 0:
            raise DomainError(f"{source}: approval.write_off_limits.{role.value}: must not be negative, got {limit}")
    if approval.alone_up_to is not None and approval.alone_up_to < 0:
        raise DomainError(f"{source}: approval.alone_up_to: must not be negative, got {approval.alone_up_to}")


def _require_fee_currencies(raw: dict, source: str) -> None:
    """A new policy file names the currency of each flat fee (only pinned old versions may not)."""
    for grade, steps in (raw.get("ladders") or {}).items():
        for n, step in enumerate(steps if isinstance(steps, list) else []):
            fee = step.get("fee") if isinstance(step, dict) else None
            if fee is not None and not isinstance(fee, dict):
                raise DomainError(f"{source}: ladders.{grade}.{n}.fee: give the flat fee per currency, "
                                  f'e.g. fee = {{ EUR = "{fee}", USD = "{fee}" }}')


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
