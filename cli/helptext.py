"""Command help as a terminal shows it.

Typer (0.29, Rich markup) keeps every single line break of a docstring after its first
paragraph, and inside the first one too in a group's list of commands; help written at 100
columns came out ragged in an 80-column terminal ("... credit note, due" / "date, cancelled").
Each paragraph is reflowed into one line for Rich to wrap at the terminal's width; a paragraph
that is laid out on purpose (Click's ``\\b`` marker, indented lines, a list) is left as written.
"""

from __future__ import annotations

import inspect


def reflowed(text: str | None) -> str | None:
    """``text`` with the single line breaks inside its paragraphs turned into spaces."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if _laid_out(p) else " ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _laid_out(paragraph: str) -> bool:
    lines = paragraph.splitlines()
    return paragraph.startswith("\b") or any(line[:1].isspace() or line.startswith(("- ", "* ")) for line in lines)


def reflow_tree(command) -> None:
    """Reflow the help of ``command`` (a Click command, as Typer builds it) and of every
    command under it."""
    command.help = reflowed(command.help)
    for sub in getattr(command, "commands", {}).values():
        reflow_tree(sub)
