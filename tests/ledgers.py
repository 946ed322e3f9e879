"""Synthetic ledgers for tests and benchmarks (deterministic)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


def write_ledger(path: Path, total: int, overdue: int, as_of: date, customers: int = 200) -> Path:
    """``total`` invoices; the first ``overdue`` are past due on ``as_of``, the rest not yet due."""
    lines = [HEADER]
    for n in range(total):
        customer = n % customers
        due = as_of - timedelta(days=10 + n % 50) if n < overdue else as_of + timedelta(days=1 + n % 60)
        issue = due - timedelta(days=30)
        amount = f"{100 + (n * 37) % 9000}.{n % 100:02d}"
        lines.append(
            f"INV-{n:07d},CUST-{customer:05d},Customer {customer},ap{customer}@customers.test,US,en,USD,"
            f"{amount},{issue.isoformat()},{due.isoformat()},{'ABCD'[n % 4]}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path
