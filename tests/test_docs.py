"""Every command and option that README.md and docs/*.md show exists in the CLI.

The docs write synopses (`pay INVOICE_ID AMOUNT --reference REF [--payment-id ID]`): each
command path must resolve to a real command and each `--option` must be one of its options.
Long-running examples (`make demo`, `make bench`) are not run here; `make test` runs itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _cli():
    from cli.main import app

    return typer.main.get_command(app)


def _fenced_commands(text: str) -> list[str]:
    """Lines of fenced blocks that run the CLI, with continuation lines joined."""
    found, inside, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        match = re.match(r"(?:\.venv/bin/)?(?:python starter\.py|collections) (.*)", line)
        if match:
            found.append(match.group(1).split("  #")[0])
    return found


def _table_commands(text: str) -> list[str]:
    """The synopses in the first column of the README's command table."""
    start = text.index("| Command | What it does |")
    rows = text[start:].split("\n\n")[0].splitlines()[2:]
    return [span for row in rows for span in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def _synopses() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        lines = _fenced_commands(text) + (_table_commands(text) if doc.name == "README.md" else [])
        out += [(doc.name, line) for line in lines]
    return out


def _expand(synopsis: str) -> list[list[str]]:
    """Command paths a synopsis names: `report aging|dso` is two, `place\\|release` too."""
    words = synopsis.replace("\\|", "|").split()
    paths: list[list[str]] = [[]]
    for word in words:
        if not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", word):
            break
        paths = [p + [alt] for p in paths for alt in word.split("|")]
    return paths


SYNOPSES = _synopses()


def test_the_docs_show_commands():
    assert len(SYNOPSES) > 40


@pytest.mark.parametrize(("doc", "synopsis"), SYNOPSES, ids=[f"{d}:{s[:40]}" for d, s in SYNOPSES])
def test_each_documented_command_and_option_exists(doc, synopsis):
    if synopsis.startswith("python "):  # another entry point of the project (`python worker.py`)
        assert (ROOT / synopsis.split()[1]).is_file(), f"{doc}: `{synopsis}`: no such file"
        return
    root = _cli()
    options = set(re.findall(r"(--[a-z][a-z-]*)", synopsis))
    for path in _expand(synopsis):
        command = root
        for name in path:
            if name not in getattr(command, "commands", {}):
                break  # the rest are arguments (`--decision plan`, `--outcome upheld`)
            command = command.commands[name]
        assert command is not root, f"{doc}: `{synopsis}` names no command"
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        missing = sorted(options - known - {"--help"})
        assert not missing, f"{doc}: `{synopsis}`: {' '.join(path)} has no option {', '.join(missing)}"
