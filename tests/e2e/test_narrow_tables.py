"""CLI tables stay readable in a narrow terminal or a pipe: never a header cut to `approv…`."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cli import main as cli

ROWS = [{"approval_id": "5f0c2a9e-1b7d-4c57-9a43-0b8f6c1d2e3f", "kind": "write_off", "invoice_id": "INV-2026-000123",
         "amount": "12345.67", "currency": "EUR", "requested_by": "demo-collector", "tier": "supervisor",
         "sla_due_at": "2026-12-05T10:00:00+00:00", "status": "pending"}]


@pytest.mark.parametrize("width", [40, 60, 80, 200])
def test_approvals_table_at_any_width(monkeypatch, width):
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=width, color_system=None))
    cli.show_approvals(ROWS)
    text = out.getvalue()
    assert "…" not in text
    for header in ("approval id", "requested by", "SLA due"):
        assert header in text or header.split()[0] in text
    assert ROWS[0]["approval_id"] in text  # the id a user copies is whole, on one line
    if width >= 60:  # narrower, a 36-character id runs past the edge (the terminal wraps it, whole)
        assert max(len(line) for line in text.splitlines()) <= width
