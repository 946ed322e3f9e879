"""The bad-input catalogue, through the command line.

Every entry is a command a person could type with something wrong in it. Each
must exit 2 with one clear line on stderr naming what is wrong, and leave
everything as it was: the event count, every projection row, the ledger, the
delivery log and the SMTP sink. The commands run in this process through the
CLI's own ``main()`` (argument parsing, error mapping, exit codes) against a
real worker process, the Temporal dev server, a SQLite store and an SMTP sink.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from app.context import Context
from app.mailsink import MailSink
from app.settings import Settings
from store.schema import PROJECTION_TABLES, customers, invoices, notice_deliveries, payments
from tests.harness import INVOICES, cli_environment, patched_environment, token_for

ROOT = Path(__file__).resolve().parents[2]
FAST = ROOT / "tests" / "data" / "fast.toml"
DEFAULT = ROOT / "policies" / "default.toml"
HEADER = ("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,"
          "due_date,risk_grade")
GOOD_ROW = "INV-NEW1,C-900,New Co,ap@new.test,DE,en,EUR,100.00,2026-01-05,2026-02-04,B"
TODAY = date.today()


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def cli(*args: str) -> Run:
    """``python starter.py ARGS`` in this process: same parser, same error mapping, same exit codes."""
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv, environ = sys.argv, dict(os.environ)
    sys.argv = ["starter.py", *args]
    if "COLLECTIONS_USERS" in os.environ and "COLLECTIONS_TOKEN" not in os.environ:  # the person's own token
        os.environ["COLLECTIONS_TOKEN"] = token_for(os.environ["COLLECTIONS_USERS"], args)
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)  # the command set COLLECTIONS_USER to its token's user
    return Run(code, out.getvalue(), err.getvalue())


def ok(*args: str) -> str:
    run = cli(*args)
    assert run.code == 0, (args, run.stderr)
    return run.stdout


class Catalogue:
    def __init__(self, directory: Path, sink: MailSink) -> None:
        self.directory = directory
        self.sink = sink
        self.context = Context(Settings())
        self.ids: dict[str, str] = {}

    def file(self, name: str, content: str | bytes) -> str:
        path = self.directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return str(path)

    def snapshot(self) -> tuple:
        """Everything a rejected command must leave as it was."""
        digest = hashlib.sha256()
        with self.context.db.read() as session:
            for table in (*PROJECTION_TABLES, invoices, customers, payments, notice_deliveries):
                for row in sorted(map(repr, session.execute(select(table)))):
                    digest.update(row.encode())
        return self.context.store.count(), digest.hexdigest(), len(self.sink.messages)


@pytest.fixture(scope="module")
def catalogue(dev_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("badcli")
    sink = MailSink(tmp / "mail").start()
    env = cli_environment(dev_env, tmp, sink.port, FAST, "bad")
    with patched_environment(env) as patch:
        ok("db", "upgrade")
        worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env={**os.environ}, cwd=tmp,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ok("invoices", "import", str(INVOICES))
            jpy = f"{HEADER}\nINV-JP1,C-700,Tokyo KK,ap@tokyo.test,JP,en,JPY,120000,2026-01-05,2026-02-04,B\n"
            cat = Catalogue(tmp, sink)
            ok("invoices", "import", cat.file("jpy.csv", jpy))
            # escalated quickly under the fast policy, then quiet for 10 minutes (SLA)
            ok("case", "open", "INV-1001")
            ok("case", "open", "INV-3001")
            ok("case", "open", "INV-1002")
            ok("pay", "INV-1002", "450.50", "--payment-id", "close-1002")  # closed as paid
            # quiet cases under the default policy (first reminder in days)
            patch.setenv("COLLECTIONS_POLICY", str(DEFAULT))
            ok("case", "open", "INV-2001")
            ok("case", "open", "INV-JP1")
            deadline = time.monotonic() + 90
            while True:
                rows = {r["invoice_id"]: r["status"] for r in json.loads(ok("case", "list", "--json"))}
                if rows.get("INV-1001") == "escalated" and rows.get("INV-3001") == "escalated":
                    break
                assert time.monotonic() < deadline, rows
                time.sleep(0.5)
            ok("write-off", "request", "INV-3001", "--amount", "20000", "--reason", "insolvency",
               "--as", "demo-manager")
            approvals = json.loads(ok("approvals", "list", "--json"))
            cat.ids["write_off"] = next(a["approval_id"] for a in approvals if a["kind"] == "write_off")
            yield cat
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
            sink.stop()


def bad_files(cat: Catalogue) -> dict[str, str]:
    f = cat.file
    return {
        "latin1": f("latin1.csv", (HEADER + "\nINV-L1,C-1,Müller GmbH,ap@m.test,DE,de,EUR,10.00,2026-01-05,"
                                   "2026-02-04,B\n").encode("latin-1")),
        "binary": f("garbage.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
        "dup": f("dup.csv", f"{HEADER}\n{GOOD_ROW}\n{GOOD_ROW}\n"),
        "missing_col": f("missing.csv", "invoice_id,amount\nINV-X,10\n"),
        # saved by a spreadsheet whose list separator is ';' (many European locales)
        "semicolons": f("semicolons.csv", HEADER.replace(",", ";") + "\n" + GOOD_ROW.replace(",", ";") + "\n"),
        "payments_semicolons": f("bank-semicolons.csv", "payment_id;received_on;amount;currency;payer;reference\n"
                                 "P-1;2026-03-01;10.00;EUR;Acme;INV-1001\n"),
        "extra_values": f("extra.csv", f"{HEADER}\n{GOOD_ROW},surplus\n"),
        "negative": f("negative.csv", f"{HEADER}\n" + GOOD_ROW.replace("100.00", "-100.00") + "\n"),
        "zero": f("zero.csv", f"{HEADER}\n" + GOOD_ROW.replace("100.00", "0.00") + "\n"),
        "currency": f("currency.csv", f"{HEADER}\n" + GOOD_ROW.replace(",EUR,", ",XYZ,") + "\n"),
        "decimals": f("decimals.csv", f"{HEADER}\n" + GOOD_ROW.replace("100.00", "100.001") + "\n"),
        "jpy_decimals": f("jpy.csv", f"{HEADER}\n" + GOOD_ROW.replace(",EUR,100.00,", ",JPY,100.5,") + "\n"),
        "huge_amount": f("huge.csv", f"{HEADER}\n" + GOOD_ROW.replace("100.00", "9" * 40) + "\n"),
        "due_before_issue": f("dates.csv", f"{HEADER}\n" + GOOD_ROW.replace("2026-02-04", "2025-12-01") + "\n"),
        "bad_date": f("baddate.csv", f"{HEADER}\n" + GOOD_ROW.replace("2026-02-04", "04/02/2026") + "\n"),
        "script_email": f("email.csv", f"{HEADER}\n" + GOOD_ROW.replace("ap@new.test", "<script>@x") + "\n"),
        "sql_id": f("sqlid.csv", f"{HEADER}\n" + GOOD_ROW.replace("INV-NEW1", "1';DROP TABLE invoices;--") + "\n"),
        "long_name": f("long.csv", f"{HEADER}\n" + GOOD_ROW.replace("New Co", "N" * 10_000) + "\n"),
        "header_only": f("empty.csv", HEADER + "\n"),
        "changed": f("changed.csv", HEADER + "\nINV-1001,C-100,Acme GmbH,ap@acme.test,DE,en,USD,1200.00,2026-01-05,"
                                              "2026-02-04,B\n"),
        "bad_country": f("country.csv", f"{HEADER}\n" + GOOD_ROW.replace(",DE,", ",XX,") + "\n"),
        "bad_grade": f("grade.csv", f"{HEADER}\n" + GOOD_ROW[:-1] + "Z\n"),
    }


def catalogue_entries(cat: Catalogue) -> list[tuple[str, tuple[str, ...], str]]:
    """(name, argv, what the one stderr line must say)."""
    files = bad_files(cat)
    wo = cat.ids["write_off"]
    # The server judges 'future' by its UTC date at the request; two days ahead of the UTC date now
    # stays in the future even if the run crosses midnight (TODAY was taken at collection).
    future_day = (datetime.now(timezone.utc).date() + timedelta(days=2)).isoformat()
    return [
        # amounts
        ("negative amount", ("pay", "INV-1001", "-5"), "must be positive"),
        ("zero amount", ("pay", "INV-1001", "0"), "must be positive"),
        ("absurdly large amount", ("pay", "INV-1001", "1" + "0" * 20), "exceeds the largest amount"),
        ("huge input amount", ("pay", "INV-1001", "9" * 5000), "exceeds the largest amount"),
        ("more decimals than EUR allows", ("pay", "INV-1001", "12.345"), "more decimal places than EUR allows"),
        ("decimals in JPY", ("pay", "INV-JP1", "100.5"), "more decimal places than JPY allows"),
        ("not a number", ("pay", "INV-1001", "ten euros"), "is not a number"),
        ("NaN", ("pay", "INV-1001", "NaN"), "not a finite number"),
        ("infinity", ("pay", "INV-1001", "Infinity"), "not a finite number"),
        ("thousands separator", ("pay", "INV-1001", "1,000.00"), "is not a number"),
        ("unknown invoice", ("pay", "NO-SUCH-INVOICE", "10"), "unknown invoice"),
        ("malformed date", ("pay", "INV-1001", "10", "--received-on", "2026-13-45"), "not a date"),
        ("date in the future", ("pay", "INV-1001", "10", "--received-on", future_day), "is in the future"),
        ("command on a closed case", ("pay", "INV-1002", "10"), "closed"),
        ("control characters", ("pay", "INV-1001", "10", "--reference", "wire\x1b[31mred"), "control characters"),
        ("huge reference", ("pay", "INV-1001", "10", "--reference", "x" * 100_000), "at most 500"),
        # disputes
        ("bad reason code", ("dispute", "open", "INV-2001", "--reason", "Bad Reason!"), "is not a reason code"),
        ("SQL-looking reason", ("dispute", "open", "INV-2001", "--reason", "'; DROP TABLE case_events; --"),
         "is not a reason code"),
        ("disputed amount above the balance", ("dispute", "open", "INV-2001", "--reason", "quality", "--amount",
                                               "99999"), "exceeds the open balance"),
        ("unknown dispute outcome", ("dispute", "resolve", "INV-2001", "--outcome", "maybe"), "not one of upheld"),
        ("resolving no dispute", ("dispute", "resolve", "INV-2001", "--outcome", "upheld"), "no open dispute"),
        # promises
        ("promise date in the past", ("promise", "INV-2001", "--amount", "10", "--date", "2020-01-01"),
         "is in the past"),
        ("promise date malformed", ("promise", "INV-2001", "--amount", "10", "--date", "31/12/2026"), "not a date"),
        ("promise too far out", ("promise", "INV-2001", "--amount", "10", "--date",
                                 (TODAY + timedelta(days=400)).isoformat()), "beyond the longest promise"),
        ("promise on an escalated case", ("promise", "INV-1001", "--amount", "10", "--date", future_day),
         "waiting for a supervisor decision"),
        # plans
        ("zero instalments", ("plan", "propose", "INV-2001", "--instalments", "0", "--every", "P30D"),
         "instalments: must be between 1 and 12"),
        ("absurd instalments", ("plan", "propose", "INV-2001", "--instalments", "5000", "--every", "P30D"),
         "instalments: must be between 1 and 12"),
        ("instalments not a whole number", ("plan", "propose", "INV-2001", "--instalments", "2.5", "--every", "P30D"),
         "valid integer"),
        ("interval too short", ("plan", "propose", "INV-2001", "--instalments", "3", "--every", "P1D"),
         "every: must be between"),
        ("interval not ISO 8601", ("plan", "propose", "INV-2001", "--instalments", "3", "--every", "thirty days"),
         "ISO 8601"),
        ("first instalment in the past", ("plan", "propose", "INV-2001", "--instalments", "3", "--every", "P30D",
                                          "--first", "2020-01-01"), "in the past"),
        ("accepting no plan", ("plan", "accept", "INV-2001"), "no proposed plan"),
        # escalations and approvals
        ("collector decides an escalation", ("escalation", "decide", "INV-1001", "--decision", "write_off", "--as",
                                             "demo-collector"), "only a supervisor or finance_manager"),
        ("unknown decision", ("escalation", "decide", "INV-1001", "--decision", "maybe", "--as", "demo-supervisor"),
         "is not one of"),
        ("deciding a case that is not escalated", ("escalation", "decide", "INV-2001", "--decision", "continue",
                                                   "--as", "demo-supervisor"), "not waiting for an escalation"),
        ("write-off above the balance", ("write-off", "request", "INV-2001", "--amount", "99999999", "--reason",
                                         "insolvency"), "exceeds the open balance"),
        ("script-looking reason", ("write-off", "request", "INV-2001", "--amount", "10", "--reason",
                                   "<script>alert(1)</script>"), "is not a reason code"),
        ("approving one's own request", ("approvals", "approve", wo, "--reason", "ok", "--as", "demo-manager"), "four eyes"),
        ("approving above one's limit", ("approvals", "approve", wo, "--reason", "ok", "--as", "demo-supervisor"),
         "write-off authority (10000 USD)"),
        ("collector approves", ("approvals", "approve", wo, "--reason", "ok", "--as", "demo-collector"), "only a supervisor"),
        ("rejecting without a reason", ("approvals", "reject", wo, "--reason", "", "--as", "demo-supervisor"),
         "must not be empty"),
        ("unknown approval", ("approvals", "approve", "AP-does-not-exist", "--reason", "ok", "--as", "demo-manager"),
         "unknown approval"),
        ("someone else's name", ("approvals", "approve", wo, "--reason", "ok", "--as", "mallory"), "does not match"),
        # cases
        ("unknown case", ("case", "show", "NO-SUCH-CASE"), "unknown case"),
        ("SQL-looking case id", ("case", "show", "x' OR '1'='1"), "unknown case"),
        ("huge case id", ("case", "show", "C" * 100_000), "unknown case"),
        ("assign to an unknown user", ("case", "assign", "INV-2001", "nobody"), "unknown user"),
        ("collector cancels", ("case", "cancel", "INV-2001", "--reason", "invoice_voided", "--as",
                               "demo-collector"), "only a supervisor"),
        ("cancelling a closed case", ("case", "cancel", "INV-1002", "--reason", "invoice_voided", "--as",
                                      "demo-supervisor"), "closed"),
        ("opening an unknown invoice", ("case", "open", "NO-SUCH-INVOICE"), "unknown invoice"),
        ("unknown open reason", ("case", "open", "INV-2001", "--reason", "because"), "not one of overdue"),
        ("unknown status filter", ("case", "list", "--status", "bogus"), "not a status"),
        ("unknown option", ("pay", "INV-1001", "10", "--amount-in-cents", "1000"), "unexpected extra argument"),
        # imports
        ("missing file", ("invoices", "import", str(cat.directory / "nope.csv")), "does not exist"),
        ("wrong encoding", ("invoices", "import", files["latin1"]), "is not UTF-8"),
        ("binary file", ("invoices", "import", files["binary"]), "is not UTF-8"),
        ("duplicated ids", ("invoices", "import", files["dup"]), "already appears on line 2"),
        ("missing columns", ("invoices", "import", files["missing_col"]), "missing column(s)"),
        ("semicolon-separated invoices", ("invoices", "import", files["semicolons"]),
         "separated by semicolons, not commas: save it as comma-separated CSV"),
        ("semicolon-separated bank file", ("payments", "import", files["payments_semicolons"]),
         "separated by semicolons, not commas"),
        ("more values than columns", ("invoices", "import", files["extra_values"]), "more values than columns"),
        ("negative invoice amount", ("invoices", "import", files["negative"]), "must be positive"),
        ("zero invoice amount", ("invoices", "import", files["zero"]), "must be positive"),
        ("wrong currency", ("invoices", "import", files["currency"]), "unknown currency"),
        ("too many decimals in a row", ("invoices", "import", files["decimals"]), "more decimal places"),
        ("JPY with decimals in a row", ("invoices", "import", files["jpy_decimals"]), "more decimal places"),
        ("absurd amount in a row", ("invoices", "import", files["huge_amount"]), "exceeds the largest amount"),
        ("due before issue", ("invoices", "import", files["due_before_issue"]), "before the issue date"),
        ("malformed date in a row", ("invoices", "import", files["bad_date"]), "not an ISO date"),
        ("script-looking e-mail", ("invoices", "import", files["script_email"]), "is not an email address"),
        ("SQL-looking invoice id", ("invoices", "import", files["sql_id"]), "is not a valid id"),
        ("huge customer name", ("invoices", "import", files["long_name"]), "longer than 300"),
        ("header but no rows", ("invoices", "import", files["header_only"]), "no invoices"),
        ("re-import in another currency", ("invoices", "import", files["changed"]),
         "line 2: currency: invoice INV-1001 is in EUR"),
        ("unknown country", ("invoices", "import", files["bad_country"]), "country code"),
        ("unknown risk grade", ("invoices", "import", files["bad_grade"]), "not a risk grade"),
        # customers, risk, credit holds
        ("unknown customer", ("customer", "show", "NO-SUCH-CUSTOMER"), "unknown customer"),
        ("customer as of a malformed date", ("customer", "show", "C-100", "--as-of", "31/12/2026"), "not a date"),
        ("collector sets a credit limit", ("customer", "limit", "C-100", "5000", "--reason", "r", "--as", "demo-collector"),
         "only a supervisor"),
        ("negative credit limit", ("customer", "limit", "C-100", "-5", "--reason", "r", "--as", "demo-supervisor"), "must be positive"),
        ("negative watchlist window", ("risk", "watchlist", "--days", "-1"), "must not be negative"),
        ("rescoring an unknown customer", ("risk", "rescore", "--customer", "NOPE"), "unknown customer"),
        ("collector places a credit hold", ("credit-hold", "place", "C-100", "--reason", "late", "--as",
                                            "demo-collector"), "only a supervisor"),
        ("credit hold without a reason", ("credit-hold", "place", "C-100", "--reason", "", "--as",
                                          "demo-supervisor"), "must not be empty"),
        ("releasing no credit hold", ("credit-hold", "release", "C-200", "--reason", "ok", "--as", "demo-supervisor"),
         "not on credit hold"),
        ("acknowledging an unknown outbox entry", ("credit-hold", "ack", "no-such-entry"), "unknown outbox entry"),
        # customer credit
        ("applying credit the customer does not have", ("payments", "apply-credit", "INV-2001", "--amount", "10"),
         "exceeds the customer's credit"),
        ("applying credit with no credit at all", ("payments", "apply-credit", "INV-2001"), "no CNY credit"),
        ("apply-credit without an invoice or --auto", ("payments", "apply-credit"), "give an INVOICE_ID or --auto"),
        ("applying credit to a closed case", ("payments", "apply-credit", "INV-1002"), "closed"),
        ("prepayment of an unknown customer", ("payments", "prepay", "NOPE", "10"), "unknown customer"),
        ("prepayment received in two days", ("payments", "prepay", "C-100", "10", "--currency", "EUR", "--received-on",
                                          future_day), "is in the future"),
        ("negative prepayment", ("payments", "prepay", "C-100", "-10", "--currency", "EUR"), "must be positive"),
        ("unapplied as of a malformed date", ("payments", "unapplied", "--as-of", "yesterday"), "not a date"),
        # KPI reports
        ("report period backwards", ("report", "dso", "--from", "2026-03-01", "--to", "2026-01-01"),
         "before it starts"),
        ("report in an unknown currency", ("report", "kpis", "--currency", "XYZ"), "unknown currency"),
        ("report from a malformed date", ("report", "cei", "--from", "01/01/2026", "--csv"), "not a date"),
        # audit trail
        ("audit export period backwards", ("audit", "export", "--from", "2026-03-01", "--to", "2026-01-01", "--csv"),
         "before it starts"),
        ("audit export from a malformed date", ("audit", "export", "--from", "01/01/2026"), "not a date"),
        ("audit export as CSV and JSON at once", ("audit", "export", "--csv", "--json"), "exclude each other"),
        ("audit verify against a missing anchor file", ("audit", "verify", "--anchor", str(cat.directory / "no.jsonl")),
         "not found"),
        # credit insurance
        ("insurer terms not ISO 8601", ("insurance", "policy-add", "POL-X", "--insurer", "ATR", "--name", "Insurer",
                                        "--email", "claims@insurer.test", "--notify-within", "sixty days",
                                        "--max-extension", "P45D", "--claim-waiting", "P90D", "--indemnity", "90"),
         "ISO 8601"),
        ("indemnity above 100 percent", ("insurance", "policy-add", "POL-X", "--insurer", "ATR", "--name", "Insurer",
                                         "--email", "claims@insurer.test", "--notify-within", "P60D",
                                         "--max-extension", "P45D", "--claim-waiting", "P90D", "--indemnity", "120"),
         "percentage"),
        ("insurer e-mail not an address", ("insurance", "policy-add", "POL-X", "--insurer", "ATR", "--name",
                                           "Insurer", "--email", "claims", "--notify-within", "P60D",
                                           "--max-extension", "P45D", "--claim-waiting", "P90D", "--indemnity", "90"),
         "is not an email address"),
        ("insuring under an unknown policy", ("insurance", "cover", "INV-1001", "--policy", "NO-POLICY"),
         "unknown insurer policy"),
        ("insuring an unknown invoice", ("insurance", "cover", "NO-SUCH-INVOICE", "--policy", "NO-POLICY"),
         "unknown invoice"),
        ("indemnity with no claim", ("insurance", "indemnity", "INV-2001", "10", "--as", "demo-manager"),
         "no insurance claim"),
        ("collector records an indemnity", ("insurance", "indemnity", "INV-2001", "10", "--as", "demo-collector"),
         "only a supervisor"),
        # backtest
        ("backtest without its policy file", ("backtest", str(INVOICES), "--policy", str(cat.directory / "no.toml")),
         "does not exist"),
        ("backtest in an unknown layout", ("backtest", str(INVOICES), "--policy", str(DEFAULT), "--format", "xls"),
         "not a known format"),
        ("backtest of zero customers", ("backtest", str(INVOICES), "--policy", str(DEFAULT), "--customers", "0"),
         "at least 1"),
        ("backtest of an unknown customer", ("backtest", str(INVOICES), "--policy", str(DEFAULT), "--customer",
                                             "NOPE"), "unknown customer"),
    ]


# Known: these messages repeat the whole of a huge input (5,000 digits, 100,000 characters).
# Refused and nothing changed, but the one line is not short; see the strict xfail below.
ECHOES_HUGE_INPUT = {"huge input amount", "huge case id"}


def test_every_bad_input_is_refused_clearly_and_changes_nothing(catalogue: Catalogue):
    entries = catalogue_entries(catalogue)
    assert len(entries) >= 40 and len({name for name, _, _ in entries}) == len(entries)
    failures = []
    for name, args, expect in entries:
        before = catalogue.snapshot()
        run = cli(*args)
        after = catalogue.snapshot()
        lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
        problems = []
        if run.code != 2:
            problems.append(f"exit {run.code}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif expect not in lines[0]:
            problems.append(f"message {lines[0][:200]!r}")
        elif len(lines[0]) > 400 and name not in ECHOES_HUGE_INPUT:
            problems.append(f"message of {len(lines[0])} characters")
        if after != before:
            problems.append(f"state changed {before} -> {after}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def test_the_catalogue_would_notice_a_change(catalogue: Catalogue):
    """The snapshot is not blind: a valid command does change it."""
    before = catalogue.snapshot()
    ok("case", "assign", "INV-2001", "demo-collector")
    assert catalogue.snapshot() != before


def test_huge_inputs_are_not_echoed_back(catalogue: Catalogue):
    for args in (("pay", "INV-1001", "9" * 5000), ("case", "show", "C" * 100_000)):
        run = cli(*args)
        assert run.code == 2 and len(run.stderr) < 400, len(run.stderr)


@pytest.mark.parametrize("url, code, said", [
    ("postgres://postgres@127.0.0.1:5432/test", 2, "database_url: Can't load plugin"),  # SQLAlchemy's scheme is postgresql
    ("not a url", 2, "database_url: Could not parse"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/collections", 1, "cannot use the database"),  # nothing listens
])
def test_a_database_that_cannot_be_used_is_one_line_not_a_traceback(tmp_path, url, code, said):
    """`db upgrade` (and any command) with a mistyped or unreachable COLLECTIONS_DATABASE_URL
    printed SQLAlchemy's traceback, about 100 lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTIONS_", "TEMPORAL_"))}
    env.update(COLLECTIONS_DATA_DIR=str(tmp_path), COLLECTIONS_DATABASE_URL=url)
    for args in (("db", "upgrade"), ("case", "list")):
        done = subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == code and len(lines) == 1 and said in lines[0], (args, done.returncode, done.stderr[-800:])
