"""`--help` as a person reads it in a terminal: paragraphs wrap at the terminal's width, not
where the docstring's source lines happened to end (they came out ragged at 80 columns)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli.helptext import reflowed

ROOT = Path(__file__).resolve().parents[2]


def shown_help(*words: str, columns: int) -> list[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run([sys.executable, "starter.py", *words, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.strip(" │") for line in done.stdout.splitlines()]


def test_a_command_s_description_wraps_at_the_terminal_s_width():
    wide = shown_help("invoices", "import", columns=250)
    assert any("A known invoice whose row changed (amount, credit note, due date, cancelled, paid outside the engine"
               in line for line in wide), "\n".join(wide)
    narrow = shown_help("invoices", "import", columns=80)
    description = narrow[:next(i for i, line in enumerate(narrow) if line.startswith("╭"))]
    ragged = [line for line in description if line and not line.startswith("Usage")
              and len(line) < 60 and not line.endswith((".", ")"))]  # a line that ends early, mid-sentence
    assert not ragged, "\n".join(narrow)


def test_a_group_s_list_of_commands_shows_each_summary_as_one_paragraph():
    listed = shown_help("case", columns=250)
    assert any("check it against the SHA-256 recorded when it was sent (exit 1 when the bytes differ)" in line
               for line in listed), "\n".join(listed)


def test_reflowing_joins_the_lines_of_a_paragraph_and_keeps_paragraphs_and_layouts():
    assert reflowed("One line\n    and its end.\n\n    Second\n    paragraph.") == \
        "One line and its end.\n\nSecond paragraph."
    laid_out = "Steps:\n- import\n- sweep"
    assert reflowed(laid_out) == laid_out
    assert reflowed("\b\nkept\nas is") == "\b\nkept\nas is"
    assert reflowed(None) is None


def test_a_flag_shows_no_value_type_and_an_option_keeps_its_type():
    lines = shown_help("case", "list", columns=80)
    flags = [line for line in lines if line.startswith(("--json", "--help"))]
    assert len(flags) == 2 and not any("<bool>" in line for line in flags), "\n".join(lines)
    assert any(line.startswith("--status") and "<str>" in line for line in lines), "\n".join(lines)


def test_a_group_built_alone_reads_as_in_the_whole_tree():
    """A command line naming a group builds that group alone (cli.main._click_command): every
    one of its commands must take the same parameters, and say the same, as in the whole tree."""
    from typer._click.core import Context

    from cli.main import _click_command, _group_in, app

    whole = _click_command(None)
    for name in [g.name for g in app.registered_groups]:
        assert _group_in([name, "--help"]) == name
        alone = _click_command(name)
        assert set(alone.commands) == {name} | {c for c in whole.commands if c not in
                                                {g.name for g in app.registered_groups}}
        for sub, command in whole.commands[name].commands.items():
            twin = alone.commands[name].commands[sub]
            with Context(command, info_name=sub) as one, Context(twin, info_name=sub) as other:
                assert twin.get_help(other) == command.get_help(one), f"{name} {sub}"
    assert _group_in(["pay", "INV-1"]) is None and _group_in([]) is None
