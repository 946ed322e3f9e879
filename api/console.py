"""The supervisor console: server-rendered pages (Jinja2, autoescaped) under ``/console``.

Sign-in is with an API token; the session is a signed cookie. Every POST must
carry the session's CSRF token, and every page and form checks the viewer's
role against the same ``ROLE_MATRIX`` as the JSON API. Business rules (tier,
authority limit, four eyes) stay in the domain: a refused command comes back
as a message on the page and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Awaitable, Callable
from urllib.parse import quote, urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api import charts
from api.errors import unavailable_text
from api.i18n import (LANGUAGES, age, agenda_text, describe_event, money, number, pick_language, reason_text,
                      refusal_text, role_name, translator, when)
from app.authorization import ROLE_MATRIX, allowed
from api.session import CSRF_FIELD, Session, csrf_ok, same_origin
from app import reports
from app.services import CaseService
from app.settings import PROJECT_DIR
from app.tokens import token_fingerprint
from domain.authority import approval_authority
from domain.errors import DomainError
from domain.money import Money
from domain.events import EscalationDecision
from domain.policy import Role
from domain.state import TERMINAL, CaseStatus
from domain.users import User

TEMPLATES = PROJECT_DIR / "templates" / "console"
KEY_FIELD = "idempotency_key"  # a hidden field of every case form: a fresh UUID per rendered form
router = APIRouter(prefix="/console", include_in_schema=False)


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class ConsoleForbidden(Exception):
    def __init__(self, message_key: str, **values) -> None:
        self.message_key = message_key
        self.values = values


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(when=when, decisions=[d.value for d in EscalationDecision], statuses=list(CaseStatus.__members__),
                       grades=["A", "B", "C", "D"], buckets=reports.AGING_BUCKETS, key_field=KEY_FIELD,
                       new_key=lambda: str(uuid4()))
    return env


_ENV = environment()


# -- session, user, rendering ---------------------------------------------------------------------


def session_of(request: Request) -> Session:
    return request.state.session


def language(request: Request) -> str:
    return pick_language(session_of(request).get("lang"), request.headers.get("accept-language"))


def service(request: Request) -> CaseService:
    return request.app.state.service


def viewer(request: Request) -> User | None:
    """The signed-in user; a session whose token was re-issued (or whose user left the
    users file) is ended."""
    session = session_of(request)
    name = session.get("user")
    if not name:
        return None
    user = request.app.state.users.get(name)
    if user is None or token_fingerprint(user) != session.get("fp"):
        session.reset(lang=session.get("lang"))
        return None
    return user


def require(request: Request, action: str) -> User:
    user = viewer(request)
    if user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if not allowed(action, user.role):
        raise ConsoleForbidden("error.forbidden_text", name=user.name, role=user.role.value)
    return user


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    lang = language(request)
    session = session_of(request)
    user = viewer(request)
    t = translator(lang)
    page = _ENV.get_template(template).render(
        request=request, lang=lang, languages=LANGUAGES, t=t, user=user, csrf=session.csrf, csrf_field=CSRF_FIELD,
        flashes=session.take_flashes(), path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        money=lambda amount, currency: money(amount, currency, lang), number=lambda v: number(v, lang),
        role_name=lambda r: role_name(r, lang), status_name=lambda s: t(f"status.{s}"),
        reason_text=lambda code: reason_text(code, lang),
        agenda=lambda text: agenda_text(text, lang),
        can=lambda action: user is not None and allowed(action, user.role), **context,
    )
    return HTMLResponse(page, status_code=status)


async def checked_form(request: Request) -> dict[str, str]:
    """The submitted form, after the CSRF token and the Origin header are checked."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same_origin(request) or not csrf_ok(session_of(request), values.get(CSRF_FIELD)):
        raise ConsoleForbidden("error.csrf")
    return values


def back_to(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


def safe_next(value: str | None) -> str:
    """Only a path inside the console, never another site."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/worklist"


def case_url(case_id: str) -> str:
    return f"/console/cases/{quote(case_id, safe='')}"


def install(app) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired):
        return back_to("/console/login?" + urlencode({"next": error.next_path}))

    @app.exception_handler(ConsoleForbidden)
    async def _forbidden(request: Request, error: ConsoleForbidden):
        t = translator(language(request))
        values = dict(error.values)
        if "role" in values:
            values["role"] = role_name(values["role"], language(request))
        return render(request, "error.html.j2", status=403, title=t("error.forbidden"),
                      message=t(error.message_key, **values))


def missing_page(request: Request, status: int) -> HTMLResponse:
    """The console's own page for an address it has no page at (404), or that only takes a form
    (405: the address of a button, opened again)."""
    t = translator(language(request))
    return render(request, "error.html.j2", status=status, title=t("error.not_found"), message=t("error.no_page"))


# -- sign in / out, language ----------------------------------------------------------------------


@router.get("/")
def home(request: Request):
    return back_to("/console/worklist" if viewer(request) else "/console/login")


@router.get("/login")
def login_page(request: Request, next: str | None = None):
    return render(request, "login.html.j2", next=safe_next(next))


@router.post("/login")
async def login(request: Request):
    form = await checked_form(request)
    session = session_of(request)
    t = translator(language(request))
    user = request.app.state.users.by_token(form.get("token", "").strip())
    if user is None:
        session.flash(t("login.invalid"), "error")
        return render(request, "login.html.j2", status=401, next=safe_next(form.get("next")))
    session.reset(user=user.name, fp=token_fingerprint(user), lang=session.get("lang"))
    session.flash(t("login.done", name=user.name))
    return back_to(safe_next(form.get("next")))


@router.post("/logout")
async def logout(request: Request):
    await checked_form(request)
    session = session_of(request)
    session.reset(lang=session.get("lang"))
    session.flash(translator(language(request))("logout.done"))
    return back_to("/console/login")


@router.post("/lang")
async def switch_language(request: Request):
    form = await checked_form(request)
    session = session_of(request)
    session["lang"] = pick_language(form.get("lang"))
    return back_to(safe_next(form.get("next")))


# -- worklist ---------------------------------------------------------------------------------------


@router.get("/worklist")
def worklist_page(request: Request, status: str = "", assignee: str = "", grade: str = "", currency: str = "",
                  q: str = ""):
    user = require(request, "cases.worklist")
    who = user.name if assignee == "mine" else assignee
    error = None
    try:
        result = reports.worklist(service(request).ctx, datetime.now(timezone.utc).date(), status=status or None,
                                  assignee=who or None, risk_grade=grade or None, currency=currency or None, q=q or None)
    except DomainError as exc:
        result, error = {"total": 0, "items": []}, refusal_text(exc, language(request))
    closed = reports.closed_matching(service(request).ctx, q) if q.strip() else []
    return render(request, "worklist.html.j2", result=result, error=error, currencies=reports.currencies(service(request).ctx),
                  closed=closed,
                  filters={"status": status, "assignee": assignee, "grade": grade, "currency": currency, "q": q},
                  open_statuses=[s for s in CaseStatus.__members__ if CaseStatus(s) not in TERMINAL],
                  case_url=case_url)


# -- approvals inbox ----------------------------------------------------------------------------------


def inbox_items(svc: CaseService, user: User, now: datetime) -> list[dict]:
    rows = svc.approvals("pending")
    items = []
    for row, (policy, reduced) in zip(rows, svc.approval_rules(rows)):
        # as the decider judges it: a reduction with what its case was already reduced by
        authority = approval_authority(user.actor(), row["kind"], Role(row["tier"]), row["requested_by"],
                                       Money.of(row["amount"], row["currency"]), policy, reduced)
        requested = datetime.fromisoformat(row["requested_at"])
        due = datetime.fromisoformat(row["sla_due_at"]) if row["sla_due_at"] else None
        items.append({**row, "authority": authority, "age": now - requested, "overdue": due is not None and due < now})
    items.sort(key=lambda i: (i["sla_due_at"] or "9999", i["requested_at"]))
    return items


@router.get("/approvals")
def approvals_page(request: Request):
    user = require(request, "approvals.list")
    svc = service(request)
    now = datetime.now(timezone.utc)
    lang = language(request)
    items = inbox_items(svc, user, now)
    return render(request, "approvals.html.j2", items=items, recent=svc.recent_decisions(20), case_url=case_url,
                  age=lambda delta: age(delta, lang))


def _recorded(svc, case_id: str, count: int, lang: str) -> str:
    """The case's last ``count`` events in the timeline's words ('Promise to pay $5.00 by ...'),
    not their type names."""
    if count == 0:
        return ""
    recent = svc.show(case_id)["events"][-count:]
    return "; ".join(describe_event(e, lang)["what"] for e in recent)


def _done_message(request: Request, key: str, reply: dict, **values) -> str:
    t = translator(language(request))
    return t(key, status=t(f"status.{reply['status']}"), invoice=reply.get("invoice_id", ""), **values)


@router.post("/approvals/{approval_id}/approve")
async def approve(request: Request, approval_id: str):
    user = require(request, "approvals.approve")
    form = await checked_form(request)
    kind = _approval_kind(request, approval_id)

    async def call():
        reply = await service(request).decide_approval(approval_id, True, user.actor(), form.get("reason", "").strip())
        return _done_message(request, "approvals.approved", reply, kind=kind)

    return await _attempt(request, call, "/console/approvals")


@router.post("/approvals/{approval_id}/reject")
async def reject(request: Request, approval_id: str):
    user = require(request, "approvals.reject")
    form = await checked_form(request)
    kind = _approval_kind(request, approval_id)

    async def call():
        reply = await service(request).decide_approval(approval_id, False, user.actor(), form.get("reason", "").strip())
        return _done_message(request, "approvals.rejected", reply, kind=kind)

    return await _attempt(request, call, "/console/approvals")


def _approval_kind(request: Request, approval_id: str) -> str:
    try:
        row = service(request).approval(approval_id)
    except DomainError:
        return approval_id  # the service reports the unknown id when the command runs
    return translator(language(request))(f"kind.{row['kind']}")


async def _attempt(request: Request, call: Callable[[], Awaitable[str]], back: str) -> RedirectResponse:
    """Run a command; its outcome (or the domain's refusal) is shown on the next page."""
    session = session_of(request)
    try:
        session.flash(await call())
    except DomainError as error:
        session.flash(refusal_text(error, language(request)), "error")
    except RuntimeError as error:
        message = unavailable_text(request, error)
        if message is None:
            raise
        session.flash(translator(language(request))("error.unavailable", message=message), "error")
    return back_to(back)


# -- case page ------------------------------------------------------------------------------------------


@router.get("/cases/{ref:path}")
def case_page(request: Request, ref: str):
    user = require(request, "cases.show")
    lang = language(request)
    try:
        case = service(request).show(ref)
    except DomainError as error:
        if ref.rpartition("/")[2] in CASE_COMMANDS:  # a form's address opened as a page: it only takes the form
            return missing_page(request, 405)
        t = translator(lang)
        return render(request, "error.html.j2", status=404, title=t("error.not_found"),
                      message=refusal_text(error, lang))
    timeline = [describe_event(e, lang) for e in case["events"]]
    escalation_authority = None
    escalation = case.get("escalation")
    if escalation and escalation.get("decision") is None and escalation.get("withdrawn_at") is None:
        escalation_authority = approval_authority(user.actor(), "escalation", Role(escalation["tier"]), "system",
                                                  None, service(request).ctx.policy())
    users = [u.name for u in request.app.state.users.directory().users]
    return render(request, "case.html.j2", case=case, timeline=timeline, closed=case["status"] in [s.value for s in TERMINAL],
                  escalation_authority=escalation_authority, users=users, today=datetime.now(timezone.utc).date().isoformat(),
                  max_instalments=service(request).ctx.policy().plan.max_instalments,
                  action_url=lambda name: f"{case_url(case['case_id'])}/{name}")


# (action in ROLE_MATRIX, how to call the service with the form) per case form
def _case_commands() -> dict[str, tuple[str, Callable]]:
    def opt(form: dict, key: str) -> str | None:
        value = form.get(key, "").strip()
        return value or None

    return {
        "payment": ("payments.record", lambda s, case, user, f: s.pay(
            case["invoice_id"], f.get("amount", "").strip(), f.get("reference", "").strip(), user.actor(),
            _payment_id(f), _date(opt(f, "received_on")))),
        "dispute": ("disputes.open", lambda s, case, user, f: s.open_dispute(
            case["case_id"], f.get("reason", "").strip(), user.actor(), opt(f, "amount"))),
        "dispute-resolve": ("disputes.resolve", lambda s, case, user, f: s.resolve_dispute(
            case["case_id"], f.get("outcome", ""), user.actor(), opt(f, "credit"), f.get("note", "").strip())),
        "promise": ("promises.make", lambda s, case, user, f: s.promise(
            case["case_id"], f.get("amount", "").strip(), f.get("date", "").strip(), user.actor())),
        "plan": ("plans.propose", lambda s, case, user, f: s.propose_plan(
            case["case_id"], _int(f.get("instalments", ""), "instalments"), f.get("every", "").strip(), user.actor(),
            opt(f, "first"))),
        "plan-accept": ("plans.accept", lambda s, case, user, f: s.accept_plan(case["case_id"], user.actor())),
        "escalation": ("escalations.decide", lambda s, case, user, f: s.decide_escalation(
            case["case_id"], f.get("decision", ""), user.actor(), f.get("note", "").strip())),
        "write-off": ("write_offs.request", lambda s, case, user, f: s.request_write_off(
            case["case_id"], f.get("amount", "").strip(), f.get("reason", "").strip(), user.actor())),
        "assign": ("cases.assign", lambda s, case, user, f: s.assign(case["case_id"], f.get("assignee", "").strip(),
                                                                   user.actor())),
        "cancel": ("cases.cancel", lambda s, case, user, f: s.cancel(case["case_id"], f.get("reason", "").strip(), user.actor())),
    }


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{value[:30]!r} is not a date (YYYY-MM-DD)", "received_on") from None


def _payment_id(form: dict) -> str | None:
    """The form's idempotency key as the payment id: the same form submitted twice is one payment."""
    key = form.get(KEY_FIELD, "").strip()
    if not key:
        return None  # a form rendered before keys existed: a fresh id, as before
    try:
        return f"console-{UUID(key)}"
    except ValueError:
        raise DomainError(f"{key[:40]!r} is not a form key (reload the page)", KEY_FIELD) from None


def _int(value: str, field: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise DomainError(f"{value[:20]!r} is not a whole number", field) from None


CASE_COMMANDS = _case_commands()
CONSOLE_ACTIONS = {name: action for name, (action, _) in CASE_COMMANDS.items()} | {
    "approve": "approvals.approve", "reject": "approvals.reject"}
assert set(CONSOLE_ACTIONS.values()) <= set(ROLE_MATRIX)


@router.post("/cases/{ref:path}/{command}")
async def case_command(request: Request, ref: str, command: str):
    if command not in CASE_COMMANDS:
        t = translator(language(request))
        return render(request, "error.html.j2", status=404, title=t("error.not_found"), message=command)
    action, call = CASE_COMMANDS[command]
    user = require(request, action)
    form = await checked_form(request)
    svc = service(request)
    try:
        case = svc.show(ref)
    except DomainError as error:
        t = translator(language(request))
        return render(request, "error.html.j2", status=404, title=t("error.not_found"),
                      message=refusal_text(error, language(request)))
    t = translator(language(request))

    async def run():
        if command == "assign" and request.app.state.users.get(form.get("assignee", "").strip()) is None:
            raise DomainError(f"unknown user {form.get('assignee', '')[:100]!r}", "assignee")
        reply = await call(svc, case, user, form)
        if not reply.get("events") and reply.get("case_id") == case["case_id"]:
            return t("case.nothing")
        if command == "escalation":
            return _done_message(request, "escalation.decided", reply, decision=t(f"decision.{form.get('decision')}"))
        balance = money(reply.get("balance", case["balance"]), reply.get("currency", case["currency"]), language(request))
        events = _recorded(svc, case["case_id"], len(reply.get("events", [])), language(request)) or t("case.nothing")
        return t("case.done", events=events, status=t(f"status.{reply.get('status', case['status'])}"), balance=balance)

    back = safe_next(form["back"]) if form.get("back") else case_url(case["case_id"])
    return await _attempt(request, run, back)


# -- dashboard ------------------------------------------------------------------------------------------


@router.get("/dashboard")
def dashboard_page(request: Request, currency: str = "", as_of: str = ""):
    require(request, "reports.dashboard")
    lang = language(request)
    t = translator(lang)
    error = None
    day = None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            error = refusal_text(DomainError(f"{as_of[:30]!r} is not a date (YYYY-MM-DD)", "as_of"), lang)
    try:
        data = reports.dashboard(service(request).ctx, currency or None, as_of=day)
    except DomainError as exc:
        error = refusal_text(exc, lang)
        data = reports.dashboard(service(request).ctx, None, as_of=day)
    cur = data["currency"]
    amount = lambda v: money(v, cur, lang)  # noqa: E731 - tiny formatter
    figures = {
        "aging": charts.bar_chart([(t(f"bucket.{b}"), Decimal(v)) for b, v in data["aging"].items()],
                                  t("dashboard.aging", currency=cur), amount),
        "status": charts.hbar_chart([(t(f"status.{s}"), n) for s, n in data["cases_by_status"].items()],
                                   t("dashboard.status", currency=cur)),
        "approvals": charts.grouped_bar_chart(
            [t(f"kind.{k}") for k in data["approvals"]],
            [(t("dashboard.waiting"), [v["waiting"] for v in data["approvals"].values()]),
             (t("dashboard.overdue"), [v["overdue"] for v in data["approvals"].values()])],
            t("dashboard.approvals")),
        "collected": charts.bar_chart([(w["week"][5:], Decimal(w["amount"])) for w in data["collected_per_week"]],
                                      t("dashboard.collected", currency=cur), amount),
        # month ends as 2026-11 and the last point, the as-of day, in full ('26-11' read like a date)
        "dso": charts.line_chart([(p["date"][:7] if i < len(data["dso"]) - 1 else p["date"],
                                   Decimal(p["days"]) if p["days"] is not None else None)
                                  for i, p in enumerate(data["dso"])], t("dashboard.dso", currency=cur),
                                 lambda v: number(v, lang)),
    }
    return render(request, "dashboard.html.j2", data=data, figures=figures, error=error)


# -- advances (issue 16; docs/ADVANCES.md) -------------------------------------------------------------


@router.get("/advances")
def advances_page(request: Request):
    """The advances register, the advances that linger, and the overdue advance requests (each
    with its case of kind advance once the sweep has opened one)."""
    require(request, "reports.advances")
    from app.advances import AdvanceService

    svc = service(request)
    data = AdvanceService(svc).report()
    overdue = [r for r in data["requests"] if r["status"] == "overdue"]
    for r in overdue:
        existing = svc._existing(r["request_id"])
        r["case"] = existing if existing is not None and existing["kind"] == "advance" else None
    return render(request, "advances.html.j2", data=data, overdue=overdue,
                  lingering=[r for r in data["advances"] if r["lingering"]], case_url=case_url)
