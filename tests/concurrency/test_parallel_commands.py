"""Issue 14: many commands at once on one case, through the HTTP API of the real stack.

Every caller must learn the truth: a payment answered 200 has exactly one PaymentReceived
event (and one payments-table row), one answered otherwise has none; the case keeps taking
commands; money is conserved. Seen before the fix with 20 payments at once: workflow tasks
lost under the burst left appends in the store that history did not know, and the workflow
never reconciled (every later command 500, "expected version 2")."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain.decider import case_uuid
from store.schema import payments
from tests.concurrency.conftest import running_stack

ROUNDS = int(os.environ.get("COLLECTIONS_CONCURRENCY_ROUNDS", "1"))
SIZE = int(os.environ.get("COLLECTIONS_CONCURRENCY_SIZE", "20"))  # 50 and ROUNDS=3: `make`-free soak
TRUTHFUL = {200, 400, 409, 429}  # 429: nothing applied, Retry-After says when to send it again


async def _send(http, method: str, path: str, body: dict) -> tuple[int, dict]:
    """Sends until the answer is final: a 429 is retried as a client would (same body)."""
    for _ in range(20):
        response = await http.request(method, path, json=body)
        if response.status_code != 429:
            return response.status_code, response.json()
        assert response.headers.get("Retry-After"), "a 429 must say when to retry"
        await asyncio.sleep(float(response.headers["Retry-After"]))
    return response.status_code, response.json()


def _payment(invoice: str, pid: str, amount: str = "10.00") -> tuple[str, str, dict]:
    return "POST", f"/api/invoices/{invoice}/payments", {
        "amount": amount, "reference": f"ref {pid}", "payment_id": pid, "received_on": date.today().isoformat()}


def _mixed(invoice: str, n: int, rng: random.Random) -> list[tuple[str, str, str, dict]]:
    """(kind, method, path, body): payments, repeats of a payment, promises, disputes, assignments."""
    commands = []
    for i in range(n):
        kind = rng.choice(["pay", "pay", "pay", "repeat", "promise", "dispute", "assign"])
        if kind == "pay":
            commands.append((kind, *_payment(invoice, f"MIX-{i}")))
        elif kind == "repeat":
            commands.append((kind, *_payment(invoice, "MIX-SAME")))
        elif kind == "promise":
            commands.append((kind, "POST", f"/api/cases/{invoice}/promise",
                             {"amount": "50.00", "date": (date.today() + timedelta(days=10)).isoformat()}))
        elif kind == "dispute":
            commands.append((kind, "POST", f"/api/cases/{invoice}/dispute", {"reason": "pricing", "amount": "20.00"}))
        else:
            commands.append((kind, "POST", f"/api/cases/{invoice}/assign",
                             {"assignee": rng.choice(["demo-collector", "demo-supervisor"])}))
    return commands


def _check_the_truth(stack, invoice: str, answers: list[tuple[str, int, dict, dict]]) -> None:
    statuses = Counter(status for _, status, _, _ in answers)
    assert set(statuses) <= TRUTHFUL, f"answers {statuses}: {[a for a in answers if a[1] not in TRUTHFUL][:3]}"
    records = stack.events(invoice)
    received = Counter(r.event.payment_id for r in records if type(r.event).__name__ == "PaymentReceived")
    assert all(count == 1 for count in received.values()), f"a payment recorded twice: {received}"
    for kind, status, body, request in answers:
        if "payment_id" not in request:
            continue
        pid = request["payment_id"]
        if status == 200:
            assert received[pid] == 1, f"{pid} answered 200 but has {received[pid]} events"
        else:
            assert received[pid] == 0 or kind == "repeat", f"{pid} answered {status} {body} but was applied"
    # the payments table holds exactly the case's PaymentReceived events, written with them
    with stack.context.db.read() as session:
        rows = session.execute(select(payments.c.payment_id, payments.c.amount_minor, payments.c.status)
                               .where(payments.c.case_id == str(case_uuid(invoice)))).all()
    amounts = {r.event.payment_id: r.event.amount.to_minor() for r in records
               if type(r.event).__name__ == "PaymentReceived"}
    assert {r.payment_id: r.amount_minor for r in rows} == amounts
    assert {r.status for r in rows} <= {"applied"}
    # money is conserved and the workflow, the store and the summary row agree
    state = stack.context.store.state(case_uuid(invoice))
    paid = sum((Decimal(r.amount_minor) / 100 for r in rows), Decimal(0))
    assert state.original_amount + state.fees == (state.balance + state.payments + state.credits
                                                  + state.write_offs + state.credit_applied_total + state.indemnity_total)
    assert state.payments.amount + state.customer_credit.amount == paid
    assert state.version == len(records)


async def _still_takes_commands(stack, http, invoice: str) -> None:
    status, body = await _send(http, *_payment(invoice, f"AFTER-{invoice}", "1.00"))
    assert status == 200, body
    assert [e["type"] for e in body["events"]] == ["PaymentReceived"]
    handle = stack.context.settings  # the workflow's own view must match the store's
    client = await stack.context.client()
    from workflows.messages import case_workflow_id
    wf_state = await client.get_workflow_handle(case_workflow_id(invoice, handle.workflow_id_prefix)).query("state")
    assert wf_state["version"] if isinstance(wf_state, dict) else wf_state.version == stack.context.store.version(
        case_uuid(invoice))


@pytest.mark.parametrize("workers", [1, 2])
async def test_parallel_payments_and_mixed_commands_on_one_case(dev_env, tmp_path, database_url, workers):
    async with running_stack(dev_env.client, tmp_path, database_url, workers=workers) as stack:
        async with stack.client("supervisor") as http:
            for round_ in range(ROUNDS):
                # SIZE distinct payments of 10.00 on a 1,000.00 case, all at once (plus three
                # repeats of one of them with the same content: one event, three 200s)
                invoice = await stack.new_case("1000.00")
                requests = [_payment(invoice, f"DIFF-{i}") for i in range(1, SIZE + 1)]
                requests += [_payment(invoice, "DIFF-1")] * 3
                results = await asyncio.gather(*(_send(http, m, p, b) for m, p, b in requests))
                answers = [("repeat" if i >= SIZE else "pay", s, body, req[2])
                           for i, ((s, body), req) in enumerate(zip(results, requests))]
                assert all(s == 200 for _, s, _, _ in answers), Counter(s for _, s, _, _ in answers)
                _check_the_truth(stack, invoice, answers)
                await _still_takes_commands(stack, http, invoice)

                # SIZE mixed commands at once
                invoice = await stack.new_case("1000.00")
                commands = _mixed(invoice, SIZE, random.Random(round_ * 100 + workers))
                results = await asyncio.gather(*(_send(http, m, p, b) for _, m, p, b in commands))
                answers = [(kind, s, body, req) for (kind, _, _, req), (s, body) in zip(commands, results)]
                _check_the_truth(stack, invoice, answers)
                await _still_takes_commands(stack, http, invoice)
