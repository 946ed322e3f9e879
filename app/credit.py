"""Advance receipts and unapplied cash: customer credit, its age, and applying it.

Applying credit is two events on two streams: ``CustomerCreditAllocated`` on the
customer's stream reserves the credit (decided against what the customer has),
then the invoice's case applies it (``CustomerCreditApplied``, decided by the case
as any payment is). Should the case refuse (it closed meanwhile), the allocation
is given back with ``CustomerCreditAllocationReleased``. The allocation id is the
case update's id, so a retried application is applied once.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import NAMESPACE_URL, uuid4, uuid5

from app.customers import CustomerService
from app.services import CaseService
from domain import commands as cmd
from domain import customer as cu
from domain.credit import CreditBalance, credit_balances, plan_allocation
from domain.errors import DomainError, shown
from domain.inputs import check_identifier, check_received_on
from domain.money import Money, payable_currency, positive_money
from domain.users import Actor


def credit_dict(b: CreditBalance) -> dict:
    """One credit balance as `payments unapplied` and the statement of account show it."""
    return {"currency": b.currency, "balance": str(b.balance), "oldest": b.oldest.isoformat() if b.oldest else None,
            "age_days": b.age_days, "receipts": b.receipts}


def _today() -> date:
    return datetime.now(timezone.utc).date()


class CreditService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.customers = CustomerService(cases.ctx)
        self.reads = self.customers.reads

    # -- reads -----------------------------------------------------------------------------------
    def unapplied(self, as_of: date | None = None, customer_id: str | None = None) -> list[dict]:
        """Customer credit balances with their age (oldest receipt not used up), largest first."""
        day = as_of or _today()
        balances = credit_balances(self.reads.credit_movements(customer_id), day)
        rows = [{"customer_id": b.customer_id, **credit_dict(b)} for b in balances]
        rows.sort(key=lambda r: (-Decimal(r["balance"]), r["customer_id"]))
        return rows

    # -- prepayments -----------------------------------------------------------------------------
    async def prepay(self, customer_id: str, amount: str, currency: str, actor: Actor, payment_id: str | None = None,
                     received_on: date | None = None, reference: str = "", request_id: str | None = None) -> dict:
        """A payment with no invoice (or paying an advance request): it becomes customer credit, an
        advance on the register (and, by policy, is applied at once)."""
        self.reads.customer(customer_id)
        money = positive_money(amount, payable_currency(currency))
        pid = check_identifier(payment_id, "payment_id") if payment_id is not None else f"pre-{uuid4()}"
        received_on = check_received_on(received_on or _today(), _today(), self.cases.ctx.policy().inputs)
        command_id = uuid5(NAMESPACE_URL, f"prepayment:{pid}")
        state, events = self.customers.execute(customer_id, lambda s: cu.RecordPrepayment(
            command_id=command_id, actor=actor, customer_id=customer_id, payment_id=pid, amount=money,
            received_on=received_on or _today(), reference=reference, request_id=request_id))
        case = await self._pay_advance_case(customer_id, request_id, pid, money, received_on, reference, actor)
        applied = await self.auto_apply(customer_id, actor) if self.cases.ctx.policy().credit.auto_apply else []
        return {"customer_id": customer_id, "payment_id": pid, "amount": str(money.amount), "currency": money.currency,
                "recorded": bool(events), "applied": applied, "advance_case": case}

    async def _pay_advance_case(self, customer_id: str, request_id: str | None, payment_id: str, money: Money,
                                received_on: date, reference: str, actor: Actor) -> dict | None:
        """A payment of an advance request that is dunned (a case of kind advance) is recorded on
        that case too: its balance goes down, and paid in full it closes as paid. The money itself
        is the advance on the customer's register (``PrepaymentReceived``), never a receivable."""
        if request_id is None:
            return None
        try:
            row = self.cases.summary_row(request_id)
        except DomainError:
            return None  # not overdue yet: no case
        if row.kind != "advance" or row.customer_id != customer_id or row.closed_at is not None:
            return None
        reply = await self.cases._send(row.case_id, "pay", lambda s: cmd.RecordPayment(
            command_id=uuid5(NAMESPACE_URL, f"advance-case-payment:{payment_id}"), actor=actor,
            payment_id=payment_id, amount=money, reference=reference or f"advance request {request_id}",
            received_on=received_on, payer=customer_id, matched_by="advance_request"))
        return {"case_id": str(row.case_id), "status": reply.get("status"), "balance": reply.get("balance")}

    # -- applying ---------------------------------------------------------------------------------
    async def apply(self, invoice_id: str, amount: str | None, actor: Actor, allocation_id: str | None = None,
                    advance_id: str | None = None) -> dict:
        """Apply the customer's credit (or one advance) to an invoice's open case (default: as much as fits)."""
        summary = self.cases.summary_row(invoice_id)
        if summary.kind == "advance":
            raise DomainError(f"{invoice_id} is an advance request, not an invoice: credit is applied to invoices",
                              "invoice_id")
        if summary.closed_at is not None:
            raise DomainError(f"case is closed ({summary.status}); it accepts no further commands", "case")
        customer_id, currency = summary.customer_id, summary.currency
        owed = Money.from_minor(summary.balance_minor, currency)
        held = self.reads.held_on_cases(customer_id, currency)
        state = self.reads.state(customer_id)
        available = cu.available_credit(state, currency, held)
        advance = state.advances.get(advance_id) if state is not None and advance_id is not None else None
        if advance is not None and advance.amount.currency == currency:
            available = available.min(advance.refundable)
        if amount is None:
            money = available.min(owed)
            if not money.is_positive:
                raise DomainError(f"customer {customer_id} has no {currency} credit to apply", "amount")
        else:
            money = positive_money(amount, currency)
        allocation = allocation_id or f"AL-{uuid4().hex[:16]}"
        if not allocation.replace("-", "").replace("_", "").isalnum() or len(allocation) > 100:
            raise DomainError(f"{shown(allocation)} is not a valid allocation id", "allocation_id")
        command_id = uuid5(NAMESPACE_URL, f"allocation:{allocation}")
        self.customers.execute(customer_id, lambda s: cu.AllocateCredit(
            command_id=command_id, actor=actor, customer_id=customer_id, allocation_id=allocation,
            invoice_id=summary.invoice_id, target_case_id=summary.case_id, amount=money,
            held_on_cases=self.reads.held_on_cases(customer_id, currency), owed=owed, advance_id=advance_id))
        try:
            reply = await self.cases._send(summary.case_id, "apply_credit", lambda s: cmd.ApplyCustomerCredit(
                command_id=uuid5(NAMESPACE_URL, f"apply-credit:{allocation}"), actor=actor,
                allocation_id=allocation, amount=money))
        except DomainError as error:
            why = f"the case refused it: {error}"
            self.customers.execute(customer_id, lambda s: cu.ReleaseAllocation(
                command_id=uuid5(NAMESPACE_URL, f"release:{allocation}"), actor=actor, customer_id=customer_id,
                allocation_id=allocation, reason=why))
            raise
        return {**reply, "allocation_id": allocation, "applied": str(money.amount), "customer_id": customer_id}

    async def auto_apply(self, customer_id: str | None, actor: Actor) -> list[dict]:
        """Apply every customer's credit (or one customer's) to their open cases, oldest due first."""
        applied: list[dict] = []
        balances = credit_balances(self.reads.credit_movements(customer_id), date.max)
        for b in balances:
            if b.balance <= 0:
                continue
            for item, amount in plan_allocation(b.balance, self.reads.open_items(b.customer_id, b.currency)):
                try:
                    reply = await self.apply(item.invoice_id, str(amount), actor)
                except DomainError as error:  # the case closed or changed meanwhile: next one
                    applied.append({"invoice_id": item.invoice_id, "error": str(error)})
                    continue
                applied.append({"invoice_id": item.invoice_id, "amount": str(amount), "currency": b.currency,
                                "status": reply["status"], "allocation_id": reply["allocation_id"]})
        return applied
