"""Internal notifications by e-mail: approvals and escalations waiting for a role, lapsed SLAs
to the next tier, a daily digest per collector (who hears what: domain/notifications.py).

The same SMTP settings and machinery as customer notices (aiosmtplib, Jinja2 templates in
both languages, ``build_message``). Idempotent the same way: the sent log row of a
notification's key (kind, item, recipient, day) is claimed before sending and marked sent as
soon as the server accepts, so a retry or a second run sends nothing twice. The log is what
an auditor reads (`notify log`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Callable

import aiosmtplib
from babel.dates import format_timedelta
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from temporalio import activity

from activities.contracts import NOTIFY_TEAM, NotifyOutcome, NotifyRequest, NotifyResult
from activities.notices import SmtpSettings, _smtp_code, heartbeating
from activities.rendering import FALLBACK_LANGUAGE, babel_locale, RenderedNotice, build_message, header_safe
from domain.notifications import Notification, plan_notifications
from domain.policy import Policy, Role
from domain.users import UserDirectory
from store.db import Database
from store.notifications import SentLog, assigned_open_cases, pending_items

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "internal"
_NAMESPACE = uuid.UUID("6f1c2a8e-3b7d-5e40-9a51-0c2d7e8f9b31")

ROLE_NAMES = {
    "en": {Role.collector: "collector", Role.supervisor: "supervisor", Role.finance_manager: "finance manager"},
    "zh-CN": {Role.collector: "催收员", Role.supervisor: "主管", Role.finance_manager: "财务经理"},
}
KIND_NAMES = {
    "en": {"write_off": "write-off", "plan": "payment plan", "escalation": "escalation", "credit": "dispute credit",
           "cancel": "cancellation", "cancellation": "cancellation", "pause": "dunning pause",
           "dispute": "dispute past its deadline"},
    "zh-CN": {"write_off": "核销申请", "plan": "付款计划", "escalation": "升级案件", "credit": "争议贷项",
              "cancel": "取消申请", "cancellation": "取消申请", "pause": "催收暂停", "dispute": "逾期未决争议"},
}


def message_id_for(notification: Notification, domain: str) -> str:
    """Stable per sent-log key: a retry re-sends the very same message."""
    key = "|".join((notification.kind, notification.item, notification.recipient, notification.day.isoformat()))
    return f"<team-{uuid.uuid5(_NAMESPACE, key)}@{domain}>"


def moment(as_of: date | None, now: datetime) -> tuple[datetime, date]:
    """The time the notifications are worked out for: ``now``, or the end of ``as_of`` (UTC)."""
    if as_of is None:
        return now, now.astimezone(timezone.utc).date()
    return datetime.combine(as_of, time.max, tzinfo=timezone.utc), as_of


class InternalRenderer:
    def __init__(self, directory: Path = TEMPLATES, sender_name: str = "Accounts Receivable") -> None:
        self.sender_name = sender_name
        self.env = Environment(loader=FileSystemLoader(str(directory)),
                               autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                               undefined=StrictUndefined, keep_trailing_newline=True)

    def language(self, wanted: str) -> str:
        available = sorted({n.split("/")[0] for n in self.env.list_templates() if "/" in n})
        if wanted in available:
            return wanted
        return next((lang for lang in available if lang.split("-")[0] == wanted.split("-")[0]), FALLBACK_LANGUAGE)

    def render(self, n: Notification) -> RenderedNotice:
        language = self.language(n.language)
        roles, kinds = ROLE_NAMES.get(language, ROLE_NAMES["en"]), KIND_NAMES.get(language, KIND_NAMES["en"])
        stamp = lambda at: at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if at else "-"  # noqa: E731
        context: dict = {"recipient": n.recipient, "role_name": roles[n.role], "sender_name": self.sender_name,
                         "language": language, "day": n.day.isoformat(),
                         "sla": format_timedelta(n.sla, locale=babel_locale(language)) if n.sla else "",
                         "lapsed_role_name": roles[n.lapsed_tier] if n.lapsed_tier else ""}
        if n.items:
            item = n.items[0]
            context["item"] = {
                "kind": item.kind, "kind_name": kinds.get(item.kind, item.kind.replace("_", " ")),
                "invoice_id": item.invoice_id,
                "customer_name": item.customer_name, "case_id": item.case_id,
                "amount": f"{item.amount} {item.currency}", "requested_by": item.requested_by,
                "requested_at": stamp(item.requested_at), "due": stamp(item.sla_due_at),
            }
            context["lapsed_on"] = stamp(item.requested_at + n.sla) if n.sla else "-"
        context["cases"] = [
            {"invoice_id": c.invoice_id, "customer_name": c.customer_name, "status": c.status,
             "balance": f"{c.balance} {c.currency}", "next_action": c.next_action,
             "next_action_at": stamp(c.next_action_at) if c.next_action_at else ""}
            for c in n.cases
        ]
        text = self.env.get_template(f"{language}/{n.kind}.txt.j2")
        subject = "".join(text.blocks["subject"](text.new_context(context)))
        body = text.render(context)
        body = body.split("\n", 1)[1] if "\n" in body else body  # the first line is the subject block
        html = self.env.get_template(f"{language}/{n.kind}.html.j2").render(context)
        return RenderedNotice(subject=header_safe(subject), text=body, html=html, language=language)


class TeamNotifier:
    def __init__(self, db: Database, smtp: SmtpSettings, users: Callable[[], UserDirectory],
                 policy: Callable[[], Policy], renderer: InternalRenderer | None = None) -> None:
        self.db = db
        self.smtp = smtp
        self.users = users  # read again on every run: people join, leave and change addresses
        self.policy = policy
        self.renderer = renderer or InternalRenderer()
        self.log = SentLog(db)

    @activity.defn(name=NOTIFY_TEAM)
    async def notify_team(self, request: NotifyRequest) -> NotifyResult:
        async with heartbeating():
            return await self.run(request.as_of, request.now)

    async def run(self, as_of: date | None, now: datetime) -> NotifyResult:
        at, day = moment(as_of, now)
        policy, users = await asyncio.to_thread(self.policy), await asyncio.to_thread(self.users)
        items = await asyncio.to_thread(pending_items, self.db)
        cases = await asyncio.to_thread(assigned_open_cases, self.db)
        plan = plan_notifications(items, cases, users.users, policy, at, day)
        outcomes = [await self.deliver(n) for n in plan.notifications]
        return NotifyResult(
            as_of=day, sent=sum(o.status == "sent" for o in outcomes),
            already_sent=sum(o.status == "already_sent" for o in outcomes),
            failed=sum(o.status in ("failed", "rejected") for o in outcomes),
            outcomes=outcomes, skipped=list(plan.skipped),
        )

    async def deliver(self, n: Notification) -> NotifyOutcome:
        rendered = self.renderer.render(n)
        message_id = message_id_for(n, self.smtp.message_domain)
        case_ids = ",".join(sorted({i.case_id for i in n.items} | {c.case_id for c in n.cases}))
        claim = await asyncio.to_thread(
            self.log.claim, kind=n.kind, item=n.item, recipient=n.recipient, day=n.day, email=n.email,
            role=n.role.value, case_ids=case_ids, subject=rendered.subject, message_id=message_id)
        outcome = dict(kind=n.kind, item=n.item, recipient=n.recipient, email=n.email, day=n.day,
                       subject=rendered.subject, message_id=message_id)
        if claim.status in ("sent", "rejected"):
            return NotifyOutcome(**outcome, status="already_sent" if claim.status == "sent" else "already_rejected")
        message = build_message(rendered, message_id=message_id, sender=self.smtp.sender, recipient_name=n.recipient,
                                recipient_email=n.email, sent_at=claim.first_attempt_at)
        client = aiosmtplib.SMTP(hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                                 password=self.smtp.password, start_tls=self.smtp.starttls, timeout=self.smtp.timeout)
        accepted = False
        try:
            async with client:
                await message.send(client)
                accepted = True
                await asyncio.to_thread(self.log.finish, n.key, "sent")  # before QUIT: the window for a duplicate
        except (aiosmtplib.SMTPException, OSError) as error:
            if accepted:
                log.info("SMTP session ended uncleanly after acceptance: %r", error)
                await asyncio.to_thread(self.log.finish, n.key, "sent")
            else:
                code, text = _smtp_code(error)
                permanent = code is not None and 500 <= code < 600
                await asyncio.to_thread(self.log.finish, n.key, "rejected" if permanent else "sending",
                                        f"{code} {text}" if code else repr(error))
                log.warning("internal notification %s to %s not sent: %s", n.kind, n.email, error)
                return NotifyOutcome(**outcome, status="rejected" if permanent else "failed",
                                     error=f"{code} {text}" if code else repr(error))
        return NotifyOutcome(**outcome, status="sent")


