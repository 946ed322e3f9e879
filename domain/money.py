"""Money: a Decimal amount with an ISO 4217 currency. Never a float."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import Annotated, Any

from babel.numbers import get_currency_precision, list_currencies
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_serializer, field_validator

from domain.errors import CurrencyMismatch, DomainError, shown

# Larger than any invoice a B2B ledger holds; rejects pasted nonsense early.
MAX_AMOUNT = Decimal("1000000000000")
# An amount as text: plain decimal notation, at most 13 digits before the point (MAX_AMOUNT has 13)
# and 4 after it (no currency has more); no exponent ("1e1000000"), no separators, no spaces inside.
MAX_INTEGER_DIGITS = 13
MAX_FRACTION_DIGITS = 4
AMOUNT_PATTERN = rf"^[+-]?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?$"
AMOUNT_MAX_LENGTH = 1 + MAX_INTEGER_DIGITS + 1 + MAX_FRACTION_DIGITS
_AMOUNT = re.compile(AMOUNT_PATTERN)
_DECIMAL = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
_SPECIAL = re.compile(r"^[+-]?(nan|snan|inf|infinity)$", re.IGNORECASE)

_KNOWN_CURRENCIES = frozenset(list_currencies())


@lru_cache(maxsize=None)
def currency_exponent(currency: str) -> int:
    """Number of decimal places the currency allows (USD 2, JPY 0, BHD 3)."""
    if currency not in _KNOWN_CURRENCIES:
        raise DomainError(f"unknown currency {shown(currency)} (expected an ISO 4217 code)", "currency")
    return get_currency_precision(currency)


# ISO 4217 codes that name no currency anyone is invoiced or pays in: precious metals, units of
# account and of the bond markets, the code for testing and the one for "no currency" (their
# minor unit is "N.A." in the standard). Refused where money first enters (an invoice, a
# receipt); an amount already recorded in one still loads.
NOT_PAYABLE = frozenset({"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"})


def payable_currency(currency: str, field: str = "currency") -> str:
    """A currency money can be owed and paid in: an ISO 4217 code other than those above."""
    currency = str(currency).strip().upper()
    currency_exponent(currency)
    if currency in NOT_PAYABLE:
        raise DomainError(f"{currency} is an ISO 4217 code for no currency one invoices or pays in (precious "
                          "metals, units of account, testing, 'no currency')", field)
    return currency


def parse_amount(text: Any, field: str = "amount") -> Decimal:
    """Parse user input into a finite Decimal, refusing floats' surprises."""
    if isinstance(text, float):
        raise DomainError("must be given as text or Decimal, not a float", field)
    if isinstance(text, Decimal):  # computed amounts: only their size is checked, without arithmetic
        if not text.is_finite():
            raise DomainError(f"{shown(text)} is not a finite number", field)
        if not text.is_zero() and text.adjusted() >= MAX_INTEGER_DIGITS:
            raise DomainError(f"{shown(text)} exceeds the largest amount accepted ({MAX_AMOUNT})", field)
        return text
    raw = str(text).strip()
    if not _AMOUNT.fullmatch(raw):
        if _SPECIAL.fullmatch(raw):
            raise DomainError(f"{shown(text)} is not a finite number", field)
        if re.fullmatch(r"[+-]?[0-9.]+[eE][+-]?[0-9]+", raw):
            raise DomainError(f"{shown(text)} is not a number written in plain digits (no exponent)", field)
        if not _DECIMAL.fullmatch(raw):
            raise DomainError(f"{shown(text)} is not a number", field)
        whole, _, fraction = raw.lstrip("+-").partition(".")
        if len(whole) > MAX_INTEGER_DIGITS:
            raise DomainError(f"{shown(text)} exceeds the largest amount accepted ({MAX_AMOUNT}; at most "
                              f"{MAX_INTEGER_DIGITS} digits before the point)", field)
        raise DomainError(f"{shown(text)} has more decimal places than any currency allows "
                          f"({MAX_FRACTION_DIGITS})", field)
    return Decimal(raw)


def check_amount(amount: Decimal, currency: str) -> None:
    if abs(amount) > MAX_AMOUNT:
        raise DomainError(f"{shown(amount)} exceeds the largest amount accepted ({MAX_AMOUNT})", "amount")
    exponent = currency_exponent(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise DomainError(
            f"{shown(amount)} has more decimal places than {currency} allows ({exponent})", "amount"
        )


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        code = str(value).strip().upper()
        currency_exponent(code)
        return code

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_amount(value)

    def model_post_init(self, _context: Any) -> None:
        check_amount(self.amount, self.currency)

    @field_serializer("amount")
    def _serialize_amount(self, amount: Decimal) -> str:
        return str(self.quantized(amount))

    # -- construction -------------------------------------------------------
    @classmethod
    def of(cls, amount: Any, currency: str, field: str = "amount") -> Money:
        """Build from user input; errors are DomainErrors naming ``field``."""
        code = str(currency).strip().upper()
        currency_exponent(code)
        value = parse_amount(amount, field)
        try:
            check_amount(value, code)
        except DomainError as error:
            raise DomainError(error.message, field) from None
        return cls(amount=value, currency=code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """From a whole number of minor units (how amounts are stored): it has the currency's
        decimals by construction, so only the currency is checked (the screens read thousands)."""
        code = str(currency).strip().upper()
        return cls.model_construct(amount=Decimal(int(minor)).scaleb(-currency_exponent(code)), currency=code)

    def to_minor(self) -> int:
        return int(self.quantized(self.amount).scaleb(currency_exponent(self.currency)))

    def quantized(self, amount: Decimal) -> Decimal:
        return amount.quantize(Decimal(1).scaleb(-currency_exponent(self.currency)))

    # -- arithmetic ---------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"{other.currency} amount cannot be combined with a {self.currency} amount", "currency"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def percent(self, rate: Decimal) -> Money:
        """``rate`` percent of this amount, rounded down to the currency's unit."""
        raw = self.amount * rate / Decimal(100)
        unit = Decimal(1).scaleb(-currency_exponent(self.currency))
        return Money(amount=raw.quantize(unit, rounding=ROUND_DOWN), currency=self.currency)

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` equal instalments; the last one takes the remainder."""
        if parts < 1:
            raise DomainError("must be at least 1", "instalments")
        minor = self.to_minor()
        each, remainder = divmod(minor, parts)
        amounts = [each] * parts
        amounts[-1] += remainder
        return [Money.from_minor(m, self.currency) for m in amounts]

    def __str__(self) -> str:
        return f"{self.quantized(self.amount)} {self.currency}"


def _amount_text(value: Any) -> Any:
    if isinstance(value, str):
        parse_amount(value)
    return value


# An amount in a request body: a string in plain digits (the pattern is in the OpenAPI document).
AmountText = Annotated[str, Field(pattern=AMOUNT_PATTERN, max_length=AMOUNT_MAX_LENGTH, examples=["250.00"]),
                       BeforeValidator(_amount_text)]


def positive_money(amount: Any, currency: str, field: str = "amount") -> Money:
    """Parse a user-supplied amount that must be strictly positive."""
    value = Money.of(amount, currency, field)
    if not value.is_positive:
        raise DomainError(f"must be positive, got {value.amount}", field)
    return value
