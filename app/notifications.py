"""Use case: e-mail the team what waits for them (docs/CONTROLS.md, "Internal notifications").

`notify run` and the daily sweep (behind the workflow patch "internal-notifications") both
end up in ``TeamNotifier.run``: the same plan, the same sent log, nothing sent twice.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from activities.internal_mail import TeamNotifier
from app.context import Context, smtp_settings
from domain.inputs import check_report_day
from store.notifications import SentLog


def notifier(ctx: Context) -> TeamNotifier:
    return TeamNotifier(ctx.db, smtp_settings(ctx.settings), ctx.read_users, ctx.policy)


async def run_notifications(ctx: Context, as_of: date | None = None) -> dict:
    now = datetime.now(timezone.utc)
    if as_of is not None:
        check_report_day(as_of, "as-of", now.date(), ctx.policy().inputs)
    result = await notifier(ctx).run(as_of, now)
    return result.model_dump(mode="json")


def sent_log(ctx: Context, start: date | None = None, end: date | None = None) -> list[dict]:
    return SentLog(ctx.db).rows(start, end)
