"""The `up --demo` scenario: five overdue invoices on the demo policy (seconds, not days).

* DEMO-1001 pays in two parts and closes as paid;
* DEMO-1002 disputes the invoice; the collector upholds it with a credit for the whole
  invoice, which a supervisor approves (four eyes): the case is resolved;
* DEMO-1003 runs the whole ladder, is escalated, a supervisor decides to write it
  off and the finance manager approves (four eyes): closed as written off;
* DEMO-1004 runs the whole ladder and is escalated: left for you to decide;
* DEMO-1005 is a Chinese customer: reminders in Chinese, then a promise to pay.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from datetime import datetime, timedelta, timezone

from rich.console import Console

from app.context import Context
from app.mailsink import MailSink
from app.services import CaseService
from app.settings import PROJECT_DIR
from domain.decider import case_uuid
from domain.state import CaseState

console = Console(soft_wrap=True)  # long lines stay whole when piped
SAMPLES = PROJECT_DIR / "samples" / "invoices.csv"


def _state(service: CaseService, invoice_id: str) -> CaseState | None:
    return service.ctx.store.state(case_uuid(invoice_id))


async def _until(service: CaseService, invoice_id: str, predicate, timeout: float = 90.0) -> CaseState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = _state(service, invoice_id)
        if state is not None and predicate(state):
            return state
        if loop.time() > deadline:
            raise TimeoutError(f"{invoice_id} did not reach the expected state in {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def _tail(service: CaseService) -> None:
    """Print every event as it is recorded: the demo's live log."""
    position = 0
    names = {}
    while True:
        for record in await asyncio.to_thread(lambda: list(service.ctx.store.read_all(after=position))):
            position = record.position
            event = record.event
            if type(event).__name__ == "CaseOpened":
                names[record.stream_id] = event.invoice_id
            console.print(f"  [dim]{event.occurred_at:%H:%M:%S}[/dim] {names.get(record.stream_id, getattr(event, 'subject', '?')):10} "
                          f"[cyan]{type(event).__name__}[/cyan] by {event.actor}{_details(event.data())}",
                          highlight=False, soft_wrap=True)
        await asyncio.sleep(0.5)


def _details(data: dict) -> str:
    """The few facts worth a glance, money as '2,440.00 USD'."""
    shown = []
    for key in ("step", "amount", "fee", "reason", "decision", "outcome", "tier", "recipient"):
        value = data.get(key)
        if isinstance(value, dict) and "amount" in value:
            value = f"{value['amount']} {value['currency']}"
        if value not in (None, ""):
            shown.append(f"{key}={value}")
    return f"  {', '.join(shown)}" if shown else ""


async def play_demo(context: Context, sink: MailSink, console_url: str | None = None,
                    tokens: dict[str, str] | None = None) -> bool:
    service = CaseService(context)
    tail = asyncio.create_task(_tail(service))
    try:
        collector = context.actor("demo-collector")
        supervisor = context.actor("demo-supervisor")
        imported = service.import_invoices(SAMPLES, actor=supervisor, reason="demo sample invoices")
        console.print(f"demo: imported {imported['invoices_added']} sample invoices from {SAMPLES.name}")
        manager = context.actor("demo-manager")
        for invoice_id in ("DEMO-1001", "DEMO-1002", "DEMO-1003", "DEMO-1004", "DEMO-1005"):
            await service.open_case(invoice_id, "overdue", collector)
        await service.pay("DEMO-1001", "200.00", "bank transfer 1/2", collector, payment_id="demo-pay-1")
        await service.open_dispute("DEMO-1002", "pricing", collector)
        await _until(service, "DEMO-1005", lambda s: s.level >= 1)
        promised = (datetime.now(timezone.utc) + timedelta(days=7)).date().isoformat()
        await service.promise("DEMO-1005", "12345.60", promised, collector)
        await _until(service, "DEMO-1001", lambda s: s.level >= 1)
        await service.pay("DEMO-1001", "1000.00", "bank transfer 2/2", collector, payment_id="demo-pay-2")
        # the whole invoice as a credit is above one person's threshold: the manager approves it
        credit = await service.resolve_dispute("DEMO-1002", "upheld", collector, note="price list error confirmed")
        approval = next(a for a in service.approvals("pending") if a["case_id"] == credit["case_id"])
        await service.decide_approval(approval["approval_id"], True, supervisor, "price list error confirmed")
        await _until(service, "DEMO-1003", lambda s: s.escalation_pending)
        console.print("demo: DEMO-1003 escalated; demo-supervisor decides to write it off, demo-manager approves")
        reply = await service.decide_escalation("DEMO-1003", "write_off", supervisor, note="customer insolvent")
        approval = next(a for a in service.approvals("pending") if a["case_id"] == reply["case_id"])
        await service.decide_approval(approval["approval_id"], True, manager, "customer insolvent")
        await _until(service, "DEMO-1004", lambda s: s.escalation_pending)
        await asyncio.sleep(1.0)
        _summary(service, sink, console_url, tokens or {})
        return True
    except Exception as error:  # the demo reports, the stack keeps running
        console.print(f"[red]demo failed:[/red] {error}")
        return False
    finally:
        tail.cancel()


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (what a person types)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _summary(service: CaseService, sink: MailSink, console_url: str | None, tokens: dict[str, str]) -> None:
    console.print("\n[bold]demo complete[/bold]")
    for row in service.list():
        console.print(f"  {row['invoice_id']:10} {row['status']:12} balance {row['balance']:>9} {row['currency']}  "
                      f"waiting for: {row['waiting_for']}")
    console.print(f"  {len(sink.messages)} e-mail(s) delivered to the sink, saved in {sink.directory}/")
    if console_url:
        console.print(f"\nIn the browser: open {console_url}/console/, sign in with the demo-supervisor token "
                      "listed below, open Approvals and decide the DEMO-1004 escalation.", highlight=False)
    # Commands that change anything act as the user of their token: each line carries its own.
    as_user = lambda name: f"COLLECTIONS_TOKEN={tokens.get(name, '<token of ' + name + '>')} "  # noqa: E731
    settings = service.ctx.settings
    cli = _shown_path(Path(sys.executable).with_name("collections"))
    console.print(
        "\nTry it yourself in another terminal (same directory):\n"
        # the stack's own Temporal and data: another terminal reaches them only through these
        f"  export TEMPORAL_ADDRESS={settings.temporal_address}\n"
        f"  export COLLECTIONS_DATA_DIR={_shown_path(settings.data_dir)}\n"
        f"  export COLLECTIONS_USERS={settings.users_path}\n"
        # the demo's worker runs the demo policy (seconds): a case opened by hand must be pinned to it too
        f"  export COLLECTIONS_POLICY={_shown_path(settings.policy_path)}\n"
        f"  {cli} approvals list\n"
        f"  {cli} case show DEMO-1004\n"
        f"  {as_user('demo-supervisor')}{cli} escalation decide DEMO-1004 --decision plan\n"
        f"  {as_user('demo-collector')}{cli} plan propose DEMO-1004 --instalments 3 --every PT30S\n"
        f"  {as_user('demo-collector')}{cli} plan accept DEMO-1004\n",
        highlight=False, soft_wrap=True,
    )
