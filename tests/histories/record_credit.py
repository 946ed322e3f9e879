"""Record the history of an insured case that takes every credit-risk step, for the replay test.

    .venv/bin/python -m tests.histories.record_credit [OUT_DIR]

The insurer is notified (activity ``notify_insurer``), the claim is filed, customer credit
is applied (update ``apply_credit``), the indemnity is recorded (update ``record_indemnity``)
and the rest is written off on an escalation decision. Same recorder settings as record.py
(time-skipping server, production converter under the test-only key); it writes only its
own file, so the histories recorded before it stay as they are.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.histories.record import BIN, ROOT, converter, finished_history, run_recorder, write_history

NAME = "insured_credit_indemnity_written_off"
HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


async def _record(out: Path) -> str:
    from app.context import Context
    from app.credit import CreditService
    from app.insurance import InsuranceService
    from app.mailsink import MailSink
    from app.services import CaseService
    from app.settings import Settings
    from domain.decider import case_uuid
    from tests.harness import eventually
    from workflows.messages import case_workflow_id
    from worker import build_worker

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=converter())
    with tempfile.TemporaryDirectory() as tmp, MailSink(Path(tmp) / "mail"):
        settings = Settings(
            database_url=f"sqlite:///{tmp}/collections.db", smtp_port=0, task_queue="histories-credit",
            policy_path=ROOT / "tests" / "data" / "default-anytime.toml", users_path=ROOT / "config" / "users.toml",
            data_dir=Path(tmp),
        )
        sink = MailSink(Path(tmp) / "mail2").start()
        settings.smtp_port = sink.port
        context = Context(settings, client=env.client)
        service = CaseService(context)
        due = (await env.get_current_time()).date() - timedelta(days=5)
        service.import_invoice_text(
            f"{HEADER}\nINS-1,C-INS,Insured Buyer Ltd,ap@buyer.test,US,en,USD,1000.00,"
            f"{due - timedelta(days=30)},{due},B\n", "inline")
        insurance = InsuranceService(service)
        insurance.add_policy("POL-H", "ATR", "Insurer", "claims@insurer.test", "P60D", "P45D", "P30D", "90")
        insurance.cover("INS-1", "POL-H")
        collector, manager = context.actor("demo-collector"), context.actor("demo-manager")

        def events() -> list[str]:
            return [type(e).__name__ for e in context.store.load(case_uuid("INS-1"))]

        async with build_worker(env.client, context):
            await service.open_case("INS-1")
            await env.sleep(timedelta(days=27))
            await eventually(lambda: "InsurerNotified" in events())
            await env.sleep(timedelta(days=31))
            await eventually(lambda: "ClaimFiled" in events() and "EscalatedToSupervisor" in events())
            credit = CreditService(service)
            await credit.prepay("C-INS", "100.00", "USD", collector, payment_id="PRE-H")
            await credit.apply("INS-1", "100.00", collector)
            expected = context.store.state(case_uuid("INS-1")).insurance.expected_indemnity
            await insurance.record_indemnity("INS-1", str(expected.amount), manager, "ATR-H")
            await service.decide_escalation("INS-1", "write_off", manager)
            approval = next(a for a in service.approvals() if a["invoice_id"] == "INS-1" and a["kind"] == "write_off")
            await service.decide_approval(approval["approval_id"], True,
                                          manager.model_copy(update={"name": "another-manager"}), "uncollectable")
            history = await finished_history(env, case_workflow_id("INS-1"))
        sink.stop()
        context.db.dispose()
    await env.shutdown()
    return write_history(out, NAME, history)


def main() -> None:
    run_recorder(_record)


if __name__ == "__main__":
    main()
