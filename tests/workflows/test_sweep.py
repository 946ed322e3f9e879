"""The daily sweep: correct counts, one case per invoice however it is run."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from app.services import CaseService
from app.sweeps import create_schedule, run_sweep
from domain.errors import DomainError
from domain.money import Money
from store.schema import case_summary
from tests.harness import eventually, terminate_cases
from tests.ledgers import write_ledger
from worker import build_worker

AS_OF = date(2026, 11, 20)


def opened_streams(service: CaseService) -> dict[UUID, int]:
    """CaseOpened events per stream: exactly one each, or a case was opened twice."""
    counts: dict[UUID, int] = {}
    for record in service.ctx.store.read_all():
        if type(record.event).__name__ == "CaseOpened":
            counts[record.stream_id] = counts.get(record.stream_id, 0) + 1
    return counts


def projected_cases(service: CaseService) -> int:
    with service.ctx.db.read() as session:
        return session.execute(select(func.count()).select_from(case_summary)).scalar_one()


@pytest.fixture
async def ledger_service(time_env, make_context, sqlite_url, smtp, tmp_path):
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    service = CaseService(context)
    service.import_invoices(write_ledger(tmp_path / "ledger.csv", total=120, overdue=40, as_of=AS_OF))
    for n in range(5):  # five overdue invoices were paid before any case
        service.ctx.ledger.record_payment(f"INV-{n:07d}", f"early-{n}", Money.from_minor(
            service.ctx.ledger.invoice(f"INV-{n:07d}").amount.to_minor(), "USD"), AS_OF, "early")
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


async def test_repeated_sweeps_open_each_case_once(ledger_service):
    service = ledger_service
    first = await run_sweep(service.ctx, AS_OF, page_size=7)
    assert first["invoices_scanned"] == 120
    assert first["cases_opened"] == 35 and first["already_open"] == 0
    assert first["skipped"] == {"not_yet_overdue": 80, "paid": 5, "failed": 0}
    second = await run_sweep(service.ctx, AS_OF, page_size=7)
    assert second["cases_opened"] == 0 and second["already_open"] == 35
    streams = await eventually(lambda: (s := opened_streams(service)) and len(s) == 35 and s)
    assert set(streams.values()) == {1}


async def test_overlapping_sweeps_open_each_case_once(ledger_service):
    service = ledger_service
    results = await asyncio.gather(*(run_sweep(service.ctx, AS_OF, page_size=4) for _ in range(3)))
    assert sum(r["cases_opened"] for r in results) == 35
    assert all(r["cases_opened"] + r["already_open"] == 35 for r in results)
    streams = await eventually(lambda: (s := opened_streams(service)) and len(s) == 35 and s)
    assert set(streams.values()) == {1}


async def test_a_later_day_finds_the_newly_overdue(ledger_service):
    service = ledger_service
    assert (await run_sweep(service.ctx, AS_OF))["cases_opened"] == 35
    later = await run_sweep(service.ctx, AS_OF + timedelta(days=10))
    # invoices due on day 1..7 after AS_OF are now past due + the 3-day grace
    assert later["cases_opened"] == sum(1 for n in range(40, 120) if 1 + n % 60 <= 7)


async def test_ten_thousand_invoices(dev_env, make_context, sqlite_url, smtp, tmp_path):
    context = make_context(sqlite_url, client=dev_env.client, smtp_port=smtp.port)
    service = CaseService(context)
    service.import_invoices(write_ledger(tmp_path / "big.csv", total=10_000, overdue=300, as_of=AS_OF))
    async with build_worker(dev_env.client, context):
        started = time.monotonic()
        result = await run_sweep(service.ctx, AS_OF)
        elapsed = time.monotonic() - started
        print(f"\nsweep of 10,000 invoices (300 overdue): {elapsed:.1f}s")
        assert result["invoices_scanned"] == 10_000
        assert result["cases_opened"] == 300 and result["skipped"]["not_yet_overdue"] == 9_700
        assert projected_cases(service) == 300  # it returned once the cases recorded their opening
        again = await run_sweep(service.ctx, AS_OF)
        assert again["cases_opened"] == 0 and again["already_open"] == 300


async def test_schedule_is_created_then_updated(dev_env, make_context, sqlite_url):
    context = make_context(sqlite_url, client=dev_env.client)
    created = await create_schedule(context, "0 6 * * *", "Asia/Shanghai")
    assert created["created"] and created["timezone"] == "Asia/Shanghai"
    assert all(t.endswith("22:00:00+00:00") for t in created["next_runs"])  # 06:00 in Shanghai
    updated = await create_schedule(context, "30 7 * * 1-5", "Europe/Berlin")
    assert not updated["created"] and updated["cron"] == "30 7 * * 1-5"
    with pytest.raises(DomainError, match="time zone"):
        await create_schedule(context, "0 6 * * *", "Mars/Olympus")
    with pytest.raises(DomainError, match="cron"):
        await create_schedule(context, "every day", "UTC")
    handle = (await context.client()).get_schedule_handle(created["schedule_id"])
    described = await handle.describe()
    assert described.schedule.spec.cron_expressions == ["30 7 * * 1-5"] or described.schedule.spec.calendars
    await handle.delete()


async def test_a_sweep_without_a_date_uses_today_in_its_time_zone(dev_env, make_context, sqlite_url, smtp, tmp_path):
    """How the CLI (`sweep` without --as-of) and the Schedule start it: as_of=None."""
    from datetime import datetime, timezone as tz
    from zoneinfo import ZoneInfo

    context = make_context(sqlite_url, client=dev_env.client, smtp_port=smtp.port)
    service = CaseService(context)
    today = datetime.now(tz.utc).date()
    service.import_invoices(write_ledger(tmp_path / "today.csv", total=30, overdue=6, as_of=today))
    async with build_worker(dev_env.client, context):
        result = await run_sweep(service.ctx, None)
        assert result["as_of"] == today.isoformat()
        assert result["cases_opened"] == 6 and result["skipped"]["not_yet_overdue"] == 24
        zone = "Pacific/Kiritimati"  # UTC+14: its date is often a day ahead of UTC's
        ahead = await run_sweep(service.ctx, None, timezone=zone)
        assert ahead["as_of"] == datetime.now(ZoneInfo(zone)).date().isoformat()
        assert ahead["cases_opened"] == 0 and ahead["already_open"] == 6
        await terminate_cases(service)
