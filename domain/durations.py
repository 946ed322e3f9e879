"""ISO 8601 durations (``P30D``, ``PT45S``) for user input and display."""

from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from domain.errors import DomainError, shown

_ADAPTER = TypeAdapter(timedelta)


def parse_duration(text: str, field: str) -> timedelta:
    value = text.strip()
    if not value.upper().startswith("P"):
        raise DomainError(f"{shown(text)} is not an ISO 8601 duration such as P30D or PT45S", field)
    try:
        parsed = _ADAPTER.validate_python(value)
    except ValidationError:
        raise DomainError(f"{shown(text)} is not an ISO 8601 duration such as P30D or PT45S", field) from None
    if parsed <= timedelta(0):
        raise DomainError("must be a positive duration", field)
    return parsed


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    if rest == 0:
        return f"P{days}D"
    return f"P{days}DT{rest}S" if days else f"PT{rest}S"
