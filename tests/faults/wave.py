"""A wave of cases through the real stack, and the checks that nothing was lost or doubled.

Every case of the wave walks the fast policy's whole ladder (two or three notices,
a late fee on grades B-D), is escalated, and is then paid in full by the driver,
which closes it as paid. A fault injector runs beside the driver and is told how
far the wave has come, so faults land mid-wave.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Awaitable, Callable
from uuid import UUID

from sqlalchemy import func, select

from domain.decider import case_uuid
from domain.policy import RiskGrade
from domain.state import fold
from store.schema import PROJECTION_TABLES, notice_deliveries

NOTICE_EVENTS = ("ReminderSent", "ReminderFailed")
CURRENCIES = ("EUR", "USD", "GBP", "JPY")


@dataclass(frozen=True)
class PlannedCase:
    invoice_id: str
    email: str
    grade: RiskGrade
    rejected: bool  # the customer's mailbox answers 550

    @property
    def case_id(self) -> UUID:
        return case_uuid(self.invoice_id)


def plan_wave(size: int, rejected_every: int = 0, seed: int = 7) -> tuple[str, list[PlannedCase]]:
    """CSV text for ``size`` invoices, one customer each, all grades and several currencies."""
    rng = random.Random(seed)
    today = date.today()
    lines = ["invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,"
             "issue_date,due_date,risk_grade"]
    cases = []
    for i in range(size):
        grade = list(RiskGrade)[i % 4]
        currency = CURRENCIES[i % len(CURRENCIES)]
        amount = Decimal(rng.randint(5_000, 5_000_000)) / 100
        amount = amount.quantize(Decimal(1)) if currency == "JPY" else amount
        invoice_id = f"FLT-{i:05d}"
        email = f"ap{i:05d}@customer{i % 37}.test"
        rejected = bool(rejected_every) and i % rejected_every == rejected_every - 1
        lines.append(f"{invoice_id},C-{i:05d},Customer {i} Ltd,{email},DE,en,{currency},{amount},"
                     f"{today - timedelta(days=60)},{today - timedelta(days=30)},{grade.value}")
        cases.append(PlannedCase(invoice_id, email, grade, rejected))
    return "\n".join(lines) + "\n", cases


@dataclass
class Fault:
    kind: str
    started: float
    restored: float | None = None
    resumed: float | None = None  # first progress after the restore
    events_at_restore: int = 0
    mails_at_restore: int = 0

    def as_dict(self, t0: float) -> dict:
        rel = lambda t: None if t is None else round(t - t0, 2)  # noqa: E731
        return {"kind": self.kind, "at_s": rel(self.started), "restored_s": rel(self.restored),
                "recover_s": None if self.resumed is None or self.restored is None
                else round(self.resumed - self.restored, 2)}


@dataclass
class Progress:
    """What the wave has reached; the injector waits on it."""

    total_notices: int
    notices: int = 0  # notice outcomes recorded (ReminderSent / ReminderFailed)
    events: int = 0
    closed: int = 0
    mails: int = 0
    faults: list[Fault] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def fraction(self) -> float:
        return self.notices / self.total_notices if self.total_notices else 1.0

    async def reach(self, fraction: float, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.fraction < fraction:
            if time.monotonic() > deadline:
                raise AssertionError(f"the wave did not reach {fraction:.0%} within {timeout}s (at {self.fraction:.0%})")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    def fault(self, kind: str) -> Fault:
        fault = Fault(kind, time.monotonic())
        self.faults.append(fault)
        return fault

    def restored(self, fault: Fault) -> None:
        """The broken part is back: recovery is timed from now to the next progress."""
        fault.events_at_restore, fault.mails_at_restore = self.events, self.mails
        fault.restored = time.monotonic()


Injector = Callable[["object", Progress], Awaitable[None]]


async def _retry(what: str, call: Callable[[], Awaitable], deadline: float, errors: list[str]):
    delay = 0.5
    while True:
        try:
            return await call()
        except Exception as error:  # the stack is being broken on purpose: try again
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing at the deadline: {error!r}") from error
            errors.append(type(error).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


def _counts(stack) -> tuple[int, int, int]:
    store = stack.context.store
    rec = store._records
    with stack.context.db.read() as session:
        events = session.execute(select(func.count()).select_from(rec)).scalar_one()
        notices = session.execute(select(func.count()).select_from(rec).where(rec.topic.in_(NOTICE_EVENTS))).scalar_one()
        closed = session.execute(select(func.count()).select_from(rec).where(rec.topic == "CaseClosed")).scalar_one()
    return events, notices, closed


async def run_wave(stack, cases_csv: str, cases: list[PlannedCase], injector: Injector | None,
                   timeout: float = 900, concurrency: int = 12) -> dict:
    """Open every case, pay each once it is escalated, until all are closed; returns timings."""
    service = stack.service
    policy = stack.context.policy()
    total_notices = sum(len(policy.ladder(c.grade)) for c in cases)
    progress = Progress(total_notices=total_notices)
    t0 = time.monotonic()
    deadline = t0 + timeout
    errors: list[str] = []
    payer = stack.context.actor("demo-collector")
    await _retry("import", lambda: asyncio.to_thread(service.import_invoice_text, cases_csv, "wave.csv"),
                 deadline, errors)
    gate = asyncio.Semaphore(concurrency)

    async def open_one(case: PlannedCase) -> None:
        async with gate:
            await _retry(f"open {case.invoice_id}", lambda: service.open_case(case.invoice_id, "overdue", payer),
                         deadline, errors)

    paying: dict[str, asyncio.Task] = {}

    async def pay_one(invoice_id: str, balance: str) -> None:
        async with gate:
            await _retry(f"pay {invoice_id}", lambda: service.pay(
                invoice_id, balance, "fault wave", payer, payment_id=f"pay-{invoice_id}"), deadline, errors)

    async def open_all() -> None:
        await asyncio.gather(*(open_one(c) for c in cases))

    opener = asyncio.create_task(open_all())
    injecting = asyncio.create_task(injector(stack, progress)) if injector else None
    opened_at = None
    try:
        while True:
            try:
                events, notices, closed = await asyncio.to_thread(_counts, stack)
                escalated = await asyncio.to_thread(service.list, "escalated", 100_000)
            except Exception as error:  # database away: keep watching
                errors.append(type(error).__name__)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            mails = len(stack.sink.messages)
            for fault in progress.faults:
                if fault.restored is not None and fault.resumed is None:
                    if fault.kind.startswith("smtp"):
                        if mails > fault.mails_at_restore:
                            fault.resumed = now
                    elif events > fault.events_at_restore or closed > progress.closed:
                        fault.resumed = now
            progress.events, progress.notices, progress.closed, progress.mails = events, notices, closed, mails
            progress.changed.set()
            if opener.done() and opened_at is None:
                opener.result()
                opened_at = now
            for row in escalated:
                task = paying.get(row["invoice_id"])
                if task is None or (task.done() and task.exception() is not None):
                    paying[row["invoice_id"]] = asyncio.create_task(pay_one(row["invoice_id"], row["balance"]))
            injector_done = injecting is None or injecting.done()
            if injecting is not None and injecting.done() and injecting.exception() is not None:
                raise injecting.exception()
            if closed >= len(cases) and opener.done() and injector_done:
                break
            if now > deadline:
                raise AssertionError(f"wave not finished within {timeout}s: {closed}/{len(cases)} closed, "
                                     f"{notices}/{total_notices} notices; faults {[f.kind for f in progress.faults]}")
            await asyncio.sleep(0.5)
    finally:
        for task in [opener, injecting, *paying.values()]:
            if task is not None and not task.done():
                task.cancel()
    done = time.monotonic()
    last_restore = max((f.restored for f in progress.faults if f.restored), default=None)
    return {
        "wall_s": round(done - t0, 1),
        "open_s": round(opened_at - t0, 1) if opened_at else None,
        "faults": [f.as_dict(t0) for f in progress.faults],
        "drain_s": round(done - last_restore, 1) if last_restore else None,
        "transient_errors": dict(Counter(errors)),
    }


# -- checks -----------------------------------------------------------------------------------


def expected_types(policy, case: PlannedCase) -> list[str]:
    ladder = policy.ladder(case.grade)
    notice = "ReminderFailed" if case.rejected else "ReminderSent"
    types = ["CaseOpened"] + [notice] * len(ladder)
    last = ladder[-1]
    if not case.rejected and (last.fee is not None or last.fee_percent is not None):
        types.append("LateFeeCharged")
    return types + ["EscalatedToSupervisor", "PaymentReceived", "CaseClosed"]


def _projection_rows(db) -> dict[str, list[tuple]]:
    with db.read() as session:
        return {t.name: sorted(tuple(map(str, r)) for r in session.execute(select(t))) for t in PROJECTION_TABLES}


def verify(stack, cases: list[PlannedCase]) -> dict:
    """Everything the issue asks to prove, measured; the test asserts on the figures."""
    store = stack.context.store
    policy = stack.context.policy()
    records = list(store.read_all())
    streams: dict[UUID, list] = defaultdict(list)
    for r in records:
        streams[r.stream_id].append(r)
    event_ids = Counter(str(r.event.event_id) for r in records)
    duplicate_events = sum(n - 1 for n in event_ids.values() if n > 1)
    problems: list[str] = []
    lost_cases = 0
    gaps = 0
    duplicate_facts = 0
    expected_mail: dict[str, tuple[str, int]] = {}
    for case in cases:
        stream = streams.get(case.case_id, [])
        versions = [r.event.version for r in stream]
        if versions != list(range(1, len(stream) + 1)):
            gaps += 1
            problems.append(f"{case.invoice_id}: versions {versions}")
        facts = Counter()
        for r in stream:
            e = r.event
            key = (type(e).__name__, getattr(e, "seq", None), getattr(e, "payment_id", None))
            facts[key] += 1
        duplicate_facts += sum(n - 1 for n in facts.values() if n > 1)
        types = [type(r.event).__name__ for r in stream]
        state = fold([r.event for r in stream]) if stream else None
        want = expected_types(policy, case)
        ok = (state is not None and types == want and state.status.value == "paid" and state.balance.is_zero
              and state.original_amount + state.fees == state.payments + state.credits + state.write_offs
              and state.contact_problem == case.rejected)
        if not ok:
            lost_cases += 1
            if len(problems) < 20:
                problems.append(f"{case.invoice_id}: {types} status={state.status.value if state else None}")
        for r in stream:
            if type(r.event).__name__ == "ReminderSent":
                expected_mail[r.event.message_id] = (case.invoice_id, r.event.seq)
    # administration streams (the invoice import, ledger payments...) hold the people's own actions
    from domain.admin import ADMIN_EVENT_TYPES

    administration = {sid for sid, rs in streams.items() if all(type(r.event).__name__ in ADMIN_EVENT_TYPES for r in rs)}
    unknown_streams = set(streams) - {c.case_id for c in cases} - administration
    # mail: every recorded delivery is in the sink; count repeats by Message-ID and by (case, step)
    received = Counter(m.message_id for m in stack.sink.messages)
    with stack.context.db.read() as session:  # the delivery log's own word on each message
        logged = dict(session.execute(select(notice_deliveries.c.message_id, notice_deliveries.c.status)).all())
    # a connection lost during DATA (the sink stopped mid-message) is recorded as outcome `unknown`
    # and not sent again (at most once, docs/RELIABILITY.md): flagged for review, so not lost silently
    unreceived = [mid for mid in expected_mail if received[mid] == 0]
    unknown_unreceived = [mid for mid in unreceived if logged.get(mid) == "unknown"]
    lost_notices = len(unreceived) - len(unknown_unreceived)
    duplicate_notices = sum(n - 1 for mid, n in received.items() if n > 1)
    phantom = [mid for mid in received if mid not in expected_mail]
    # by content, whatever the Message-ID: which invoices a message lists, at which step (subject)
    by_step = Counter()
    invoice_ids = [c.invoice_id for c in cases]
    for m in stack.sink.messages:
        body = m.body()
        for invoice_id in invoice_ids:
            if invoice_id in body:
                by_step[(invoice_id, m.subject.split(":")[0])] += 1
    duplicate_steps = sum(n - 1 for n in by_step.values() if n > 1)
    doubled_steps = sorted(k for k, n in by_step.items() if n > 1)
    rejected_cases = [c for c in cases if c.rejected]
    mail_to_rejected = sum(1 for m in stack.sink.messages if any(c.email in m.recipients for c in rejected_cases))
    with stack.context.db.read() as session:
        delivery = Counter(logged.values())  # one row per Message-ID
        doubled = [mid for mid, n in received.items() if n > 1]
        duplicate_detail = [
            {k: str(v) for k, v in row._mapping.items()}
            for row in session.execute(select(notice_deliveries).where(notice_deliveries.c.message_id.in_(doubled)))
        ] if doubled else []
    # every report agrees with the events (`report reconcile`), however the wave was disturbed
    from app.reconcile import reconcile

    problems += [f"reconcile: {d}" for d in reconcile(stack.context)["differences"][:20]]
    # and no open case waits on nobody (`report stuck`), however the wave was disturbed
    from app.liveness import stuck_cases
    from app.services import CaseService

    problems += [f"stuck: {c['invoice_id']} {c['reason']}" for c in stuck_cases(CaseService(stack.context))[:20]]
    before = _projection_rows(stack.context.db)
    store.rebuild_projections()
    after = _projection_rows(stack.context.db)
    projections_equal = before == after
    if not projections_equal:
        for name in before:
            if before[name] != after[name]:
                problems.append(f"projection {name} differs from a rebuild "
                                f"({len(set(before[name]) ^ set(after[name]))} rows)")
    return {
        "cases": len(cases),
        "events": len(records),
        "lost_cases": lost_cases,
        "version_gaps": gaps,
        "duplicate_events": duplicate_events,
        "duplicate_facts": duplicate_facts,
        "unknown_streams": len(unknown_streams),
        "notices_expected": len(expected_mail),
        "notices_lost": lost_notices,
        "notices_unknown_not_received": len(unknown_unreceived),
        "duplicate_notices": duplicate_notices,
        "duplicate_steps": duplicate_steps,
        "phantom_notices": len(phantom),
        "phantom_detail": phantom[:10],
        "doubled_steps": [list(k) for k in doubled_steps[:10]],
        "mail_to_rejected": mail_to_rejected,
        "rejected_cases": len(rejected_cases),
        "delivery_log": dict(delivery),
        "duplicate_detail": duplicate_detail,
        "projections_equal_rebuild": projections_equal,
        "problems": problems,
    }


def report_dict(**parts) -> dict:
    out: dict = {}
    for part in parts.values():
        out.update(part if isinstance(part, dict) else asdict(part))
    return out
