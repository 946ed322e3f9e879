"""Pieces of the web layer on their own: tokens, session cookies, catalogue, charts, timeline words."""

from __future__ import annotations

import shutil
from decimal import Decimal

import httpx
import pytest

from api.app import create_app
from api.charts import bar_chart, hbar_chart, line_chart
from api.errors import status_for
from api.i18n import MESSAGES, describe_event
from api.session import SessionCodec
from app.context import Context
from app.imports import parse_invoices
from app.settings import Settings
from app.tokens import hash_token, issue_token, verify_token
from domain.authority import approval_authority
from domain.errors import DomainError
from domain.policy import Role
from domain.users import Actor
from tests.conftest import ROOT


def test_tokens_verify_only_against_their_own_hash():
    stored = hash_token("ce_secret")
    assert verify_token("ce_secret", stored)
    assert not verify_token("ce_secret!", stored)
    assert not verify_token("ce_secret", hash_token("ce_secret").replace("hmac-sha256", "md5"))
    assert not verify_token("ce_secret", "garbage") and not verify_token("", stored) and not verify_token("x", None)
    assert hash_token("ce_secret") != hash_token("ce_secret")  # salted


def test_session_cookie_cannot_be_forged_or_kept_forever():
    codec = SessionCodec(b"k" * 32, max_age=60)
    cookie = codec.dumps({"user": "sam", "csrf": "c"}, now=1000)
    assert codec.loads(cookie, now=1030) == {"user": "sam", "csrf": "c"}
    assert codec.loads(cookie, now=1061) is None  # expired
    payload, stamp, signature = cookie.split(".")
    other = SessionCodec(b"x" * 32).dumps({"user": "max", "csrf": "c"}, now=1000)
    assert codec.loads(f"{other.split('.')[0]}.{stamp}.{signature}", now=1030) is None  # payload swapped
    assert codec.loads(other, now=1030) is None  # signed with another key
    assert codec.loads("garbage", now=1030) is None and codec.loads(None) is None


def test_both_languages_have_every_message():
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])
    assert all(MESSAGES["zh"][k] for k in MESSAGES["zh"])


def test_timeline_in_plain_words_and_unknown_events_still_shown():
    paid = {"type": "PaymentReceived", "actor": "cora", "occurred_at": "2026-03-02T10:00:00+00:00", "version": 2,
            "data": {"amount": {"amount": "120.00", "currency": "EUR"}, "applied": {"amount": "100.00", "currency": "EUR"},
                     "excess": {"amount": "20.00", "currency": "EUR"}, "reference": "bank 7", "payment_id": "p"}}
    row = describe_event(paid, "en")
    assert row == {"when": "2026-03-02 10:00 UTC", "who": "cora", "what": "Payment of €120.00 received; €20.00 kept as customer credit",
                   "why": "bank 7", "type": "PaymentReceived", "version": 2}
    assert describe_event(paid, "zh")["what"] == "收到付款 €120.00；€20.00 计为客户预收款"
    escalated = {"type": "EscalatedToSupervisor", "actor": "system", "occurred_at": "2026-03-02T10:00:00+00:00",
                 "data": {"tier": "supervisor", "reason": "ladder_exhausted", "sla_due_at": "2026-03-04T10:00:00+00:00"}}
    assert describe_event(escalated, "en")["what"] == "Escalated to a supervisor; decision due 2026-03-04 10:00 UTC"
    assert describe_event(escalated, "zh")["who"] == "系统" and describe_event(escalated, "zh")["why"] == "所有提醒均已发送"
    future = describe_event({"type": "SomethingNew", "actor": "x", "occurred_at": None, "data": {"level": 2}}, "en")
    assert future["what"] == "SomethingNew: level=2"


def test_charts_escape_their_labels_and_scale_to_the_largest_value():
    svg = str(bar_chart([("<script>x</script>", Decimal("50")), ("b", Decimal("100"))], "t & <b>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t &amp; &lt;b&gt;" in svg
    heights = [float(part.split('"')[0]) for part in svg.split('height="')[1:] if part[0].isdigit()]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert "<polyline" in str(line_chart([("a", 1), ("b", None), ("c", 3), ("d", 2)], "dso"))
    assert str(hbar_chart([("open", 0)], "none")).count("<rect") == 1  # all zero: no division by zero


@pytest.mark.parametrize("error,status", [
    (DomainError("unknown case 'X'", "case_id"), 404), (DomainError("unknown approval 'X'", "approval_id"), 404),
    (DomainError("four eyes: the requester cannot decide their own request", "as"), 403),
    (DomainError("case is closed (paid); it accepts no further commands", "case"), 409),
    (DomainError("approval WO-1 was already approved", "approval_id"), 409),
    (DomainError("must be positive, got -5", "amount"), 400), (DomainError("unknown currency 'XYZ'", "currency"), 400),
    (DomainError("a case is already open for invoice X", "invoice_id"), 409),
    (DomainError("line 3: invoice X already appears on line 2"), 400),  # a bad file, not a conflict
])
def test_domain_errors_map_to_statuses(error, status):
    assert status_for(error) == status


def test_authority_matches_the_decider_rules():
    from domain.money import Money
    from tests.domain.scenario import default_policy

    policy = default_policy()  # supervisors approve up to 10,000 USD
    usd = lambda amount: Money.of(amount, "USD")  # noqa: E731
    sam = Actor(name="sam", role=Role.supervisor, write_off_limit=Decimal("10000"))
    cora = Actor(name="cora", role=Role.collector)
    assert approval_authority(cora, "write_off", Role.supervisor, "sam", usd(5), policy).code == "not_approver"
    assert approval_authority(sam, "write_off", Role.finance_manager, "cora", usd(5), policy).code == "tier"
    assert approval_authority(sam, "plan", Role.supervisor, "sam", usd(5), policy).code == "own_request"
    over = approval_authority(sam, "write_off", Role.supervisor, "cora", usd(20000), policy)
    assert (over.approve, over.reject, over.limit) == (False, True, Decimal(10000))  # may still reject
    lower = policy.approval.model_copy(update={"write_off_limits": {Role.supervisor: Decimal(5000)}})
    capped = approval_authority(sam, "write_off", Role.supervisor, "cora", usd(6000), policy.model_copy(
        update={"approval": lower}))
    assert capped.code == "limit" and capped.limit == Decimal(5000)  # the policy's cap for the role wins
    assert approval_authority(sam, "escalation", Role.supervisor, "system", None, policy).approve


async def test_commands_answer_503_when_temporal_is_down(tmp_path):
    users = tmp_path / "users.toml"
    shutil.copyfile(ROOT / "config" / "users.toml", users)
    token = issue_token(users, "demo-collector")["token"]
    context = Context(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", users_path=users,
                               temporal_address="127.0.0.1:1", data_dir=tmp_path))
    context.ledger.import_invoices(parse_invoices((ROOT / "tests" / "data" / "invoices.csv").read_text()))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        assert (await client.get("/api/cases")).json() == []  # reads work without Temporal
        response = await client.post("/api/cases", json={"invoice_id": "INV-1001"})
    assert response.status_code == 503
    assert response.json()["error"] == "cannot reach Temporal at 127.0.0.1:1 (is the stack running? `python starter.py up`)"
    context.db.dispose()
