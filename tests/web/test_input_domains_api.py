"""Every input has a domain (issue 14): each value class, through the HTTP API with a token.

Each entry must be refused with the JSON error shape {"error", "field", "status"}, a 4xx
status, an error that names the field, and nothing changed (events, projections, ledger,
payments, deliveries, mail sink).
"""

from __future__ import annotations

from datetime import date, timedelta

from tests.web.conftest import HEADER, Web
from tests.web.test_bad_inputs_api import snapshot

TODAY = date.today()


def row(**change: str) -> str:
    values = {"invoice_id": "INV-DOM-1", "customer_id": "C-DOM", "customer_name": "Domain Co",
              "customer_email": "ap@domain.test", "country": "DE", "language": "en", "currency": "EUR",
              "amount": "100.00", "issue_date": "2026-01-05", "due_date": "2026-02-04", "risk_grade": "B", **change}
    return ",".join(values[c] for c in HEADER.split(","))


def upload(*rows: str) -> dict:
    return {"content": ("\n".join((HEADER, *rows)) + "\n").encode("utf-8"), "headers": {"content-type": "text/csv"}}


def bank(*lines: str) -> dict:
    text = "payment_id,received_on,amount,currency,payer,reference\n" + "\n".join(lines) + "\n"
    return {"content": text.encode("utf-8"), "headers": {"content-type": "text/csv"}}


async def test_every_value_class_is_refused_at_the_api_naming_the_field(web: Web):
    invoice = await web.new_case("A", "1000.00", currency="EUR")  # issued 2026-01-05, quiet for weeks
    await web.quiet()
    pay, case = f"/api/invoices/{invoice}/payments", f"/api/cases/{invoice}"
    J = lambda body: {"json": body}  # noqa: E731
    far = (TODAY + timedelta(days=5 * 365)).isoformat()
    entries = [
        # (value class, role, method, path, options, status, field, words)
        ("amount 1e1000000", "collector", "POST", pay, J({"amount": "1e1000000"}), 422, "amount", "no exponent"),
        ("amount 1E+3", "collector", "POST", pay, J({"amount": "1E+3"}), 422, "amount", "no exponent"),
        ("amount of 14 digits", "collector", "POST", pay, J({"amount": "12345678901234"}), 422, "amount",
         "exceeds the largest amount"),
        ("amount 1e1000000 in an invoice file", "supervisor", "POST", "/api/invoices/import",
         upload(row(amount="1e1000000")), 400, "amount", "no exponent"),
        ("payment received on 0001-01-01", "collector", "POST", pay, J({"amount": "10", "received_on": "0001-01-01"}),
         422, "received_on", "outside the dates accepted"),
        ("payment received long before the invoice", "collector", "POST", pay,
         J({"amount": "10", "received_on": "2020-01-01"}), 400, "received_on", "before the invoice was issued"),
        ("payment received as a number", "collector", "POST", pay, J({"amount": "10", "received_on": 0}), 422,
         "received_on", "not a date"),
        ("bank file payment on 0001-01-01", "supervisor", "POST", "/api/payments/import",
         bank(f"BANK-DOM-1,0001-01-01,10.00,EUR,Domain Co,{invoice}"), 400, "received_on", "outside the dates"),
        ("plan first instalment on 9999-12-01", "collector", "POST", f"{case}/plan",
         J({"instalments": 3, "every": "P30D", "first": "9999-12-01"}), 422, "first", "outside the dates"),
        ("plan first instalment on 9999-12-31", "collector", "POST", f"{case}/plan",
         J({"instalments": 3, "every": "P30D", "first": "9999-12-31"}), 422, "first", "outside the dates"),
        ("plan first instalment beyond the horizon", "collector", "POST", f"{case}/plan",
         J({"instalments": 3, "every": "P30D", "first": far}), 400, "first", "plan horizon"),
        ("promise on 9999-12-31", "collector", "POST", f"{case}/promise", J({"amount": "10", "date": "9999-12-31"}),
         422, "date", "outside the dates"),
        ("invoice due on 9999-12-31", "supervisor", "POST", "/api/invoices/import", upload(row(due_date="9999-12-31")),
         400, "due_date", "outside the dates accepted"),
        ("invoice due beyond the longest terms", "supervisor", "POST", "/api/invoices/import",
         upload(row(due_date="2029-01-05")), 400, "due_date", "longest terms"),
        ("invoice issued on 0001-01-01", "supervisor", "POST", "/api/invoices/import",
         upload(row(issue_date="0001-01-01", due_date="0001-02-01")), 400, "issue_date", "outside the dates"),
        ("dashboard from 0001-01-01", "supervisor", "GET", "/api/reports/dashboard?as_of=0001-01-01", {}, 422,
         "as_of", "outside the dates accepted"),
        ("dashboard before the policy's earliest date", "supervisor", "GET", "/api/reports/dashboard?as_of=1950-01-01",
         {}, 400, "as_of", "before 2000-01-01"),
        ("dashboard as_of=0", "supervisor", "GET", "/api/reports/dashboard?as_of=0", {}, 422, "as_of", "not a date"),
        ("KPIs from 0001-01-01", "supervisor", "GET", "/api/reports/kpis?from=0001-01-01", {}, 422, "from",
         "outside the dates accepted"),
        ("KPIs from before the policy's earliest date", "supervisor", "GET", "/api/reports/kpis?from=1950-01-01", {},
         400, "from", "before 2000-01-01"),
        ("worklist as_of=0", "collector", "GET", "/api/worklist?as_of=0", {}, 422, "as_of", "not a date"),
        ("a 5 MB CSV field", "supervisor", "POST", "/api/invoices/import", upload(row(customer_name="N" * 5_000_000)),
         400, "file", "longer than"),
        ("a 5 MB CSV field in a bank file", "supervisor", "POST", "/api/payments/import",
         bank(f"BANK-DOM-2,2026-03-01,10.00,EUR,{'P' * 5_000_000},{invoice}"), 400, "file", "longer than"),
        ("payment id with NUL", "collector", "POST", pay, J({"amount": "10", "payment_id": "p\x001"}), 422,
         "payment_id", "not a valid id"),
        ("payment id with a tab", "collector", "POST", pay, J({"amount": "10", "payment_id": "p\t1"}), 422,
         "payment_id", "not a valid id"),
        ("payment id with a newline", "collector", "POST", pay, J({"amount": "10", "payment_id": "p\n1"}), 422,
         "payment_id", "not a valid id"),
        ("prepayment id with a newline", "collector", "POST", "/api/customers/C-x/prepayments",
         J({"amount": "10", "currency": "EUR", "payment_id": "p\n1"}), 422, "payment_id", "not a valid id"),
        ("bank file payment id with a tab", "supervisor", "POST", "/api/payments/import",
         bank(f"BANK\tDOM,2026-03-01,10.00,EUR,Domain Co,{invoice}"), 400, "payment_id", "not a valid id"),
        ("e-mail with a non-ASCII local part", "supervisor", "POST", "/api/invoices/import",
         upload(row(customer_email="jörg@domain.test")), 400, "customer_email", "SMTPUTF8"),
        ("e-mail that is not one", "supervisor", "POST", "/api/invoices/import",
         upload(row(customer_email="ap@@domain.test")), 400, "customer_email", "not an email address"),
    ]
    failures = []
    for name, role, method, path, options, status, field, words in entries:
        before = snapshot(web)
        response = await web.client(role).request(method, path, **options)
        after = snapshot(web)
        problems = []
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != status:
            problems.append(f"status {response.status_code}")
        if set(body) - {"errors"} != {"error", "field", "status"} or body.get("status") != response.status_code:
            problems.append(f"shape {sorted(body)}")
        error = str(body.get("error"))
        if body.get("field") != field or f"{field}: " not in error or words not in error:
            problems.append(f"field {body.get('field')!r}, error {error[:200]!r}")
        if len(error) > 400:
            problems.append(f"error of {len(error)} characters")
        if after != before:
            problems.append("state changed")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


async def test_good_values_at_the_edges_of_the_domains_are_accepted(web: Web):
    """The domains are not blind: values just inside them go through."""
    supervisor = web.client("supervisor")
    imported = await supervisor.post("/api/invoices/import", **upload(
        row(invoice_id="INV-DOM-OK", customer_email="ap@bücher.test", due_date="2028-01-05")))
    assert imported.status_code == 200, imported.text
    invoice = await web.new_case("A", "1000.00", currency="EUR")
    paid = await web.client("collector").post(f"/api/invoices/{invoice}/payments", json={
        "amount": "10.00", "payment_id": "BANK-2026/11:A#1", "received_on": "2025-01-10"})
    assert paid.status_code == 200, paid.text
    kpis = await supervisor.get("/api/reports/kpis", params={"from": "2000-01-01"})
    assert kpis.status_code == 200, kpis.text


async def test_a_405_lists_every_method_of_the_resource(web: Web):
    client = web.client("supervisor")
    for method, path, allow in (("OPTIONS", "/api/cases", "GET, POST"), ("DELETE", "/api/cases/X/assign", "POST"),
                                ("PUT", "/api/insurance/policies", "GET, POST")):
        response = await client.request(method, path)
        assert response.status_code == 405 and response.headers.get("allow") == allow, (method, path, response.headers)
        assert response.json() == {"error": "Method Not Allowed", "field": None, "status": 405}
