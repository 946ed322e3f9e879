"""Bank statement parsing (app/statements.py): camt.053/054 of several versions and MT940.

The statements under tests/data/statements/ were written for these tests from the ISO 20022
message definitions and the MT940 field specification. Real MT940 files of several banks are
read from ../shared/data/bank-statements/ when that folder is there (never copied here).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from app.statements import creditor_reference_payload, detect_format, parse_statements
from domain.errors import DomainError

DATA = Path(__file__).resolve().parent / "data" / "statements"
REAL = Path("/work/shared/data/bank-statements/mt940")


def read(name: str) -> str:
    return (DATA / name).read_text()


def entries(text: str):
    return [e for s in parse_statements(text) for e in s.entries]


def refused(text: str) -> str:
    with pytest.raises(DomainError) as caught:
        parse_statements(text)
    return str(caught.value)


def test_formats_are_told_apart_by_content():
    assert detect_format(read("camt053-v02.xml")) == "camt"
    assert detect_format(read("mt940-statement.sta")) == "mt940"
    assert detect_format("payment_id,received_on,amount,currency,payer,reference\n") == "csv"


def test_camt053_v02_credits_debits_and_remittance():
    found = entries(read("camt053-v02.xml"))
    assert [(e.entry_ref, e.amount.amount, e.credit, e.is_receipt) for e in found] == [
        ("E-0001", Decimal("1200.00"), True, True), ("E-0002", Decimal("5.00"), False, False),
        ("E-0003", Decimal("450.50"), True, True)]  # the pending entry E-0004 is not money yet
    first = found[0]
    assert first.payer == "Acme GmbH" and first.payer_iban == "DE02120300000000202051"
    assert first.end_to_end_id == "E2E-ACME-1" and "INV-1001" in first.reference
    assert found[2].creditor_refs == ("RF76INV1002",) and "NOTPROVIDED" not in found[2].reference
    assert first.payment_id == "DE89370400440532013000:STMT-2026-02-21:E-0001"


def test_camt053_v08_reversal_and_camt054_notification():
    (reversal,) = entries(read("camt053-v08.xml"))
    assert reversal.reversal and reversal.reverses_receipt and not reversal.is_receipt
    assert reversal.payer == "Acme GmbH" and reversal.related_refs == ("E2E-ACME-1",)  # v08: Dbtr/Pty/Nm
    (notified,) = entries(read("camt054-v04.xml"))
    assert notified.is_receipt and str(notified.amount) == "12345.60 CNY" and str(notified.booked_on) == "2026-02-22"


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8])
def test_every_camt053_version_namespace_reads(version):
    text = read("camt053-v02.xml").replace("camt.053.001.02", f"camt.053.001.0{version}")
    assert len(entries(text)) == 3


def test_mt940_statement():
    found = entries(read("mt940-statement.sta"))
    assert [(e.amount.amount, e.credit) for e in found] == [
        (Decimal("100.00"), True), (Decimal("12.40"), False), (Decimal("75.00"), True)]
    assert found[0].end_to_end_id == "E2E-MT-1" and "INV-1002" in found[0].reference
    assert found[0].payer == "ACME GMBH"


def test_mt940_swift_structured_86_names_the_payer():
    mt = read("mt940-statement.sta").replace(
        "166?00GUTSCHRIFT?20SVWZ+no reference at all?32UNKNOWN PAYER LTD",
        "/REMI/Payment invoice INV-1/NAME/ACME GMBH/").replace(
        ":61:2602250225C75,00NTRFNONREF//B-7783", ":61:2602250225C75,00NTRFNONREF//B-7783\nREF 4471")
    entry = entries(mt)[2]
    assert entry.payer == "ACME GMBH" and "INV-1" in entry.reference  # not the :61: details 'REF 4471'
    # a party's subfields after its code; an ultimate debtor is not the payer; a name wrapped mid-word
    ordp = mt.replace("/REMI/Payment invoice INV-1/NAME/ACME GMBH/",
                      "/EREF/E2E-9/ULTD//NAME/PARENT HOLDING/ORDP//NAME/ACME TREA\nSURY GMBH/ID/7/REMI/Feb")
    assert entries(ordp)[2].payer == "ACME TREASURY GMBH"
    assert entries(mt.replace("/REMI/Payment invoice INV-1/NAME/ACME GMBH/", "/REMI/NAME/ in text"))[2].payer == "REF 4471"
    if (REAL / "jejik" / "rabobank-iban.sta").is_file():  # a real Rabobank statement: the counterparty
        real = entries((REAL / "jejik" / "rabobank-iban.sta").read_text())
        assert [e.payer for e in real] == ["CONTRA ACCOUNT HOLDER", "JOHN DOE"] * 2


def test_mt940_reversal_codes():
    text = read("mt940-statement.sta").replace(":61:2602250225C75,00", ":61:2602250225RC75,00").replace(
        "C260225EUR1608,10", "C260225EUR1458,10")
    reversal = entries(text)[2]
    assert reversal.reversal and reversal.reverses_receipt and not reversal.is_receipt


def test_creditor_reference_check_digits():
    assert creditor_reference_payload("RF76INV1002") == "INV1002"
    assert creditor_reference_payload("RF18 5390 0754 7034") == "539007547034"  # the ISO 11649 example
    assert creditor_reference_payload("RF19INV1002") is None


def test_bad_files_are_refused_naming_the_place():
    camt = read("camt053-v02.xml")
    assert "line 32, column" in refused(camt[:1500]) and "not well-formed" in refused(camt[:1500])
    assert "namespace 'urn:iso:std:iso:20022:tech:xsd:camt.052.001.02'" in refused(
        camt.replace("camt.053.001.02", "camt.052.001.02"))
    assert "Stmt[1]/Bal[2] (CLBD)" in refused(camt.replace(">2645.50<", ">2645.51<"))
    assert "Stmt[1]/Ntry[3]/Amt: '4x0.50' is not an amount" in refused(camt.replace(">450.50<", ">4x0.50<"))
    assert "DOCTYPE" in refused('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>')
    mt = read("mt940-statement.sta")
    assert refused(mt.replace(":61:2602250225C75,00", ":61:26022X0225C75,00")).startswith(
        "file: line 9: the :61: field does not parse")
    assert ":62F: closing balance" in refused(mt.replace("C260225EUR1608,10", "C260225EUR1608,11"))


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/bank-statements is not on this machine")
@pytest.mark.parametrize("path", sorted(REAL.glob("*/*.sta")) if REAL.is_dir() else [], ids=lambda p: p.name)
def test_real_bank_statements_read_or_are_refused_clearly(path):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        found = entries(text)
    except DomainError as error:  # refused: one line, saying where or which balance
        message = str(error)
        assert "\n" not in message and ("line" in message or "statement" in message or "balance" in message), message
        return
    assert found and all(e.amount.amount > 0 and e.payment_id for e in found)
    assert len({e.payment_id for e in found}) == len(found)  # each entry its own id: re-import is idempotent


def test_statements_in_a_banks_8_bit_charset_are_read():
    from app.statements import decode_statement

    camt = read("camt054-v04.xml").replace("UTF-8", "ISO-8859-1").replace("Shanghai Trading Co.", "Müller AG")
    assert [e.payer for e in entries(decode_statement(camt.encode("iso-8859-1")))] == ["Müller AG"]
    mt = read("mt940-statement.sta").replace("UNKNOWN PAYER LTD", "MÜLLER KG")
    assert entries(decode_statement(mt.encode("iso-8859-1")))[2].payer == "MÜLLER KG"
    assert decode_statement(b"payment_id,amount\n\xff") is None  # a CSV stays UTF-8 only


def test_control_characters_do_not_reach_payer_or_reference():
    mt = read("mt940-statement.sta").replace("UNKNOWN PAYER LTD", "UNKNOWN\x00PAYER\x07LTD")
    entry = entries(mt)[2]
    assert entry.payer == "UNKNOWN PAYER LTD" and all(ord(c) >= 32 for c in entry.reference)


def test_a_statement_level_86_after_the_closing_balance_is_not_the_last_lines_text():
    mt = read("mt940-statement.sta").replace("1608,10\n-", "1608,10\n:86:D000001C000002D12,40C175,00\n-")
    assert ":86:D000001" in mt and entries(mt)[2].remittance == "no reference at all"
    ing = read("mt940-statement.sta").replace("166?00GUTSCHRIFT?20SVWZ+no reference at all?32UNKNOWN PAYER LTD", "PLAIN TEXT")
    ing = ing.replace("1608,10\n-", "1608,10\n:86:D000001C000002D12,40C175,00\n-")
    assert entries(ing)[2].remittance == "PLAIN TEXT"
