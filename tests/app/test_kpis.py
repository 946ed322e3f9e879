"""Collection KPIs against hand-computed numbers (the worked example of docs/KPIS.md).

Period: 2026-01-01 to 2026-03-31 (90 days), USD.

  A 1000 issued 2025-12-01 due 12-31: 600 paid 01-20, 400 paid 02-10        -> collected, 71 days
  B 2000 issued 2026-01-15 due 02-14: paid 03-01                            -> collected, 45 days
  C  500 issued 02-01 due 03-03: a 20 late fee 03-10, 520 written off 03-20 (500 principal, 20 fees)
  D 1500 issued 03-10 due 04-09: open (current)
  E  800 issued 03-01 due 03-31: 300 paid 03-15, 500 open (current: due that day)
  F  300 issued 2025-11-01 due 12-01: open, 120 days past due
  G  400 issued 02-20 due 03-22: open, 9 days past due

  receivables at the start (end of 2025-12-31) = A 1000 + F 300 = 1300
  credit sales = B 2000 + C 500 + D 1500 + E 800 + G 400 = 5200
  receivables at the end = D 1500 + E 500 + F 300 + G 400 = 2700; current = D + E = 2000
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app import kpis
from app.kpis import ClosedCase, CollectorEvent, KpiInputs, KpiInvoice, PromiseOutcome
from app.reports import Settlement

D = Decimal
START, END = date(2026, 1, 1), date(2026, 3, 31)


def inv(invoice_id: str, amount: str, issued: date, due: date) -> KpiInvoice:
    return KpiInvoice(invoice_id, "USD", D(amount), issued, due)


INVOICES = [
    inv("A", "1000", date(2025, 12, 1), date(2025, 12, 31)),
    inv("B", "2000", date(2026, 1, 15), date(2026, 2, 14)),
    inv("C", "500", date(2026, 2, 1), date(2026, 3, 3)),
    inv("D", "1500", date(2026, 3, 10), date(2026, 4, 9)),
    inv("E", "800", date(2026, 3, 1), date(2026, 3, 31)),
    inv("F", "300", date(2025, 11, 1), date(2025, 12, 1)),
    inv("G", "400", date(2026, 2, 20), date(2026, 3, 22)),
]
SETTLEMENTS = [
    Settlement("A", "USD", D("600"), date(2026, 1, 20), "payment"),
    Settlement("A", "USD", D("400"), date(2026, 2, 10), "payment"),
    Settlement("B", "USD", D("2000"), date(2026, 3, 1), "payment"),
    Settlement("B", "USD", D("50"), date(2026, 3, 1), "excess"),  # an overpayment: not a settlement
    Settlement("C", "USD", D("-20"), date(2026, 3, 10), "fee", "late_fee"),
    Settlement("C", "USD", D("520"), date(2026, 3, 20), "write_off"),
    Settlement("E", "USD", D("300"), date(2026, 3, 15), "payment"),
]
PROMISES = [PromiseOutcome(date(2026, 1, 10), True), PromiseOutcome(date(2026, 2, 5), False),
            PromiseOutcome(date(2026, 3, 12), True), PromiseOutcome(date(2025, 12, 20), False)]
CASES = [
    ClosedCase("case-a", "cora", "USD", date(2026, 1, 5), date(2026, 2, 10), "paid"),
    ClosedCase("case-b", "cora", "USD", date(2026, 2, 17), date(2026, 3, 1), "paid"),
    ClosedCase("case-c", "sam", "USD", date(2026, 3, 6), date(2026, 3, 20), "written_off"),
    ClosedCase("case-f", "unassigned", "USD", date(2025, 12, 4), None, None),
]
FACTS = [  # collected: cash received; applied: what settled the invoice (docs/KPIS.md)
    CollectorEvent("case-a", date(2026, 1, 20), "collected", D("600"), "USD"),
    CollectorEvent("case-a", date(2026, 1, 20), "applied", D("600"), "USD"),
    CollectorEvent("case-a", date(2026, 2, 10), "collected", D("400"), "USD"),
    CollectorEvent("case-a", date(2026, 2, 10), "applied", D("400"), "USD"),
    CollectorEvent("case-b", date(2026, 3, 1), "collected", D("2050"), "USD"),  # 50 over: customer credit
    CollectorEvent("case-b", date(2026, 3, 1), "applied", D("2000"), "USD"),
    CollectorEvent("case-b", date(2026, 3, 1), "collected", D("99"), "EUR"),  # another currency: not added
    CollectorEvent("case-f", date(2026, 2, 5), "promise_broken"),
    CollectorEvent("case-f", date(2025, 12, 20), "promise_broken"),  # before the period
]


def test_receivables_and_sales():
    assert kpis.receivables(INVOICES, SETTLEMENTS, date(2025, 12, 31)) == D(1300)
    assert kpis.receivables(INVOICES, SETTLEMENTS, END) == D(2700)
    assert kpis.current_receivables(INVOICES, SETTLEMENTS, END) == D(2000)
    assert kpis.credit_sales(INVOICES, START, END) == D(5200)
    assert kpis.aging_on(INVOICES, SETTLEMENTS, END) == {"current": D(2000), "1-30": D(400), "31-60": D(0),
                                                         "61-90": D(0), "90+": D(300)}


def test_dso_standard_and_countback():
    assert kpis.dso_standard(D(2700), D(5200), 90) == D("46.7")  # 2700 / 5200 x 90 = 46.73
    # March: sales 2300 (D, E) < 2700: 31 days, 400 left; February: 400 of 900 sales (C, G) x 28 days = 12.44
    assert kpis.dso_countback(INVOICES, D(2700), END) == D("43.4")
    assert kpis.dso_countback(INVOICES, D(2300), END) == D("31.0")  # exactly March's sales
    assert kpis.dso_countback(INVOICES, D(0), END) == D(0)
    assert kpis.dso_countback(INVOICES, D(10**6), END) is None  # more than two years of sales
    assert kpis.dso_standard(D(100), D(0), 90) is None


def test_cei_turnover_collection_and_write_offs():
    assert kpis.cei(D(1300), D(5200), D(2700), D(2000)) == D("84.4")  # 3800 / 4500
    assert kpis.cei(D(0), D(0), D(0), D(0)) is None
    assert kpis.ar_turnover(D(5200), D(1300), D(2700), 90) == (D("2.60"), D("34.6"))  # 5200 / 2000; 90 / 2.6
    assert kpis.average_days_to_collect(INVOICES, SETTLEMENTS, START, END) == (2, D("58.0"))  # (71 + 45) / 2
    # 520 written off: 500 of principal over the sales (500 / 5200), the 20 fee apart
    assert kpis.write_off_ratio(INVOICES, SETTLEMENTS, D(5200), START, END) == kpis.WrittenOff(
        D(520), D(500), D(20), D("9.6"))
    assert kpis.promise_kept_rate(PROMISES, START, END) == (2, 1, D("66.7"))


def test_a_reversed_payment_settles_nothing_and_a_new_payment_settles_on_its_own_day():
    """docs/KPIS.md: a reversed payment settles nothing. B (2000, issued 01-15) paid 03-01 and
    its cheque bounced 03-05: no longer collected; paid again 03-20: collected, 64 days."""
    bounced = [*SETTLEMENTS, Settlement("B", "USD", D("-2000"), date(2026, 3, 5), "payment")]
    assert "B" not in kpis.settled_days(INVOICES, bounced)
    assert kpis.average_days_to_collect(INVOICES, bounced, START, END) == (1, D("71.0"))  # A alone
    repaid = [*bounced, Settlement("B", "USD", D("2000"), date(2026, 3, 20), "payment")]
    assert kpis.settled_days(INVOICES, repaid)["B"] == (date(2026, 3, 20), True)
    assert kpis.average_days_to_collect(INVOICES, repaid, START, END) == (2, D("67.5"))  # (71 + 64) / 2
    # a fee, then a payment closing the balance with a small-balance write-off; both taken back
    # (the reversal undoes the write-off that stood on it): owed again, collected nothing
    fee = [Settlement("B", "USD", D("-40"), date(2026, 2, 20), "fee"),
           Settlement("B", "USD", D("2000"), date(2026, 3, 1), "payment"),
           Settlement("B", "USD", D("40"), date(2026, 3, 1), "write_off"),
           Settlement("B", "USD", D("-2000"), date(2026, 3, 5), "payment"),
           Settlement("B", "USD", D("-40"), date(2026, 3, 5), "write_off")]
    assert kpis.settled_days(INVOICES, fee) == {}
    # written off after the bounced payment: settled, but by no money collected
    written = [*fee, Settlement("B", "USD", D("2040"), date(2026, 3, 25), "write_off")]
    assert kpis.settled_days(INVOICES, written) == {"B": (date(2026, 3, 25), False)}
    assert kpis.average_days_to_collect(INVOICES, written, START, END) == (0, None)
    # paid again 03-10 (a transfer), the cheque of 03-01 bouncing only 03-15: settled by the
    # transfer, on its day (54 days), the bounced cheque on no day
    late = [*SETTLEMENTS[:2], Settlement("B", "USD", D("2000"), date(2026, 3, 1), "payment", payment_id="CHQ"),
            Settlement("B", "USD", D("2000"), date(2026, 3, 10), "payment", payment_id="TRF"),
            Settlement("B", "USD", D("-2000"), date(2026, 3, 15), "payment", payment_id="CHQ")]
    assert kpis.settled_days(INVOICES, late)["B"] == (date(2026, 3, 10), True)
    # the collector of a case whose only payment bounced in the period: as if never paid, no row
    net_zero = [CollectorEvent("case-g", date(2026, 3, 1), "collected", D("400"), "USD"),
                CollectorEvent("case-g", date(2026, 3, 1), "applied", D("400"), "USD"),
                CollectorEvent("case-g", date(2026, 3, 5), "collected", D("-400"), "USD"),
                CollectorEvent("case-g", date(2026, 3, 5), "applied", D("-400"), "USD")]
    case_g = ClosedCase("case-g", "ivy", "USD", date(2026, 3, 1), None, None)
    assert kpis.collector_performance([case_g], net_zero, "USD", START, END) == []


def test_collector_performance():
    rows = kpis.collector_performance(CASES, FACTS, "USD", START, END)
    assert rows == [
        {"collector": "cora", "cases_closed": 2, "collected": D(3050), "applied": D(3000), "broken_promises": 0,
         "average_days_to_close": D("24.0")},  # (36 + 12) / 2
        {"collector": "sam", "cases_closed": 1, "collected": D(0), "applied": D(0), "broken_promises": 0,
         "average_days_to_close": D("14.0")},
        {"collector": "unassigned", "cases_closed": 0, "collected": D(0), "applied": D(0), "broken_promises": 1,
         "average_days_to_close": None},
    ]


def test_the_whole_set_and_each_report_view():
    figures = kpis.compute(KpiInputs(INVOICES, SETTLEMENTS, PROMISES, CASES, FACTS), "USD", START, END)
    assert figures["dso_standard"] == "46.7" and figures["dso_countback"] == "43.4"
    assert figures["cei_percent"] == "84.4" and figures["ar_turnover_days"] == "34.6"
    assert figures["receivables_begin"] == "1300.00" and figures["credit_sales"] == "5200.00"
    assert (figures["collectors"][0]["collected"], figures["collectors"][0]["applied"]) == ("3050.00", "3000.00")
    assert (figures["written_off"], figures["principal_written_off"], figures["fees_written_off"],
            figures["write_off_ratio_percent"]) == ("520.00", "500.00", "20.00", "9.6")
    for name in kpis.REPORTS:
        rows = kpis.report_rows(name, figures)
        assert rows and kpis.to_csv(rows).count("\n") == len(rows) + 1
    assert kpis.to_csv(kpis.report_rows("cei", figures)).splitlines() == [
        "currency,from,to,receivables_begin,credit_sales,receivables_end,current_receivables_end,cei_percent",
        "USD,2026-01-01,2026-03-31,1300.00,5200.00,2700.00,2000.00,84.4",
    ]


def test_the_write_off_ratio_counts_the_principal_written_off_not_the_fees():
    """docs/KPIS.md: an invoice of 1,000 with a 40 late fee; every settlement takes the principal
    first, so what a write-off takes beyond the principal still owed is fees written off."""
    one = [inv("W", "1000", date(2026, 1, 10), date(2026, 2, 9))]
    fee = Settlement("W", "USD", D("-40"), date(2026, 2, 20), "fee", "late_fee")

    def written(*found: Settlement) -> kpis.WrittenOff:
        return kpis.write_off_ratio(one, [fee, *found], D(5200), START, END)

    in_full = Settlement("W", "USD", D("1040"), date(2026, 3, 20), "write_off")
    assert written(in_full) == kpis.WrittenOff(D(1040), D(1000), D(40), D("19.2"))  # not 1040 / 5200 = 20.0
    paid = Settlement("W", "USD", D("600"), date(2026, 3, 1), "payment")
    rest = Settlement("W", "USD", D("440"), date(2026, 3, 20), "write_off")
    assert written(paid, rest) == kpis.WrittenOff(D(440), D(400), D(40), D("7.7"))
    all_paid = Settlement("W", "USD", D("1000"), date(2026, 3, 1), "payment")
    fees_only = Settlement("W", "USD", D("40"), date(2026, 3, 20), "write_off")
    assert written(all_paid, fees_only) == kpis.WrittenOff(D(40), D(0), D(40), D("0.0"))
    # a receipt within the tolerance leaves 0.50 of the fee written off; reversed, both go back
    near = Settlement("W", "USD", D("1039.50"), date(2026, 3, 1), "payment", payment_id="P")
    small = Settlement("W", "USD", D("0.50"), date(2026, 3, 1), "write_off", payment_id="P")
    assert written(near, small) == kpis.WrittenOff(D("0.50"), D(0), D("0.50"), D("0.0"))
    undone = [Settlement("W", "USD", D("-1039.50"), date(2026, 3, 5), "payment", payment_id="P"),
              Settlement("W", "USD", D("-0.50"), date(2026, 3, 5), "write_off", payment_id="P")]
    assert written(near, small, *undone) == kpis.WrittenOff(D(0), D(0), D(0), D("0.0"))
    # written off before the period: in no figure of it
    before = Settlement("W", "USD", D("1040"), date(2025, 12, 31), "write_off")
    assert written(before) == kpis.WrittenOff(D(0), D(0), D(0), D("0.0"))


def _figures(**changed) -> dict:
    shown = {"receivables_begin": "1300.00", "credit_sales": "5200.00", "receivables_end": "2700.00",
             "current_receivables_end": "2000.00", "cei_percent": "84.4", "write_off_ratio_percent": "9.6",
             "principal_written_off": "500.00"}
    return {**shown, **changed}


def test_notes_explain_a_negative_cei_a_missing_one_and_a_write_off_ratio_above_100_percent():
    assert kpis.notes(_figures()) == []  # the worked example: nothing to explain
    negative = kpis.notes(_figures(receivables_end="7000.00", cei_percent="-70.0"), "cei")
    assert negative == ["CEI is negative: the receivables at the end (7000.00) are more than those at the start "
                        "(1300.00) and the period's credit sales (5200.00) together; late fees, interest and "
                        "reversed payments add to receivables without being sales"]
    missing = kpis.notes(_figures(receivables_begin="0.00", credit_sales="0.00", current_receivables_end="0.00",
                                  cei_percent=None, write_off_ratio_percent=None))
    assert len(missing) == 1 and missing[0].startswith("no CEI: ")
    above = _figures(credit_sales="100.00", write_off_ratio_percent="500.0")
    assert kpis.notes(above, "write-offs") == [
        "write-off ratio above 100 %: the principal written off in the period (500.00) is more than its credit "
        "sales (100.00), so some of it was sold in earlier periods"]
    assert kpis.notes(above, "cei") == [] and kpis.notes(_figures(cei_percent="-1.0"), "write-offs") == []
    assert kpis.notes(_figures(write_off_ratio_percent="100.0"), "write-offs") == []  # 100 % is in range
