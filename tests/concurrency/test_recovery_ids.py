"""A recovery's payment id names one payment, however many send it at the same time: on SQLite
and PostgreSQL, people recording the same administrator's dividend with `pay` on its written-off
invoice, and on another written-off invoice, at once. The row of the payments table is written in
the recovery event's transaction; its unique key and the recovery stream's version decide."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

from domain import admin
from domain.errors import DomainError
from domain.users import Actor, Role
from store.payments import PaymentLedger
from tests.concurrency.conftest import running_stack

MANAGER = Actor(name="demo-manager", role=Role.finance_manager)
PEOPLE_HERE, PEOPLE_ELSEWHERE = 4, 2


async def written_off(stack, http_supervisor, http_manager, amount: str = "300.00") -> str:
    invoice = await stack.new_case(amount=amount)
    asked = await http_supervisor.post(f"/api/cases/{invoice}/write-off", json={"amount": amount, "reason": "insolvency"})
    assert asked.status_code == 200, asked.text
    approval_id = next(a["approval_id"] for a in (await http_supervisor.get("/api/approvals")).json()
                       if a["invoice_id"] == invoice)
    approved = await http_manager.post(f"/api/approvals/{approval_id}/approve", json={"reason": "uncollectable"})
    assert approved.status_code == 200 and approved.json()["status"] == "written_off", approved.text
    return invoice


def pay_at_once(service, invoices: list[str]) -> list[object]:
    """One thread per invoice in ``invoices``, each recording 50.00 under the same payment id."""
    outcomes: list[object] = []
    start = threading.Barrier(len(invoices))

    def one(invoice: str) -> None:
        start.wait()
        try:
            outcomes.append(asyncio.run(service.pay(invoice, "50.00", "dividend", MANAGER, payment_id="REC-ONCE")))
        except DomainError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in invoices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


async def test_one_recovery_id_sent_at_once_is_recorded_once(dev_env, tmp_path, database_url):
    async with running_stack(dev_env.client, tmp_path, database_url) as stack:
        async with stack.client("supervisor") as supervisor, stack.client("finance_manager") as manager:
            here, elsewhere = await written_off(stack, supervisor, manager), await written_off(stack, supervisor, manager)
        outcomes = pay_at_once(stack.service, [here] * PEOPLE_HERE + [elsewhere] * PEOPLE_ELSEWHERE)
        recorded = [e.invoice_id for invoice in (here, elsewhere) for e in stack.context.store.load_types(
            admin.admin_stream_id("recovery", invoice), ("WriteOffRecovered",))]
        row = PaymentLedger(stack.context.db).get("REC-ONCE")
    assert len(outcomes) == PEOPLE_HERE + PEOPLE_ELSEWHERE, outcomes
    assert len(recorded) == 1, recorded  # one payment, on one invoice
    [on] = recorded
    assert (row.status, row.invoice_id, row.amount.amount) == ("recovered", on, Decimal("50.00")), row
    replies = [o for o in outcomes if isinstance(o, dict)]
    refusals = [o for o in outcomes if isinstance(o, DomainError)]
    assert all(o.field == "payment_id" and "another invoice" in str(o) for o in refusals), refusals
    assert sum(r["recorded"] for r in replies) == 1 and all(r["invoice_id"] == on for r in replies), replies
    assert len(refusals) == (PEOPLE_ELSEWHERE if on == here else PEOPLE_HERE), outcomes
