"""Incoming payments: import a bank file, match each payment to an invoice, reverse.

A bank file is a CSV (``PAYMENT_COLUMNS``), an ISO 20022 camt.053 / camt.054 statement or a
SWIFT MT940 statement, told apart by content (``app/statements.py``).

Matching (the rules are ``domain.matching.plan``): the invoice ids a reference (or an ISO 11649
``RF`` creditor reference) names, several sharing one receipt under its payment id; else the
payer's one open item for the amount (or short of it by no more than the policy's tolerance),
or all the payer's open items when the amount is their sum; the payer is known by name or id,
or by a payer IBAN whose earlier receipts went to that customer; else the one open case whose
customer reported on the self-service page (``PaymentReported``) a payment of exactly that
reference and amount. Anything else (no match,
several matches, a closed case, an amount above what an invoice without a case owes) waits in
the unmatched list, with its ranked candidates, for a collector to assign by hand.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from app.adminlog import Unchanged
from app.adminlog import record as record_event
from app.imports import RowError, csv_header, csv_records, read_text
from app.services import CaseService
from domain import admin, matching
from domain import commands as cmd
from domain.decider import case_uuid
from domain.errors import DomainError, shown
from domain.inputs import (
    check_identifier,
    check_received_on,
    check_same_payment,
    csv_reader,
    missing_columns,
    parse_date,
)
from domain.money import Money, currency_exponent
from domain.policy import InputPolicy
from domain.users import Actor
from store.payments import (RECOVERY_REVERSED, SPLIT_NOTE, OpenInvoice, PaymentLedger, PaymentRow, insert_payment,
                            mark_recovery_reversed, mark_reversed, mark_unmatched_reversed)

from app.statements import BankEntry, creditor_reference_payload, decode_statement, detect_format, parse_statements

PAYMENT_COLUMNS = ("payment_id", "received_on", "amount", "currency", "payer", "reference")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:#-]*")


@dataclass(frozen=True)
class PaymentLine:
    payment_id: str
    received_on: date
    amount: Money
    payer: str
    reference: str
    payer_iban: str | None = None
    line: int = 0  # its line in a CSV file, for messages


@dataclass(frozen=True)
class Match:
    """Where a receipt goes: one application per invoice (several: a split of one payment id)."""

    applications: tuple[tuple[OpenInvoice, Money], ...]
    how: str | None  # reference | amount | sum | manual
    why_not: str | None = None
    candidates: tuple[matching.Candidate, ...] = ()

    @property
    def invoice(self) -> OpenInvoice | None:
        return self.applications[0][0] if self.applications else None


def unmatched(why_not: str, candidates: tuple = ()) -> Match:
    return Match((), None, why_not, candidates)


def parse_payments(text: str, today: date, rules: InputPolicy | None = None) -> list[PaymentLine]:
    rules = rules or InputPolicy()
    reader = csv_reader(text)
    header = csv_header(reader)
    missing = [c for c in PAYMENT_COLUMNS if c not in header]
    if missing:
        raise missing_columns(missing, header)
    reader.fieldnames = header
    lines: list[PaymentLine] = []
    seen: dict[str, int] = {}
    for record in csv_records(reader):
        number = reader.line_num
        if None in record:
            raise DomainError(f"line {number}: more values than columns", "file")
        r = {k: (v or "").strip() for k, v in record.items()}
        try:
            line = _parse_line(r, today, rules)
        except DomainError as error:  # names the field, and the line in the message
            raise RowError(number, error) from None
        if line.payment_id in seen:
            raise DomainError(f"line {number}: payment {line.payment_id} already appears on line {seen[line.payment_id]}", "file")
        seen[line.payment_id] = number
        lines.append(replace(line, line=number))
    if not lines:
        raise DomainError("the file has a header but no payments", "file")
    return lines


def _parse_line(r: dict[str, str], today: date, rules: InputPolicy) -> PaymentLine:
    check_identifier(r["payment_id"], "payment_id")
    try:
        received = parse_date(r["received_on"], "received_on")
    except DomainError as error:
        raise DomainError(error.message.replace("is not a date", "is not an ISO date"), "received_on") from None
    check_received_on(received, today, rules)
    amount = Money.of(r["amount"], r["currency"], "amount")
    if not amount.is_positive:
        raise DomainError(f"must be positive, got {amount.amount}", "amount")
    for field in ("payer", "reference"):
        cmd.check_text(r[field], field)
    return PaymentLine(r["payment_id"], received, amount, r["payer"], r["reference"])


def _item(o: OpenInvoice) -> matching.Item:
    return matching.Item(o.invoice_id, o.currency, o.open_minor, o.case_closed, o.due)


def match(line: PaymentLine, ledger: PaymentLedger, tolerance: Decimal = Decimal(0)) -> Match:
    """The receipt's applications (``domain.matching.plan``), each checked by ``applicable``."""
    tokens = reference_tokens(line.reference)
    named = {o.invoice_id: o for o in ledger.invoices_named(set(tokens))}
    payloads = {p for p in (creditor_reference_payload(t) for t in tokens if t[:2].upper() == "RF") if p}
    named.update({o.invoice_id: o for o in ledger.invoices_compact(payloads)})
    order = {t: n for n, t in reversed(list(enumerate(tokens)))}
    in_order = sorted(named.values(), key=lambda o: (order.get(o.invoice_id, len(tokens)), o.invoice_id))
    customers = sorted(set(ledger.payer_customers(line.payer)) | set(ledger.customers_of_iban(line.payer_iban)))
    items = {o.invoice_id: o for o in ledger.open_invoices_of(customers)} if customers else {}
    unit = 10 ** currency_exponent(line.amount.currency)
    decided = matching.plan(line.amount.to_minor(), line.amount.currency, [_item(o) for o in in_order],
                            [_item(o) for o in items.values()] if customers else None,
                            Money.of(tolerance, line.amount.currency).to_minor(), unit, line.payer or "the payer")
    if decided.how is None:
        return unmatched(decided.why_not or "not matched", decided.candidates)
    known = {**items, **named}
    applications = []
    for a in decided.applications:
        invoice, amount = known[a.invoice_id], Money.from_minor(a.amount_minor, line.amount.currency)
        why_not = applicable(invoice, amount)
        if why_not is None and len(decided.applications) > 1 and invoice.case_id is None:
            why_not = f"invoice {invoice.invoice_id} has no case to take a share of a split payment"
        if why_not:
            return unmatched(why_not, matching.rank(line.amount.to_minor(), line.amount.currency,
                                                    [_item(o) for o in known.values()], 0, unit))
        applications.append((invoice, amount))
    return Match(tuple(applications), decided.how)


def reference_tokens(reference: str) -> list[str]:
    """The words of a reference that may be an invoice id, in order. An id may hold '.', '/', ':'
    or '#' (2026/0001), so each word is kept whole, then without what ends a sentence ('INV-1.',
    'INV-1:'), then in its '/'-parts: banks run the fields of a remittance together
    ('/REMI/Payment invoice INV-1/NAME/Tex BV')."""
    found: dict[str, None] = {}
    for word in _TOKEN.findall(reference):
        for candidate in (word, *(part.rstrip("._:#-") for part in (word, *word.split("/")))):
            if candidate:
                found.setdefault(candidate)
    return list(found)


def applicable(invoice: OpenInvoice, amount: Money) -> str | None:
    """Why this payment cannot go to this invoice (None: it can)."""
    if invoice.currency != amount.currency:
        return f"currency {amount.currency} does not match invoice {invoice.invoice_id} ({invoice.currency})"
    if invoice.case_closed:
        return f"the case of invoice {invoice.invoice_id} is closed"
    if invoice.open_minor <= 0:
        return f"invoice {invoice.invoice_id} is already paid"
    return None  # beyond what it owes: the invoice is paid and the rest is the customer's credit, case or not


def statement_text(path: Path) -> str:
    """A file that is not UTF-8: an XML statement in the encoding its prolog declares, or an MT940
    statement in ISO 8859-1 (what banks send); anything else is refused as ``read_text`` does."""
    text = decode_statement(path.read_bytes()) if path.is_file() else None
    return text if text is not None else read_text(path)


def _normal_reference(text: str) -> str:
    return " ".join(text.split()).casefold()


class ReportedPayments:
    """What customers told us they paid (``PaymentReported``, from the self-service page), read
    once per import: reference, currency and amount in minor units -> the cases that reported it."""

    def __init__(self, cases: CaseService, ledger: PaymentLedger) -> None:
        self.cases = cases
        self.ledger = ledger
        self._by_key: dict[tuple[str, str, int], set[str]] | None = None

    def _load(self) -> dict[tuple[str, str, int], set[str]]:
        found: dict[tuple[str, str, int], set[str]] = {}
        for record in self.cases.ctx.store.read_types(("PaymentReported",)):
            e = record.event
            reference = _normal_reference(e.reference)
            if reference:
                found.setdefault((reference, e.amount.currency, e.amount.to_minor()), set()).add(str(e.case_id))
        return found

    def invoice_for(self, line: PaymentLine) -> OpenInvoice | None:
        """The open invoice of the one case that reported exactly this payment, else None."""
        if self._by_key is None:
            self._by_key = self._load()
        key = (_normal_reference(line.reference), line.amount.currency, line.amount.to_minor())
        cases = self._by_key.get(key, set())
        if not key[0] or len(cases) != 1:
            return None
        try:
            row = self.cases.summary_row(next(iter(cases)))
        except DomainError:
            return None
        return self.ledger.open_invoice(row.invoice_id) if row.closed_at is None else None


ADVANCE_REQUEST = "advance_request"  # a bank line assigned to an advance request: an advance, no receivable

class PaymentService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.ledger = PaymentLedger(cases.ctx.db)
        self.reported = ReportedPayments(cases, self.ledger)
        self._open_requests: dict[str, tuple[str, Money]] | None = None  # id casefolded -> (id, owed)

    def _request_named(self, line: PaymentLine) -> str | None:
        """The one open advance request whose id the remittance names (not inside a longer id), in the line's
        currency, still owing at least the line's amount (docs/ADVANCES.md); else None."""
        if self._open_requests is None:
            from app.advances import AdvanceService

            self._open_requests = {r.request_id.casefold(): (r.request_id, r.outstanding)
                                   for s in AdvanceService(self.cases).states() for r in s.requests.values()
                                   if r.outstanding.is_positive}
        text = line.reference.casefold()
        named = [found for folded, found in self._open_requests.items()  # the id, not part of a longer one
                 if re.search(rf"(?<![0-9a-z]){re.escape(folded)}(?![0-9a-z])", text)]
        if len(named) != 1:
            return None
        request_id, owed = named[0]
        if owed.currency != line.amount.currency or line.amount > owed:
            return None
        return request_id

    async def import_file(self, path: Path, actor: Actor, reason: str | None = None) -> dict:
        try:
            text = read_text(path)
        except DomainError:
            text = statement_text(path)  # a statement in a bank's 8-bit charset, or the error again
        return await self.import_text(text, actor, str(path), reason)

    async def import_text(self, text: str, actor: Actor, source: str = "upload", reason: str | None = None) -> dict:
        """Every row is checked before any payment is applied; then each is matched once. A matched
        payment is an event of its case (or, without a case, ``LedgerPaymentRecorded``); an unmatched
        one ``PaymentHeldUnmatched``; the file as a whole ``PaymentsImported``."""
        reason = admin.check_reason(reason, required=False, default="bank file import")
        if detect_format(text) != "csv":
            outcome = await self.import_statements(text, actor, source, reason)
            self._record_import(text, source, outcome, actor, reason)
            return outcome
        lines = parse_payments(text, datetime.now(timezone.utc).date(), self.cases.ctx.policy().inputs)
        known = self._same_as_recorded([(line.line, line) for line in lines], ("amount", "received_on", "reference"))
        await self._reachable(any(line.payment_id not in known for line in lines) and self.ledger.any_open_case())
        outcome = {"file": source, "rows": len(lines), "already_imported": 0, "matched_by_reference": 0,
                   "matched_by_amount": 0, "matched_by_sum": 0, "matched_by_advance_request": 0, "unmatched": 0}
        for line in lines:
            if line.payment_id in known:
                outcome["already_imported"] += 1
                continue
            how = await self._receive_line(line, actor, reason)
            outcome[f"matched_by_{how}" if how else "unmatched"] += 1
        self._record_import(text, source, outcome, actor, reason)
        return outcome

    def _same_as_recorded(self, lines: list[tuple[int | str, PaymentLine]], compared: tuple[str, ...]) -> set[str]:
        """The payment ids of these lines already recorded. A recorded payment id binds what it paid, as
        for `pay --payment-id`: a line under it with another amount (or date, or a CSV row's reference)
        refuses the file whole, naming its line and ``payment_id``; the same content is a repeat. A
        statement entry's reference is not compared: it is the text this engine reads out of the entry,
        not the bank's (``BankEntry.reference``)."""
        recorded = self.ledger.recorded([line.payment_id for _, line in lines])
        for where, line in lines:
            row = recorded.get(line.payment_id)
            if row is None:
                continue
            was = {"amount": row.amount, "received_on": row.received_on, "reference": row.reference[:500]}
            sent = {"amount": line.amount, "received_on": line.received_on, "reference": line.reference[:500]}
            try:
                check_same_payment(line.payment_id, {k: was[k] for k in compared}, {k: sent[k] for k in compared})
            except DomainError as error:
                raise RowError(where, error) from None
        return set(recorded)

    async def _reachable(self, needed: bool) -> None:
        """Temporal answers before a file's first payment is applied when one may go to a case (some case
        is open: its payment goes through its workflow; a bank reversal may reopen one): down, the import
        stops with nothing applied rather than half way through. Without any open case, receipts go to
        invoices without a case or wait unmatched, which needs no workflow."""
        if needed:
            await self.cases.ctx.client()

    def _record_import(self, text: str, source: str, outcome: dict, actor: Actor, reason: str) -> None:
        counted = ("rows", "matched_by_reference", "matched_by_amount", "matched_by_sum", "unmatched",
                   "already_imported")
        record_event(self.cases.ctx, "ledger", "payment-imports", admin.PaymentsImported, actor, reason,
                     f"payments from {source}", digest=hashlib.sha256(text.encode()).hexdigest(),
                     **{k: outcome[k] for k in counted}, source=source)

    async def import_statements(self, text: str, actor: Actor, source: str, reason: str) -> dict:
        """A camt.053/054 or MT940 file: every statement is read and checked (balances, dates)
        before anything is applied. Credit entries are receipts, matched like CSV rows; a reversal
        of a credit reverses the receipt it names (end-to-end id or entry reference, same amount);
        debits are not receipts. Statement id + entry reference make each entry's payment id, so
        importing the file again changes nothing."""
        statements = parse_statements(text)
        today = datetime.now(timezone.utc).date()
        rules = self.cases.ctx.policy().inputs
        entries = [e for s in statements for e in s.entries]
        for entry in entries:
            if entry.is_receipt or entry.reverses_receipt:
                try:
                    check_received_on(entry.booked_on, today, rules)
                except DomainError as error:
                    raise DomainError(f"{entry.where}: booked {error.message}", "file") from None
        seen: dict[str, str] = {}
        for entry in entries:
            if entry.payment_id in seen:
                raise DomainError(f"{entry.where}: entry reference {entry.entry_ref} of statement "
                                  f"{entry.statement_id} already appears at {seen[entry.payment_id]}", "file")
            seen[entry.payment_id] = entry.where
        ids = [e.payment_id for e in entries]
        receipts = [(e.where, PaymentLine(e.payment_id, e.booked_on, e.amount, e.payer, e.reference))
                    for e in entries if e.is_receipt]
        self._same_as_recorded(receipts, ("amount", "received_on"))
        known = self.ledger.bank_entries_known(ids) | self.ledger.existing_ids(ids)
        new = [e for e in entries if (e.is_receipt or e.reverses_receipt) and e.payment_id not in known]
        await self._reachable(any(e.reverses_receipt for e in new) or (bool(new) and self.ledger.any_open_case()))
        formats = sorted({s.format for s in statements})
        outcome = {"file": source, "format": ", ".join(formats), "statements": len(statements),
                   "rows": sum(e.is_receipt for e in entries), "already_imported": 0, "matched_by_reference": 0,
                   "matched_by_amount": 0, "matched_by_sum": 0, "matched_by_advance_request": 0, "unmatched": 0,
                   "reversed": 0, "reversals_unmatched": [],
                   "debits_ignored": sum(not e.credit and not e.reversal for e in entries)}
        by_format = {s.statement_id: s.format for s in statements}
        for entry in entries:
            if not (entry.is_receipt or entry.reverses_receipt):
                continue
            if entry.payment_id in known:
                outcome["already_imported"] += 1
                self._remember(entry, by_format[entry.statement_id], "receipt" if entry.is_receipt else "reversal")
                continue
            if entry.is_receipt:
                how = await self._receive(entry, actor, reason)
                outcome[f"matched_by_{how}" if how else "unmatched"] += 1
                self._remember(entry, by_format[entry.statement_id], "receipt")
            else:
                undone = await self._reverse_entry(entry, actor, reason)
                if undone:
                    outcome["reversed"] += 1
                else:
                    outcome["reversals_unmatched"].append(entry.payment_id)
                self._remember(entry, by_format[entry.statement_id], "reversal", undone)
        return outcome

    def _remember(self, entry: BankEntry, format: str, kind: str, reverses: str | None = None) -> None:
        self.ledger.record_bank_entry(
            payment_id=entry.payment_id, statement_id=entry.statement_id, entry_ref=entry.entry_ref, format=format,
            kind=kind, payer_iban=entry.payer_iban, end_to_end_id=entry.end_to_end_id,
            related_refs=entry.related_refs, reverses=reverses)

    async def _receive(self, entry: BankEntry, actor: Actor, reason: str) -> str | None:
        """Match and apply one receipt, or leave it unmatched; how it matched (None: unmatched)."""
        line = PaymentLine(entry.payment_id, entry.booked_on, entry.amount, entry.payer, entry.reference,
                           entry.payer_iban)
        return await self._receive_line(line, actor, reason)

    def _match(self, line: PaymentLine) -> Match:
        found = match(line, self.ledger, self.cases.ctx.policy().matching.tolerance_for(line.amount.currency))
        if not found.applications and (hinted := self.reported.invoice_for(line)) is not None:
            if applicable(hinted, line.amount) is None:  # the reference the customer told us they paid with
                found = Match(((hinted, line.amount),), "reference")
        for invoice, _ in found.applications:
            if too_early := self._too_early(line, invoice.invoice_id):
                return unmatched(too_early, found.candidates)
        if not found.applications and (written_off := self._written_off_named(line)) is not None:
            return unmatched(f"invoice {written_off} was written off: `payments assign {line.payment_id} "
                             f"{written_off}` records this money as bad debt recovered", found.candidates)
        return found

    def _written_off_named(self, line: PaymentLine) -> str | None:
        """The invoice written off that the reference names, if one is (a receipt held unmatched: its hint)."""
        named = self.ledger.invoices_named(set(reference_tokens(line.reference)))
        for invoice in (i for i in named if i.case_closed):
            if self.cases.summary_row(invoice.invoice_id).status == "written_off":
                return invoice.invoice_id
        return None

    async def _receive_line(self, line: PaymentLine, actor: Actor, reason: str) -> str | None:
        """Match and apply one receipt (split across several invoices under the same payment id when
        it pays several), or hold it unmatched; how it matched (None: unmatched)."""
        found = self._match(line)
        if not found.applications:
            self._hold(line, found.why_not or "not matched", actor, reason)
            if (request_id := self._request_named(line)) is not None:  # a deposit, not an invoice
                await self.assign(line.payment_id, request_id, actor, f"the remittance names advance request {request_id}")
                self._open_requests = None  # its outstanding changed
                return ADVANCE_REQUEST
            return None
        split = len(found.applications) > 1
        for invoice, amount in found.applications:
            part = PaymentLine(line.payment_id, line.received_on, amount, line.payer, line.reference, line.payer_iban)
            await self._apply(part, invoice, found.how, actor, within_tolerance=True, split=split)
        return found.how

    async def _reverse_entry(self, entry: BankEntry, actor: Actor, import_reason: str) -> str | None:
        """The receipt a reversal entry undoes, reversed; its payment id (None: no single receipt fits)."""
        candidates = [p for p in self.ledger.receipts_named(entry.related_refs, entry.amount)
                      if p.status in ("applied", "unmatched", "recovered")]
        if len(candidates) != 1:
            return None
        original = candidates[0]
        reason = f"reversed by the bank: entry {entry.entry_ref} of statement {entry.statement_id}"[:500]
        if original.status == "unmatched":
            self._reverse_unmatched(original, reason, actor)
        else:
            await self.reverse(original.payment_id, reason, actor)
        return original.payment_id


    def _reverse_unmatched(self, payment: PaymentRow, reason: str, actor: Actor) -> None:
        """An unmatched receipt the bank took back: marked reversed with its ``UnmatchedPaymentReversed``
        event, in one transaction."""
        def change(connection) -> None:
            if not mark_unmatched_reversed(connection, payment.payment_id, reason):
                raise Unchanged

        record_event(self.cases.ctx, "payment", payment.payment_id, admin.UnmatchedPaymentReversed, actor, reason,
                     f"payment {payment.payment_id} (unmatched)", within=change, payment_id=payment.payment_id,
                     amount=payment.amount)

    def _hold(self, line: PaymentLine, why_not: str, actor: Actor, reason: str) -> None:
        """The unmatched payment's row and its ``PaymentHeldUnmatched`` event, in one transaction."""
        def change(session) -> None:
            if not insert_payment(session, payment_id=line.payment_id, amount=line.amount,
                                  received_on=line.received_on, payer=line.payer, reference=line.reference,
                                  status="unmatched", note=why_not):
                raise Unchanged

        record_event(self.cases.ctx, "payment", line.payment_id, admin.PaymentHeldUnmatched, actor, reason,
                     f"payment {line.payment_id} (unmatched)", within=change, payment_id=line.payment_id,
                     amount=line.amount, received_on=line.received_on, payer=line.payer[:300],
                     reference=line.reference[:500], note=why_not[:500])

    async def _apply(self, line: PaymentLine, invoice: OpenInvoice, how: str, actor: Actor,
                     reason: str | None = None, within_tolerance: bool = False, split: bool = False) -> dict:
        return await self.cases.pay(invoice.invoice_id, str(line.amount.amount), line.reference, actor,
                                    payment_id=line.payment_id, received_on=line.received_on,
                                    matched_by=how, payer=line.payer, reason=reason,
                                    within_tolerance=within_tolerance, split=split)

    def _too_early(self, line: PaymentLine, invoice_id: str) -> str | None:
        """Why the payment's date rules out this invoice (received long before it was issued), or None."""
        today = datetime.now(timezone.utc).date()
        try:
            check_received_on(line.received_on, today, self.cases.ctx.policy().inputs,
                              self.cases.ctx.ledger.invoice(invoice_id).issue_date)
        except DomainError as error:
            return f"received on {error.message} (invoice {invoice_id})"
        return None

    def unmatched(self) -> list[dict]:
        """Payments waiting for a person, each with why it was held (``note``), its invoice candidates
        ranked as the matcher sees them now (nearest amount first) and why each was not taken."""
        rows = self.ledger.unmatched()
        ibans = self.ledger.payer_ibans([p.payment_id for p in rows]) if rows else {}
        listed = []
        for p in rows:
            line = PaymentLine(p.payment_id, p.received_on, p.amount, p.payer, p.reference, ibans.get(p.payment_id))
            found = self._match(line)
            if found.applications:  # it would match now (an invoice arrived since): say so, assign stays manual
                candidates = [{"invoice_id": i.invoice_id, "open": str(Money.from_minor(i.open_minor, i.currency).amount),
                               "currency": i.currency, "why_not": f"matches now by {found.how}: assign it"}
                              for i, _ in found.applications]
            else:
                candidates = [{"invoice_id": c.invoice_id, "open": str(Money.from_minor(c.open_minor, c.currency).amount),
                               "currency": c.currency, "why_not": c.why_not} for c in found.candidates]
            listed.append({**p.as_dict(), "payer_iban": ibans.get(p.payment_id), "candidates": candidates})
        return listed

    async def assign(self, payment_id: str, invoice_id: str, actor: Actor, reason: str | None = None) -> dict:
        """A person gives an unmatched payment to an invoice, saying why (``PaymentAssigned`` in the
        payment's administration stream; on an invoice with a case, its ``PaymentReceived`` too)."""
        reason = admin.check_reason(reason)
        payment = self._payment(payment_id)
        if payment.status != "unmatched":
            raise DomainError(f"payment {payment_id} is {payment.status}, not unmatched", "payment_id")
        if not self.ledger.invoices_named({invoice_id}) and (customer_id := self._requester(invoice_id)):
            return await self._assign_to_request(payment, customer_id, invoice_id, actor, reason)
        dunned = self.cases._existing(invoice_id)
        if dunned is not None and dunned["status"] == "written_off":
            return self._assign_recovery(payment, invoice_id, dunned["case_id"], actor, reason)
        why_not = applicable(self.ledger.open_invoice(invoice_id), payment.amount)
        if why_not:
            raise DomainError(why_not, "invoice_id")
        line = PaymentLine(payment.payment_id, payment.received_on, payment.amount, payment.payer, payment.reference)
        too_early = self._too_early(line, invoice_id)
        if too_early:
            raise DomainError(too_early, "received_on")
        invoice = self.ledger.open_invoice(invoice_id)
        reply = await self._apply(line, invoice, "manual", actor, reason)
        if invoice.case_id is not None:  # the ledger path records PaymentAssigned with its rows
            record_event(self.cases.ctx, "payment", payment_id, admin.PaymentAssigned, actor, reason,
                         f"payment {payment_id} (invoice {invoice_id})", payment_id=payment_id,
                         invoice_id=invoice_id, amount=payment.amount, case_id_ref=invoice.case_id)
        return reply

    def _requester(self, request_id: str) -> str | None:
        """The customer who was asked for the advance request ``request_id`` (None: no such request)."""
        from app.advances import AdvanceService

        return next((s.customer_id for s in AdvanceService(self.cases).states() if request_id in s.requests), None)

    async def _assign_to_request(self, payment, customer_id: str, request_id: str, actor: Actor, reason: str) -> dict:
        """A bank line that pays an advance request (docs/ADVANCES.md): the advance is recorded on the
        customer (``PrepaymentReceived`` with the request, the request's case sees it), and the bank
        line is applied to no invoice (``matched_by`` ``advance_request``): it is no receivable's."""
        from app.credit import CreditService

        paid = await CreditService(self.cases).prepay(
            customer_id, str(payment.amount.amount), payment.amount.currency, actor, payment_id=payment.payment_id,
            received_on=payment.received_on, reference=payment.reference, request_id=request_id)
        self.ledger.mark_applied(payment.payment_id, None, None, ADVANCE_REQUEST)
        record_event(self.cases.ctx, "payment", payment.payment_id, admin.PaymentAssigned, actor, reason,
                     f"payment {payment.payment_id} (advance request {request_id})", payment_id=payment.payment_id,
                     invoice_id=request_id, amount=payment.amount)
        return {**paid, "invoice_id": request_id, "applied_to": "advance request"}

    def _assign_recovery(self, payment: PaymentRow, invoice_id: str, case_id: str, actor: Actor, reason: str) -> dict:
        """A bank line that pays an invoice written off: bad debt recovered (``WriteOffRecovered``, as `pay`
        records it: at most what is still recoverable, or refused naming ``amount`` and nothing changes).
        The line leaves the unmatched list as ``recovered``, settling no invoice (the case stays written
        off), with its ``PaymentAssigned``. A crash between the two: assigning again finds the recovery
        recorded (the same payment id and content) and finishes."""
        recovered = self.cases._recover(invoice_id, payment.payment_id, payment.amount, payment.received_on,
                                        payment.reference, actor, reason)
        self.ledger.mark_recovered(payment.payment_id, invoice_id, case_id)
        record_event(self.cases.ctx, "payment", payment.payment_id, admin.PaymentAssigned, actor, reason,
                     f"payment {payment.payment_id} (recovery on invoice {invoice_id})", payment_id=payment.payment_id,
                     invoice_id=invoice_id, amount=payment.amount, case_id_ref=case_id)
        return recovered

    async def reverse(self, payment_id: str, reason: str, actor: Actor) -> dict:
        payment = self.ledger.get(payment_id)
        recovery = self.cases.recovery_named(payment_id) if payment is None or payment.status in (
            "recovered", RECOVERY_REVERSED) else None
        if recovery is not None:  # bad debt recovered, by `pay` (no row) or from a bank line
            return self._reverse_recovery(recovery, payment, admin.check_reason(reason), actor)
        payment = payment or self._payment(payment_id)  # unknown: refused naming payment_id
        reason = admin.check_reason(reason)
        if payment.matched_by == ADVANCE_REQUEST:
            raise DomainError(f"payment {payment_id} paid an advance request: it is an advance on the customer; "
                              "refund the advance instead (`advance refund`)", "payment_id")
        if payment.status == "reversed":
            return {**payment.as_dict(), "reversed": False}
        if payment.status != "applied":
            raise DomainError(f"payment {payment_id} is {payment.status}; only an applied payment can be reversed",
                              "payment_id")
        if payment.case_id is None:  # the ledger's rows and LedgerPaymentReversed, in one transaction
            excess = self._ledger_excess(payment_id)  # its credit goes back with it

            def change(connection) -> None:
                if not mark_reversed(connection, payment, reason, excess):
                    raise Unchanged  # reversed meanwhile

            record_event(self.cases.ctx, "payment", payment_id, admin.LedgerPaymentReversed, actor, reason,
                         f"payment {payment_id} (invoice {payment.invoice_id})", within=change,
                         payment_id=payment_id, invoice_id=payment.invoice_id, amount=payment.amount, excess=excess)
            reply = {"invoice_id": payment.invoice_id, "case_id": None}
        else:  # the PaymentReversed event marks the row (store/payments.py), in its append
            shares = self._cases_of(payment) if payment.note == SPLIT_NOTE else [payment.case_id]
            for case_id in shares:  # a split receipt: every case it paid gives its share back
                reply = await self._reverse_on_case(replace(payment, case_id=case_id), reason, actor)
        return {**reply, "payment_id": payment_id, "reversed": True}

    def _reverse_recovery(self, recovery: admin.WriteOffRecovered, row: PaymentRow | None, reason: str,
                          actor: Actor) -> dict:
        """Bad debt recovered that the bank took back: its ``WriteOffRecoveryReversed`` on the
        invoice's recovery stream and, for a bank line, the line marked ``recovery_reversed``, in
        one transaction; at most once (a repeat changes nothing). The case stays written off."""
        pid = recovery.payment_id

        def taken_back(events: list) -> bool:
            return any(isinstance(e, admin.WriteOffRecoveryReversed) and e.payment_id == pid for e in events)

        def change(connection) -> None:
            if row is not None and not mark_recovery_reversed(connection, pid, reason):
                raise Unchanged

        event = record_event(self.cases.ctx, "recovery", recovery.invoice_id, admin.WriteOffRecoveryReversed, actor,
                             reason, f"recovery {pid} (invoice {recovery.invoice_id})", within=change, unless=taken_back,
                             payment_id=pid, invoice_id=recovery.invoice_id, case_id_ref=recovery.case_id_ref,
                             amount=recovery.amount)
        return {"payment_id": pid, "invoice_id": recovery.invoice_id, "case_id": recovery.case_id_ref,
                "applied_to": "recovery", "amount": str(recovery.amount.amount),
                "currency": recovery.amount.currency, "reversed": event is not None}

    def _ledger_excess(self, payment_id: str) -> Money | None:
        """What a payment on an invoice without a case paid beyond the open amount (its event's
        ``excess``: the customer's credit), None when nothing."""
        recorded = self.cases.ctx.store.load_types(admin.admin_stream_id("payment", payment_id),
                                                   ("LedgerPaymentRecorded", "PaymentAssigned"))
        return getattr(recorded[-1], "excess", None) if recorded else None

    async def _reverse_on_case(self, payment: PaymentRow, reason: str, actor: Actor) -> dict:
        command = cmd.ReversePayment(command_id=uuid4(), actor=actor, payment_id=payment.payment_id, reason=reason)
        summary = self.cases.summary_row(payment.case_id)
        if summary.closed_at is None:
            return await self.cases._send(payment.case_id, "reverse_payment", lambda s: command)
        # The case closed when this payment paid it: start its workflow again to reopen it.
        from temporalio.common import WorkflowIDReusePolicy

        from app.services import reply_dict
        from workflows.messages import WORKFLOW_NAME, CaseInput

        policy = self.cases.ctx.policies.get(summary.policy_version)
        client = await self.cases.ctx.client()
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            CaseInput(case_id=case_uuid(summary.invoice_id), policy=policy, resume_with=command,
                      id_prefix=self.cases.ctx.settings.workflow_id_prefix),
            id=self.cases._workflow_id(summary.invoice_id), task_queue=self.cases.ctx.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        reply = await self.cases._answer(handle, self.cases.opened(handle))
        return reply_dict(reply)

    def _cases_of(self, payment: PaymentRow) -> list[str]:
        """The cases a (split) receipt was applied to, from their PaymentReceived events."""
        found = [str(r.stream_id) for r in self.cases.ctx.store.read_types(["PaymentReceived"])
                 if r.event.payment_id == payment.payment_id]
        return list(dict.fromkeys(found)) or [payment.case_id]

    def _payment(self, payment_id: str) -> PaymentRow:
        payment = self.ledger.get(payment_id)
        if payment is None:
            raise DomainError(f"unknown payment {shown(payment_id)}", "payment_id")
        return payment
