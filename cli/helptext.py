"""Command help as a terminal shows it.

Typer (0.29, Rich markup) keeps every single line break of a docstring after its first
paragraph, and inside the first one too in a group's list of commands; help written at 100
columns came out ragged in an 80-column terminal ("... credit note, due" / "date, cancelled").
Each paragraph is reflowed into one line for Rich to wrap at the terminal's width; a paragraph
that is laid out on purpose (Click's ``\\b`` marker, indented lines, a list) is left as written.
It also shows every on/off flag (``--json``, ``--help``) with no ``<bool>`` type beside it: a flag
takes no value, and Typer's type column suggested one.
"""

from __future__ import annotations

import inspect

from typer import Context


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
    command under it, and blank the type shown beside each of their flags."""
    command.help = reflowed(command.help)
    _untyped_flags(command)
    for sub in getattr(command, "commands", {}).values():
        reflow_tree(sub)


def _untyped_flags(command) -> None:
    # The help option is made on first use and kept by the command: making it here (with the
    # default option names, which this CLI keeps) is what lets its type be blanked too.
    for param in [*command.params, command.get_help_option(Context(command))]:
        if getattr(param, "is_bool_flag", False) and param.metavar is None:
            param.metavar = ""
