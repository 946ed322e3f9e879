"""Reports against hand-computed numbers, on SQLite and PostgreSQL.

The ledger (as of 2026-03-31, USD unless noted):

  I1 1000.00 issued 01-01 due 01-31: case; 400.00 paid 03-02        -> 600.00 open, 59 days late
  I2  500.00 issued 02-15 due 03-17: no case; 100.00 paid 03-25     -> 400.00 open, 14 days late
  I3  300.00 issued 03-20 due 04-19: no case                        -> 300.00 not yet due
  I4 2000.00 issued 2025-11-01 due 2025-12-01: case written off 02-10 -> nothing open
  I5  700.00 issued 2025-10-01 due 2025-10-31: no case              -> 700.00, 151 days late
  I6  250.00 EUR issued 01-10 due 02-09: no case                    -> 250.00 EUR, 50 days late
  I7  100.00 issued 03-01 due 03-31, grade D: case; write-off of 100.00 requested 03-05, pending
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from app import reports
from app.imports import parse_invoices
from domain import commands as cmd
from domain.decider import case_uuid
from domain.money import Money
from domain.priority import amount_at_risk, days_overdue, priority
from tests.domain.scenario import COLLECTOR, MANAGER, Case, usd

LEDGER = """invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade
I1,C1,Acme GmbH,ap@acme.test,DE,en,USD,1000.00,2026-01-01,2026-01-31,B
I2,C1,Acme GmbH,ap@acme.test,DE,en,USD,500.00,2026-02-15,2026-03-17,B
I3,C2,Globex,ar@globex.test,US,en,USD,300.00,2026-03-20,2026-04-19,B
I4,C3,Initech,ap@initech.test,US,en,USD,2000.00,2025-11-01,2025-12-01,B
I5,C3,Initech,ap@initech.test,US,en,USD,700.00,2025-10-01,2025-10-31,B
I6,C1,Acme GmbH,ap@acme.test,DE,en,EUR,250.00,2026-01-10,2026-02-09,B
I7,C2,Globex,ar@globex.test,US,en,USD,100.00,2026-03-01,2026-03-31,D
"""
AS_OF = date(2026, 3, 31)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def ctx(make_context, database_url):
    context = make_context(database_url)
    context.ledger.import_invoices(parse_invoices(LEDGER))

    def record(invoice_id: str, steps) -> None:
        case = Case().at(at(1, 5) if invoice_id == "I4" else at(2, 5) if invoice_id == "I1" else at(3, 4))
        case.open(context.ledger.invoice(invoice_id))
        steps(case)
        context.store.append(case_uuid(invoice_id), 0, case.events)

    record("I1", lambda c: c.at(at(3, 2)).pay("400.00"))

    def write_off_i4(c: Case) -> None:
        requested = c.at(at(2, 10)).when(cmd.RequestWriteOff, amount=usd("2000.00"), reason="insolvency")
        c.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested[0].approval_id, approve=True)

    record("I4", write_off_i4)
    record("I7", lambda c: c.at(at(3, 5)).when(cmd.RequestWriteOff, actor=COLLECTOR, amount=usd("100.00"), reason="small_balance"))
    context.ledger.record_payment("I2", "pay-i2", Money.of("100.00", "USD"), date(2026, 3, 25), "remittance")
    return context


def test_aging_buckets(ctx):
    aged = reports.aging(reports.open_receivables(ctx), AS_OF)
    assert aged["USD"] == {"current": Decimal("400.00"), "1-30": Decimal("400.00"), "31-60": Decimal("600.00"),
                           "61-90": Decimal(0), "90+": Decimal("700.00")}
    assert aged["EUR"] == {"current": 0, "1-30": 0, "31-60": Decimal("250.00"), "61-90": 0, "90+": 0}


@pytest.mark.parametrize("days,bucket", [(-3, "current"), (0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"),
                                         (60, "31-60"), (61, "61-90"), (90, "61-90"), (91, "90+")])
def test_bucket_edges(days, bucket):
    assert reports.aging_bucket(days) == bucket


def test_cases_by_status_and_approvals_against_sla(ctx):
    counts = reports.cases_by_status(ctx)
    assert {k: v for k, v in counts.items() if v} == {"open": 1, "written_off": 1, "awaiting_approval": 1}
    assert set(counts) >= {"paid", "disputed", "escalated"}  # every status is listed
    # I7's write-off was requested 03-05 10:00 with a two-day SLA
    assert reports.approvals_sla(ctx, at(3, 6))["write_off"] == {"waiting": 1, "overdue": 0}
    late = reports.approvals_sla(ctx, at(4, 1))
    assert late == {"escalation": {"waiting": 0, "overdue": 0}, "plan": {"waiting": 0, "overdue": 0},
                    "write_off": {"waiting": 1, "overdue": 1}}


def test_collected_per_week(ctx):
    weeks = reports.collected_per_week(reports.settlements(ctx), "USD", AS_OF)
    assert len(weeks) == 12 and weeks[0][0] == date(2026, 1, 12) and weeks[-1][0] == date(2026, 3, 30)
    assert {w: a for w, a in weeks if a} == {date(2026, 3, 2): Decimal("400.00"), date(2026, 3, 23): Decimal("100.00")}
    assert all(a == 0 for _, a in reports.collected_per_week(reports.settlements(ctx), "EUR", AS_OF))


def test_dso_trend(ctx):
    trend = reports.dso_trend(reports.ledger_invoices(ctx), reports.settlements(ctx), "USD", AS_OF, points=3)
    # 01-31: 3700 open / 1000 invoiced in 90 days; 02-28: 2200 / 1500; 03-31: 2100 / 1900
    assert trend == [(date(2026, 1, 31), Decimal("333.0")), (date(2026, 2, 28), Decimal("132.0")),
                     (date(2026, 3, 31), Decimal("99.5"))]


def test_dso_without_sales_is_a_gap_and_fees_add_to_what_is_owed():
    invoices = [reports.Invoice("X", "USD", Decimal("100"), date(2026, 1, 1))]
    fee = reports.Settlement("X", "USD", Decimal("-10"), date(2026, 1, 5), "fee")
    paid = reports.Settlement("X", "USD", Decimal("30"), date(2026, 1, 6), "payment")
    assert reports.outstanding_on(invoices, [fee, paid], date(2026, 1, 5)) == Decimal("110")
    assert reports.outstanding_on(invoices, [fee, paid], date(2026, 1, 31)) == Decimal("80")
    assert reports.dso_on(invoices, [fee, paid], date(2026, 1, 31), 31) == Decimal("24.8")  # 80 / 100 * 31
    assert reports.dso_on(invoices, [], date(2026, 9, 30)) is None
    assert reports.trend_dates(date(2026, 2, 10), 3) == [date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 10)]


def test_worklist_priority_and_filters(ctx):
    listed = reports.worklist(ctx, AS_OF)
    # I1: 600.00 at risk x 59 days x grade B (2); I7: 100.00 x 1 (due today) x grade D (4); I4 is closed
    assert [(i["invoice_id"], Decimal(i["priority"])) for i in listed["items"]] == [("I1", 70800), ("I7", 400)]
    assert listed["total"] == 2  # unfiltered, counted from the exposure rows
    assert listed["items"][0]["days_overdue"] == 59 and listed["items"][0]["amount_at_risk"] == "600.00"
    assert [i["invoice_id"] for i in reports.worklist(ctx, AS_OF, risk_grade="D")["items"]] == ["I7"]
    assert [i["invoice_id"] for i in reports.worklist(ctx, AS_OF, q="ACME")["items"]] == ["I1"]
    assert [i["invoice_id"] for i in reports.worklist(ctx, AS_OF, status="awaiting_approval")["items"]] == ["I7"]
    assert reports.worklist(ctx, AS_OF, assignee="unassigned")["total"] == 2
    assert reports.worklist(ctx, AS_OF, currency="eur")["total"] == 0


def test_dashboard_is_json_ready_and_checks_the_currency(ctx):
    board = reports.dashboard(ctx, now=at(4, 1), as_of=AS_OF)
    assert board["currency"] == "USD" and board["currencies"] == ["USD", "EUR"]
    assert board["aging"] == {"current": "400.00", "1-30": "400.00", "31-60": "600.00", "61-90": "0.00", "90+": "700.00"}
    assert board["dso"][-1] == {"date": "2026-03-31", "days": "99.5"}
    assert reports.dashboard(ctx, "eur", as_of=AS_OF)["aging"]["31-60"] == "250.00"
    with pytest.raises(Exception, match="unknown currency"):
        reports.dashboard(ctx, "XYZ")


def test_priority_rules():
    assert days_overdue(date(2026, 3, 1), date(2026, 3, 31)) == 30
    assert days_overdue(date(2026, 4, 1), date(2026, 3, 31)) == 0
    assert amount_at_risk(Decimal("500"), Decimal("200")) == Decimal("300")
    assert amount_at_risk(Decimal("100"), Decimal("150")) == 0
    assert priority(Decimal("300"), 10, "C") == Decimal("9000")
    assert priority(Decimal("300"), 0, "A") == Decimal("300")  # not yet due counts one day
