"""Invoice and customer sync: what an ERP export changes, planned before anything is written.

An export (docs/IMPORT.md) is the ERP's current view of its invoices, credit notes and
customers. Each row is compared with what the engine knows: an invoice with an open case is
compared with the case (the decider lists the differences, ``domain.decider.erp_differences``,
and every case command is decided once here, on the case's state, so a file the cases would
refuse is refused whole before anything is written); an invoice without a case with its ledger
row. The ledger changes are written in one transaction with the ``InvoicesImported`` event; the
case changes then go to each case's workflow as a ``SyncInvoice`` update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import uuid4

from sqlalchemy import select

from app.imports import CreditNoteRow, Export, ExportRow, RowError
from domain import commands as cmd
from domain.decider import decide, erp_differences
from domain.errors import DomainError
from domain.events import Customer
from domain.money import Money
from domain.state import CaseState
from domain.users import Actor
from store.ledger import ERP_MATCH, _chunks, erp_booked
from store.schema import case_summary, customers, invoices

ERP_ACTOR = Actor(name="erp-sync")  # who the ERP's changes are recorded by, unless a person imports them


@dataclass
class CaseSync:
    line: int
    invoice_id: str
    command: cmd.SyncInvoice
    changes: list[str]


@dataclass
class LedgerChange:
    line: int
    invoice_id: str
    values: dict  # the invoices row's new columns
    paid: Money | None = None  # newly booked by the ERP as paid outside the engine
    paid_total: Money | None = None
    changes: list[str] = field(default_factory=list)


@dataclass
class SyncPlan:
    new: list[ExportRow]
    new_paid: dict[str, Money]
    notes: dict[str, list[CreditNoteRow]]
    unchanged: int
    ledger: list[LedgerChange]
    cases: list[CaseSync]
    closed: list[dict]  # differences on invoices whose case is closed: not applied, listed
    customers: dict[str, dict]

    def counts(self) -> tuple:
        return (len(self.new), self.unchanged, len(self.ledger), len(self.cases))


def plan_sync(session, export: Export, actor: Actor, source: str, now: datetime,
              policy_of) -> SyncPlan:
    """Everything the export changes; refused whole (``RowError``: line and field) when a row
    contradicts what is known (another customer or currency) or a case would refuse its change."""
    rows = export.invoices
    ids = sorted({r.facts.invoice_id for r in rows})
    ledger = {r.invoice_id: r for chunk in _chunks(ids, 500)
              for r in session.execute(select(invoices).where(invoices.c.invoice_id.in_(chunk)))}
    cases = {r.invoice_id: r for chunk in _chunks(ids, 500)
             for r in session.execute(select(case_summary.c.invoice_id, case_summary.c.closed_at,
                                             case_summary.c.state)
                                      .where(case_summary.c.invoice_id.in_(chunk)))}
    in_file = {r.facts.invoice_id: r for r in rows}
    notes: dict[str, list[CreditNoteRow]] = {}
    for note in export.credit_notes:
        if note.invoice_id not in in_file:  # the export carries every invoice it credits
            raise RowError(note.line, f"credit note {note.document_id} references invoice {note.invoice_id}, "
                                      "which is not in the file; export the invoice with its credit notes",
                           "references")
        notes.setdefault(note.invoice_id, []).append(note)
    erp_paid = erp_booked(session, ids)
    plan = SyncPlan(new=[], new_paid={}, notes=notes, unchanged=0, ledger=[], cases=[], closed=[], customers={})
    for row in rows:
        plan.customers[row.customer.customer_id] = _customer_row(row)
        f = row.facts
        own_notes = notes.get(f.invoice_id, [])
        old = ledger.get(f.invoice_id)
        if old is None:
            plan.new.append(row)
            if row.paid is not None and row.paid.is_positive:
                plan.new_paid[f.invoice_id] = row.paid
            continue
        _same_invoice_facts(row, old)
        case = cases.get(f.invoice_id)
        if case is None:
            change = _ledger_change(row, old, own_notes, erp_paid.get(f.invoice_id, 0))
            if change is None:
                plan.unchanged += 1
            else:
                plan.ledger.append(change)
            continue
        state = CaseState.model_validate_json(case.state)
        command = sync_command(row, own_notes, actor, source)
        differences = erp_differences(state, command)
        if state.closed:
            if state.outcome.value == "cancelled":
                differences = [d for d in differences if d != "cancelled"]
            if differences:
                plan.closed.append({"line": row.line, "invoice_id": f.invoice_id, "case": state.outcome.value,
                                    "changes": differences})
            else:
                plan.unchanged += 1
            continue
        if not differences:
            plan.unchanged += 1
            continue
        try:
            decide(state, command, now, policy_of(state.policy_version))
        except DomainError as error:
            raise RowError(row.line, error) from None
        plan.cases.append(CaseSync(row.line, f.invoice_id, command, differences))
        if old.due_date != f.due_date:  # the ledger's due date feeds the aging reports
            plan.ledger.append(LedgerChange(row.line, f.invoice_id, {"due_date": f.due_date}, changes=["due date"]))
    _customer_cases(session, plan, rows, actor, source, now, policy_of)
    return plan


def touches_cases(session, export: Export) -> bool:
    """Whether the export names an invoice with a case, or a customer with an open case."""
    ids = sorted({r.facts.invoice_id for r in export.invoices})
    who = sorted({r.customer.customer_id for r in export.invoices})
    for chunk in _chunks(ids, 500):
        if session.execute(select(case_summary.c.case_id).where(case_summary.c.invoice_id.in_(chunk)).limit(1)).first():
            return True
    for chunk in _chunks(who, 500):
        query = select(case_summary.c.case_id).where(case_summary.c.customer_id.in_(chunk),
                                                     case_summary.c.closed_at.is_(None)).limit(1)
        if session.execute(query).first():
            return True
    return False


def sync_command(row: ExportRow, notes: list[CreditNoteRow], actor: Actor, file: str) -> cmd.SyncInvoice:
    """The row as the case command; each credit note names its own line of ``file``."""
    f = row.facts
    return cmd.SyncInvoice(
        command_id=uuid4(), actor=actor, amount=f.amount, due_date=f.due_date, customer=row.customer,
        cancelled=row.cancelled, paid=row.paid,
        credit_notes=tuple(cmd.CreditNote(document_id=n.document_id, amount=n.amount,
                                          source=f"{file} line {n.line}"[:300]) for n in notes),
        source=f"{file} line {row.line}"[:300],
    )


def _customer_cases(session, plan: SyncPlan, rows: list[ExportRow], actor: Actor, source: str, now: datetime,
                    policy_of) -> None:
    """A customer's new details reach every open case of the customer, also those whose
    invoice is not in this file."""
    first_line = {}
    for row in rows:
        first_line.setdefault(row.customer.customer_id, row)
    covered = {c.invoice_id for c in plan.cases} | {r.facts.invoice_id for r in rows}
    query = (select(case_summary.c.invoice_id, case_summary.c.state)
             .where(case_summary.c.closed_at.is_(None), case_summary.c.customer_id.in_(sorted(first_line))))
    for found in session.execute(query):
        if found.invoice_id in covered:
            continue
        state = CaseState.model_validate_json(found.state)
        row = first_line[state.customer.customer_id]
        if row.customer == state.customer:
            continue
        command = cmd.SyncInvoice(command_id=uuid4(), actor=actor, amount=state.current_invoice_amount,
                                  due_date=state.due_date, customer=row.customer,
                                  source=f"{source} line {row.line}"[:300])
        try:
            decide(state, command, now, policy_of(state.policy_version))
        except DomainError as error:
            raise RowError(row.line, error) from None
        plan.cases.append(CaseSync(row.line, found.invoice_id, command, erp_differences(state, command)))


def _same_invoice_facts(row: ExportRow, old) -> None:
    """What the ERP may not change on an invoice: whose it is, its currency, its issue date."""
    f = row.facts
    if old.customer_id != f.customer.customer_id:
        raise RowError(row.line, f"invoice {f.invoice_id} belongs to customer {old.customer_id}; an invoice does "
                                 "not move to another customer (cancel it and issue a new one)", "customer_id")
    if old.currency != f.amount.currency:
        raise RowError(row.line, f"invoice {f.invoice_id} is in {old.currency}; its currency does not change",
                       "currency")
    if old.issue_date != f.issue_date:
        raise RowError(row.line, f"invoice {f.invoice_id} was issued on {old.issue_date}; the issue date does not "
                                 "change", "issue_date")


def _ledger_change(row: ExportRow, old, notes: list[CreditNoteRow], erp_paid_minor: int) -> LedgerChange | None:
    """An invoice without a case keeps on the ledger what it owes: the amount less its credit
    notes (cancelled: nothing beyond what was paid)."""
    f = row.facts
    currency = f.amount.currency
    paid_total = row.paid.to_minor() if row.paid is not None else erp_paid_minor
    if paid_total < erp_paid_minor:
        raise RowError(row.line, f"{Money.from_minor(paid_total, currency).amount} is less than the "
                                 f"{Money.from_minor(erp_paid_minor, currency).amount} the ERP already booked "
                                 "as paid", "paid")
    newly_paid = paid_total - erp_paid_minor
    target = ledger_amount(row, notes, old.paid_minor + newly_paid)
    values: dict = {}
    changes: list[str] = []
    if target != old.amount_minor:
        values["amount_minor"] = target
        changes.append("cancelled" if row.cancelled else "amount")
    if f.due_date != old.due_date:
        values["due_date"] = f.due_date
        changes.append("due date")
    if newly_paid:
        changes.append("paid outside")
    if not changes:
        return None
    return LedgerChange(row.line, f.invoice_id, values,
                        paid=Money.from_minor(newly_paid, currency) if newly_paid else None,
                        paid_total=Money.from_minor(paid_total, currency), changes=changes)


def ledger_amount(row: ExportRow, notes: list[CreditNoteRow], paid_minor: int) -> int:
    if row.cancelled:
        return paid_minor
    credited = sum(n.amount.to_minor() for n in notes)
    return max(row.facts.amount.to_minor() - credited, 0)


def _customer_row(row: ExportRow) -> dict:
    c: Customer = row.customer
    return {"customer_id": c.customer_id, "name": c.name, "email": c.email, "country": c.country,
            "language": c.language, "timezone": c.timezone, "risk_grade": row.grade}


def erp_payment_id(invoice_id: str, total: Money) -> str:
    """The ledger payment row of what the ERP booked (one per new total, so a re-import adds none)."""
    return f"erp:{invoice_id}:{total.to_minor()}"[:100]


def apply_to_ledger(session, plan: SyncPlan, source: str, today: date, now: datetime) -> None:
    """The plan's ledger part, in the caller's transaction."""
    from store.ledger import _invoice_row, record_ledger_payment
    from store.upsert import upsert
    from sqlalchemy import update

    upsert(session, customers, list(plan.customers.values()), ["customer_id"])
    new_rows = []
    for row in plan.new:
        values = _invoice_row(row.facts, now)
        paid = plan.new_paid.get(row.facts.invoice_id)
        values["amount_minor"] = ledger_amount(row, plan.notes.get(row.facts.invoice_id, []),
                                               paid.to_minor() if paid else 0)
        new_rows.append(values)
    for chunk in _chunks(new_rows, 1000):
        session.execute(invoices.insert(), chunk)
    for invoice_id, paid in plan.new_paid.items():
        record_ledger_payment(session, invoice_id, erp_payment_id(invoice_id, paid), paid, today,
                              f"booked in the ERP ({source})"[:500], matched_by=ERP_MATCH)
    for change in plan.ledger:
        if change.values:
            session.execute(update(invoices).where(invoices.c.invoice_id == change.invoice_id).values(**change.values))
        if change.paid is not None:
            record_ledger_payment(session, change.invoice_id, erp_payment_id(change.invoice_id, change.paid_total),
                                  change.paid, today, f"booked in the ERP ({source} line {change.line})"[:500],
                                  matched_by=ERP_MATCH)
