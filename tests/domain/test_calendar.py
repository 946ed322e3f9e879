"""Business calendars and send windows, checked against known dates."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from domain.calendar import default_timezone, holiday_name, is_business_day, next_send_moment
from domain.policy import NoticePolicy

OFFICE = NoticePolicy(business_days_only=True, send_window=(time(9), time(17)))
UTC = timezone.utc


@pytest.mark.parametrize(
    "country, day, working",
    [
        ("CN", "2026-02-16", False),  # Spring Festival eve
        ("CN", "2026-02-17", False),  # Spring Festival
        ("CN", "2026-02-23", False),  # day off, made up on Saturday 28 February
        ("CN", "2026-02-14", True),   # Saturday, an official make-up working day
        ("CN", "2026-01-04", True),   # Sunday, an official make-up working day
        ("CN", "2026-10-01", False),  # National Day
        ("DE", "2026-12-25", False),  # Christmas
        ("DE", "2026-10-03", False),  # German Unity Day (a Saturday anyway)
        ("DE", "2026-12-28", True),
        ("US", "2026-07-03", False),  # Independence Day observed (a Friday)
        ("US", "2026-11-26", False),  # Thanksgiving
        ("US", "2026-11-27", True),
        ("US", "2026-11-28", False),  # Saturday
    ],
)
def test_business_days(country, day, working):
    assert is_business_day(date.fromisoformat(day), country) is working


def test_holiday_names_are_known():
    assert "Spring Festival" in holiday_name(date(2026, 2, 17), "CN")
    assert holiday_name(date(2026, 11, 26), "US") == "Thanksgiving Day"


def test_a_notice_due_during_spring_festival_waits_for_the_first_working_morning():
    due = datetime(2026, 2, 16, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, Spring Festival eve
    moment = next_send_moment(due, "CN", "Asia/Shanghai", OFFICE)
    assert moment == datetime(2026, 2, 24, 1, 0, tzinfo=UTC)  # Tue 24 Feb, 09:00 Shanghai


def test_a_make_up_saturday_is_a_sending_day_in_china():
    due = datetime(2026, 2, 13, 10, 0, tzinfo=UTC)  # Friday 18:00 in Shanghai: window closed
    assert next_send_moment(due, "CN", "Asia/Shanghai", OFFICE) == datetime(2026, 2, 14, 1, 0, tzinfo=UTC)


def test_window_is_in_the_customers_local_time():
    early = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 07:00 in New York
    assert next_send_moment(early, "US", "America/New_York", OFFICE) == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    inside = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # 10:30 in New York
    assert next_send_moment(inside, "US", "America/New_York", OFFICE) == inside
    late = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # Wed 18:00 NY; Thu is Thanksgiving
    assert next_send_moment(late, "US", "America/New_York", OFFICE) == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def test_weekend_and_christmas_in_germany():
    due = datetime(2026, 12, 24, 17, 0, tzinfo=UTC)  # Thu 18:00 Berlin; 25th, 26th, weekend follow
    assert next_send_moment(due, "DE", "Europe/Berlin", OFFICE) == datetime(2026, 12, 28, 8, 0, tzinfo=UTC)


def test_window_follows_daylight_saving():
    due = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # Monday after Berlin switched to CEST
    assert next_send_moment(due, "DE", "Europe/Berlin", OFFICE) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_calendars_off_sends_at_any_time():
    anytime = NoticePolicy(business_days_only=False, send_window=None)
    due = datetime(2026, 2, 17, 3, 0, tzinfo=UTC)
    assert next_send_moment(due, "CN", "Asia/Shanghai", anytime) == due


def test_unknown_country_falls_back_to_weekdays():
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    moment = next_send_moment(saturday, "ZZ", "UTC", OFFICE)
    assert moment == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_default_timezones():
    assert default_timezone("CN") == "Asia/Shanghai"
    assert default_timezone("US") == "America/New_York"
    assert default_timezone("DE") == "Europe/Berlin"
    assert default_timezone("??") == "UTC"


def test_every_moment_is_an_allowed_one():
    due = datetime(2026, 1, 1, tzinfo=UTC)
    for hours in range(0, 24 * 60, 7):
        moment = next_send_moment(due + timedelta(hours=hours), "CN", "Asia/Shanghai", OFFICE)
        local = moment.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
        assert moment >= due + timedelta(hours=hours)
        assert is_business_day(local.date(), "CN") and time(9) <= local.time() < time(17)
