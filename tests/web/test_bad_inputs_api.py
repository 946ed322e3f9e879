"""The bad-input catalogue, through the HTTP API (real uvicorn, worker, dev server, SMTP sink).

Each entry must be refused with a JSON error of the documented status (400 the
business rules, 401 no or bad token, 403 role or authority, 404 unknown, 409 the
case's state, 413/422 malformed) whose message says what is wrong, and must leave
the event count, every projection row, the ledger, the delivery log and the mail
sink exactly as they were.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from store.schema import PROJECTION_TABLES, customers, invoices, notice_deliveries, payments
from tests.web.conftest import HEADER, Web

TODAY = date.today()
GOOD_ROW = "INV-API-NEW,C-API,New Co,ap@new.test,DE,en,EUR,100.00,2026-01-05,2026-02-04,B"


def snapshot(web: Web) -> tuple:
    digest = hashlib.sha256()
    with web.context.db.read() as session:
        for table in (*PROJECTION_TABLES, invoices, customers, payments, notice_deliveries):
            for row in sorted(map(repr, session.execute(select(table)))):
                digest.update(row.encode())
    return web.context.store.count(), digest.hexdigest(), len(web.sink.messages)


def csv(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode()


async def test_every_bad_input_is_refused_clearly_and_changes_nothing(web: Web):
    quiet = await web.new_case("A", "1000.00")  # first reminder in 30 days
    jpy = await web.new_case("A", "120000", currency="JPY")
    escalated = await web.escalated_case()
    closed = await web.new_case("A", "300.00")
    await web.service.pay(closed, "300.00", "settled", web.actor("collector"), payment_id=f"close-{closed}")
    big = await web.new_case("A", "50000.00")
    await web.service.request_write_off(big, "20000.00", "insolvency", web.actor("finance_manager"))
    wo = next(a["approval_id"] for a in web.service.approvals() if a["invoice_id"] == big)
    await web.quiet()
    # The server judges 'future' by its UTC date at the request; two days ahead of the UTC date now
    # stays in the future even if the run crosses midnight (TODAY was taken at collection).
    future_day = (datetime.now(timezone.utc).date() + timedelta(days=2)).isoformat()
    pay, case = f"/api/invoices/{quiet}/payments", f"/api/cases/{quiet}"
    J = lambda body: {"json": body}  # noqa: E731
    C, S, M = "collector", "supervisor", "finance_manager"
    entries = [
        # (name, role, method, path, request options, status, words the error must contain)
        ("negative amount", C, "POST", pay, J({"amount": "-5"}), 400, "must be positive"),
        ("zero amount", C, "POST", pay, J({"amount": "0"}), 400, "must be positive"),
        ("absurdly large amount", C, "POST", pay, J({"amount": "1" + "0" * 20}), 422, "exceeds the largest amount"),
        ("more decimals than EUR", C, "POST", pay, J({"amount": "12.345"}), 400, "more decimal places"),
        ("decimals in JPY", C, "POST", f"/api/invoices/{jpy}/payments", J({"amount": "100.5"}), 400,
         "more decimal places than JPY allows"),
        ("amount as a JSON number", C, "POST", pay, J({"amount": 12.5}), 422, "valid string"),
        ("NaN", C, "POST", pay, J({"amount": "NaN"}), 422, "not a finite number"),
        ("not a number", C, "POST", pay, J({"amount": "ten"}), 422, "is not a number"),
        ("unknown invoice", C, "POST", "/api/invoices/NO-SUCH/payments", J({"amount": "10"}), 404, "unknown invoice"),
        ("malformed date", C, "POST", pay, J({"amount": "10", "received_on": "2026-13-45"}), 422, "received_on"),
        ("date in the future", C, "POST", pay, J({"amount": "10", "received_on": future_day}), 400, "in the future"),
        ("command on a closed case", C, "POST", f"/api/invoices/{closed}/payments", J({"amount": "10"}), 409,
         "closed"),
        ("control characters", C, "POST", pay, J({"amount": "10", "reference": "a\u0000b"}), 400,
         "control characters"),
        ("unexpected field", C, "POST", pay, J({"amount": "10", "amount_minor": 1000}), 422, "amount_minor"),
        ("malformed JSON", C, "POST", pay, {"content": b'{"amount": ', "headers": {"content-type": "application/json"}},
         422, ""),
        ("huge text", C, "POST", f"/api/cases/{escalated}/escalation", J({"decision": "continue", "note": "n" * 200_000}),
         403, "collector"),
        ("huge note from a supervisor", S, "POST", f"/api/cases/{escalated}/escalation",
         J({"decision": "continue", "note": "n" * 200_000}), 422, "at most 500"),
        ("bad reason code", C, "POST", f"{case}/dispute", J({"reason": "Bad Reason!"}), 422, "not a reason code"),
        ("SQL-looking reason", C, "POST", f"{case}/dispute", J({"reason": "'; DROP TABLE case_events; --"}), 422,
         "not a reason code"),
        ("disputed amount above the balance", C, "POST", f"{case}/dispute", J({"reason": "quality", "amount": "99999"}),
         400, "exceeds the open balance"),
        ("unknown dispute outcome", C, "POST", f"{case}/dispute/resolve", J({"outcome": "maybe"}), 422,
         "should be 'upheld' or 'rejected'"),
        ("resolving no dispute", C, "POST", f"{case}/dispute/resolve", J({"outcome": "upheld"}), 409, "no open dispute"),
        ("promise in the past", C, "POST", f"{case}/promise", J({"amount": "10", "date": "2020-01-01"}), 400,
         "in the past"),
        ("promise date malformed", C, "POST", f"{case}/promise", J({"amount": "10", "date": "31/12/2026"}), 422,
         "not a date"),
        ("promise too far out", C, "POST", f"{case}/promise",
         J({"amount": "10", "date": (TODAY + timedelta(days=400)).isoformat()}), 400, "beyond the longest promise"),
        ("zero instalments", C, "POST", f"{case}/plan", J({"instalments": 0, "every": "P30D"}), 422,
         "greater than or equal to 1"),
        ("instalments not a number", C, "POST", f"{case}/plan", J({"instalments": "three", "every": "P30D"}), 422,
         "instalments"),
        ("interval not ISO 8601", C, "POST", f"{case}/plan", J({"instalments": 3, "every": "thirty days"}), 400,
         "ISO 8601"),
        ("accepting no plan", C, "POST", f"{case}/plan/accept", {}, 409, "no proposed plan"),
        ("collector decides an escalation", C, "POST", f"/api/cases/{escalated}/escalation",
         J({"decision": "write_off"}), 403, "collector"),
        ("unknown decision", S, "POST", f"/api/cases/{escalated}/escalation", J({"decision": "maybe"}), 422,
         "Input should be"),
        ("write-off above the balance", C, "POST", f"{case}/write-off", J({"amount": "99999999", "reason": "insolvency"}),
         400, "exceeds the open balance"),
        ("script-looking reason", C, "POST", f"{case}/write-off",
         J({"amount": "10", "reason": "<script>alert(1)</script>"}), 422, "not a reason code"),
        ("approving one's own request", M, "POST", f"/api/approvals/{wo}/approve", J({"reason": "ok"}), 403, "four eyes"),
        ("approving above one's limit", S, "POST", f"/api/approvals/{wo}/approve", J({"reason": "ok"}), 403, "write-off authority"),
        ("collector approves", C, "POST", f"/api/approvals/{wo}/approve", J({"reason": "ok"}), 403, ""),
        ("rejecting without a reason", S, "POST", f"/api/approvals/{wo}/reject", J({"reason": ""}), 422, "reason"),
        ("unknown approval", M, "POST", "/api/approvals/AP-nope/approve", J({"reason": "ok"}), 404, "unknown approval"),
        ("unknown case", C, "GET", "/api/cases/NO-SUCH-CASE", {}, 404, "unknown case"),
        ("SQL-looking case id", C, "GET", "/api/cases/x' OR '1'='1", {}, 404, "unknown case"),
        ("assign to an unknown user", C, "POST", f"{case}/assign", J({"assignee": "nobody"}), 400, "unknown user"),
        ("collector cancels", C, "POST", f"{case}/cancel", J({"reason": "invoice_voided"}), 403, ""),
        ("cancelling a closed case", S, "POST", f"/api/cases/{closed}/cancel", J({"reason": "invoice_voided"}), 409,
         "closed"),
        ("opening an unknown invoice", C, "POST", "/api/cases", J({"invoice_id": "NO-SUCH"}), 404, "unknown invoice"),
        ("unknown open reason", C, "POST", "/api/cases", J({"invoice_id": quiet, "reason": "because"}), 422,
         "Input should be"),
        ("no token", None, "GET", "/api/cases", {}, 401, ""),
        ("bad token", "bad", "GET", "/api/cases", {}, 401, ""),
        ("collector imports", C, "POST", "/api/invoices/import", {"content": csv(GOOD_ROW)}, 403, ""),
        ("import: wrong encoding", S, "POST", "/api/invoices/import",
         {"content": csv("INV-L1,C-1,Müller GmbH,ap@m.test,DE,de,EUR,10.00,2026-01-05,2026-02-04,B").decode()
          .encode("latin-1")}, 400, "not UTF-8"),
        # 409 today (the API maps "already ..." to a conflict); 400 would fit a bad file better
        ("import: duplicated ids", S, "POST", "/api/invoices/import", {"content": csv(GOOD_ROW, GOOD_ROW)}, (400, 409),
         "already appears on line 2"),
        ("import: wrong currency", S, "POST", "/api/invoices/import",
         {"content": csv(GOOD_ROW.replace(",EUR,", ",XYZ,"))}, 400, "unknown currency"),
        ("import: malformed row", S, "POST", "/api/invoices/import", {"content": csv(GOOD_ROW + ",surplus")}, 400,
         "more values than columns"),
        ("import: SQL-looking id", S, "POST", "/api/invoices/import",
         {"content": csv(GOOD_ROW.replace("INV-API-NEW", "1';DROP TABLE invoices;--"))}, 400, "not a valid id"),
        ("import: empty body", S, "POST", "/api/invoices/import", {"content": b""}, 400, "empty"),
        ("import: binary", S, "POST", "/api/invoices/import", {"content": b"\x89PNG\r\n\x1a\n" + bytes(range(256))},
         400, "not UTF-8"),
        ("import: a form upload", S, "POST", "/api/invoices/import",
         {"files": {"file": ("invoices.csv", csv(GOOD_ROW), "text/csv")}}, 415, "not as a form upload"),
        ("bank file: a form upload", S, "POST", "/api/payments/import",
         {"files": {"file": ("bank.csv", b"payment_id,received_on,amount,currency,payer,reference\n", "text/csv")}},
         415, "not as a form upload"),
    ]
    assert len(entries) >= 40 and len({e[0] for e in entries}) == len(entries)
    failures = []
    for name, role, method, path, options, status, words in entries:
        client = web.client(token="not-a-token") if role == "bad" else web.client(role)
        before = snapshot(web)
        response = await client.request(method, path, **options)
        after = snapshot(web)
        problems = []
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code not in (status if isinstance(status, tuple) else (status,)):
            problems.append(f"status {response.status_code}")
        if not isinstance(body.get("error"), str) or words not in body["error"]:
            problems.append(f"error {str(body.get('error'))[:200]!r}")
        elif len(body["error"]) > 400:
            problems.append(f"error of {len(body['error'])} characters")
        if after != before:
            problems.append(f"state changed {before} -> {after}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)
