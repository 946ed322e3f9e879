"""Customer calendars: time zones, business days, send windows. Pure functions."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global

from domain.policy import NoticePolicy

# Countries spanning several zones: the zone most of their business runs on.
_PREFERRED_ZONES = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "RU": "Europe/Moscow",
    "MX": "America/Mexico_City",
    "ID": "Asia/Jakarta",
    "CN": "Asia/Shanghai",
    "KZ": "Asia/Almaty",
    "AR": "America/Argentina/Buenos_Aires",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
}


def default_timezone(country: str) -> str:
    """The IANA zone a customer in ``country`` most likely works in."""
    code = country.upper()
    if code in _PREFERRED_ZONES:
        return _PREFERRED_ZONES[code]
    zones = get_global("territory_zones").get(code)
    return zones[0] if zones else "UTC"


def known_country(country: str) -> bool:
    return country.upper() in get_global("territory_zones")


# -- business days and send windows ------------------------------------------------------

_CALENDARS: dict[str, object] = {}


def _calendar(country: str):
    """The country's public holidays (and, where the package knows them, adjusted
    working days such as China's make-up weekends); None: weekends only."""
    code = country.upper()
    if code not in _CALENDARS:
        import holidays  # imported on first use: the CLI rarely needs it

        try:
            _CALENDARS[code] = holidays.country_holidays(code)
        except NotImplementedError:
            _CALENDARS[code] = None
    return _CALENDARS[code]


def preload() -> None:
    """Import every country's holiday tables now: the first calendar built imports all of them
    (``holidays.countries``). A worker calls this before it takes work: inside the first case
    activations of a worker starved of CPU by a burst of new cases, that import took seconds
    (once past the sandbox's 2-s deadlock check) and the worker stalled (docs/PERFORMANCE.md)."""
    import holidays.countries  # noqa: F401


def warm(country: str) -> None:
    """Build the country's calendar now. Building it reads the locale (for holiday
    names), which the workflow sandbox forbids; looking dates up afterwards does not."""
    _calendar(country)


def is_business_day(day: date, country: str) -> bool:
    calendar = _calendar(country)
    if calendar is None:
        return day.weekday() < 5
    return calendar.is_working_day(day)


def holiday_name(day: date, country: str) -> str | None:
    calendar = _calendar(country)
    return calendar.get(day) if calendar is not None else None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_send_moment(due: datetime, country: str, timezone_name: str, notices: NoticePolicy) -> datetime:
    """The first moment at or after ``due`` when a notice may go out: a business
    day of the customer's country, inside the send window of their local time."""
    window = notices.send_window
    if not notices.business_days_only and window is None:
        return due
    tz = zone(timezone_name)
    local = due.astimezone(tz)
    opens = window[0] if window else time(0)
    for _ in range(400):  # a year of holidays cannot exhaust this
        day = local.date()
        if not notices.business_days_only or is_business_day(day, country):
            if window is None or window[0] <= local.time() < window[1]:
                return local.astimezone(timezone.utc)
            if local.time() < window[0]:
                return datetime.combine(day, opens, tz).astimezone(timezone.utc)
        local = datetime.combine(day + timedelta(days=1), opens, tz)
    return due
