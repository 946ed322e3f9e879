"""A camt.053 statement through the HTTP API with a token (POST /api/payments/import): the case is
paid, posting it again changes nothing, a truncated statement is a 400 naming the place."""

from __future__ import annotations

from tests.web.conftest import Web
from tests.web.test_bad_inputs_api import snapshot


def statement(invoice_id: str, statement_id: str) -> str:
    """A camt.053.001.05 statement written from the ISO 20022 message definition."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.05">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>{statement_id}</MsgId><CreDtTm>2026-03-02T18:00:00</CreDtTm></GrpHdr>
    <Stmt><Id>{statement_id}</Id>
      <Acct><Id><Othr><Id>0532013000</Id></Othr></Id></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>
        <Dt><Dt>2026-03-01</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">311.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2026-03-02</Dt></Dt></Bal>
      <Ntry><Amt Ccy="EUR">321.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-02</Dt></BookgDt><AcctSvcrRef>{statement_id}-1</AcctSvcrRef>
        <NtryDtls><TxDtls><RltdPties><Dbtr><Nm>Somebody Else</Nm></Dbtr></RltdPties>
          <RmtInf><Ustrd>Rechnung {invoice_id}</Ustrd></RmtInf></TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


async def test_a_camt053_statement_pays_a_case_through_the_api(web: Web):
    invoice = await web.new_case("A", "321.00", currency="EUR")
    supervisor, collector = web.client("supervisor"), web.client("collector")
    text = statement(invoice, f"API-{invoice}")
    headers = {"content-type": "application/xml"}
    posted = await supervisor.post("/api/payments/import", content=text.encode(), headers=headers)
    assert posted.status_code == 200, posted.text
    assert posted.json()["format"] == "camt.053.001.05" and posted.json()["matched_by_reference"] == 1
    case = (await collector.get(f"/api/cases/{invoice}")).json()
    assert case["status"] == "paid" and case["balance"] == "0.00"

    await web.quiet()  # the fixture's grade D cases escalate on their own meanwhile
    before = snapshot(web)
    again = await supervisor.post("/api/payments/import", content=text.encode(), headers=headers)
    assert again.status_code == 200 and again.json()["already_imported"] == 1
    repeated = snapshot(web)  # the repeat applied nothing; only its PaymentsImported record was added
    assert repeated[0] == before[0] + 1 and repeated[1:] == before[1:], (before, repeated)
    truncated = await supervisor.post("/api/payments/import", content=statement(invoice, "API-X").encode()[:900],
                                      headers=headers)
    assert truncated.status_code == 400 and truncated.json()["field"] == "file"
    assert "the XML is not well-formed" in truncated.json()["error"] and "line " in truncated.json()["error"]
    assert snapshot(web) == repeated  # the refused file changed nothing


def mt940(invoice_id: str, statement_id: str) -> str:
    """An MT940 statement with one credit naming the invoice, written from the SWIFT field layout."""
    return (f":20:{statement_id}\n:25:DE89370400440532013000\n:28C:00058/001\n:60F:C260301EUR10,00\n"
            f":61:2603020302C321,00NTRFNONREF//{statement_id}-1\n"
            f":86:166?00GUTSCHRIFT?20SVWZ+{invoice_id}?32ACME GMBH\n:62F:C260302EUR331,00\n-\n")


async def test_the_openapi_declares_the_statement_formats_and_an_mt940_upload_is_taken(web: Web):
    spec = (await web.client().get("/openapi.json")).json()
    content = spec["paths"]["/api/payments/import"]["post"]["requestBody"]["content"]
    assert set(content) == {"text/csv", "application/xml", "text/xml", "text/plain"}
    assert "camt.053" in content["application/xml"]["schema"]["description"]
    assert "MT940" in content["text/plain"]["schema"]["description"]

    invoice = await web.new_case("A", "321.00", currency="EUR")
    supervisor = web.client("supervisor")
    posted = await supervisor.post("/api/payments/import", content=mt940(invoice, f"MT-{invoice}").encode(),
                                   headers={"content-type": "text/plain"})
    assert posted.status_code == 200, posted.text
    assert posted.json()["format"] == "mt940" and posted.json()["matched_by_reference"] == 1, posted.json()
    case = (await web.client("collector").get(f"/api/cases/{invoice}")).json()
    assert case["status"] == "paid" and case["balance"] == "0.00"

    before = snapshot(web)
    for media, body in (("application/xml", "<data>x</data>"), ("text/plain", "hello"), ("text/xml", "")):
        refused = await supervisor.post("/api/payments/import", content=body.encode(), headers={"content-type": media})
        assert refused.status_code == 400 and refused.json()["field"] == "file", (media, refused.text)
    assert snapshot(web) == before  # refused uploads change nothing
