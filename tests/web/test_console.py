"""The console over plain HTTP (no browser): sessions, CSRF, roles, language, pages."""

from __future__ import annotations

import html
import re
from collections import Counter

import httpx

from api.console import CONSOLE_ACTIONS
from app.authorization import ROLE_MATRIX
from app.tokens import issue_token
from domain.decider import case_uuid
from domain.policy import Role
from tests.web.conftest import ROLE_USERS, Web

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    return CSRF.search(page).group(1)


async def signed_in(web: Web, role: str) -> tuple[httpx.AsyncClient, str]:
    """A browser-like client signed in as ``role``, and its CSRF token."""
    client = web.client()
    login = await client.get("/console/login")
    response = await client.post("/console/login", data={"token": web.tokens[role], "csrf_token": csrf_of(login.text),
                                                         "next": "/console/worklist"})
    assert response.status_code == 303 and response.headers["location"] == "/console/worklist"
    page = await client.get("/console/worklist")
    assert page.status_code == 200 and ROLE_USERS[role] in page.text
    return client, csrf_of(page.text)


def case_path(invoice: str) -> str:
    return f"/console/cases/{case_uuid(invoice)}"


async def test_session_cookie_is_httponly_samesite_and_secure_over_https(web: Web):
    plain = await web.client().get("/console/login")
    cookie = plain.headers["set-cookie"]
    assert cookie.startswith("ce_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    behind_tls = await web.client().get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in behind_tls.headers["set-cookie"]
    assert "script-src 'self'" in plain.headers["content-security-policy"]
    assert plain.headers["x-frame-options"] == "DENY"


async def test_sign_in_needs_a_valid_token_and_pages_need_a_session(web: Web):
    anonymous = web.client()
    gate = await anonymous.get("/console/approvals")
    assert gate.status_code == 303 and gate.headers["location"] == "/console/login?next=%2Fconsole%2Fapprovals"
    login = await anonymous.get("/console/login")
    wrong = await anonymous.post("/console/login", data={"token": "ce_wrong", "csrf_token": csrf_of(login.text)})
    assert wrong.status_code == 401 and "That token is not valid" in wrong.text
    away = await anonymous.post("/console/login", data={"token": web.tokens["collector"], "csrf_token": csrf_of(wrong.text),
                                                         "next": "https://evil.example/"})
    assert away.headers["location"] == "/console/worklist"  # never redirected off the console
    forged = web.client(cookies={"ce_session": anonymous.cookies["ce_session"][:-3] + "xyz"})
    assert (await forged.get("/console/worklist")).status_code == 303  # an altered cookie is no session


async def test_every_post_needs_the_session_csrf_token_and_same_origin(web: Web):
    invoice = await web.new_case()
    client, token = await signed_in(web, "collector")
    other, other_token = await signed_in(web, "supervisor")
    before = web.events(invoice)
    payment = {"amount": "10.00", "reference": "bank"}
    for data, headers in [(payment, {}), ({**payment, "csrf_token": other_token}, {}),
                          ({**payment, "csrf_token": token}, {"Origin": "http://evil.example"})]:
        refused = await client.post(f"{case_path(invoice)}/payment", data=data, headers=headers)
        assert refused.status_code == 403 and "The form expired or came from another site" in refused.text
    assert web.events(invoice) == before
    done = await client.post(f"{case_path(invoice)}/payment", data={**payment, "csrf_token": token},
                             headers={"Origin": web.url})
    assert done.status_code == 303 and done.headers["location"] == case_path(invoice)
    assert web.events(invoice) == before + ["PaymentReceived"]
    page = await client.get(done.headers["location"])
    # the plan form asks for no more instalments than the policy allows (it offered up to 120)
    assert 'name="instalments" required min="1" max="{}"'.format(web.context.policy().plan.max_instalments) in page.text
    # in the timeline's words, not the event's type name
    assert "Recorded: Payment of $10.00 received. The case is open, balance $990.00." in page.text, page.text
    logout = await client.post("/console/logout", data={"csrf_token": token})
    assert logout.status_code == 303 and (await client.get("/console/worklist")).status_code == 303


async def test_a_refused_command_shows_the_reason_and_changes_nothing(web: Web):
    invoice = await web.new_case()
    client, token = await signed_in(web, "collector")
    before = web.events(invoice)
    response = await client.post(f"{case_path(invoice)}/payment", data={"amount": "-5", "csrf_token": token},
                                 follow_redirects=True)
    assert response.status_code == 200
    assert "Amount: must be positive, got -5" in html.unescape(response.text)  # the form's word, not the field's name
    assert web.events(invoice) == before


async def test_a_collector_sees_approvals_but_cannot_decide_them(web: Web):
    invoice = await web.new_case()
    await web.service.request_write_off(invoice, "100.00", "small_balance", web.actor("supervisor"))
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice)
    client, token = await signed_in(web, "collector")
    inbox = (await client.get("/console/approvals")).text
    row = re.search(rf'<tr data-approval="{approval_id}".*?</tr>', inbox, re.S).group(0)
    assert 'class="locked"' in row and "Only supervisors and finance managers decide" in row
    assert "/approve" not in row and "/reject" not in row
    forced = await client.post(f"/console/approvals/{approval_id}/approve", data={"csrf_token": token})
    assert forced.status_code == 403 and "demo-collector is a collector and may not do this." in forced.text
    assert web.service.approval(approval_id)["status"] == "pending"

    own, own_token = await signed_in(web, "supervisor")
    row = re.search(rf'<tr data-approval="{approval_id}".*?</tr>', (await own.get("/console/approvals")).text, re.S).group(0)
    assert "Your own request (four eyes)" in row and "/approve" not in row
    manager, manager_token = await signed_in(web, "finance_manager")
    row = re.search(rf'<tr data-approval="{approval_id}".*?</tr>', (await manager.get("/console/approvals")).text, re.S).group(0)
    assert 'class="actionable"' in row and f"/console/approvals/{approval_id}/approve" in row


async def test_a_new_token_ends_the_console_session(web: Web):
    client, _ = await signed_in(web, "finance_manager")
    web.tokens["finance_manager"] = issue_token(web.users_path, "demo-manager")["token"]
    assert (await client.get("/console/worklist")).status_code == 303


async def test_chinese_console_and_plain_words_timeline(web: Web):
    invoice = await web.new_case()
    await web.service.pay(invoice, "10.00", "bank transfer 42", web.actor("collector"))
    client, token = await signed_in(web, "collector")
    english = (await client.get(case_path(invoice))).text
    assert "Payment of $10.00 received" in english and "bank transfer 42" in english
    assert "Case opened for invoice" in english and "invoice overdue" in english
    switched = await client.post("/console/lang", data={"lang": "zh", "csrf_token": token, "next": case_path(invoice)})
    assert switched.headers["location"] == case_path(invoice)
    chinese = (await client.get(case_path(invoice))).text
    assert '<html lang="zh-CN">' in chinese and "时间线" in chinese and "收到付款 US$10.00" in chinese
    assert "催收工作清单" in (await client.get("/console/worklist")).text
    assert "审批收件箱" in (await client.get("/console/approvals")).text


async def test_dashboard_draws_five_charts_with_the_report_numbers(web: Web):
    client, _ = await signed_in(web, "supervisor")
    page = (await client.get("/console/dashboard?currency=USD")).text
    assert page.count('<svg class="chart"') == 5
    board = (await web.client("supervisor").get("/api/reports/dashboard?currency=USD")).json()
    for bucket, amount in board["aging"].items():
        shown = re.search(rf'<tr data-bucket="{re.escape(bucket)}"><th>[^<]*</th><td class="num">([^<]*)</td>', page).group(1)
        assert shown == f"${float(amount):,.2f}"
    bad = await client.get("/console/dashboard?currency=XYZ")
    assert bad.status_code == 200 and "unknown currency" in html.unescape(bad.text)


async def test_the_dashboards_cases_by_status_are_those_of_its_currency(web: Web):
    """The dashboard shows one currency; its cases by status counted every currency's cases."""
    await web.new_case(currency="CHF")
    client, _ = await signed_in(web, "supervisor")
    cases = Counter(c["currency"] for c in web.service.list(limit=100000))
    assert cases["CHF"] == 1 and cases["USD"] > 1, cases
    for currency in ("CHF", "USD"):  # the totals: other cases of this module change status meanwhile
        page = html.unescape((await client.get(f"/console/dashboard?currency={currency}")).text)
        shown = re.findall(r'<tr data-status="([a-z_]+)"><th>[^<]*</th><td class="num">(\d+)</td>', page)
        assert sum(int(n) for _, n in shown) == cases[currency], (currency, shown, cases)
        assert f"Cases by status ({currency})" in page


async def test_console_forms_follow_the_same_role_matrix(web: Web):
    """Every console form is checked against ROLE_MATRIX: what a collector may not do over the
    API, they may not do from the console either (even with a valid CSRF token)."""
    invoice = await web.escalated_case()
    reply = await web.service.request_write_off(invoice, "10.00", "small_balance", web.actor("supervisor"))
    assert reply["status"] == "awaiting_approval"
    approval_id = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == invoice
                       and a["kind"] == "write_off")
    client, token = await signed_in(web, "collector")
    refused = [(name, action) for name, action in CONSOLE_ACTIONS.items() if Role.collector not in ROLE_MATRIX[action]]
    assert sorted(a for _, a in refused) == ["approvals.approve", "approvals.reject", "cases.cancel", "escalations.decide"]
    before = web.events(invoice)
    for name, action in refused:
        url = (f"/console/approvals/{approval_id}/{name}" if name in ("approve", "reject")
               else f"{case_path(invoice)}/{name}")
        response = await client.post(url, data={"csrf_token": token, "decision": "legal", "reason": "invoice_voided"})
        assert response.status_code == 403, (name, response.text)
    assert web.events(invoice) == before
    allowed = await client.post(f"{case_path(invoice)}/assign", data={"csrf_token": token, "assignee": "demo-collector"})
    assert allowed.status_code == 303 and web.events(invoice)[-1] == "CaseAssigned"


async def test_the_worklist_says_what_its_priority_is_made_of_in_the_readers_language(web: Web):
    """The worklist's priority was a bare number: nothing said what it counts. Its column heading
    now explains it, in the console's language."""
    client, token = await signed_in(web, "collector")
    heading = re.compile(r'<th title="([^"]+)">([^<]+)</th>')
    english = dict((name, html.unescape(title)) for title, name in heading.findall(
        (await client.get("/console/worklist")).text))
    assert english["Priority"].startswith("Amount at risk (balance less what is disputed) × days overdue"), english
    assert "the policy's pinned rates" in english["Priority"], english
    await client.post("/console/lang", data={"lang": "de", "csrf_token": token, "next": "/console/worklist"})
    german = dict((name, html.unescape(title)) for title, name in heading.findall(
        (await client.get("/console/worklist")).text))
    assert german["Priorität"].startswith("Gefährdeter Betrag"), german
