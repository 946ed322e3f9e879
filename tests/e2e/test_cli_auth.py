"""The CLI authenticates: a command that changes anything acts as the user of the API token
in COLLECTIONS_TOKEN (or --token), under the same role matrix as the API; `--as` cannot
name someone else. Driven as a person would: `starter.py` in its own process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.test_cli import ROOT, running_stack
from tests.harness import INVOICES, token_for


def run(cli, *args: str, token: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in cli.env.items() if k not in ("COLLECTIONS_TOKEN", "COLLECTIONS_USER")}
    if token is not None:
        env["COLLECTIONS_TOKEN"] = token
    return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], env=env, cwd=cli.cwd,
                          capture_output=True, text=True, timeout=120)


def refused(done: subprocess.CompletedProcess, match: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and match in lines[0], (done.returncode, done.stderr)


def test_commands_act_as_the_user_of_their_token(dev_env, tmp_path, smtp, sqlite_url):
    with running_stack(dev_env, tmp_path, smtp, sqlite_url) as cli:
        users = cli.env["COLLECTIONS_USERS"]
        collector, supervisor = token_for(users, []), token_for(users, ["--as", "demo-supervisor"])
        refused(run(cli, "invoices", "import", str(INVOICES), token=collector), "may invoices.import")
        assert run(cli, "invoices", "import", str(INVOICES), token=supervisor).returncode == 0
        case_id = cli.json("case", "open", "INV-1001")["case_id"]
        people = lambda: [e for e in cli.json("case", "show", case_id)["events"] if e["actor"] != "system"]  # noqa: E731
        before = people()  # reminders go on meanwhile (the fast policy): what people did must not change

        refused(run(cli, "pay", "INV-1001", "10", "--reference", "r", token=None), "COLLECTIONS_TOKEN")
        refused(run(cli, "pay", "INV-1001", "10", "--reference", "r", token="ce_forged"), "not a valid token")
        refused(run(cli, "pay", "INV-1001", "10", "--reference", "r", "--as", "demo-supervisor", token=collector),
                "does not match")
        refused(run(cli, "case", "cancel", case_id, "--reason", "invoice_voided", token=collector),
                "only a supervisor or finance_manager may cases.cancel (demo-collector is a collector)")
        refused(run(cli, "payments", "reverse", "any", "--reason", "bounced", token=collector), "may payments.reverse (demo-collector is a collector)")
        assert people() == before  # nothing changed

        # reads need no token; a command with a token acts as its user, --token works like the variable
        assert run(cli, "case", "list", "--json", token=None).returncode == 0
        paid = run(cli, "--token", supervisor, "pay", "INV-1001", "10", "--reference", "r", "--json", token=None)
        assert paid.returncode == 0, paid.stderr
        # by type, not last: the fast policy escalates the case on its own meanwhile (a full run saw that)
        [payment] = [e for e in cli.json("case", "show", case_id)["events"] if e["type"] == "PaymentReceived"]
        assert payment["actor"] == "demo-supervisor", payment

        # a collector upholding a dispute for the whole invoice cannot credit it alone
        run(cli, "dispute", "open", case_id, "--reason", "pricing", token=collector)
        upheld = run(cli, "dispute", "resolve", case_id, "--outcome", "upheld", "--json", token=collector)
        assert json.loads(upheld.stdout)["status"] == "awaiting_approval", upheld.stderr
        credit = next(a for a in cli.json("approvals", "list") if a["kind"] == "credit")
        refused(run(cli, "approvals", "approve", credit["approval_id"], "--reason", "ok", token=collector),
                "may approvals.approve")
        refused(run(cli, "approvals", "approve", credit["approval_id"], token=supervisor), "--reason")

        # 9,999.000 KWD is 32,496.75 USD at the policy's pinned rate: beyond a 10,000 USD supervisor,
        # who is refused (exit 2, one line, nothing recorded); the finance manager may approve it
        manager = token_for(users, ["--as", "demo-manager"])
        ledger = tmp_path / "kwd.csv"
        ledger.write_text(INVOICES.read_text().splitlines()[0] + "\n"
                          "KW-1,C-KW,Kuwait Trading KSC,ap@kw.test,KW,en,KWD,9999.000,2026-09-01,2026-10-01,B\n")
        assert run(cli, "invoices", "import", str(ledger), token=supervisor).returncode == 0
        cli.json("case", "open", "KW-1")
        asked = run(cli, "write-off", "request", "KW-1", "--amount", "9999.000", "--reason", "insolvency", "--json",
                    token=collector)
        assert asked.returncode == 0 and json.loads(asked.stdout)["status"] == "awaiting_approval", asked.stderr
        approval = next(a for a in cli.json("approvals", "list")
                        if a["invoice_id"] == "KW-1" and a["kind"] == "write_off")
        before = cli.json("case", "show", "KW-1")["events"]

        refused(run(cli, "approvals", "approve", approval["approval_id"], "--reason", "ok", token=supervisor),
                "9999.000 KWD (= 32496.75 USD at 3.25) exceeds demo-supervisor's write-off authority (10000 USD)")
        assert [e for e in cli.json("case", "show", "KW-1")["events"] if e["actor"] != "system"] == \
            [e for e in before if e["actor"] != "system"]

        done = run(cli, "approvals", "approve", approval["approval_id"], "--reason", "insolvent", "--json",
                   token=manager)
        assert done.returncode == 0 and json.loads(done.stdout)["status"] == "written_off", done.stderr
        approved = next(e for e in cli.json("case", "show", "KW-1")["events"] if e["type"] == "WriteOffApproved")
        assert approved["actor"] == "demo-manager" and approved["data"]["rate"] == "3.25", approved

        # credits split into pieces add up: EUR 60.00 (64.80 USD) alone, a second EUR 60.00 would make
        # 129.60 USD alone, above the policy's 100 USD: it waits for a second person
        split = cli.json("case", "open", "INV-1002")["case_id"]
        for reason, recorded in (("pricing", "DisputeResolved"), ("quality", "ReductionRequested")):
            assert run(cli, "dispute", "open", split, "--reason", reason, token=collector).returncode == 0
            done = run(cli, "dispute", "resolve", split, "--outcome", "upheld", "--credit", "60.00", "--json",
                       token=collector)
            assert done.returncode == 0, done.stderr
            assert [e["type"] for e in json.loads(done.stdout)["events"]] == [recorded], done.stdout
        # (the fast policy escalates the case on its own meanwhile: look for the credit among its items)
        asked = [a for a in cli.json("approvals", "list") if a["invoice_id"] == "INV-1002" and a["kind"] == "credit"]
        assert len(asked) == 1, asked
        assert asked[0]["amount"] == "60.00" and asked[0]["requested_by"] == "demo-collector", asked
        assert asked[0]["reduced_alone"] == "60.00", asked  # the first piece, credited alone, counted
        table = run(cli, "approvals", "list", token=None)
        assert table.returncode == 0 and "(+60.00 alone before)" in " ".join(table.stdout.split()), table.stdout


def test_every_cli_command_is_in_the_one_table():
    """A new command cannot slip past authorization: it maps to an action of the role matrix,
    or is one of the operator's commands on the machine itself."""
    import typer

    from app.authorization import CLI_ACTIONS, OPERATOR_COMMANDS, ROLE_MATRIX
    from cli.main import app

    def paths(command, prefix=()):
        subs = getattr(command, "commands", None)
        if not subs:
            yield " ".join(prefix)
            return
        for name, sub in subs.items():
            yield from paths(sub, (*prefix, name))

    commands = set(paths(typer.main.get_command(app)))
    assert commands - set(CLI_ACTIONS) - OPERATOR_COMMANDS == set()
    assert set(CLI_ACTIONS) - commands == set(), "actions for commands that do not exist"
    assert {action for action, _ in CLI_ACTIONS.values()} <= set(ROLE_MATRIX)

