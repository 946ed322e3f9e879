"""A synthetic historical ledger for the backtest (standard layout with ``settled_date`` and
``disputed``): ``python -m bench.ledger OUT.csv [--invoices N] [--years Y] [--seed S]``.

Customers of four payment habits (prompt, a few days late, slow, erratic), each invoicing
about weekly; every invoice has net-30 terms and is settled after its own draw of delay
(a small share never, within the period), some flagged disputed. Seeded: the same
arguments write the same file.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from pathlib import Path

HEADER = ["invoice_id", "customer_id", "customer_name", "customer_email", "country", "language", "currency",
          "amount", "issue_date", "due_date", "risk_grade", "settled_date", "disputed"]
# habit: (share of customers, mean days after due date, spread, share disputed, share never paid)
HABITS = {
    "prompt": (0.45, -5, 6, 0.01, 0.0),
    "late": (0.30, 4, 8, 0.05, 0.002),
    "slow": (0.18, 20, 15, 0.12, 0.01),
    "erratic": (0.07, 35, 30, 0.25, 0.05),
}
GRADES = {"prompt": "A", "late": "B", "slow": "C", "erratic": "D"}


def generate(path: Path, invoices: int = 100_000, years: int = 2, seed: int = 7,
             start: date = date(2022, 1, 3)) -> dict:
    rng = random.Random(seed)
    days = 365 * years
    customers = max(1, invoices // (days // 7))  # about one invoice a week each
    habits = rng.choices(list(HABITS), weights=[h[0] for h in HABITS.values()], k=customers)
    end = start + timedelta(days=days - 1)
    written = settled = disputed = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(invoices):
            c = n % customers
            habit = habits[c]
            _, mean, spread, p_dispute, p_never = HABITS[habit]
            issue = start + timedelta(days=rng.randrange(days))
            due = issue + timedelta(days=30)
            delay = max(-25, round(rng.gauss(mean, spread)))
            paid_on = due + timedelta(days=delay)
            paid_on = max(paid_on, issue)
            never = rng.random() < p_never or paid_on > end + timedelta(days=60)
            flagged = rng.random() < p_dispute
            out.writerow([f"G{n:07d}", f"C{c:05d}", f"Customer {c}", f"ap{c}@example.test", "US", "en", "USD",
                          f"{rng.uniform(20, 5000):.2f}", issue.isoformat(), due.isoformat(), GRADES[habit],
                          "" if never else paid_on.isoformat(), "yes" if flagged else "no"])
            written += 1
            settled += not never
            disputed += flagged
    return {"path": str(path), "invoices": written, "customers": customers, "settled": settled,
            "disputed": disputed, "from": start.isoformat(), "to": end.isoformat()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(generate(args.out, args.invoices, args.years, args.seed))


if __name__ == "__main__":
    main()
