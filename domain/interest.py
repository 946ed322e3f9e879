"""Statutory interest and fixed compensation on late payment. Pure.

A policy's ``[interest]`` section maps the customer's country to a *regime*:

* ``reference``: a reference rate plus a margin in points, the reference rate being the one in
  force on the first day of each half-year (1 January / 1 July), read from a dated table in the
  policy. The EU Late Payment Directive 2011/7/EU (ECB main refinancing rate + 8 points) re-reads
  it every half-year; the UK Late Payment of Commercial Debts (Interest) Act (Bank of England base
  rate + 8) keeps the rate of the half-year the debt fell due in (``fixed_at_due = true``).
* ``fixed``: a contractual rate, percent a year.
* ``none``: no interest and no compensation (the built-in regime for a country not listed, unless
  ``default`` names another).

Interest is simple, from the day after the due date up to and including the day it is computed
to, on the principal (the invoice's amount still open when the case opened) reduced by each
payment, credit or customer credit from the day it was received: the day of a payment bears
interest only on what was left after it. Day count Actual/365 (or Actual/360 where the regime
says so). Each day's interest is kept exact and the sum is rounded once, half-up, to the
currency's minor unit (the cent). Compensation is a fixed sum per invoice, charged once, from a
per-currency table of bands by the size of the debt (EU: EUR 40; UK: GBP 40 / 70 / 100 below
1,000 / below 10,000 / from 10,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.money import Money, currency_exponent

NONE = "none"
DAY_BASIS = {"ACT/365": 365, "ACT/360": 360}


class InterestDue(BaseModel):
    """Interest (and compensation) a notice states and charges: the accrual to ``accrued_to``
    less the interest already charged."""

    model_config = ConfigDict(frozen=True)

    regime: str
    accrued_to: date
    accrued: Money
    interest: Money
    compensation: Money | None  # charged with this notice
    basis: str
    compensation_before: Money | None = None  # charged with an earlier notice

    @property
    def compensation_stated(self) -> Money | None:
        return self.compensation or self.compensation_before

    @property
    def total(self) -> Money:
        return self.interest + self.compensation if self.compensation is not None else self.interest


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RatePoint(_Model):
    """The reference rate (percent a year) in force from ``since``."""

    since: date
    rate: Decimal


class CompensationBand(_Model):
    """A fixed sum for a debt below ``below`` (None: any size not in an earlier band)."""

    below: Decimal | None = None
    amount: Decimal = Field(gt=0)


class InterestRegime(_Model):
    kind: Literal["reference", "fixed", "none"]
    margin: Decimal = Field(Decimal(0), description="points over the reference rate")
    reference: tuple[RatePoint, ...] = Field((), description="dated reference rates (percent a year)")
    fixed_at_due: bool = Field(False, description="the rate of the half-year the debt fell due in applies "
                               "throughout (UK); else it is re-read every half-year (EU)")
    rate: Decimal | None = Field(None, description="kind fixed: the contractual rate, percent a year")
    day_count: Literal["ACT/365", "ACT/360"] = "ACT/365"
    compensation: dict[str, tuple[CompensationBand, ...]] = Field(
        default_factory=dict, description="per invoice currency: fixed compensation by size of the debt, once")

    @model_validator(mode="after")
    def _check(self) -> InterestRegime:
        if self.kind == "reference":
            if not self.reference:
                raise ValueError("reference: give the dated reference rates, e.g. [{since = 2026-01-01, rate = \"2.15\"}]")
            days = [p.since for p in self.reference]
            if any(b <= a for a, b in zip(days, days[1:])):
                raise ValueError("reference: dates must increase")
            if any(p.rate + self.margin < 0 for p in self.reference):
                raise ValueError("reference: a rate plus the margin must not be negative")
        if self.kind == "fixed" and (self.rate is None or self.rate < 0):
            raise ValueError("rate: a fixed regime needs a rate of 0 or more (percent a year)")
        for currency, bands in self.compensation.items():
            currency_exponent(currency)
            if not bands or bands[-1].below is not None:
                raise ValueError(f"compensation.{currency}: the last band must have no 'below' (any larger debt)")
            limits = [b.below for b in bands[:-1]]
            if None in limits or any(b <= a for a, b in zip(limits, limits[1:])):
                raise ValueError(f"compensation.{currency}: 'below' must increase")
        return self

    def annual_rate(self, day: date, due_date: date) -> Decimal:
        """Percent a year that applies on ``day`` for a debt due on ``due_date``."""
        if self.kind == "fixed":
            return self.rate or Decimal(0)
        if self.kind == NONE:
            return Decimal(0)
        start = _half_year_start(due_date if self.fixed_at_due else day)
        points = [p for p in self.reference if p.since <= start]
        base = points[-1].rate if points else self.reference[0].rate
        return base + self.margin

    def compensation_for(self, debt: Money) -> Money | None:
        for band in self.compensation.get(debt.currency, ()):
            if band.below is None or debt.amount < band.below:
                return Money.of(band.amount, debt.currency)
        return None


class InterestPolicy(_Model):
    regimes: dict[str, InterestRegime] = Field(default_factory=dict)
    countries: dict[str, str] = Field(default_factory=dict, description="customer country (ISO 3166) -> regime")
    default: str = Field(NONE, description="the regime of a country not listed")
    from_level: int = Field(1, ge=1, description="the first ladder level whose notice states and charges "
                            "interest and compensation")

    @model_validator(mode="after")
    def _check(self) -> InterestPolicy:
        for where, name in [("default", self.default), *((f"countries.{c}", n) for c, n in self.countries.items())]:
            if name != NONE and name not in self.regimes:
                raise ValueError(f"{where}: unknown regime {name!r} (known: {', '.join(sorted(self.regimes)) or NONE})")
        for country in self.countries:
            if not (len(country) == 2 and country.isalpha() and country.isupper()):
                raise ValueError(f"countries: {country!r} is not an ISO 3166 country code")
        return self

    def regime_for(self, country: str) -> tuple[str, InterestRegime | None]:
        name = self.countries.get(country.upper(), self.default)
        regime = self.regimes.get(name)
        return name, None if regime is None or regime.kind == NONE else regime


def _half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


class Reduction(_Model):
    """Money that lowered the principal from ``on`` (a payment's received date); ``ref`` lets a
    reversed payment take its reduction back."""

    on: date
    amount: Decimal
    ref: str = ""


@dataclass(frozen=True)
class Period:
    first: date  # first day of the period
    last: date  # last day, included
    principal: Decimal
    rate: Decimal  # percent a year

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Accrual:
    regime: str
    periods: tuple[Period, ...]
    exact: Decimal  # before rounding
    interest: Money  # rounded half-up to the currency's minor unit

    def describe(self) -> str:
        """One line per period, for the event and the case page."""
        return "; ".join(f"{p.first}..{p.last} {p.days} d x {p.principal} at {p.rate}%" for p in self.periods)


def principal_on(principal: Money, reductions: Sequence[Reduction], day: date) -> Decimal:
    """The principal still open at the end of ``day`` (never below zero)."""
    paid = sum((r.amount for r in reductions if r.on <= day), Decimal(0))
    return max(principal.amount - paid, Decimal(0))


def accrue(regime_name: str, regime: InterestRegime, principal: Money, due_date: date,
           reductions: Sequence[Reduction], to: date) -> Accrual:
    """Simple interest on ``principal`` from the day after ``due_date`` through ``to``."""
    periods: list[Period] = []
    day = due_date + timedelta(days=1)
    while day <= to:
        balance = principal_on(principal, reductions, day)
        rate = regime.annual_rate(day, due_date)
        if periods and periods[-1].principal == balance and periods[-1].rate == rate and periods[-1].last == day - timedelta(days=1):
            periods[-1] = Period(periods[-1].first, day, balance, rate)
        else:
            periods.append(Period(day, day, balance, rate))
        day += timedelta(days=1)
    basis = DAY_BASIS[regime.day_count]
    kept = tuple(p for p in periods if p.principal > 0 and p.rate > 0)
    exact = sum((p.principal * p.rate * p.days / (Decimal(100) * basis) for p in kept), Decimal(0))
    unit = Decimal(1).scaleb(-currency_exponent(principal.currency))
    rounded = Money.of(exact.quantize(unit, rounding=ROUND_HALF_UP), principal.currency)
    return Accrual(regime_name, kept, exact, rounded)
