"""Record the histories of representative finished cases for the replay test.

    make histories            # or: .venv/bin/python -m tests.histories.record

Runs each scenario to completion on the time-skipping test server (months pass in
milliseconds) with the real worker, a real SMTP sink and a SQLite event store, and
saves ``await handle.fetch_history()`` of every run as JSON next to this file.
Histories are recorded with the production data converter (pydantic + AES-GCM
payload encryption) under the committed *test-only* key in ``payload-keys``, so
replay also proves that encrypted histories decode.

Re-record only on purpose: the point of the committed files is that a workflow
change which would break cases already running fails ``tests/test_replay.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
KEYS_FILE = HERE / "payload-keys"


def history_keys():
    from app.codec import PayloadKeys

    return PayloadKeys.parse(KEYS_FILE.read_text(encoding="utf-8").strip())


def converter():
    from app.codec import encrypted_converter

    return encrypted_converter(history_keys())


async def _record(out: Path) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from app.context import Context
    from app.mailsink import MailSink
    from app.services import CaseService
    from app.settings import Settings
    from domain.commands import OpenCase
    from domain.decider import case_uuid
    from tests.harness import INVOICES, eventually
    from workflows.messages import WORKFLOW_NAME, CaseInput, case_workflow_id
    from worker import build_worker

    written: list[str] = []
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=converter()
    )
    with tempfile.TemporaryDirectory() as tmp, MailSink(Path(tmp) / "mail") as sink:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/collections.db", smtp_port=sink.port, task_queue="histories",
            policy_path=ROOT / "policies" / "default.toml", users_path=ROOT / "config" / "users.toml",
            data_dir=Path(tmp),
        )
        context = Context(settings, client=env.client)
        service = CaseService(context)
        service.import_invoices(INVOICES)
        people = {n: context.actor(n) for n in ("demo-collector", "demo-supervisor", "demo-manager")}
        collector, supervisor, manager = people.values()

        def events(invoice_id: str) -> list[str]:
            return [type(e).__name__ for e in context.store.load(case_uuid(invoice_id))]

        async def save(name: str, invoice_id: str) -> None:
            handle = env.client.get_workflow_handle(case_workflow_id(invoice_id))
            await handle.result()
            # every run of the chain (continue-as-new), oldest first
            description = await handle.describe()
            run_id = description.raw_description.workflow_execution_info.first_run_id or description.run_id
            runs = []
            while run_id:
                history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                runs.append(history)
                last = history.events[-1]
                attrs = "workflow_execution_continued_as_new_event_attributes"
                run_id = getattr(last, attrs).new_execution_run_id if last.HasField(attrs) else None
            for index, history in enumerate(runs):
                path = out / (f"{name}.json" if len(runs) == 1 else f"{name}.run{index + 1}.json")
                path.write_text(json.dumps(history.to_json_dict(), indent=1, sort_keys=True) + "\n")
                written.append(path.name)

        async with build_worker(env.client, context):
            # 1. the whole ladder, escalation lapses upward, agency referral, paid by the agency
            await service.open_case("INV-1001")
            await env.sleep(timedelta(days=43))
            await eventually(lambda: "EscalationSlaLapsed" in events("INV-1001"))
            await service.decide_escalation("INV-1001", "agency", manager)
            await env.sleep(timedelta(days=20))
            await service.pay("INV-1001", "1240.00", "agency remittance", manager)
            await save("ladder_agency_paid", "INV-1001")

            # 2. dispute after the first reminder, rejected, ladder resumes, then paid in two parts
            await service.open_case("INV-1002")
            await env.sleep(timedelta(days=5))
            await eventually(lambda: "ReminderSent" in events("INV-1002"))
            await service.open_dispute("INV-1002", "quality", collector)
            await env.sleep(timedelta(days=31))
            await service.resolve_dispute("INV-1002", "rejected", collector, note="goods as ordered")
            await env.sleep(timedelta(days=10))
            await service.pay("INV-1002", "200.00", "part 1", collector)
            await service.pay("INV-1002", "250.50", "part 2", collector)
            await save("dispute_rejected_paid", "INV-1002")

            # 3. a plan beyond a collector's authority: approved, accepted, instalments paid
            await service.open_case("INV-2001")
            await service.propose_plan("INV-2001", 4, "P30D", collector)
            approval = next(a for a in service.approvals() if a["invoice_id"] == "INV-2001")
            await service.decide_approval(approval["approval_id"], True, supervisor, "within policy")
            await service.accept_plan("INV-2001", collector)
            for part in ("3086.40", "3086.40", "3086.40", "3086.40"):
                await env.sleep(timedelta(days=30))
                await service.pay("INV-2001", part, "instalment", collector)
            await save("plan_approved_completed", "INV-2001")

            # 4. escalated, supervisor decides write-off, finance manager approves (four eyes)
            await service.open_case("INV-3001")
            await env.sleep(timedelta(days=50))
            await eventually(lambda: "EscalatedToSupervisor" in events("INV-3001"))
            await service.decide_escalation("INV-3001", "write_off", manager)
            approval = next(a for a in service.approvals() if a["invoice_id"] == "INV-3001" and a["kind"] == "write_off")
            await service.decide_approval(approval["approval_id"], True,
                                          manager.model_copy(update={"name": "another-manager"}), "uncollectable")
            await save("write_off_approved", "INV-3001")

        # 5. a long case that continues as new, then is cancelled by a supervisor
        invoice = "INV-9001"
        service.import_invoice_text(
            "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,"
            "due_date,risk_grade\nINV-9001,C-900,Bouncing Ltd,nobody@bounce.test,GB,en,GBP,99.99,2026-01-02,"
            "2026-02-01,D\n", "inline")
        sink.rejected_recipients.add("nobody@bounce.test")
        facts = context.ledger.invoice(invoice)
        opening = OpenCase(command_id=case_uuid("open-" + invoice), actor=collector, case_id=case_uuid(invoice),
                           invoice=facts)
        async with build_worker(env.client, context):
            await env.client.start_workflow(
                WORKFLOW_NAME, CaseInput(case_id=case_uuid(invoice), policy=context.policy(), open=opening,
                                         continue_as_new_after=12),
                id=case_workflow_id(invoice), task_queue=settings.task_queue,
            )
            await env.sleep(timedelta(days=12))
            await eventually(lambda: events(invoice).count("ReminderFailed") == 2)
            await service.assign(invoice, "demo-supervisor", supervisor)
            await service.cancel(invoice, "invoice_voided", supervisor)
            await save("bounced_continued_cancelled", invoice)
        context.db.dispose()
    await env.shutdown()
    return written


async def finished_history(env, workflow_id: str):
    """The history of a workflow once it has finished."""
    handle = env.client.get_workflow_handle(workflow_id)
    await handle.result()
    return await handle.fetch_history()


def write_history(out: Path, name: str, history) -> str:
    path = out / f"{name}.json"
    path.write_text(json.dumps(history.to_json_dict(), indent=1, sort_keys=True) + "\n")
    return path.name


def run_recorder(record) -> None:
    """``python -m tests.histories.record_X [OUT_DIR]``: one recorder writing its own file."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    print(f"recorded {out / asyncio.run(record(out))}")


def main() -> None:
    """``record.py [OUT_DIR]``: into this folder by default."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    names = asyncio.run(_record(out))
    print("\n".join(f"recorded {out / n}" for n in names))


if __name__ == "__main__":
    main()
