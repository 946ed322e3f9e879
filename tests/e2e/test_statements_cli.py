"""Bank statements through the CLI, as a collector imports them: camt.053 (v02, v08), camt.054
(v04, v06) and MT940 with `payments import`, then `case show` / `payments unmatched` show what the
statement did. Real stack: worker.py in its own process, Temporal dev server, SMTP sink, database.
The policy has real-world timings, so no notice or fee moves a balance while the test runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import ROOT, event_count, running_stack
from tests.harness import INVOICES

STATEMENTS = ROOT / "tests" / "data" / "statements"
POLICY = ROOT / "tests" / "data" / "default-anytime.toml"
REAL = Path("/work/shared/data/bank-statements/mt940")  # read in place, never copied into the project
REAL_SAMPLE = ("jejik/generic.sta", "jejik/sns.sta", "jejik/rabobank-iban.sta", "jejik/ing.sta",
               "betterplace/with_binary_character.sta", "betterplace/sepa_snippet_broken.sta",
               "betterplace/empty_entry_date.sta")

IBAN_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.06">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>NTF-2026-02-26</MsgId><CreDtTm>2026-02-26T09:00:00</CreDtTm></GrpHdr>
    <Ntfctn><Id>NTF-2026-02-26-1</Id>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
      <Ntry><Amt Ccy="EUR">1200.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-02-26</Dt></BookgDt><AcctSvcrRef>N-0002</AcctSvcrRef>
        <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <RltdPties><Dbtr><Nm>ACME TREASURY SERVICES</Nm></Dbtr>
            <DbtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>February</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""

# SWIFT-structured :86: subfields (ING, Rabobank): /NAME/ is the payer, also after /REMI/ and over the
# :61: line's supplementary details ("REF 4471"); the first credit names no invoice, only the payer
MT940_NAMES = """:20:STMT260226
:25:US64SVBKUS6S3300958879
:28C:00058/001
:60F:C260225USD0,00
:61:2602260226C50000,00NTRFNONREF//B-8801
:86:/REMI/Payment for order 77/NAME/BIG SPENDER INC/
:61:2602260226C10,00NTRFNONREF//B-8802
REF 4471
:86:/EREF/E2E-WD-1/ORDP//NAME/WIDGETS AND CO/REMI/Payment invoice INV-1/
:62F:C260226USD50010,00
-
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_statements_pay_reverse_and_reimport(dev_env, tmp_path, smtp, database_url):
    with running_stack(dev_env, tmp_path, smtp, database_url, policy=POLICY) as cli:
        cli.json("invoices", "import", str(INVOICES))
        acme = cli.json("case", "open", "INV-1001")["case_id"]
        shanghai = cli.json("case", "open", "INV-2001")["case_id"]
        assert cli.json("case", "show", acme)["balance"] == "1200.00"

        # camt.053 v02: INV-1001 named in the remittance text, INV-1002 (no case) by an RF creditor
        # reference, a bank fee (debit) that is no receipt, a pending entry that is not booked yet
        v02 = str(STATEMENTS / "camt053-v02.xml")
        imported = cli.json("payments", "import", v02)
        assert imported["format"] == "camt.053.001.02" and imported["rows"] == 2
        assert imported["matched_by_reference"] == 2 and imported["unmatched"] == 0
        assert imported["debits_ignored"] == 1
        shown = cli.json("case", "show", acme)
        assert shown["status"] == "paid" and shown["balance"] == "0.00"
        events = event_count(cli, acme)

        again = cli.json("payments", "import", v02)  # re-import: nothing changes
        assert again["already_imported"] == 2 and again["matched_by_reference"] == 0
        assert event_count(cli, acme) == events and cli.json("payments", "unmatched") == []
        assert "camt.053.001.02, 1 statement(s): 2 payment(s)" in cli.run("payments", "import", v02).stdout

        # camt.054 v04: no reference, the payer's name and the exact amount find INV-2001
        notified = cli.json("payments", "import", str(STATEMENTS / "camt054-v04.xml"))
        assert notified["matched_by_amount"] == 1
        assert cli.json("case", "show", shanghai)["status"] == "paid"

        # camt.053 v08: the bank reverses the INV-1001 receipt (RvslInd); the case is due again
        reversal = cli.json("payments", "import", str(STATEMENTS / "camt053-v08.xml"))
        assert reversal["reversed"] == 1 and reversal["reversals_unmatched"] == []
        reopened = cli.json("case", "show", acme)
        assert reopened["status"] != "paid" and reopened["balance"] == "1200.00"
        assert any(e["type"] == "PaymentReversed" for e in reopened["events"])
        events = event_count(cli, acme)
        assert cli.json("payments", "import", str(STATEMENTS / "camt053-v08.xml"))["already_imported"] == 1
        assert event_count(cli, acme) == events  # the reversal is not applied twice

        # camt.054 v06: an unknown payer name, but the IBAN paid Acme before: it names the customer
        by_iban = cli.json("payments", "import", write(tmp_path, "iban.xml", IBAN_ONLY))
        assert by_iban["matched_by_amount"] == 1
        assert cli.json("case", "show", acme)["status"] == "paid"

        # MT940: INV-1002 is already paid and the other credit names nothing: both wait, the fee is no receipt
        mt940 = cli.json("payments", "import", str(STATEMENTS / "mt940-statement.sta"))
        assert mt940["format"] == "mt940" and mt940["unmatched"] == 2 and mt940["debits_ignored"] == 1
        waiting = {p["amount"]: p for p in cli.json("payments", "unmatched")}
        assert set(waiting) == {"100.00", "75.00"} and waiting["75.00"]["payer"] == "UNKNOWN PAYER LTD"
        assert "already paid" in waiting["100.00"]["note"]

        # MT940 with /NAME/: the payer's name finds Big Spender's one open invoice by its amount, and
        # the case's payment names the payer, as a CSV row's payer column would
        spender = cli.json("case", "open", "INV-3001")["case_id"]
        named = cli.json("payments", "import", write(tmp_path, "names.sta", MT940_NAMES))
        assert named["matched_by_amount"] == 1 and named["unmatched"] == 1, named
        paid = cli.json("case", "show", spender)
        assert paid["status"] == "paid", paid
        [received] = [e["data"] for e in paid["events"] if e["type"] == "PaymentReceived"]
        assert received["payer"] == "BIG SPENDER INC" and received["matched_by"] == "amount", received
        waiting = {p["amount"]: p for p in cli.json("payments", "unmatched")}
        assert waiting["10.00"]["payer"] == "WIDGETS AND CO", waiting["10.00"]
        assert "WIDGETS AND CO" in cli.run("payments", "unmatched").stdout  # the table a collector reads


def test_bad_statements_are_refused_whole(dev_env, tmp_path, smtp, sqlite_url):
    with running_stack(dev_env, tmp_path, smtp, sqlite_url, policy=POLICY) as cli:
        cli.json("invoices", "import", str(INVOICES))
        acme = cli.json("case", "open", "INV-1001")["case_id"]
        camt = (STATEMENTS / "camt053-v02.xml").read_text()
        mt = (STATEMENTS / "mt940-statement.sta").read_text()
        cli.rejected("payments", "import", write(tmp_path, "truncated.xml", camt[:1500]),
                     match="line 32, column 6: the XML is not well-formed")
        cli.rejected("payments", "import", write(tmp_path, "ns.xml", camt.replace("camt.053.001.02", "camt.053.001.09")),
                     match="namespace 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.09' is not camt.053")
        # a statement that pays INV-1001 in its first entry but whose balances do not add up
        cli.rejected("payments", "import", write(tmp_path, "balance.xml", camt.replace(">2645.50<", ">2645.00<")),
                     match="BkToCstmrStmt/Stmt[1]/Bal[2] (CLBD): opening balance 1000.00 EUR")
        # an MT940 file whose first credit would be fine, and whose third :61: line is broken
        broken = mt.replace(":61:2602250225C75,00", ":61:26022X0225C75,00")
        cli.rejected("payments", "import", write(tmp_path, "broken.sta", broken),
                     match="line 9: the :61: field does not parse")
        cli.rejected("payments", "import", write(tmp_path, "sum.sta", mt.replace("EUR1608,10", "EUR1608,11")),
                     match="statement 00057 (:62F: closing balance)")
        shown = cli.json("case", "show", acme)  # nothing of any of them was imported
        assert shown["balance"] == "1200.00" and shown["status"] == "open"
        assert cli.json("payments", "unmatched") == []

        # real MT940 statements of several banks (all of them are read by tests/test_statements.py;
        # here a sample of banks, through the CLI): each imports (credits wait unmatched, debits are
        # ignored, a second import changes nothing) or is refused with one line, exit 2, nothing imported
        outcomes, waiting = {}, 0
        for name in REAL_SAMPLE:
            path = REAL / name
            if not path.is_file():
                continue
            done = cli.run("payments", "import", str(path), "--json", ok=False)
            assert done.returncode in (0, 2), (name, done.returncode, done.stderr)
            if done.returncode == 2:
                assert len(done.stderr.strip().splitlines()) == 1, (name, done.stderr)
                outcomes[name] = "refused"
                continue
            first = json.loads(done.stdout)
            assert first["format"] == "mt940" and first["unmatched"] == first["rows"], name  # no invoice of theirs
            waiting += first["unmatched"]
            again = cli.json("payments", "import", str(path))
            seen = first["rows"] + first["reversed"] + len(first["reversals_unmatched"])  # receipts and reversals
            assert again["already_imported"] == seen and again["unmatched"] == 0 and again["reversed"] == 0, name
            outcomes[name] = "imported"
        assert len(cli.json("payments", "unmatched")) == waiting  # refused files added nothing
        if REAL.is_dir():
            assert set(outcomes.values()) == {"imported", "refused"}, outcomes
