"""Every input has a domain (issue 14): each value class through the command line, run as a
subprocess (``python starter.py ...``) against a real worker, the Temporal dev server, a SQLite
store and an SMTP sink. Each must exit 2 with one line on stderr naming the field, no
traceback, and leave everything as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

from tests.e2e.test_bad_inputs_cli import HEADER, ROOT, Catalogue, catalogue  # noqa: F401  (the stack fixture)
from tests.harness import token_for

BANK = "payment_id,received_on,amount,currency,payer,reference"


def row(**change: str) -> str:
    values = {"invoice_id": "INV-DOM1", "customer_id": "C-DOM", "customer_name": "Domain Co",
              "customer_email": "ap@domain.test", "country": "DE", "language": "en", "currency": "EUR",
              "amount": "100.00", "issue_date": "2026-01-05", "due_date": "2026-02-04", "risk_grade": "B", **change}
    return ",".join(values[c] for c in HEADER.split(","))


def starter(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLLECTIONS_TOKEN": token_for(os.environ["COLLECTIONS_USERS"], args)}  # the person's own
    return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_every_value_class_is_refused_by_the_cli_naming_the_field(catalogue: Catalogue):  # noqa: F811
    f = catalogue.file
    far = (date.today() + timedelta(days=5 * 365)).isoformat()
    invoices = lambda name, *rows: f(name, "\n".join((HEADER, *rows)) + "\n")  # noqa: E731
    bank = lambda name, *lines: f(name, "\n".join((BANK, *lines)) + "\n")  # noqa: E731
    entries = [
        # (value class, argv, field, words)
        ("amount 1e1000000", ("pay", "INV-2001", "1e1000000"), "amount", "no exponent"),
        ("amount of 14 digits", ("pay", "INV-2001", "12345678901234"), "amount", "exceeds the largest amount"),
        ("amount 1e1000000 in an invoice file", ("invoices", "import", invoices("exp.csv", row(amount="1e1000000"))),
         "amount", "no exponent"),
        ("payment received on 0001-01-01", ("pay", "INV-2001", "10", "--received-on", "0001-01-01"), "received_on",
         "outside the dates accepted"),
        ("payment received long before the invoice", ("pay", "INV-2001", "10", "--received-on", "2020-01-01"),
         "received_on", "before the invoice was issued"),
        ("bank file payment on 0001-01-01", ("payments", "import", bank("old.csv", "B-1,0001-01-01,10.00,CNY,x,INV-2001")),
         "received_on", "outside the dates accepted"),
        ("plan first instalment on 9999-12-01", ("plan", "propose", "INV-2001", "--instalments", "3", "--every", "P30D",
                                                 "--first", "9999-12-01"), "first", "outside the dates accepted"),
        ("plan first instalment on 9999-12-31", ("plan", "propose", "INV-2001", "--instalments", "3", "--every", "P30D",
                                                 "--first", "9999-12-31"), "first", "outside the dates accepted"),
        ("plan first instalment beyond the horizon", ("plan", "propose", "INV-2001", "--instalments", "3", "--every",
                                                      "P30D", "--first", far), "first", "plan horizon"),
        ("invoice due on 9999-12-31", ("invoices", "import", invoices("due.csv", row(due_date="9999-12-31"))),
         "due_date", "outside the dates accepted"),
        ("invoice due beyond the longest terms", ("invoices", "import", invoices("terms.csv", row(due_date="2029-01-05"))),
         "due_date", "longest terms"),
        ("KPIs from 0001-01-01", ("report", "dso", "--from", "0001-01-01"), "from", "outside the dates accepted"),
        ("KPIs from before the policy's earliest date", ("report", "kpis", "--from", "1950-01-01"), "from",
         "before 2000-01-01"),
        ("customer as of 0001-01-01", ("customer", "show", "C-100", "--as-of", "0001-01-01"), "as-of",
         "outside the dates accepted"),
        ("a 5 MB CSV field", ("invoices", "import", invoices("big.csv", row(customer_name="N" * 5_000_000))), "file",
         "longer than"),
        ("a 5 MB CSV field in a bank file", ("payments", "import", bank("bigbank.csv", f"B-2,2026-03-01,10.00,CNY,"
                                                                      f"{'P' * 5_000_000},INV-2001")), "file",
         "longer than"),
        ("payment id with a tab", ("pay", "INV-2001", "10", "--payment-id", "p\t1"), "payment_id", "not a valid id"),
        ("payment id with a newline", ("pay", "INV-2001", "10", "--payment-id", "p\n1"), "payment_id",
         "not a valid id"),
        ("payment id with NUL in a bank file", ("payments", "import", bank("nul.csv", "B\x003,2026-03-01,10.00,CNY,x,y")),
         "payment_id", "not a valid id"),
        ("prepayment id with a newline", ("payments", "prepay", "C-100", "10", "--currency", "EUR", "--payment-id",
                                          "p\n1"), "payment_id", "not a valid id"),
        ("e-mail with a non-ASCII local part", ("invoices", "import", invoices("mail.csv",
                                                                             row(customer_email="jörg@domain.test"))),
         "customer_email", "SMTPUTF8"),
    ]
    failures = []
    for name, args, field, words in entries:
        before = catalogue.snapshot()
        run = starter(*args)
        after = catalogue.snapshot()
        lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
        problems = []
        if run.returncode != 2:
            problems.append(f"exit {run.returncode}")
        if len(lines) != 1 or "Traceback" in run.stderr:
            problems.append(f"{len(lines)} stderr lines: {run.stderr[-300:]!r}")
        elif f"{field}: " not in lines[0] or words not in lines[0] or len(lines[0]) > 400:
            problems.append(f"message {lines[0][:300]!r}")
        if after != before:
            problems.append("state changed")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def test_a_value_just_inside_the_domains_goes_through(catalogue: Catalogue):  # noqa: F811
    """Not blind: a payment dated within the horizon, with a safe id, is recorded."""
    before = catalogue.snapshot()
    run = starter("pay", "INV-2001", "10", "--payment-id", "BANK-2026/11:A#1", "--received-on", "2025-06-01")
    assert run.returncode == 0, run.stderr
    assert catalogue.snapshot() != before
