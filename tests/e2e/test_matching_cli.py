"""Matching bank receipts through the CLI, as a collector sees it: one camt.053 statement
(`payments import`) whose receipts pay two invoices at once (named in the remittance), leave bank
charges within the policy's tolerance (the case closes, the difference a small-balance write-off)
and beyond it (a partial payment), come from a payer IBAN seen before without a reference, pay the
exact sum of a payer's open items, and one that stays unmatched with its candidates ranked
(`payments unmatched`). Real stack: worker process, Temporal dev server, SMTP sink, database.
"""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.test_cli import ROOT, Cli, running_stack

STATEMENT = ROOT / "tests" / "data" / "statements" / "camt053-v04-matching.xml"
BASE_POLICY = ROOT / "tests" / "data" / "default-anytime.toml"

INVOICES = """invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade
INV-1001,C-100,Acme GmbH,ap@acme.test,DE,en,EUR,1200.00,2026-09-05,2026-10-04,B
INV-1002,C-100,Acme GmbH,ap@acme.test,DE,en,EUR,450.50,2026-09-12,2026-10-11,B
INV-4001,C-400,Nordwind Logistik KG,ap@nordwind.test,DE,de,EUR,800.00,2026-09-01,2026-10-01,B
INV-4002,C-400,Nordwind Logistik KG,ap@nordwind.test,DE,de,EUR,300.00,2026-09-02,2026-10-02,B
INV-4003,C-400,Nordwind Logistik KG,ap@nordwind.test,DE,de,EUR,500.00,2026-09-03,2026-10-03,B
INV-4004,C-400,Nordwind Logistik KG,ap@nordwind.test,DE,de,EUR,460.00,2026-09-04,2026-10-04,B
INV-5001,C-500,Sum Payer AG,ap@sum.test,CH,en,EUR,100.00,2026-09-01,2026-10-01,B
INV-5002,C-500,Sum Payer AG,ap@sum.test,CH,en,EUR,200.00,2026-09-08,2026-10-08,B
"""


def _policy(tmp_path):
    text = BASE_POLICY.read_text().replace('version = "test-default-anytime-1"', 'version = "test-matching-1"')
    path = tmp_path / "matching.toml"
    path.write_text(text + '\n[matching]\ntolerance = { EUR = "5.00", USD = "5.00" }\n')
    return path


def _amounts(events: list[dict], kind: str, field: str = "amount") -> Decimal:
    return sum((Decimal(e["data"][field]["amount"]) for e in events if e["type"] == kind), Decimal(0))


def test_statement_matching_split_tolerance_iban_and_candidates(dev_env, tmp_path, smtp, sqlite_url):
    ledger = tmp_path / "invoices.csv"
    ledger.write_text(INVOICES)
    with running_stack(dev_env, tmp_path, smtp, sqlite_url, policy=_policy(tmp_path)) as cli:
        cli.json("invoices", "import", str(ledger))
        cases = {i: cli.json("case", "open", i)["case_id"] for i in
                 ("INV-1001", "INV-1002", "INV-4001", "INV-4002", "INV-4003", "INV-4004", "INV-5001", "INV-5002")}

        imported = cli.json("payments", "import", str(STATEMENT))
        assert imported["format"] == "camt.053.001.04" and imported["rows"] == 6, imported
        # M-0001 (two invoices named), M-0002 (charges within), M-0003 (charges beyond): reference;
        # M-0004 (known IBAN, exact amount): amount; M-0006: the sum of Sum Payer's items; M-0005 waits
        assert imported["matched_by_reference"] == 3 and imported["matched_by_amount"] == 1, imported
        assert imported["matched_by_sum"] == 1 and imported["unmatched"] == 1, imported
        show = {i: cli.json("case", "show", c) for i, c in cases.items()}

        # one receipt, two invoices: separate applications of the same payment id, both cases paid
        split = "DE89370400440532013000:STMT-2026-11-20:M-0001"
        for invoice, share in (("INV-1001", "1200.00"), ("INV-1002", "450.50")):
            received = [e for e in show[invoice]["events"] if e["type"] == "PaymentReceived"]
            assert [(e["data"]["payment_id"], e["data"]["applied"]["amount"]) for e in received] == [(split, share)]
            assert show[invoice]["status"] == "paid" and show[invoice]["balance"] == "0.00"

        # bank charges of 2.50 within the 5.00 tolerance: closed, the difference written off by the importer
        nordwind = show["INV-4001"]
        assert nordwind["status"] == "paid" and nordwind["balance"] == "0.00", nordwind
        written = [e for e in nordwind["events"] if e["type"] == "SmallBalanceWrittenOff"]
        assert len(written) == 1 and written[0]["data"]["amount"]["amount"] == "2.50"
        assert written[0]["data"]["tolerance"]["amount"] == "5.00" and written[0]["actor"] == "demo-collector"
        # the figures recomputed from the events: what was paid plus what was written off is the invoice
        events = nordwind["events"]
        assert _amounts(events, "PaymentReceived", "applied") + _amounts(events, "SmallBalanceWrittenOff") \
            == Decimal("800.00")

        # 10.00 short is beyond the tolerance: a partial payment, the case stays open, nothing written off
        partial = show["INV-4002"]
        assert partial["status"] != "paid" and partial["balance"] == "10.00", partial
        assert not [e for e in partial["events"] if e["type"] == "SmallBalanceWrittenOff"]

        # an unknown payer name with no reference, from an IBAN that paid Nordwind before: by amount
        assert show["INV-4003"]["status"] == "paid"
        assert [e["data"]["matched_by"] for e in show["INV-4003"]["events"] if e["type"] == "PaymentReceived"] \
            == ["amount"]

        # the exact sum of Sum Payer's two open items, no reference: split across both, oldest due first
        for invoice in ("INV-5001", "INV-5002"):
            assert show[invoice]["status"] == "paid", show[invoice]
            assert [e["data"]["matched_by"] for e in show[invoice]["events"] if e["type"] == "PaymentReceived"] \
                == ["sum"]

        # 450.00 from Nordwind's IBAN fits nothing: listed with its candidates ranked and why none was taken
        waiting = cli.json("payments", "unmatched")
        assert [p["amount"] for p in waiting] == ["450.00"], waiting
        held = waiting[0]
        assert held["payer_iban"] == "DE75512108001245126199"
        assert "no open invoices of NW TREASURY are for exactly 450.00 EUR" in held["note"]
        ranked = [(c["invoice_id"], c["open"]) for c in held["candidates"]]
        assert ranked == [("INV-4004", "460.00"), ("INV-4002", "10.00")], ranked
        assert held["candidates"][0]["why_not"] == \
            "owes 10.00 EUR more than the receipt (beyond the tolerance of 5.00 EUR)"
        listing = cli.run("payments", "unmatched").stdout
        assert "INV-4004" in listing and "1 unmatched payment(s)" in listing

        # the report's write-off figure is the small balance, and every read model agrees with the events
        assert cli.run("report", "reconcile", "--json", ok=False).returncode == 0

        # importing the statement again changes nothing
        again = cli.json("payments", "import", str(STATEMENT))
        assert again["already_imported"] == 6 and again["unmatched"] == 0
        assert len(cli.json("case", "show", cases["INV-1001"])["events"]) == len(show["INV-1001"]["events"])

        # the bank reverses the split receipt: both cases give their share back and reopen
        cli.json("payments", "reverse", split, "--reason", "returned by the payer's bank", "--as", "demo-supervisor")
        for invoice, owed in (("INV-1001", "1200.00"), ("INV-1002", "450.50")):
            back = cli.json("case", "show", cases[invoice])
            assert back["status"] != "paid" and back["balance"] == owed, back

        # the bank reverses Nordwind's receipt: the small balance written off with it is owed again too
        receipt = next(e["data"]["payment_id"] for e in nordwind["events"] if e["type"] == "PaymentReceived")
        cli.json("payments", "reverse", receipt, "--reason", "recalled by the payer's bank", "--as", "demo-supervisor")
        back = cli.json("case", "show", cases["INV-4001"])
        assert back["status"] != "paid" and back["balance"] == "800.00", back
        undone = [e for e in back["events"] if e["type"] == "SmallBalanceWriteOffReversed"]
        assert [e["data"]["amount"]["amount"] for e in undone] == ["2.50"], back["events"]
        assert _amounts(back["events"], "SmallBalanceWrittenOff") - _amounts(back["events"], "SmallBalanceWriteOffReversed") == 0

        # the read models rebuilt from the events give the same payments (the split row included)
        before = cli.json("payments", "unmatched")
        cli.run("projections", "rebuild")
        assert cli.json("payments", "unmatched") == before
        reconciled = cli.run("report", "reconcile", "--json", ok=False)
        assert reconciled.returncode == 0, reconciled.stdout


PUNCTUATED = """invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade
INV-2001,C-200,Tex One BV,ap@texone.test,NL,en,EUR,250.00,2026-09-05,2026-10-04,B
INV-2002,C-201,Tex Five BV,ap@texfive.test,NL,en,EUR,480.00,2026-09-05,2026-10-04,B
INV-2003,C-202,Tex Six BV,ap@texsix.test,NL,en,EUR,99.00,2026-09-05,2026-10-04,B
INV-2004,C-203,Tex Seven BV,ap@texseven.test,NL,en,EUR,120.00,2026-09-05,2026-10-04,B
INV-2005,C-204,Tex Eight BV,ap@texeight.test,NL,en,EUR,130.00,2026-09-05,2026-10-04,B
"""
BANK_HEADER = "payment_id,received_on,amount,currency,payer,reference\n"
# the slash-separated :86: many Dutch and other SEPA banks send (/EREF/.../REMI/.../NAME/...)
SLASHED_MT940 = """:20:STMT261120
:25:NL91ABNA0417164300
:28C:00101/001
:60F:C261119EUR1000,00
:61:2611201120C480,00NTRFNONREF//B-9001
:86:/EREF/E2E-TX-1/REMI/Payment invoice INV-2002/NAME/Tex Five BV
:62F:C261120EUR1480,00
-
"""


def test_an_invoice_id_followed_by_a_full_stop_or_a_slash_is_matched(dev_env, tmp_path, smtp, sqlite_url):
    """References as people and banks write them: 'INV-2001.' ended a sentence, and the :86: line
    '/REMI/Payment invoice INV-2002/NAME/...' ran the id into the next field; both were unmatched.
    Then a payment id already recorded, sent again with another amount (a CSV row, an MT940 entry
    reference): the file is refused whole, naming the line and payment_id (it was counted 'already
    imported' and the receipt recorded nowhere); the same file again is still 'already imported'. And
    with Temporal down a file applies nothing (its row for an invoice without a case was applied)."""
    ledger = tmp_path / "invoices.csv"
    ledger.write_text(PUNCTUATED)
    bank = tmp_path / "bank.csv"
    bank.write_text(BANK_HEADER +
                    "P-1,2026-11-20,250.00,EUR,Somebody,Payment of invoice INV-2001.\n"
                    "P-2,2026-11-20,99.00,EUR,Somebody,\"inv INV-2003: thanks\"\n")
    statement = tmp_path / "slashed.sta"
    statement.write_text(SLASHED_MT940)
    with running_stack(dev_env, tmp_path, smtp, sqlite_url, policy=_policy(tmp_path)) as cli:
        cli.json("invoices", "import", str(ledger))
        cases = {i: cli.json("case", "open", i)["case_id"] for i in ("INV-2001", "INV-2002", "INV-2003")}
        imported = cli.json("payments", "import", str(bank))
        assert imported["matched_by_reference"] == 2 and imported["unmatched"] == 0, imported
        imported = cli.json("payments", "import", str(statement))
        assert imported["matched_by_reference"] == 1 and imported["unmatched"] == 0, imported
        for invoice, case_id in cases.items():
            assert cli.json("case", "show", case_id)["status"] == "paid", invoice
        assert cli.json("payments", "unmatched") == []

        # a payment id recorded before, sent again with another amount: refused whole, naming line and field
        changed = tmp_path / "changed.csv"
        changed.write_text(BANK_HEADER + "P-3,2026-11-21,120.00,EUR,Tex Seven BV,INV-2004\n"
                           "P-1,2026-11-20,240.00,EUR,Somebody,Payment of invoice INV-2001.\n")
        cli.rejected("payments", "import", str(changed), match="line 3: payment_id: payment 'P-1' was already "
                     "recorded with a different amount 250.00 EUR (sent 240.00 EUR)")
        # the same for an MT940 entry whose reference repeats with another amount (balances adjusted)
        other = tmp_path / "other.sta"
        other.write_text(SLASHED_MT940.replace("C480,00", "C470,00").replace("EUR1480,00", "EUR1470,00"))
        cli.rejected("payments", "import", str(other), match="statement NL91ABNA0417164300:00101:STMT261120, "
                     ":61: line 1: payment_id: payment 'NL91ABNA0417164300:00101:STMT2'... (44 characters) was "
                     "already recorded with a different amount 480.00 EUR (sent 470.00 EUR)")
        # the very same files again: a repeat, nothing changes
        assert cli.json("payments", "import", str(bank))["already_imported"] == 2
        assert cli.json("payments", "import", str(statement))["already_imported"] == 1
        for invoice, case_id in cases.items():
            [received] = [e for e in cli.json("case", "show", case_id)["events"] if e["type"] == "PaymentReceived"]
            assert received["data"]["amount"]["amount"] == {"INV-2001": "250.00", "INV-2002": "480.00",
                                                            "INV-2003": "99.00"}[invoice]

        # Temporal down: a row for an invoice without a case (INV-2004), one for an open case (INV-2005)
        eighth = cli.json("case", "open", "INV-2005")["case_id"]
        both = tmp_path / "both.csv"
        both.write_text(BANK_HEADER + "P-3,2026-11-21,120.00,EUR,Tex Seven BV,INV-2004\n"
                        "P-4,2026-11-21,130.00,EUR,Tex Eight BV,INV-2005\n")
        down = Cli({**cli.env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, tmp_path)
        done = down.run("payments", "import", str(both), ok=False)
        assert done.returncode == 1 and "cannot reach Temporal" in done.stderr, done.stderr
        # nothing was applied: P-3 (changed.csv was refused too) is new to the import once Temporal is back
        imported = cli.json("payments", "import", str(both))
        assert imported["matched_by_reference"] == 2 and imported["already_imported"] == 0, imported
        assert cli.json("case", "show", eighth)["status"] == "paid"
        assert cli.json("payments", "import", str(both))["already_imported"] == 2
