"""Customer calendars: time zones, business days, send windows. Pure functions."""

from __future__ import annotations

from babel.core import get_global

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
