"""Errors raised by pure domain code."""

from __future__ import annotations


MAX_MESSAGE = 300


def shown(value: object, limit: int = 30) -> str:
    """A user's input as an error message may quote it: short, whatever was sent."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class DomainError(ValueError):
    """A command or value the business rules reject.

    ``field`` names the input that is wrong (when there is one), so every entry
    point can print one clear line: ``amount: must be positive``.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        if len(message) > MAX_MESSAGE:  # keep the start and the reason at the end
            message = f"{message[:MAX_MESSAGE // 2]} ... {message[-MAX_MESSAGE // 2:]}"
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class CurrencyMismatch(DomainError):
    """Two amounts in different currencies were combined."""
