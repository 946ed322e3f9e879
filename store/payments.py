"""The payments table: every payment the engine has seen, where it went, how it was matched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from itertools import groupby
from operator import itemgetter
from typing import Sequence

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.errors import DomainError, shown
from domain.money import Money
from store.db import Database
from store.schema import bank_entries, case_summary, customers, invoices, payments


SPLIT_NOTE = "split across several invoices"  # the note of a receipt applied to several cases
RECOVERY_REVERSED = "recovery_reversed"  # the status of a recovered bank line the bank took back


@dataclass(frozen=True)
class PaymentRow:
    payment_id: str
    invoice_id: str | None
    case_id: str | None
    amount: Money
    received_on: date
    payer: str
    reference: str
    status: str  # applied | unmatched | reversed | recovered (bad debt recovered on a written-off invoice)
    matched_by: str | None
    note: str | None

    def as_dict(self) -> dict:
        return {
            "payment_id": self.payment_id, "invoice_id": self.invoice_id, "case_id": self.case_id,
            "amount": str(self.amount.amount), "currency": self.amount.currency,
            "received_on": self.received_on.isoformat(), "payer": self.payer, "reference": self.reference,
            "status": self.status, "matched_by": self.matched_by, "note": self.note,
        }


@dataclass(frozen=True)
class OpenInvoice:
    invoice_id: str
    customer_id: str
    currency: str
    open_minor: int  # what is still owed: the case balance, or amount - paid without a case
    case_id: str | None
    case_closed: bool
    due: date | None = None


def _row(m) -> PaymentRow:
    return PaymentRow(
        payment_id=m["payment_id"], invoice_id=m["invoice_id"], case_id=m["case_id"],
        amount=Money.from_minor(m["amount_minor"], m["currency"]), received_on=m["received_on"],
        payer=m["payer"], reference=m["reference"], status=m["status"], matched_by=m["matched_by"], note=m["note"],
    )


_OPEN = (
    select(
        invoices.c.invoice_id, invoices.c.customer_id, invoices.c.currency,
        invoices.c.amount_minor, invoices.c.paid_minor, invoices.c.due_date,
        case_summary.c.case_id, case_summary.c.balance_minor, case_summary.c.closed_at,
    )
    .outerjoin(case_summary, case_summary.c.invoice_id == invoices.c.invoice_id)
)


def _open_invoice(m) -> OpenInvoice:
    has_case = m["case_id"] is not None
    closed = has_case and m["closed_at"] is not None
    owed = (0 if closed else m["balance_minor"]) if has_case else m["amount_minor"] - m["paid_minor"]
    return OpenInvoice(m["invoice_id"], m["customer_id"], m["currency"], owed, m["case_id"], closed, m["due_date"])


def _applied_upsert(dialect):
    """A PaymentReceived's row: inserted, or an unmatched/imported row marked applied; a receipt
    split across several cases stays one row (its invoice the first share's, its amount the sum).
    Built once per dialect, with the values as parameters, so SQLAlchemy compiles it once."""
    statement = dialect.insert(payments)
    new = statement.excluded
    shared = (payments.c.status == "applied") & (payments.c.invoice_id != new.invoice_id)
    return statement.on_conflict_do_update(index_elements=[payments.c.payment_id], set_={
        "status": "applied", "matched_by": new.matched_by,
        "invoice_id": case((shared, payments.c.invoice_id), else_=new.invoice_id),
        "case_id": case((shared, payments.c.case_id), else_=new.case_id),
        "amount_minor": case((shared, payments.c.amount_minor + new.amount_minor), else_=new.amount_minor),
        "note": case((shared, SPLIT_NOTE), else_=None),
    })


_APPLIED = {"sqlite": _applied_upsert(sqlite), "postgresql": _applied_upsert(postgresql)}
_REVERSED = (update(payments).where(payments.c.payment_id == bindparam("reversed_id"))
             .values(status="reversed", note=bindparam("reversed_note"), reversed_at=bindparam("reversed_on")))


def payment_changes(case_id: str, invoice_id: str, events: Sequence, recorded_at: datetime) -> list[tuple[str, dict]]:
    """What a case's payment events change in the payments table, in order: ("applied", row)
    for a PaymentReceived, ("reversed", parameters) for a PaymentReversed."""
    from domain.events import PaymentReceived, PaymentReversed

    changes = []
    for event in events:
        if isinstance(event, PaymentReceived):
            changes.append(("applied", {
                "payment_id": event.payment_id, "currency": event.amount.currency,
                "amount_minor": event.amount.to_minor(), "received_on": event.received_on,
                "payer": event.payer[:300], "reference": event.reference[:500], "recorded_at": recorded_at,
                "status": "applied", "invoice_id": invoice_id, "case_id": case_id,
                "matched_by": event.matched_by, "note": None}))
        elif isinstance(event, PaymentReversed):
            changes.append(("reversed", {"reversed_id": event.payment_id, "reversed_note": event.reason[:500],
                                         "reversed_on": recorded_at}))
    return changes


def write_payment_changes(connection, changes: Sequence[tuple[str, dict]]) -> None:
    """Execute changes in their order, each run of one kind as one executemany (a rebuild writes
    hundreds of thousands: one statement each, compiled each time, took most of its time)."""
    statements = {"applied": _APPLIED[connection.dialect.name], "reversed": _REVERSED}
    for kind, run in groupby(changes, key=itemgetter(0)):
        connection.execute(statements[kind], [params for _, params in run])


def project_payments(connection, case_id: str, invoice_id: str, events: Sequence, recorded_at: datetime) -> None:
    """The payments table's rows of a case's payments, written in the append's transaction
    (a rebuild writes them all with ``write_payment_changes``). Rows of payments recorded on an
    invoice without a case are written by ``PaymentLedger.record`` as before."""
    changes = payment_changes(case_id, invoice_id, events, recorded_at)
    if any(kind == "applied" for kind, _ in changes) and not is_ledgered(connection, invoice_id):
        # a stream whose invoice is not in the ledger (the store's own tests) has no rows
        changes = [c for c in changes if c[0] != "applied"]
    write_payment_changes(connection, changes)


_LEDGERED = select(invoices.c.invoice_id).where(invoices.c.invoice_id == bindparam("invoice_id"))


def is_ledgered(connection, invoice_id: str) -> bool:
    # built once: a select built per call (its cache key, its comparison) cost more than the query
    return connection.execute(_LEDGERED, {"invoice_id": invoice_id}).first() is not None


def insert_payment(session, *, payment_id: str, amount: Money, received_on: date, payer: str, reference: str,
                   status: str, invoice_id: str | None = None, case_id: str | None = None,
                   matched_by: str | None = None, note: str | None = None) -> bool:
    """``PaymentLedger.record`` in the caller's transaction (an administration event's append)."""
    if session.execute(select(payments.c.payment_id).where(payments.c.payment_id == payment_id)).first():
        return False
    session.execute(payments.insert().values(
        payment_id=payment_id, invoice_id=invoice_id, case_id=case_id, currency=amount.currency,
        amount_minor=amount.to_minor(), received_on=received_on, payer=payer[:300],
        reference=reference[:500], status=status, matched_by=matched_by, note=note,
        recorded_at=datetime.now(timezone.utc),
    ))
    return True


def mark_reversed(connection, payment: PaymentRow, reason: str, excess: Money | None = None) -> bool:
    """A ledger payment (no case) taken back off its invoice and marked reversed, on a connection
    in the transaction of its administration event; False when it is no longer applied. ``excess``:
    the part that was the customer's credit, never on the invoice."""
    now = datetime.now(timezone.utc)
    done = connection.execute(update(payments).where(payments.c.payment_id == payment.payment_id,
                                                     payments.c.status == "applied")
                              .values(status="reversed", note=reason[:500], reversed_at=now))
    if done.rowcount != 1:
        return False
    connection.execute(update(invoices).where(invoices.c.invoice_id == payment.invoice_id).values(
        paid_minor=invoices.c.paid_minor - payment.amount.to_minor() + (excess.to_minor() if excess else 0)))
    return True


def mark_unmatched_reversed(connection, payment_id: str, reason: str) -> bool:
    """An unmatched payment the bank took back, in the transaction of its administration event;
    False when it is no longer unmatched."""
    done = connection.execute(update(payments).where(payments.c.payment_id == payment_id,
                                                     payments.c.status == "unmatched")
                              .values(status="reversed", note=reason[:500], reversed_at=datetime.now(timezone.utc)))
    return done.rowcount == 1


def mark_recovery_reversed(connection, payment_id: str, reason: str) -> bool:
    """A bank line recorded as bad debt recovered that the bank took back, in the transaction of
    its ``WriteOffRecoveryReversed``; False when it is no longer ``recovered``."""
    done = connection.execute(update(payments).where(payments.c.payment_id == payment_id,
                                                     payments.c.status == "recovered")
                              .values(status=RECOVERY_REVERSED, note=reason[:500],
                                      reversed_at=datetime.now(timezone.utc)))
    return done.rowcount == 1


class PaymentLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, payment_id: str) -> PaymentRow | None:
        with self.db.read() as session:
            row = session.execute(select(payments).where(payments.c.payment_id == payment_id)).first()
        return _row(row._mapping) if row else None

    def existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.db.read() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found.update(session.execute(select(payments.c.payment_id).where(payments.c.payment_id.in_(chunk))).scalars())
        return found

    def recorded(self, ids: list[str]) -> dict[str, PaymentRow]:
        """The payments already recorded under these ids."""
        found: dict[str, PaymentRow] = {}
        with self.db.read() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for row in session.execute(select(payments).where(payments.c.payment_id.in_(chunk))):
                    found[row.payment_id] = _row(row._mapping)
        return found

    def any_open_case(self) -> bool:
        """Whether some case is open (a payment import may then need its workflow)."""
        with self.db.read() as session:
            return session.execute(select(case_summary.c.case_id).where(case_summary.c.closed_at.is_(None))
                                   .limit(1)).first() is not None

    def mark_applied(self, payment_id: str, invoice_id: str | None, case_id: str | None, matched_by: str) -> None:
        with self.db.transaction() as session:
            session.execute(update(payments).where(payments.c.payment_id == payment_id).values(
                status="applied", invoice_id=invoice_id, case_id=case_id, matched_by=matched_by, note=None))

    def mark_recovered(self, payment_id: str, invoice_id: str, case_id: str) -> None:
        """An unmatched receipt recorded as bad debt recovered on ``invoice_id`` (its ``WriteOffRecovered``):
        it applies to no open item, so neither the ledger's nor a case's paid figures count it."""
        with self.db.transaction() as session:
            session.execute(update(payments).where(payments.c.payment_id == payment_id,
                                                   payments.c.status == "unmatched").values(
                status="recovered", invoice_id=invoice_id, case_id=case_id, matched_by="manual", note=None))

    def unmatched(self) -> list[PaymentRow]:
        with self.db.read() as session:
            rows = session.execute(
                select(payments).where(payments.c.status == "unmatched")
                .order_by(payments.c.received_on, payments.c.payment_id)
            )
            return [_row(r._mapping) for r in rows]

    # -- matching reads ------------------------------------------------------------------
    def invoices_named(self, tokens: set[str]) -> list[OpenInvoice]:
        if not tokens:
            return []
        with self.db.read() as session:
            rows = session.execute(_OPEN.where(invoices.c.invoice_id.in_(sorted(tokens))))
            return [_open_invoice(r._mapping) for r in rows]

    def open_invoice(self, invoice_id: str) -> OpenInvoice:
        found = self.invoices_named({invoice_id})
        if not found:
            raise DomainError(f"unknown invoice {shown(invoice_id)}", "invoice_id")
        return found[0]

    def payer_customers(self, payer: str) -> list[str]:
        """Customers a payer name or id can mean (exact id, or name ignoring case)."""
        if not payer.strip():
            return []
        with self.db.read() as session:
            return list(session.execute(
                select(customers.c.customer_id).where(or_(
                    customers.c.customer_id == payer.strip(),
                    func.lower(customers.c.name) == payer.strip().lower(),
                ))
            ).scalars())

    def open_invoices_of(self, customer_ids: list[str]) -> list[OpenInvoice]:
        if not customer_ids:
            return []
        with self.db.read() as session:
            rows = session.execute(_OPEN.where(invoices.c.customer_id.in_(customer_ids)))
            return [o for o in (_open_invoice(r._mapping) for r in rows) if o.open_minor > 0]

    def invoices_compact(self, payloads: set[str]) -> list[OpenInvoice]:
        """Invoices whose id without separators (``- / . _``), upper case, is one of these (ISO 11649
        creditor references carry letters and digits only)."""
        if not payloads:
            return []
        compact = func.upper(invoices.c.invoice_id)
        for separator in ("-", "/", ".", "_", ":", "#"):
            compact = func.replace(compact, separator, "")
        with self.db.read() as session:
            rows = session.execute(_OPEN.where(compact.in_(sorted(payloads))))
            return [_open_invoice(r._mapping) for r in rows]

    # -- bank statement entries ------------------------------------------------------------
    def bank_entries_known(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.db.read() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found.update(session.execute(
                    select(bank_entries.c.payment_id).where(bank_entries.c.payment_id.in_(chunk))).scalars())
        return found

    def record_bank_entry(self, *, payment_id: str, statement_id: str, entry_ref: str, format: str, kind: str,
                          payer_iban: str | None, end_to_end_id: str | None, related_refs: Sequence[str],
                          reverses: str | None = None) -> None:
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        with self.db.transaction() as session:
            session.execute(dialect.insert(bank_entries).values(
                payment_id=payment_id, statement_id=statement_id[:200], entry_ref=entry_ref[:200], format=format,
                kind=kind, payer_iban=payer_iban, end_to_end_id=(end_to_end_id or None) and end_to_end_id[:100],
                related_refs=" ".join(related_refs)[:500], reverses=reverses,
                recorded_at=datetime.now(timezone.utc)).on_conflict_do_nothing(index_elements=["payment_id"]))

    def customers_of_iban(self, iban: str | None) -> list[str]:
        """Customers whose invoices earlier receipts from this IBAN were applied to (a receipt the bank
        reversed later still tells whose account it is)."""
        if not iban:
            return []
        with self.db.read() as session:
            return sorted(set(session.execute(
                select(invoices.c.customer_id)
                .join(payments, payments.c.invoice_id == invoices.c.invoice_id)
                .join(bank_entries, bank_entries.c.payment_id == payments.c.payment_id)
                .where(bank_entries.c.payer_iban == iban, bank_entries.c.kind == "receipt")).scalars()))

    def payer_ibans(self, payment_ids: list[str]) -> dict[str, str]:
        """The payer IBAN of each of these bank receipts that has one."""
        with self.db.read() as session:
            return {r.payment_id: r.payer_iban for r in session.execute(
                select(bank_entries.c.payment_id, bank_entries.c.payer_iban).where(
                    bank_entries.c.payment_id.in_(payment_ids), bank_entries.c.payer_iban.is_not(None)))}

    def receipts_named(self, refs: Sequence[str], amount: Money) -> list[PaymentRow]:
        """Receipts from bank statements a reversal can mean: same amount and currency, and the
        end-to-end id or one of the references of the original entry among ``refs``."""
        refs = [r for r in refs if r]
        if not refs:
            return []
        with self.db.read() as session:
            rows = session.execute(
                select(payments, bank_entries.c.related_refs)
                .join(bank_entries, bank_entries.c.payment_id == payments.c.payment_id)
                .where(bank_entries.c.kind == "receipt", payments.c.currency == amount.currency,
                       payments.c.amount_minor == amount.to_minor(),
                       or_(bank_entries.c.end_to_end_id.in_(refs), bank_entries.c.entry_ref.in_(refs))))
            found = [_row(r._mapping) for r in rows]
        return found
