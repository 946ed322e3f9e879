"""Bank statements: ISO 20022 camt.053 / camt.054 and SWIFT MT940, read into bank entries.

The file's content says what it is (``detect_format``): XML whose root is in a camt.053 or
camt.054 namespace (versions 001.02 to 001.08), text with MT940 tags (``:20:`` and a balance or
``:61:``), or else the CSV layout of ``app/payments.py``. MT940 is read by the ``mt-940``
package; camt by the standard library's ElementTree with each version's namespace.

A file is checked whole before anything is applied: a statement whose opening balance plus its
entries does not give its closing balance, an element or line that does not parse, refuses the
file with the element path or line number in the message.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree

from domain.errors import DomainError
from domain.money import Money

CAMT_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.(053|054)\.001\.0([2-8])")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_RF = re.compile(r"\bRF[0-9]{2}[A-Z0-9]{1,21}\b", re.IGNORECASE)
_ID_CHARS = re.compile(r"[^A-Za-z0-9._/:#-]+")


def _printable(text: str) -> str:
    """One line of text: control characters (a bank's binary bytes, line breaks) become spaces."""
    return " ".join("".join(c if ord(c) >= 32 and c != "\x7f" else " " for c in text).split())


@dataclass(frozen=True)
class BankEntry:
    """One booked entry (or one transaction of a batch entry) of a statement."""

    statement_id: str  # account + statement id: with entry_ref, unique per bank entry
    entry_ref: str
    where: str  # element path or line, for messages
    booked_on: date
    amount: Money  # positive; direction says which way it went
    credit: bool  # money came in (C / CRDT, or RD: a debit taken back)
    reversal: bool  # RvslInd, or MT940 RC/RD
    payer: str = ""
    payer_iban: str | None = None
    end_to_end_id: str | None = None
    remittance: str = ""
    creditor_refs: tuple[str, ...] = ()
    related_refs: tuple[str, ...] = ()  # references a reversal may name its original by

    @property
    def payment_id(self) -> str:
        """A stable id from statement and entry reference: the same entry always gets the same id."""
        raw = f"{self.statement_id}:{self.entry_ref}"
        readable = _ID_CHARS.sub("-", raw).strip("-._/:#") or "entry"
        if len(readable) <= 100:
            return readable
        return f"BANK-{hashlib.sha256(raw.encode()).hexdigest()[:32]}"

    @property
    def is_receipt(self) -> bool:
        return self.credit and not self.reversal

    @property
    def reverses_receipt(self) -> bool:
        """A reversal that takes back money that came in (camt DBIT + RvslInd, MT940 RC)."""
        return self.reversal and not self.credit

    @property
    def reference(self) -> str:
        """What the matcher reads: remittance text, creditor references and end-to-end id."""
        parts = [self.remittance, *self.creditor_refs]
        if self.end_to_end_id and self.end_to_end_id.upper() != "NOTPROVIDED":
            parts.append(self.end_to_end_id)
        return " ".join(p for p in (_printable(x) for x in parts) if p)[:500]


@dataclass
class Statement:
    format: str  # camt.053.001.08, camt.054.001.02, mt940
    statement_id: str
    entries: list[BankEntry] = field(default_factory=list)


def detect_format(text: str) -> str:
    """'camt', 'mt940' or 'csv', from the content."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("<"):
        return "camt"
    if re.search(r"^:(20|25|28C?|6[0-2][FM]?|86):", text, re.MULTILINE):
        return "mt940"
    return "csv"


def decode_statement(raw: bytes) -> str | None:
    """A statement file that is not UTF-8 as text: XML by its declared encoding, MT940 as ISO 8859-1;
    None when it is neither."""
    declared = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']", raw)
    if declared:
        try:
            return raw.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            return None
    text = raw.decode("iso-8859-1")
    return text if detect_format(text) == "mt940" else None


def creditor_reference_payload(ref: str) -> str | None:
    """The reference inside an ISO 11649 creditor reference (RFkk...), None when its check digits fail."""
    compact = ref.replace(" ", "").upper()
    if not re.fullmatch(r"RF[0-9]{2}[A-Z0-9]{1,21}", compact):
        return None
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return compact[4:] if int(digits) % 97 == 1 else None


def _amount(text: str | None, currency: str | None, where: str) -> Money:
    if not text or not currency:
        raise DomainError(f"{where}: an amount and its currency are required", "file")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DomainError(f"{where}: {text.strip()!r} is not an amount", "file") from None
    try:
        money = Money.of(value, currency.strip(), "amount")
    except DomainError as error:
        raise DomainError(f"{where}: {error.message}", "file") from None
    if money.amount < 0:
        raise DomainError(f"{where}: amounts are unsigned in ISO 20022, got {value}", "file")
    return money


# -- camt.053 / camt.054 ----------------------------------------------------------------------------


def parse_camt(text: str) -> list[Statement]:
    if re.search(r"<!(DOCTYPE|ENTITY)", text):
        raise DomainError("XML with a DOCTYPE or entity declarations is not accepted", "file")
    try:
        root = ElementTree.fromstring(text)  # a str: the prolog's encoding was applied when decoding
    except ElementTree.ParseError as error:
        line, column = error.position
        reason = str(error).split(":")[0]
        raise DomainError(f"line {line}, column {column}: the XML is not well-formed ({reason})", "file") from None
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    found = CAMT_NAMESPACE.fullmatch(namespace)
    if not found:
        raise DomainError(
            f"<{root.tag.split('}')[-1]}>: namespace {namespace or '(none)'!r} is not camt.053 or camt.054 "
            "version 001.02 to 001.08", "file")
    kind, version = found.group(1), int(found.group(2))
    ns = {"c": namespace}
    message, item = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    body = root.find(f"c:{message}", ns)
    if body is None:
        raise DomainError(f"Document: no <{message}> element (a camt.{kind} message has one)", "file")
    statements = []
    items = body.findall(f"c:{item}", ns)
    if not items:
        raise DomainError(f"{message}: no <{item}> element", "file")
    for i, node in enumerate(items, 1):
        statements.append(_camt_statement(node, f"{message}/{item}[{i}]", ns, kind, version))
    return statements


def _text(node, path: str, ns: dict) -> str | None:
    found = node.find(path, ns)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _camt_statement(node, where: str, ns: dict, kind: str, version: int) -> Statement:
    statement_no = _text(node, "c:Id", ns)
    if not statement_no:
        raise DomainError(f"{where}/Id: the statement id is required", "file")
    account = (_text(node, "c:Acct/c:Id/c:IBAN", ns) or _text(node, "c:Acct/c:Id/c:Othr/c:Id", ns) or "")
    statement = Statement(f"camt.{kind}.001.0{version}", f"{account}:{statement_no}" if account else statement_no)
    booked_total: dict[str, Decimal] = {}
    for j, entry in enumerate(node.findall("c:Ntry", ns), 1):
        here = f"{where}/Ntry[{j}]"
        status = _text(entry, "c:Sts/c:Cd", ns) or _text(entry, "c:Sts", ns)
        if status and status != "BOOK":
            continue  # pending or informational entries are not money yet
        amount = _amount(_text(entry, "c:Amt", ns), entry.find("c:Amt", ns).get("Ccy") if entry.find("c:Amt", ns)
                         is not None else None, f"{here}/Amt")
        direction = _text(entry, "c:CdtDbtInd", ns)
        if direction not in ("CRDT", "DBIT"):
            raise DomainError(f"{here}/CdtDbtInd: must be CRDT or DBIT, got {direction!r}", "file")
        reversal = (_text(entry, "c:RvslInd", ns) or "false").lower() in ("true", "1")
        booked = _camt_date(entry, "c:BookgDt", ns) or _camt_date(entry, "c:ValDt", ns)
        if booked is None:
            raise DomainError(f"{here}/BookgDt: a booking or value date is required", "file")
        sign = 1 if direction == "CRDT" else -1
        booked_total[amount.currency] = booked_total.get(amount.currency, Decimal(0)) + sign * amount.amount
        entry_ref = _text(entry, "c:AcctSvcrRef", ns) or _text(entry, "c:NtryRef", ns) or f"#{j}"
        details = entry.findall("c:NtryDtls/c:TxDtls", ns)
        parts = _camt_split(details, amount, ns, here)
        for k, (detail, part) in enumerate(parts, 1):
            statement.entries.append(_camt_entry(
                statement.statement_id, entry_ref if len(parts) == 1 else f"{entry_ref}/{k}",
                f"{here}/NtryDtls/TxDtls[{k}]" if detail is not None else here, booked, part,
                direction == "CRDT", reversal, detail, entry, ns))
    if kind == "053":
        _camt_balances(node, where, ns, booked_total)
    return statement


def _camt_split(details: list, amount: Money, ns: dict, here: str) -> list[tuple]:
    """A batch entry with one amount per transaction becomes one receipt per transaction."""
    if len(details) <= 1:
        return [(details[0] if details else None, amount)]
    parts = []
    for k, detail in enumerate(details, 1):
        node = detail.find("c:Amt", ns)
        if node is None:
            node = detail.find("c:AmtDtls/c:TxAmt/c:Amt", ns)
        if node is None:  # no amount per transaction: one receipt for the whole entry
            return [(details[0], amount)]
        parts.append((detail, _amount(node.text, node.get("Ccy"), f"{here}/NtryDtls/TxDtls[{k}]/Amt")))
    if any(p.currency != amount.currency for _, p in parts) or sum(p.amount for _, p in parts) != amount.amount:
        raise DomainError(f"{here}/NtryDtls: the transactions add up to "
                          f"{sum(p.amount for _, p in parts)}, not the entry's {amount}", "file")
    return parts


def _camt_date(node, path: str, ns: dict) -> date | None:
    value = _text(node, f"{path}/c:Dt", ns) or (_text(node, f"{path}/c:DtTm", ns) or "")[:10] or None
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{path.removeprefix('c:')}: {value!r} is not an ISO date", "file") from None


def _camt_entry(statement_id, entry_ref, where, booked, amount, credit, reversal, detail, entry, ns) -> BankEntry:
    scope = detail if detail is not None else entry
    party = "c:RltdPties/c:Dbtr" if credit else "c:RltdPties/c:Cdtr"
    account = "c:RltdPties/c:DbtrAcct" if credit else "c:RltdPties/c:CdtrAcct"
    payer = _text(scope, f"{party}/c:Pty/c:Nm", ns) or _text(scope, f"{party}/c:Nm", ns) or ""
    iban = _text(scope, f"{account}/c:Id/c:IBAN", ns)
    if reversal and not payer:  # a reversal of a receipt names the original payer as debtor
        payer = _text(scope, "c:RltdPties/c:Dbtr/c:Pty/c:Nm", ns) or _text(scope, "c:RltdPties/c:Dbtr/c:Nm", ns) or ""
        iban = iban or _text(scope, "c:RltdPties/c:DbtrAcct/c:Id/c:IBAN", ns)
    e2e = _text(scope, "c:Refs/c:EndToEndId", ns)
    texts = [t.text.strip() for t in scope.findall("c:RmtInf/c:Ustrd", ns) if t.text and t.text.strip()]
    texts += [t.text.strip() for t in scope.findall("c:RmtInf/c:Strd/c:RfrdDocInf/c:Nb", ns) if t.text]
    texts.append(_text(entry, "c:AddtlNtryInf", ns) or "")
    refs = tuple(t.text.strip() for t in scope.findall("c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref", ns) if t.text)
    related = tuple(r for r in (e2e, _text(scope, "c:Refs/c:AcctSvcrRef", ns), _text(scope, "c:Refs/c:TxId", ns))
                    if r and r.upper() != "NOTPROVIDED")
    return BankEntry(statement_id=statement_id, entry_ref=entry_ref, where=where, booked_on=booked, amount=amount,
                     credit=credit, reversal=reversal, payer=_printable(payer)[:300], payer_iban=iban, end_to_end_id=e2e,
                     remittance=" ".join(t for t in texts if t), creditor_refs=refs, related_refs=related)


def _camt_balances(node, where: str, ns: dict, booked_total: dict[str, Decimal]) -> None:
    balances: dict[str, tuple[Money, int]] = {}
    for b, balance in enumerate(node.findall("c:Bal", ns), 1):
        code = _text(balance, "c:Tp/c:CdOrPrtry/c:Cd", ns)
        if code not in ("OPBD", "PRCD", "CLBD"):
            continue
        here = f"{where}/Bal[{b}]"
        amount_node = balance.find("c:Amt", ns)
        amount = _amount(_text(balance, "c:Amt", ns), amount_node.get("Ccy") if amount_node is not None else None,
                         f"{here}/Amt")
        sign = -1 if _text(balance, "c:CdtDbtInd", ns) == "DBIT" else 1
        key = "CLBD" if code == "CLBD" else "OPBD"
        balances.setdefault(key, (Money.of(sign * amount.amount, amount.currency), b))
    if "OPBD" not in balances or "CLBD" not in balances:
        return  # nothing to check against
    (opening, _), (closing, b) = balances["OPBD"], balances["CLBD"]
    moved = booked_total.get(opening.currency, Decimal(0))
    if opening.amount + moved != closing.amount:
        raise DomainError(
            f"{where}/Bal[{b}] (CLBD): opening balance {opening} plus the booked entries ({moved:+}) is "
            f"{opening.amount + moved}, not the closing balance {closing}", "file")


# -- MT940 ---------------------------------------------------------------------------------------------


def parse_mt940(text: str) -> list[Statement]:
    import mt940

    logging.getLogger("mt940").setLevel(logging.CRITICAL)  # its pattern dumps would break the one-line error

    marks: list[tuple] = []  # statement boundaries, in file order

    def mark(kind: str):
        def processor(transactions, tag, tag_dict, result):
            value = next(iter(result.values()), None) if isinstance(result, dict) and kind != "start" else result
            marks.append((kind, len(transactions.transactions), value, {**transactions.data, **result}))
            return result
        return processor

    processors = {f"post_{slug}": [mark(kind)] for slug, kind in (
        ("transaction_reference_number", "start"), ("final_opening_balance", "open"),
        ("intermediate_opening_balance", "open"), ("opening_balance", "open"),
        ("final_closing_balance", "close"), ("intermediate_closing_balance", "close"),
        ("closing_balance", "close"))}

    def statement_level(transactions, tag, tag_dict, result):
        """A :86: after the closing balance is about the statement, not its last :61: line."""
        if marks and marks[-1][0] == "close" and marks[-1][1] == len(transactions.transactions):
            return {}
        return result

    defaults = mt940.models.Transactions.DEFAULT_PROCESSORS.get("post_transaction_details", [])
    processors["post_transaction_details"] = [*defaults, statement_level]
    transactions = mt940.models.Transactions(processors=processors)
    try:
        transactions.parse(text)
    except RuntimeError as error:  # a tag whose value does not fit its pattern
        tag, value = (error.args[1], error.args[2]) if len(error.args) >= 3 else (None, "")
        tag_id = getattr(tag, "id", "?")
        raise DomainError(f"{_line_of(text, tag_id, value)}: the :{tag_id}: field does not parse: "
                          f"{value.splitlines()[0][:80] if value else ''!r}", "file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DomainError(f"the MT940 file does not parse: {error}", "file") from None
    return _mt940_statements(text, transactions, marks)


def _line_of(text: str, tag_id, value: str) -> str:
    first = (value or "").splitlines()[0].strip() if value else ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(f":{tag_id}:") and first[:20] in line:
            return f"line {number}"
    return f"field :{tag_id}:"


def _mt940_statements(text: str, transactions, marks: list) -> list[Statement]:
    entries = transactions.transactions
    statements: list[Statement] = []
    opening = None
    start = 0
    data: dict = {}
    for kind, index, result, snapshot in marks:
        data = snapshot
        if kind == "start":
            continue
        if kind == "open":
            opening, start = result, index
            continue
        closing = result
        statement_no = str(data.get("statement_number") or "")
        account = str(data.get("account_identification") or "")
        reference = str(data.get("transaction_reference") or "")
        statement_id = ":".join(p for p in (account, statement_no, reference) if p) or "mt940"
        if any(s.statement_id == statement_id for s in statements):  # same :20:/:28C: twice in one file
            statement_id = f"{statement_id}#{len(statements) + 1}"
        statement = Statement("mt940", statement_id)
        chunk = [t for t in entries[start:index] if t.data.get("id") or t.data.get("amount") is not None]
        if opening is None:
            raise DomainError(f"statement {statement_no or reference}: a closing balance (:62:) without an "
                              "opening balance (:60F: or :60M:)", "file")
        _mt940_balance_check(opening, closing, chunk, statement_no or reference)
        for seq, t in enumerate(chunk, 1):
            statement.entries.append(_mt940_entry(statement.statement_id, t, seq))
        statements.append(statement)
        opening = None
    if not statements:
        if entries:
            raise DomainError("the MT940 file has statement lines (:61:) but no opening and closing balance "
                              "(:60F: and :62F:)", "file")
        raise DomainError("the MT940 file holds no statement", "file")
    return statements


# SWIFT-structured :86: (ING, Rabobank and other banks): subfields as /CODE/value, a party's details
# after an empty party code (``/ORDP//NAME/ACME GMBH/ID/...``), wrapped at a fixed width mid-word.
# The mt-940 package reads the German ``?NN`` subfields and GVC keywords, not these.
_PARTY_CODES = ("ORDP", "BENM", "ULTD", "ULTC", "ULTB")
_PARTY_DETAILS = ("NAME", "ADDR", "ID", "IBAN", "BIC", "ACCW")
_SWIFT_SUBFIELD = re.compile(r"/({})/".format("|".join(
    (*_PARTY_CODES, *_PARTY_DETAILS, "EREF", "REMI", "ISDT", "CSID", "MARF", "RTRN", "PURP", "PREF", "TRTP",
     "CNTP", "SVCL", "RTYP", "OAMT", "CHGS", "EXCH"))))


def swift_subfields(details: str) -> list[tuple[str, str]]:
    """The /CODE/value subfields of a SWIFT-structured :86: in order ([] when it does not start with one)."""
    text = "".join(details.splitlines()).strip()
    marks = list(_SWIFT_SUBFIELD.finditer(text))
    if not marks or marks[0].start() != 0:
        return []
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return [(m.group(1), text[m.end():end].strip("/ ")) for m, end in zip(marks, ends)]


def swift_party_name(subfields: list[tuple[str, str]]) -> str:
    """The counterparty's /NAME/: the first one not of an ultimate party (ULTD, ULTC, ULTB: on whose
    behalf), as camt's ``Dbtr/Nm`` is read rather than ``UltmtDbtr``."""
    party = None
    for code, value in subfields:
        if code in _PARTY_CODES:
            party = code
        elif code == "NAME" and value and not (party or "").startswith("ULT"):
            return value
        elif code not in _PARTY_DETAILS:
            party = None
    return ""


def _signed(status: str | None, amount: Decimal) -> Decimal:
    return -abs(amount) if (status or "").upper() in ("D", "RC") else abs(amount)


def _mt940_balance_check(opening, closing, chunk, label: str) -> None:
    try:
        start = _signed(opening.status, opening.amount.amount)
        end = _signed(closing.status, closing.amount.amount)
    except AttributeError:
        raise DomainError(f"statement {label}: a balance (:60F:/:62F:) has no amount", "file") from None
    moved = sum((_signed(t.data.get("status"), t.data["amount"].amount) for t in chunk), Decimal(0))
    if start + moved != end:
        raise DomainError(
            f"statement {label} (:62F: closing balance): opening balance :60F: {start} plus "
            f"the :61: lines ({moved:+}) is {start + moved}, not the closing balance :62F: {end}", "file")


def _mt940_entry(statement_id: str, t, seq: int) -> BankEntry:
    d = t.data
    status = (d.get("status") or "").upper()
    amount_obj = d.get("amount")
    currency = getattr(amount_obj, "currency", None) or d.get("currency")
    where = f"statement {statement_id}, :61: line {seq}"
    if not currency:
        raise DomainError(f"{where}: no currency (the statement has no :60F: balance to take it from)", "file")
    amount = _amount(str(abs(amount_obj.amount)), currency, where)
    booked = d.get("entry_date") or d.get("date")
    if booked is None:
        raise DomainError(f"{where}: no value date", "file")
    booked = date(booked.year, booked.month, booked.day)

    def clean(key: str) -> str:
        value = d.get(key)
        return "" if value is None or str(value).strip().upper() in ("NONE", "NONREF") else str(value).strip()

    bank_ref, customer_ref = clean("bank_reference"), clean("customer_reference")
    entry_ref = bank_ref or customer_ref or f"#{seq}"
    if bank_ref and customer_ref:
        entry_ref = f"{customer_ref}/{bank_ref}"
    entry_ref = f"{seq}:{entry_ref}" if entry_ref != f"#{seq}" else entry_ref
    extra = clean("extra_details")
    iban = clean("gvc_applicant_iban") or (extra if _IBAN.fullmatch(extra.replace(" ", "")) else "") or None
    payer = (clean("applicant_name") or swift_party_name(swift_subfields(clean("transaction_details")))
             or (extra if extra and not iban and not extra.isdigit() else ""))
    e2e = clean("end_to_end_reference") or None
    remittance = " ".join(x for x in (clean("purpose"), clean("additional_purpose"), clean("transaction_details"),
                                      customer_ref) if x)
    refs = tuple(sorted({m.group(0).upper() for m in _RF.finditer(remittance)}))
    related = tuple(r for r in (e2e, customer_ref, bank_ref) if r)
    return BankEntry(statement_id=statement_id, entry_ref=entry_ref, where=where, booked_on=booked, amount=amount,
                     credit=status in ("C", "RD"), reversal=status.startswith("R"), payer=_printable(payer)[:300],
                     payer_iban=iban.replace(" ", "") if iban else None, end_to_end_id=e2e,
                     remittance=" ".join(remittance.split()), creditor_refs=refs, related_refs=related)


def parse_statements(text: str) -> list[Statement]:
    """Every statement of a camt or MT940 file, checked whole (see the module doc)."""
    kind = detect_format(text)
    if kind == "camt":
        return parse_camt(text)
    if kind == "mt940":
        return parse_mt940(text)
    raise DomainError("not a camt.053/054 or MT940 statement", "file")
