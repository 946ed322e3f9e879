"""Errors raised by pure domain code."""

from __future__ import annotations


class DomainError(ValueError):
    """A command or value the business rules reject.

    ``field`` names the input that is wrong (when there is one), so every entry
    point can print one clear line: ``amount: must be positive``.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class CurrencyMismatch(DomainError):
    """Two amounts in different currencies were combined."""
