"""The day a sweep runs as of: a day that has begun somewhere, never a day to come."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from domain.errors import DomainError
from domain.inputs import check_overdue_opening, check_sweep_day
from domain.policy import InputPolicy

RULES = InputPolicy()
NOW = datetime(2026, 12, 7, 11, 0, tzinfo=timezone.utc)  # 01:00 on 12-08 in Kiribati (UTC+14)


def test_today_the_past_and_a_day_begun_east_of_utc_are_accepted():
    for day in (date(2026, 12, 7), date(2026, 11, 1), date(2026, 12, 8)):
        assert check_sweep_day(day, NOW, RULES) == day
    assert check_sweep_day(None, NOW, RULES) is None  # today, in the sweep's own time zone


def test_a_day_that_has_begun_nowhere_is_refused_naming_the_field():
    with pytest.raises(DomainError) as refused:
        check_sweep_day(date(2026, 12, 9), NOW, RULES)
    assert refused.value.field == "as_of" and "in the future" in str(refused.value)


def test_a_day_before_the_policy_s_earliest_date_is_refused():
    with pytest.raises(DomainError) as refused:
        check_sweep_day(date(1900, 1, 1), NOW, RULES)
    assert refused.value.field == "as_of"


def test_a_case_opens_as_overdue_only_once_its_invoice_is_due():
    check_overdue_opening("overdue", "INV-1", date(2026, 12, 7), date(2026, 12, 7))  # due today
    check_overdue_opening("manual", "INV-1", date(2026, 12, 20), date(2026, 12, 7))
    check_overdue_opening("dispute", "INV-1", date(2026, 12, 20), date(2026, 12, 7))
    with pytest.raises(DomainError, match="not due until 2026-12-08") as refused:
        check_overdue_opening("overdue", "INV-1", date(2026, 12, 8), date(2026, 12, 7))
    assert refused.value.field == "reason"


def test_a_sweep_cron_must_run_at_least_monthly_and_at_most_hourly():
    from datetime import datetime, timedelta, timezone

    from domain.errors import DomainError
    from domain.inputs import check_sweep_cadence

    start = datetime(2026, 12, 8, 6, tzinfo=timezone.utc)

    def every(step: timedelta, n: int = 5) -> list[datetime]:
        return [start + k * step for k in range(n)]

    for fine in (timedelta(days=1), timedelta(days=7), timedelta(days=31), timedelta(hours=1)):
        check_sweep_cadence("cron", every(fine))
    for cadence, match in ((timedelta(days=4 * 365), "less often than monthly"),
                           (timedelta(minutes=1), "more often than hourly")):
        with pytest.raises(DomainError, match=match) as refused:
            check_sweep_cadence("cron", every(cadence))
        assert refused.value.field == "cron"
    with pytest.raises(DomainError, match="never fires"):
        check_sweep_cadence("cron", [start])
