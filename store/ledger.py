"""Ledger tables: customers, invoices and payments recorded outside any case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable

from sqlalchemy import and_, case, func, select, update

from domain.commands import InvoiceFacts
from domain.errors import DomainError, shown
from domain.events import Customer
from domain.money import Money
from domain.policy import RiskGrade
from store.db import Database
from store.schema import case_summary, customer_risk, customers, insurer_policies, invoice_insurance, invoices, payments
from store.upsert import upsert


@dataclass(frozen=True)
class ImportOutcome:
    invoices_added: int
    invoices_unchanged: int
    customers: int


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def import_invoices(self, rows: Iterable[tuple[Customer, str, InvoiceFacts]]) -> ImportOutcome:
        """All or nothing. ``rows`` is (customer, risk grade, invoice) per line."""
        rows = list(rows)
        with self.db.transaction() as session:
            return import_invoice_rows(session, rows)

    def plan_import(self, rows: list[tuple[Customer, str, InvoiceFacts]]) -> ImportOutcome:
        """What importing ``rows`` would do now (nothing written; refused as the import would be)."""
        with self.db.read() as session:
            return _plan_import(session, rows, datetime.now(timezone.utc))[0]

    def invoice(self, invoice_id: str) -> InvoiceFacts:
        with self.db.read() as session:
            row = session.execute(
                _with_risk_and_cover(select(invoices, customers, *_EXTRA_COLUMNS)
                                     .join(customers, customers.c.customer_id == invoices.c.customer_id))
                .where(invoices.c.invoice_id == invoice_id)
            ).first()
            if row is None:
                raise DomainError(f"unknown invoice {shown(invoice_id)}", "invoice_id")
            booked = erp_booked(session, [invoice_id] if row.paid_minor else [])
        return _facts(row._mapping, booked.get(invoice_id, 0))

    def set_customer_email(self, customer_id: str, email: str) -> None:
        """The billing contact a customer corrected (its cases record ``ContactCorrected``): the
        cases opened later start with it."""
        with self.db.transaction() as session:
            session.execute(update(customers).where(customers.c.customer_id == customer_id).values(email=email))

    def record_payment(
        self, invoice_id: str, payment_id: str, amount: Money, received_on: date, reference: str,
        payer: str = "", matched_by: str = "direct",
    ) -> bool:
        """A payment for an invoice with no case: kept on the ledger so the sweep
        will not open one. Returns False when this payment was already applied."""
        with self.db.transaction() as session:
            return record_ledger_payment(session, invoice_id, payment_id, amount, received_on, reference, payer,
                                         matched_by)


def record_ledger_payment(session, invoice_id: str, payment_id: str, amount: Money, received_on: date,
                          reference: str, payer: str = "", matched_by: str = "direct",
                          excess: Money | None = None) -> bool:
    """``Ledger.record_payment`` on a session or connection already in a transaction (the
    administration event's append, app/adminlog.py). ``excess``: the part paid beyond the open
    amount (the customer's credit, on the event): the row keeps the receipt in full, the invoice
    is paid for the rest, which must settle it exactly."""
    existing = session.execute(
        select(payments.c.status).where(payments.c.payment_id == payment_id)
    ).scalar_one_or_none()
    if existing is not None and existing != "unmatched":
        return False
    inv = session.execute(select(invoices).where(invoices.c.invoice_id == invoice_id)).first()
    if inv is None:
        raise DomainError(f"unknown invoice {shown(invoice_id)}", "invoice_id")
    if amount.currency != inv.currency:
        raise DomainError(f"currency {amount.currency} does not match the invoice currency {inv.currency}", "currency")
    if session.execute(select(case_summary.c.case_id).where(case_summary.c.invoice_id == invoice_id)).first():
        raise DomainError(f"invoice {invoice_id} has a case; pay it through the case", "invoice_id")
    applied = amount.to_minor() - (excess.to_minor() if excess is not None else 0)
    if excess is not None and inv.paid_minor + applied != inv.amount_minor:
        raise DomainError(f"the open amount of invoice {invoice_id} changed meanwhile; try again", "amount")
    values = dict(invoice_id=invoice_id, status="applied", matched_by=matched_by, note=None)
    if existing is None:
        session.execute(payments.insert().values(
            payment_id=payment_id, currency=amount.currency, amount_minor=amount.to_minor(),
            received_on=received_on, payer=payer, reference=reference,
            recorded_at=datetime.now(timezone.utc), **values,
        ))
    else:  # a collector assigns an unmatched payment
        session.execute(update(payments).where(payments.c.payment_id == payment_id).values(**values))
    settle = update(invoices).where(invoices.c.invoice_id == invoice_id)
    if excess is not None:  # settles it exactly: only if nothing was paid on it meanwhile
        settle = settle.where(invoices.c.paid_minor == inv.paid_minor)
    if session.execute(settle.values(paid_minor=invoices.c.paid_minor + applied)).rowcount != 1:
        raise DomainError(f"the open amount of invoice {invoice_id} changed meanwhile; try again", "amount")
    return True


def _plan_import(session, rows: list, now: datetime) -> tuple[ImportOutcome, dict, list[dict]]:
    customer_rows = {
        c.customer_id: {
            "customer_id": c.customer_id, "name": c.name, "email": c.email, "country": c.country,
            "language": c.language, "timezone": c.timezone, "risk_grade": grade,
        }
        for c, grade, _ in rows
    }
    ids = [f.invoice_id for _, _, f in rows]
    existing = {
        r.invoice_id: r
        for chunk in _chunks(ids, 500)
        for r in session.execute(select(invoices).where(invoices.c.invoice_id.in_(chunk)))
    }
    new_rows, unchanged = [], 0
    for _, _, facts in rows:
        row = _invoice_row(facts, now)
        old = existing.get(facts.invoice_id)
        if old is None:
            new_rows.append(row)
        elif _same_invoice(old, row):
            unchanged += 1
        else:
            raise DomainError(
                f"invoice {facts.invoice_id} was already imported with different data", "invoice_id"
            )
    outcome = ImportOutcome(invoices_added=len(new_rows), invoices_unchanged=unchanged, customers=len(customer_rows))
    return outcome, customer_rows, new_rows


def import_invoice_rows(session, rows: list) -> ImportOutcome:
    """``Ledger.import_invoices`` in the caller's transaction (the administration event's append)."""
    outcome, customer_rows, new_rows = _plan_import(session, rows, datetime.now(timezone.utc))
    upsert(session, customers, list(customer_rows.values()), ["customer_id"])
    for chunk in _chunks(new_rows, 1000):
        session.execute(invoices.insert(), chunk)
    return outcome


# The grade the scorecard gave the customer (it chooses the ladder of new cases) and the
# invoice's credit insurance, joined onto every invoice read that opens a case.
_EXTRA_COLUMNS = (
    customer_risk.c.grade.label("scored_grade"),
    insurer_policies.c.policy_id.label("ins_policy_id"),
    insurer_policies.c.insurer_id.label("ins_insurer_id"),
    insurer_policies.c.insurer_name.label("ins_insurer_name"),
    insurer_policies.c.insurer_email.label("ins_insurer_email"),
    insurer_policies.c.notify_within.label("ins_notify_within"),
    insurer_policies.c.max_extension.label("ins_max_extension"),
    insurer_policies.c.claim_waiting.label("ins_claim_waiting"),
    insurer_policies.c.indemnity_percent.label("ins_indemnity_percent"),
)


def _with_risk_and_cover(query):
    return (query.outerjoin(customer_risk, customer_risk.c.customer_id == invoices.c.customer_id)
            .outerjoin(invoice_insurance, invoice_insurance.c.invoice_id == invoices.c.invoice_id)
            .outerjoin(insurer_policies, insurer_policies.c.policy_id == invoice_insurance.c.policy_id))


def _cover(m):
    from decimal import Decimal

    from domain.durations import parse_duration
    from domain.events import InsuranceCover

    if m.get("ins_policy_id") is None:
        return None
    days = lambda text: parse_duration(text, "insurer policy")  # noqa: E731 - stored as ISO 8601
    return InsuranceCover(
        insurer_id=m["ins_insurer_id"], insurer_name=m["ins_insurer_name"], insurer_email=m["ins_insurer_email"],
        policy_number=m["ins_policy_id"], notify_within=days(m["ins_notify_within"]),
        max_extension=days(m["ins_max_extension"]), claim_waiting=days(m["ins_claim_waiting"]),
        indemnity_percent=Decimal(m["ins_indemnity_percent"]),
    )


ERP_MATCH = "erp"  # payments.matched_by of what the ERP booked as paid (its export's paid column)


def erp_booked(session, ids: list[str]) -> dict[str, int]:
    """What the ERP booked as paid on each invoice while it had no case (its ledger payment rows),
    in minor units; an invoice with none is left out."""
    found: dict[str, int] = {}
    for chunk in _chunks(ids, 500):
        query = (select(payments.c.invoice_id, func.sum(payments.c.amount_minor))
                 .where(payments.c.invoice_id.in_(chunk), payments.c.matched_by == ERP_MATCH,
                        payments.c.status == "applied")
                 .group_by(payments.c.invoice_id))
        found.update({invoice_id: int(total) for invoice_id, total in session.execute(query)})
    return found


def _facts(m, erp_paid_minor: int = 0) -> InvoiceFacts:
    """An invoice joined with its customer, as the domain sees it; ``erp_paid_minor``: of what
    was paid, what the ERP booked (``erp_booked``)."""
    return InvoiceFacts(
        invoice_id=m["invoice_id"],
        customer=Customer(
            customer_id=m["customer_id"], name=m["name"], email=m["email"], country=m["country"],
            language=m["language"], timezone=m["timezone"],
        ),
        risk_grade=RiskGrade(m.get("scored_grade") or m["risk_grade"]),
        amount=Money.from_minor(m["amount_minor"], m["currency"]),
        paid=Money.from_minor(m["paid_minor"], m["currency"]),
        issue_date=m["issue_date"],
        due_date=m["due_date"],
        insurance=_cover(m),
        erp_paid=Money.from_minor(erp_paid_minor, m["currency"]) if erp_paid_minor else None,
    )


def _invoice_row(f: InvoiceFacts, now: datetime) -> dict:
    return {
        "invoice_id": f.invoice_id, "customer_id": f.customer.customer_id, "currency": f.amount.currency,
        "amount_minor": f.amount.to_minor(), "paid_minor": f.paid.to_minor(), "issue_date": f.issue_date,
        "due_date": f.due_date, "imported_at": now,
    }


def _same_invoice(old, new: dict) -> bool:
    keys = ("customer_id", "currency", "amount_minor", "issue_date", "due_date")
    return all(getattr(old, k) == new[k] for k in keys)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- the daily sweep's reads ----------------------------------------------------------------


@dataclass(frozen=True)
class SweepCounts:
    scanned: int
    not_due: int
    paid: int
    overdue: int  # overdue and unpaid: each has a case, or needs one


class SweepReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def counts(self, cutoff: date) -> SweepCounts:
        due = invoices.c.due_date <= cutoff
        unpaid = invoices.c.paid_minor < invoices.c.amount_minor
        query = select(
            func.count(),
            func.sum(case((~due, 1), else_=0)),
            func.sum(case((and_(due, ~unpaid), 1), else_=0)),
            func.sum(case((and_(due, unpaid), 1), else_=0)),
        ).select_from(invoices)
        with self.db.read() as session:
            total, not_due, paid, overdue = session.execute(query).one()
        return SweepCounts(total, not_due or 0, paid or 0, overdue or 0)

    def overdue_page(self, cutoff: date, after: str, limit: int) -> list[tuple[InvoiceFacts, bool]]:
        """The next page of overdue unpaid invoices, each with whether it has a case."""
        query = (
            _with_risk_and_cover(select(invoices, customers, case_summary.c.case_id.label("has_case"), *_EXTRA_COLUMNS)
                                 .join(customers, customers.c.customer_id == invoices.c.customer_id))
            .outerjoin(case_summary, case_summary.c.invoice_id == invoices.c.invoice_id)
            .where(invoices.c.due_date <= cutoff, invoices.c.paid_minor < invoices.c.amount_minor,
                   invoices.c.invoice_id > after)
            .order_by(invoices.c.invoice_id)
            .limit(limit)
        )
        with self.db.read() as session:
            rows = session.execute(query).all()
            booked = erp_booked(session, [row.invoice_id for row in rows if row.paid_minor])
        return [(_facts(row._mapping, booked.get(row.invoice_id, 0)), row.has_case is not None) for row in rows]

    def customer_facts(self, customer_id: str) -> tuple[Customer, RiskGrade] | None:
        """A customer as a case sees it, with the scorecard's grade when there is one (None: unknown)."""
        query = (select(customers, customer_risk.c.grade.label("scored_grade"))
                 .outerjoin(customer_risk, customer_risk.c.customer_id == customers.c.customer_id)
                 .where(customers.c.customer_id == customer_id))
        with self.db.read() as session:
            row = session.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return (Customer(customer_id=m["customer_id"], name=m["name"], email=m["email"], country=m["country"],
                         language=m["language"], timezone=m["timezone"]),
                RiskGrade(m["scored_grade"] or m["risk_grade"]))

    def cases_opened_since(self, since: datetime) -> int:
        """How many cases (of either kind) recorded their opening at or after ``since``."""
        query = select(func.count()).select_from(case_summary).where(case_summary.c.opened_at >= since)
        with self.db.read() as session:
            return session.execute(query).scalar_one()

    def with_case(self, invoice_ids: Iterable[str]) -> set[str]:
        """Those of ``invoice_ids`` (or advance request ids) that have a case."""
        ids = list(invoice_ids)
        found: set[str] = set()
        with self.db.read() as session:
            for chunk in _chunks(ids, 500):
                found |= set(session.execute(select(case_summary.c.invoice_id)
                                             .where(case_summary.c.invoice_id.in_(chunk))).scalars())
        return found
