"""Notices as customers receive them: one message per customer, in their language, on their business days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


from app.services import CaseService
from domain.calendar import holiday_name, is_business_day
from tests.harness import advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ROOT_POLICY = (__import__("pathlib").Path(__file__).resolve().parents[2] / "policies" / "default.toml").read_text()
SHANGHAI = ZoneInfo("Asia/Shanghai")
CSV_HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade\n"
THREE_INVOICES = CSV_HEADER + (
    "CN-1,C-SH,上海华贸有限公司,finance@shtrade.test,CN,zh-CN,CNY,12345.60,2026-01-08,2026-02-07,B\n"
    "CN-2,C-SH,上海华贸有限公司,finance@shtrade.test,CN,zh-CN,CNY,800.00,2026-01-09,2026-02-07,B\n"
    "CN-3,C-SH,上海华贸有限公司,finance@shtrade.test,CN,zh-CN,CNY,2000.50,2026-01-10,2026-02-07,B\n"
)


def policy_file(tmp_path, version: str, replacements: dict[str, str]):
    text = ROOT_POLICY.replace('version = "default-2026.12-3"', f'version = "{version}"')
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{version}.toml"
    path.write_text(text)
    return path


async def start(time_env, make_context, sqlite_url, smtp, tmp_path, policy=None):
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    if policy is not None:
        context.settings.policy_path = policy
    service = CaseService(context)
    (tmp_path / "cn.csv").write_text(THREE_INVOICES)
    service.import_invoices(tmp_path / "cn.csv")
    return service


async def test_three_invoices_due_together_make_one_chinese_message(time_env, make_context, sqlite_url, smtp, tmp_path):
    service = await start(time_env, make_context, sqlite_url, smtp, tmp_path)
    async with build_worker(time_env.client, service.ctx):
        for invoice in ("CN-1", "CN-2", "CN-3"):
            await service.open_case(invoice)
        await advance(time_env, timedelta(days=6))  # friendly reminder at P3D (moved to a working morning)
        await eventually(lambda: all("ReminderSent" in event_types(service, i) for i in ("CN-1", "CN-2", "CN-3")))
        [mail] = smtp.to("finance@shtrade.test")
        assert mail.subject == "付款提醒：3 张发票已逾期"
        body = mail.body()
        for invoice, amount in (("CN-1", "¥12,345.60"), ("CN-2", "¥800.00"), ("CN-3", "¥2,000.50")):
            assert invoice in body and amount in body
        assert "未付金额合计：¥15,146.10" in body
        sent = [next(e for e in service.show(i)["events"] if e["type"] == "ReminderSent") for i in ("CN-1", "CN-2", "CN-3")]
        assert {e["data"]["message_id"] for e in sent} == {mail.message_id}  # each case records the shared message
        local = datetime.fromisoformat(sent[0]["occurred_at"]).astimezone(SHANGHAI)
        assert is_business_day(local.date(), "CN") and time(9) <= local.time() < time(17)
        await terminate_cases(service)


async def test_without_batching_each_invoice_gets_its_own_message(time_env, make_context, sqlite_url, smtp, tmp_path):
    policy = policy_file(tmp_path, "no-batch-1", {"one_message_per_customer = true": "one_message_per_customer = false"})
    service = await start(time_env, make_context, sqlite_url, smtp, tmp_path, policy)
    async with build_worker(time_env.client, service.ctx):
        for invoice in ("CN-1", "CN-2"):
            await service.open_case(invoice)
        await advance(time_env, timedelta(days=6))
        await eventually(lambda: len(smtp.to("finance@shtrade.test")) == 2)
        assert sorted(m.subject for m in smtp.to("finance@shtrade.test")) == [
            "付款提醒：发票 CN-1已逾期", "付款提醒：发票 CN-2已逾期"]
        await terminate_cases(service)


def next_public_holiday(after: date) -> date:
    day = after
    while is_business_day(day, "CN") or holiday_name(day, "CN") is None:
        day += timedelta(days=1)
    return day


async def test_no_notice_on_a_public_holiday(time_env, make_context, sqlite_url, smtp, tmp_path):
    now = await time_env.get_current_time()  # the test server's clock, moved on by earlier tests
    holiday = next_public_holiday(now.astimezone(SHANGHAI).date() + timedelta(days=2))
    due = datetime.combine(holiday, time(10), SHANGHAI)  # mid-morning on the holiday
    offset = int((due - now).total_seconds())
    day = 86400
    policy = policy_file(tmp_path, "holiday-1", {
        '[[ladders.B]]\nname = "friendly"\nafter = "P3D"': f'[[ladders.B]]\nname = "friendly"\nafter = "PT{offset}S"',
        'name = "firm"\nafter = "P14D"': f'name = "firm"\nafter = "PT{offset + 11 * day}S"',
        'name = "final"\nafter = "P30D"': f'name = "final"\nafter = "PT{offset + 27 * day}S"',
    })
    service = await start(time_env, make_context, sqlite_url, smtp, tmp_path, policy)
    async with build_worker(time_env.client, service.ctx):
        await service.open_case("CN-1")
        planned = datetime.fromisoformat(service.show("CN-1")["next_action_at"]).astimezone(SHANGHAI)
        assert planned.date() > holiday and is_business_day(planned.date(), "CN") and planned.time() == time(9)
        await advance(time_env, due + timedelta(hours=2) - now)
        assert smtp.messages == [] and "ReminderSent" not in event_types(service, "CN-1")
        await advance(time_env, planned + timedelta(hours=1) - due - timedelta(hours=2))
        await eventually(lambda: "ReminderSent" in event_types(service, "CN-1"))
        sent_at = case_state(service, "CN-1").updated_at.astimezone(SHANGHAI)
        assert sent_at.date() == planned.date() and sent_at.time() >= time(9)
        await terminate_cases(service)
