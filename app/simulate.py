"""Backtest without Temporal: the same ledger, the same pure rules, a virtual clock.

The case workflow holds no business rule: it feeds commands and timer expiries into
``domain.decider.decide`` and waits for ``domain.agenda.next_action``. This module does the
same in one process, on an event queue ordered by virtual time, with the backtest's inputs
(``app/backtest.py``): each day at 08:00 the ledger's settlements, then the sweep that opens a
case for every invoice due ``grace`` ago and still unpaid (with a dispute when the ledger
flags it); between days the cases' own deadlines: reminders through a per-customer mailbox
that gathers for ``gather_window`` and sends one message, late fees, escalations, SLA lapses,
dispute deadlines. Every append that the worker's hook would rescore on rescores the customer
with the same scorecard (``domain.risk.score``) and customer decider, from in-memory history
built as ``store/customers.py::CustomerReads.history`` builds it. Nothing is written: no
database, no e-mail; the result is the report (and, on request, every case's event stream).

Dates are shifted onto the present by whole weeks exactly as the Temporal run does (the
business-day calendar has holidays per year), and reported in ledger dates.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from domain import commands as cmd
from domain import customer as cu
from domain.agenda import next_action, notice_due
from domain.decider import case_uuid, decide_and_evolve
from domain.errors import DomainError
from domain.events import Event, OpenReason
from domain.policy import Policy, RiskGrade
from domain.risk import CustomerHistory, InvoiceRecord, score
from domain.state import CaseState
from domain.users import SYSTEM_ACTOR
from store.collector import cyclic_collector_paused

IDLE_GUARD = timedelta(minutes=1)  # as workflows/case.py: a deadline that changed nothing waits
RESCORE_ON = frozenset({"CaseOpened", "CaseClosed", "CaseReopened", "DisputeOpened", "PromiseBroken",
                        "PaymentPlanDefaulted", "PaymentReversed", "WriteOffApproved"})  # app/customers.py


def week_shift(first: date, today: date) -> timedelta:
    """Whole weeks that move ``first`` to ``today`` or just after (weekdays stay weekdays)."""
    return timedelta(days=math.ceil(((today - first).days + 1) / 7) * 7)


@dataclass
class _Case:
    invoice_id: str
    customer_id: str
    state: CaseState
    events: list[Event] = field(default_factory=list)
    wake: int = 0  # generation of the pending wake-up (older ones are stale)
    waiting_mailbox: bool = False


class _Records:
    """One customer's invoices as the scorecard reads them: store/customers.py gives it every
    invoice, the ledger's future ones included, and ``domain.risk.score`` counts the matured
    ones (``matured``: due before the day, or settled by then). Every invoice that is settled
    or due before the latest day asked for is a superset of those, so it gives the same
    assessment, without reading the years of invoices not yet due at every rescore.
    (The days asked for never go back: the virtual clock only moves forward.)"""

    def __init__(self) -> None:
        self.shown: dict[str, InvoiceRecord] = {}
        self.later: dict[str, InvoiceRecord] = {}  # neither settled nor due before ``day``
        self.by_due: list[tuple[date, str]] = []  # (due date, invoice), in order
        self.passed = 0  # how many of by_due are due before ``day``
        self.day = date.min  # the latest day asked for

    def put(self, record: InvoiceRecord) -> None:
        invoice_id = record.invoice_id
        if record.settled_on is not None or invoice_id in self.shown or record.due_date < self.day:
            self.shown[invoice_id] = record
            self.later.pop(invoice_id, None)
        else:
            if invoice_id not in self.later:
                bisect.insort(self.by_due, (record.due_date, invoice_id))
            self.later[invoice_id] = record

    def as_of(self, day: date) -> list[InvoiceRecord]:
        due, later, shown = self.by_due, self.later, self.shown
        while self.passed < len(due) and due[self.passed][0] < day:
            record = later.pop(due[self.passed][1], None)
            if record is not None:
                shown[record.invoice_id] = record
            self.passed += 1
        self.day = max(self.day, day)
        return list(shown.values())


@dataclass
class _Mailbox:
    pending: list = field(default_factory=list)  # (case, notice)
    gathering: bool = False


class Simulator:
    def __init__(self, policy: Policy, rows: list, lines: list, shift: timedelta) -> None:
        from app.backtest import BACKTEST_ACTOR

        self.policy = policy
        self.actor = BACKTEST_ACTOR
        self.shift = shift
        self.lines = lines
        self.by_invoice = {line.invoice_id: line for line in lines}
        self.facts = {f.invoice_id: f.model_copy(update={"issue_date": f.issue_date + shift,
                                                         "due_date": f.due_date + shift}) for _, _, f in rows}
        self.imported_grade = {c.customer_id: RiskGrade(g) if not isinstance(g, RiskGrade) else g
                               for c, g, _ in rows}
        self.invoices_of: dict[str, list[str]] = defaultdict(list)
        for _, _, f in rows:
            self.invoices_of[f.customer.customer_id].append(f.invoice_id)
        self.ledger_paid: dict[str, date] = {}  # invoice -> received_on, paid on the ledger (no case)
        # What the scorecard reads of each customer, kept up to date (see _history).
        self.records: dict[str, _Records] = defaultdict(_Records)
        self.unpaid: dict[str, Decimal] = defaultdict(Decimal)  # open invoices without a case
        self.open_cases: dict[str, set[str]] = defaultdict(set)
        self.case_counts: dict[str, dict[str, tuple[int, int, int]]] = defaultdict(dict)
        for f in self.facts.values():
            customer = f.customer.customer_id
            if f.amount.currency != "USD":
                raise DomainError(f"invoice {f.invoice_id} is in {f.amount.currency}: the backtest reports USD "
                                  "ledgers", "currency")
            self.records[customer].put(InvoiceRecord(f.invoice_id, f.due_date, None, None))
            self.unpaid[customer] += f.amount.amount - f.paid.amount
        self.cases: dict[str, _Case] = {}
        self.customers: dict[str, cu.CustomerState | None] = {}
        self.customer_events: list = []
        self.mailboxes: dict[str, _Mailbox] = defaultdict(_Mailbox)
        self.messages = 0
        self.now = datetime.min.replace(tzinfo=timezone.utc)
        self._queue: list = []
        self._seq = itertools.count()

    # -- the virtual clock ------------------------------------------------------------------
    def _at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), action))

    def _run_until(self, limit: datetime, inclusive: bool = False) -> None:
        while self._queue and (self._queue[0][0] < limit or (inclusive and self._queue[0][0] == limit)):
            when, _, action = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            action()
        self.now = max(self.now, limit)

    # -- the ledger's days --------------------------------------------------------------------
    def play(self, progress: Callable[[int, int], None] | None = None) -> None:
        from app.backtest import SETTLE_AT

        grace = self.policy.grace.days
        settling: dict[date, list] = defaultdict(list)
        for line in self.lines:
            if line.settled is not None:
                settling[line.settled].append(line)
        days = sorted(set(settling) | {line.due_date + timedelta(days=grace) for line in self.lines})
        # Invoices by due date: each is looked at by the first sweep whose cutoff reaches it, and
        # then never again (it either got its case then, or was paid before: both are final).
        by_due = sorted((f.due_date, f.invoice_id) for f in self.facts.values())
        swept = 0
        for n, day in enumerate(days, start=1):
            target = datetime.combine(day + self.shift, SETTLE_AT, tzinfo=timezone.utc)
            self._run_until(target)
            on = day + self.shift
            for line in settling.get(day, []):
                self._settle(line.invoice_id, on)
            cutoff = on - timedelta(days=grace)
            # The sweep reads its page once (grades as of now), then opens the cases one by one.
            reached = []
            while swept < len(by_due) and by_due[swept][0] <= cutoff:
                reached.append(by_due[swept][1])
                swept += 1
            due = [self._facts_now(i) for i in sorted(reached) if i not in self.cases and i not in self.ledger_paid]
            for facts in due:
                self._open(facts)
                if self.by_invoice[facts.invoice_id].disputed:
                    self._command(self.cases[facts.invoice_id],
                                  cmd.OpenDispute(command_id=uuid4(), actor=self.actor, reason="disputed_in_ledger"))
            if progress is not None:
                progress(n, len(days))
        self._run_until(self.now + timedelta(days=1), inclusive=True)

    def _facts_now(self, invoice_id: str):
        facts = self.facts[invoice_id]
        state = self.customers.get(facts.customer.customer_id)
        grade = state.grade if state is not None and state.grade is not None else facts.risk_grade
        return facts.model_copy(update={"risk_grade": grade})

    def _settle(self, invoice_id: str, on: date) -> None:
        case = self.cases.get(invoice_id)
        if case is None:
            self.ledger_paid[invoice_id] = on
            f = self.facts[invoice_id]
            self.unpaid[f.customer.customer_id] -= f.amount.amount - f.paid.amount
            self.records[f.customer.customer_id].put(InvoiceRecord(invoice_id, f.due_date, on, "paid"))
            return
        if case.state.closed:
            return
        pid = f"settle-{invoice_id}"
        self._command(case, cmd.RecordPayment(
            command_id=uuid5(NAMESPACE_URL, f"payment:{pid}"), actor=self.actor, payment_id=pid,
            amount=case.state.balance, reference="ledger settlement", received_on=on))

    # -- a case: what the workflow does -------------------------------------------------------
    def _open(self, facts) -> None:
        opening = cmd.OpenCase(command_id=uuid4(), actor=SYSTEM_ACTOR, case_id=case_uuid(facts.invoice_id),
                               invoice=facts, reason=OpenReason.overdue)
        events, state = decide_and_evolve(None, opening, self.now, self.policy)
        case = _Case(facts.invoice_id, facts.customer.customer_id, state, list(events))
        self.cases[facts.invoice_id] = case
        self.unpaid[case.customer_id] -= facts.amount.amount - facts.paid.amount
        self._appended(case, events)

    def _command(self, case: _Case, command: cmd.Command) -> list[Event]:
        events, state = decide_and_evolve(case.state, command, self.now, self.policy)
        if events:
            case.state = state
            case.events.extend(events)
            self._appended(case, events)
        return events

    def _appended(self, case: _Case, events: list[Event]) -> None:
        self._track(case)
        if self.policy.risk.enabled and {type(e).__name__ for e in events} & RESCORE_ON:
            last = events[-1]
            self._rescore(case.customer_id, last.occurred_at, uuid5(last.event_id, "rescore"))
        self._schedule(case)

    def _schedule(self, case: _Case, at: datetime | None = None) -> None:
        """The workflow's loop: wait for the next deadline, or a change of state (a new wake-up)."""
        if case.waiting_mailbox or case.state.closed:
            case.wake += 1
            return
        if at is None:
            action = next_action(case.state, self.policy)
            if action is None:
                case.wake += 1
                return
            at = max(action.at, self.now)
        case.wake += 1
        generation = case.wake
        self._at(at, lambda: self._step(case, generation))

    def _step(self, case: _Case, generation: int) -> None:
        if generation != case.wake or case.waiting_mailbox or case.state.closed:
            return
        action = next_action(case.state, self.policy)
        if action is None:
            return
        if action.at > self.now:
            self._schedule(case, action.at)
            return
        if action.kind == "remind":
            notice = notice_due(case.state, self.policy, on=self.now.date())  # as the workflow: interest to today
            if self.policy.notices.one_message_per_customer:
                case.waiting_mailbox = True
                case.wake += 1
                self._enqueue(case, notice)
            else:
                self._record(case, notice, delivered=not case.state.closed, withdrawn=False)
                self.messages += 1
            return
        if action.kind == "notify_insurer":
            raise DomainError("the simulator does not model credit insurance (the backtest ledger has none)",
                              "engine")
        if not self._command(case, cmd.Tick(command_id=uuid4(), actor=SYSTEM_ACTOR)):
            self._schedule(case, self.now + IDLE_GUARD)

    def _record(self, case: _Case, notice, delivered: bool, withdrawn: bool, error: str = "") -> None:
        self._command(case, cmd.RecordReminder(
            command_id=uuid4(), actor=SYSTEM_ACTOR, seq=notice.seq, level=notice.level,
            message_id=f"<sim-{case.invoice_id}-n{notice.seq}>", recipient=case.state.customer.email,
            delivered=delivered and not withdrawn,
            error="the case closed before it was sent" if withdrawn else error,
            fee=None if withdrawn else notice.fee, withdrawn=withdrawn,
            interest=None if withdrawn else notice.interest))

    # -- a customer's mailbox: one message per gather window ----------------------------------
    def _enqueue(self, case: _Case, notice) -> None:
        box = self.mailboxes[case.customer_id]
        box.pending.append((case, notice))
        if not box.gathering:
            box.gathering = True
            self._at(self.now + self.policy.notices.gather_window, lambda: self._send(case.customer_id))

    def _send(self, customer_id: str) -> None:
        box = self.mailboxes[customer_id]
        batch, box.pending, box.gathering = box.pending, [], False
        live = [c for c, _ in batch if not c.state.closed]
        if live:
            self.messages += 1
        for c, notice in batch:
            c.waiting_mailbox = False
            closed = c.state.closed
            self._record(c, notice, delivered=bool(live), withdrawn=closed,
                         error="" if live else "the case closed before it was sent")
            self._schedule(c)

    # -- a customer's risk grade: the worker's hook -------------------------------------------
    def _history(self, customer_id: str, as_of: date) -> CustomerHistory:
        """As store/customers.py builds it from the tables, from records kept up to date as cases
        change (the invoices that count on ``as_of``: see _Records)."""
        counts = self.case_counts[customer_id].values()
        exposure = self.unpaid[customer_id] + sum(
            (self.cases[i].state.balance.amount for i in self.open_cases[customer_id]), Decimal(0))
        state = self.customers.get(customer_id)
        limit = state.credit_limit if state is not None else None
        return CustomerHistory(customer_id=customer_id, invoices=self.records[customer_id].as_of(as_of),
                               disputes=sum(c[0] for c in counts), broken_promises=sum(c[1] for c in counts),
                               defaulted_plans=sum(c[2] for c in counts), exposure=exposure,
                               credit_limit=limit.amount if limit is not None else None,
                               currency=limit.currency if limit is not None else "USD")

    def _track(self, case: _Case) -> None:
        """Keep the customer's records in step with a case that changed."""
        s, customer = case.state, case.customer_id
        closed = s.closed_at is not None
        self.records[customer].put(InvoiceRecord(
            case.invoice_id, s.due_date, s.closed_at.date() if closed else None, s.status.value if closed else None))
        self.case_counts[customer][case.invoice_id] = (s.disputes_opened, s.promises_broken, s.plans_defaulted)
        if closed:
            self.open_cases[customer].discard(case.invoice_id)
        else:
            self.open_cases[customer].add(case.invoice_id)

    def _rescore(self, customer_id: str, when: datetime, command_id: UUID) -> None:
        state = self.customers.get(customer_id)
        assessment = score(self._history(customer_id, when.date()), when.date(), self.policy.risk)
        command = cu.AssessRisk(command_id=command_id, actor=SYSTEM_ACTOR, customer_id=customer_id,
                                assessment=assessment, imported_grade=self.imported_grade[customer_id])
        new = cu.decide_customer(state, command, when, self.policy)
        if new:
            self.customers[customer_id] = cu.fold_customer(new, state)
            self.customer_events.extend(new)

    def close(self) -> None:
        """Drop the wake-ups still queued past the end: they refer back to the simulator, and
        without them reference counting frees the whole run as soon as it is left."""
        self._queue.clear()

    # -- the report ----------------------------------------------------------------------------
    def results(self) -> dict:
        from app import kpis
        from app.backtest import summarize
        from app.reports import Settlement

        shift, lines = self.shift, self.lines
        counts: Counter = Counter()
        levels: Counter = Counter()
        fees = Decimal(0)
        plan_approvals = 0
        found: list[Settlement] = []
        facts_k: list = []
        closed: list = []
        by_status: Counter = Counter()
        for case in self.cases.values():
            s = case.state
            by_status[s.status.value] += 1
            closed.append(kpis.ClosedCase(str(s.case_id), s.assignee or "unassigned", s.currency,
                                          s.opened_at.date(), s.closed_at.date() if s.closed_at else None,
                                          s.status.value if s.closed_at else None))
            for e in case.events:
                name = type(e).__name__
                counts[name] += 1
                if name == "ReminderSent":
                    levels[str(e.level)] += 1
                elif name in ("LateFeeCharged", "InterestCharged"):
                    fees += e.fee.amount
                    found.append(Settlement(case.invoice_id, e.fee.currency, -e.fee.amount, e.occurred_at.date(), "fee"))
                elif name == "PaymentPlanProposed" and e.requires_approval:
                    plan_approvals += 1
                elif name == "PaymentReceived":
                    found.append(Settlement(case.invoice_id, e.applied.currency, e.applied.amount, e.received_on,
                                            "payment"))
                    facts_k.extend(kpis.payment_facts(str(s.case_id), e))
                elif name in ("DisputeResolved", "WriteOffApproved", "SmallBalanceWrittenOff", "CaseCancelled", "CustomerCreditApplied",
                              "IndemnityReceived", "PaymentReversed", "PromiseKept", "PromiseBroken"):
                    raise DomainError(f"the simulator does not report {name} (the backtest makes none)", "engine")
        for e in self.customer_events:
            counts[type(e).__name__] += 1
        for invoice_id, on in self.ledger_paid.items():
            f = self.facts[invoice_id]
            found.append(Settlement(invoice_id, f.amount.currency, (f.amount - f.paid).amount, on, "payment"))
        invoices = [kpis.KpiInvoice(f.invoice_id, f.amount.currency, f.amount.amount, f.issue_date, f.due_date)
                    for f in self.facts.values() if f.amount.currency == "USD"]
        data = kpis.KpiInputs(invoices, [s for s in found if s.currency == "USD"], [], closed, facts_k)
        return summarize(lines, shift, data, counts, levels, fees, plan_approvals, by_status, self.messages)

    def streams(self) -> dict[str, list[dict]]:
        return {invoice_id: [event_signature(e, self.shift) for e in case.events]
                for invoice_id, case in sorted(self.cases.items())}


def event_signature(event: Event, shift: timedelta) -> dict:
    """What the differential test compares: type, version, time (ledger dates) and amounts."""
    data = event.model_dump(mode="json")
    amounts = {k: v for k, v in sorted(data.items())
               if isinstance(v, dict) and set(v) == {"amount", "currency"}}
    out = {"type": type(event).__name__, "version": event.version,
           "at": (event.occurred_at - shift).isoformat(), **amounts}
    if "level" in data:
        out["level"] = data["level"]
    return out


@cyclic_collector_paused()
def simulate(policy: Policy, rows: list, lines: list, today: date | None = None,
             progress: Callable[[int, int], None] | None = None, streams: bool = False,
             shift_days: int | None = None) -> dict:
    """``shift_days``: the weeks the Temporal run shifted by (default: onto ``today``, as it does)."""
    first = min(line.issue_date for line in lines)
    shift = (timedelta(days=shift_days) if shift_days is not None
             else week_shift(first, today or datetime.now(timezone.utc).date()))
    sim = Simulator(policy, rows, lines, shift)
    sim.play(progress)
    result = sim.results()
    if streams:
        result["streams"] = sim.streams()
    sim.close()
    return result


def load_policy(policy_file: Path) -> Policy:
    from domain.policy import parse_policy

    if not policy_file.is_file():
        raise DomainError(f"{policy_file} does not exist or is not a file", "policy")
    return parse_policy(policy_file.read_text(encoding="utf-8"), str(policy_file))


@cyclic_collector_paused()
def run_simulation(ledger: Path, policy_file: Path, format: str = "standard", customers: int | None = None,
                   customer_ids: list[str] | None = None, streams: bool = False,
                   shift_days: int | None = None) -> dict:
    from app.backtest import expected_counts, ledger_lines
    from app.imports import FORMATS, read_text

    started = time.monotonic()
    if format not in FORMATS:
        raise DomainError(f"{format!r} is not a known format ({', '.join(FORMATS)})", "format")
    policy = load_policy(policy_file)
    rows, lines = ledger_lines(read_text(ledger), format, customers, customer_ids)
    if not lines:
        raise DomainError("the ledger has no invoices for this selection", "ledger")
    result = simulate(policy, rows, lines, streams=streams, shift_days=shift_days)
    result.update({
        "engine": "simulate", "ledger": str(ledger), "policy_file": str(policy_file), "format": format, "policy_version": policy.version,
        "grace_days": policy.grace.days, "expected_from_ledger": expected_counts(lines, policy.grace.days),
        "run_seconds": round(time.monotonic() - started, 2),
    })
    return result


def _number(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
    except ArithmeticError:
        return None


def compare_reports(a: dict, b: dict) -> dict:
    """Two backtests of the same ledger side by side: every compared figure with A, B and B - A
    (cases, notices per level, fees, escalations, approvals, DSO and CEI per quarter)."""
    if (a["invoices"], a["customers"], a["period"]) != (b["invoices"], b["customers"], b["period"]):
        raise DomainError("the two reports are not of the same ledger", "compare")
    figures: list[tuple[str, object, object]] = [
        (key, a[key], b[key]) for key in ("cases_opened", "paid_without_case", "notices_sent", "messages_delivered")]
    for level in sorted(set(a["notices_by_level"]) | set(b["notices_by_level"]), key=int):
        figures.append((f"notices level {level}", a["notices_by_level"].get(level, 0),
                        b["notices_by_level"].get(level, 0)))
    figures += [(key, a[key], b[key]) for key in (
        "fees_charged", "escalations", "escalation_sla_lapses", "approvals_needed", "disputes_opened",
        "disputes_overdue", "risk_grade_changes", "credit_holds")]
    for key in ("dso_standard", "dso_countback", "cei_percent", "average_days_to_collect"):
        figures.append((f"{key} (whole period)", a["kpis"][key], b["kpis"][key]))
    quarters_b = {q["from"]: q for q in b["kpis_by_quarter"]}
    for qa in a["kpis_by_quarter"]:
        qb = quarters_b.get(qa["from"], {})
        start = date.fromisoformat(qa["from"])
        name = f"{start.year} Q{(start.month - 1) // 3 + 1}"
        for key in ("dso_standard", "dso_countback", "cei_percent"):
            figures.append((f"{name} {key}", qa[key], qb.get(key)))
    rows = []
    for figure, va, vb in figures:
        na, nb = _number(va), _number(vb)
        difference = str(nb - na) if na is not None and nb is not None else ("" if va == vb else "differs")
        rows.append({"figure": figure, "a": va, "b": vb, "difference": difference, "differs": va != vb})
    return {
        "invoices": a["invoices"], "customers": a["customers"], "period": a["period"],
        "engine": a.get("engine", "temporal"),
        "a": {"policy": a.get("policy_file", ""), "policy_version": a["policy_version"], "run_seconds": a["run_seconds"]},
        "b": {"policy": b.get("policy_file", ""), "policy_version": b["policy_version"], "run_seconds": b["run_seconds"]},
        "rows": rows, "differences": sum(1 for r in rows if r["differs"]),
        "reports": {"a": a, "b": b},
    }
