"""Record the history of a case assigned to a factor with recourse, for the replay test.

    .venv/bin/python -m tests.histories.record_financing [OUT_DIR]

The invoice is assigned to the policy's factor (update ``assign_to_factor``), its notices carry
the factor's instructions, the ladder runs out and the default is reported to the factor
(activity ``notify_factor``), the factor hands the invoice back (update ``factor_outcome``) and
the customer pays. Same recorder settings as record.py (time-skipping server, production
converter under the test-only key); it writes only its own file.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.histories.record import BIN, ROOT, converter, finished_history, run_recorder, write_history

NAME = "factored_recourse_default_paid"
HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


async def _record(out: Path) -> str:
    from app.context import Context
    from app.financing import FinancingService
    from app.mailsink import MailSink
    from app.services import CaseService
    from app.settings import Settings
    from domain.decider import case_uuid
    from tests.harness import eventually
    from workflows.messages import case_workflow_id
    from worker import build_worker

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=converter())
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.toml"
        policy.write_text((ROOT / "tests" / "data" / "default-anytime.toml").read_text().replace(
            'version = "test-default-anytime-1"', 'version = "test-early-cash-history"')
            + "\n" + (ROOT / "tests" / "data" / "early-cash.toml").read_text())
        settings = Settings(
            database_url=f"sqlite:///{tmp}/collections.db", smtp_port=0, task_queue="histories-financing",
            policy_path=policy, users_path=ROOT / "config" / "users.toml", data_dir=Path(tmp),
        )
        sink = MailSink(Path(tmp) / "mail").start()
        settings.smtp_port = sink.port
        context = Context(settings, client=env.client)
        service = CaseService(context)
        due = (await env.get_current_time()).date() - timedelta(days=5)
        service.import_invoice_text(
            f"{HEADER}\nFAC-1,C-FAC,Factored Buyer Ltd,ap@buyer.test,US,en,USD,1000.00,"
            f"{due - timedelta(days=30)},{due},B\n", "inline")
        supervisor, collector = context.actor("demo-supervisor"), context.actor("demo-collector")
        financing = FinancingService(service)

        def events() -> list[str]:
            return [type(e).__name__ for e in context.store.load(case_uuid("FAC-1"))]

        async with build_worker(env.client, context):
            await service.open_case("FAC-1")
            await financing.assign(["FAC-1"], "northbank", "yes", "0.9", "0.015", "agreement 7", supervisor,
                                   assignment_id="FA-H")
            await env.sleep(timedelta(days=40))
            await eventually(lambda: "FactorNotified" in events(), timeout=60)
            await financing.outcome("FAC-1", "defaulted", "northbank statement 12", supervisor)
            balance = context.store.state(case_uuid("FAC-1")).balance
            await service.pay("FAC-1", str(balance.amount), "bank", collector, payment_id="PAY-H")
            history = await finished_history(env, case_workflow_id("FAC-1"))
        sink.stop()
        context.db.dispose()
    await env.shutdown()
    return write_history(out, NAME, history)


def main() -> None:
    run_recorder(_record)


if __name__ == "__main__":
    main()
