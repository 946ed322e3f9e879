"""The customer's self-service page behind the signed link in every notice: ``/c/{token}``.

A separate router: the link opens this page and its two forms, nothing else of the engine (the
console and the JSON API still need a user's token). The token names one customer (app/links.py);
an altered token is refused with 403, an expired or revoked one with 410, too many requests from one link
with 429. Each action is a command on the customer's own case with the actor ``customer:<id>``.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.errors import status_for
from api.i18n import LANGUAGES, describe_event, money, reason_text, refusal_text, translator
from app.links import LinkRefused
from app.selfservice import SelfService
from app.settings import PROJECT_DIR
from domain.errors import DomainError

router = APIRouter(prefix="/c", include_in_schema=False)
_ENV = Environment(loader=FileSystemLoader(str(PROJECT_DIR / "templates" / "customer")), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class RateLimit:
    """At most ``limit`` requests per link in any 60 seconds (in this process)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen[key]
        while seen and seen[0] <= now - 60:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        if len(self._seen) > 10000:  # forget idle links
            for idle in [k for k, v in self._seen.items() if not v or v[-1] <= now - 60]:
                del self._seen[idle]
        return True


def _self_service(request: Request) -> SelfService:
    if not hasattr(request.app.state, "self_service"):
        request.app.state.self_service = SelfService(request.app.state.service)
        request.app.state.link_limit = RateLimit()
    return request.app.state.self_service


def _language(code: str) -> str:
    base = (code or "en").split("-")[0].lower()
    return base if base in LANGUAGES else "en"


def _refusal(lang: str, key: str, status: int) -> HTMLResponse:
    t = translator(lang)
    html = _ENV.get_template("refused.html.j2").render(lang=lang, t=t, title=t("customer.link_error_title"),
                                                        message=t(key))
    return HTMLResponse(html, status_code=status)


def _open(request: Request, token: str) -> tuple[SelfService, str] | HTMLResponse:
    """The customer the link names, or the refusal to show (before anything is read or changed)."""
    selfservice = _self_service(request)
    lang = _language(request.headers.get("accept-language", "en"))
    if not request.app.state.link_limit.allow(token[-40:], selfservice.requests_per_minute):
        return _refusal(lang, "customer.too_many", 429)
    try:
        return selfservice, selfservice.customer_of(token)
    except LinkRefused as refused:
        if refused.reason in ("expired", "revoked"):  # signed by us: the customer's own language
            if refused.customer_id is not None:
                lang = _language(_customer_language(selfservice, refused.customer_id))
            return _refusal(lang, f"customer.link_{refused.reason}", 410)
        return _refusal(lang, "customer.link_invalid", 403)


def _page(selfservice: SelfService, customer_id: str, token: str, status: int = 200, done: str = "",
          error: str = "", form: dict | None = None) -> HTMLResponse:
    try:
        data = selfservice.page(customer_id)
    except DomainError:
        return _refusal("en", "customer.link_invalid", 404)
    lang = _language(data["language"])
    t = translator(lang)
    history = [{**describe_event(e, lang), "invoice_id": e["invoice_id"]} for e in data["history"]]
    html = _ENV.get_template("page.html.j2").render(
        lang=lang, t=t, customer=data, items=data["items"], history=history, token=token, done=done, error=error,
        form=form or {}, today=datetime.now(timezone.utc).date().isoformat(),
        money=lambda amount, currency: money(amount, currency, lang), status_name=lambda s: t(f"status.{s}"),
        reasons=[(code, reason_text(code, lang)) for code in selfservice.dispute_reasons],
        intervals=[(code, t(f"customer.every.{code}")) for code in selfservice.PLAN_INTERVALS],
        attachment_types=",".join(selfservice.ctx.policy().self_service.attachment_types))
    return HTMLResponse(html, status_code=status)


@router.get("/{token}", response_class=HTMLResponse)
def customer_page(request: Request, token: str):
    opened = _open(request, token)
    if isinstance(opened, HTMLResponse):
        return opened
    return _page(*opened, token)


async def _act(request: Request, token: str, action: str) -> HTMLResponse:
    opened = _open(request, token)
    if isinstance(opened, HTMLResponse):
        return opened
    selfservice, customer_id = opened
    submitted = await request.form()
    form = {k: v.strip() for k, v in submitted.items() if isinstance(v, str)}
    invoice = form.get("invoice_id", "")
    upload = submitted.get("attachment")
    attachment = None
    if upload is not None and not isinstance(upload, str) and upload.filename:
        # one byte beyond the limit is enough to refuse it (the decider names the limit)
        attachment = (upload.filename, await upload.read(selfservice.ctx.policy().self_service.attachment_max_bytes + 1))

    def lang_of() -> str:
        return _language(_customer_language(selfservice, customer_id))

    try:
        if action == "promise":
            reply = await selfservice.promise(customer_id, invoice, form.get("amount", ""), form.get("date", ""))
            key, values = "customer.done.promise", {"date": form.get("date", "")}
        elif action == "plan":
            reply = await selfservice.request_plan(customer_id, invoice, form.get("instalments", ""),
                                                   form.get("every", ""))
            waiting = reply["status"] == "awaiting_approval"
            key = "customer.done.plan_approval" if waiting else "customer.done.plan"
            values = {"count": form.get("instalments", "")}
        elif action == "contact":
            reply = await selfservice.correct_contact(customer_id, form.get("email", ""))
            key, values = "customer.done.contact", {"email": reply["email"]}
        elif action == "dispute":
            reply = await selfservice.dispute(customer_id, invoice, form.get("reason", ""), form.get("amount", ""),
                                              form.get("comment", ""), attachment)
            key, values = "customer.done.dispute", {"reason": reason_text(form.get("reason", ""), lang_of())}
        else:
            reply = await selfservice.report_payment(customer_id, invoice, form.get("amount", ""),
                                                     form.get("paid_on", ""), form.get("reference", ""))
            key, values = "customer.done.paid", {"reference": form.get("reference", "")}
    except DomainError as refused:
        page_lang = _language(_customer_language(selfservice, customer_id))
        message = translator(page_lang)("customer.refused", message=refusal_text(refused, page_lang))
        return _page(selfservice, customer_id, token, status=status_for(refused), error=message,
                     form={"action": action, **form})
    lang = _language(_customer_language(selfservice, customer_id))
    amount = form.get("amount") or reply["balance"]
    done = translator(lang)(key, invoice=reply["invoice_id"], amount=money(amount, reply["currency"], lang), **values)
    return _page(selfservice, customer_id, token, done=done)


def _customer_language(selfservice: SelfService, customer_id: str) -> str:
    try:
        return selfservice.page(customer_id)["language"]
    except DomainError:
        return "en"


ACTIONS = ("promise", "paid", "dispute", "plan", "contact")  # the forms of the page, nothing else


@router.post("/{token}/{action}", response_class=HTMLResponse)
async def act(request: Request, token: str, action: str):
    if action not in ACTIONS:
        return HTMLResponse("Not Found", status_code=404)
    return await _act(request, token, action)
