"""Invoice CSV import: the real public ledger, and bad files rejected whole with a line number."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.context import Context
from app.services import CaseService
from domain.errors import DomainError
from store.schema import customers, invoices
from tests.conftest import make_settings, shared_ledger
from tests.harness import INVOICES

LEDGER = shared_ledger()


@pytest.fixture
def service(sqlite_url):
    context = Context(make_settings(sqlite_url))
    yield CaseService(context)
    context.db.dispose()


def counts(service: CaseService) -> tuple[int, int]:
    with service.ctx.db.read() as session:
        return (session.execute(select(func.count()).select_from(invoices)).scalar_one(),
                session.execute(select(func.count()).select_from(customers)).scalar_one())


@pytest.mark.skipif(LEDGER is None, reason="the shared AR ledger is not on this machine")
def test_the_real_ledger_imports_without_editing(service):
    result = service.import_invoices(LEDGER, "ibm-ar")
    assert result["invoices_added"] == 2466 and result["customers"] == 100
    assert counts(service) == (2466, 100)
    first = service.ctx.ledger.invoice("280670965")  # 770,3993-QUNVJ,...,03/01/2012,02/02/2012,50.39
    assert first.customer.customer_id == "3993-QUNVJ" and str(first.amount) == "50.39 USD"
    assert first.issue_date == date(2012, 1, 3) and first.due_date == date(2012, 2, 2)
    assert first.customer.email.endswith("@customers.invalid")
    assert service.import_invoices(LEDGER, "ibm-ar")["invoices_added"] == 0
    with pytest.raises(DomainError, match="looks like the ibm-ar layout: pass --format ibm-ar"):
        service.import_invoices(LEDGER)


def bad_file(tmp_path, body: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "bad.csv"
    path.write_bytes((INVOICES.read_text().splitlines()[0] + "\n" + body).encode(encoding))
    return path


@pytest.mark.parametrize(
    "row, match",
    [
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,-5.00,2026-01-01,2026-02-01,B", "line 3: amount: must be positive"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,0,2026-01-01,2026-02-01,B", "line 3: amount: must be positive"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,1.005,2026-01-01,2026-02-01,B", "more decimal places than EUR"),
        ("INV-9,C-9,Name,a@b.test,DE,en,JPY,100.5,2026-01-01,2026-02-01,B", "more decimal places than JPY"),
        ("INV-9,C-9,Name,a@b.test,DE,en,XYZ,10,2026-01-01,2026-02-01,B", "unknown currency"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,1e15,2026-01-01,2026-02-01,B", "no exponent"),
        ("INV-9,C-9,Name,not-an-email,DE,en,EUR,10,2026-01-01,2026-02-01,B", "customer_email"),
        ("INV-9,C-9,Name,a@b.test,XX,en,EUR,10,2026-01-01,2026-02-01,B", "country"),
        ("INV-9,C-9,Name,a@b.test,DE,klingon-xx,EUR,10,2026-01-01,2026-02-01,B", "language"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,10,01/02/2026,2026-02-01,B", "issue_date"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,10,2026-03-01,2026-02-01,B", "before the issue date"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,Z", "risk grade"),
        ("'; DROP TABLE invoices; --,C-9,Name,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,B", "not a valid id"),
        ("INV-9,C-9,,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,B", "customer_name: must not be empty"),
        ("INV-9,C-9,Name,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,B,extra", "more values than columns"),
        ("INV-9,C-9,N,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,B\nINV-9,C-9,N,a@b.test,DE,en,EUR,10,2026-01-01,2026-02-01,B",
         "line 4: invoice INV-9 already appears on line 3"),
    ],
)
def test_a_bad_row_rejects_the_whole_file(service, tmp_path, row, match):
    good = "INV-8,C-8,Good Co,ok@good.test,DE,en,EUR,10.00,2026-01-01,2026-02-01,B\n"
    with pytest.raises(DomainError, match=match):
        service.import_invoices(bad_file(tmp_path, good + row))
    assert counts(service) == (0, 0)


def test_wrong_encoding_is_named(service, tmp_path):
    path = bad_file(tmp_path, "INV-9,C-9,Müller GmbH,a@b.test,DE,de,EUR,10,2026-01-01,2026-02-01,B", "latin-1")
    with pytest.raises(DomainError, match="not UTF-8 .*save it as UTF-8"):
        service.import_invoices(path)
    assert counts(service) == (0, 0)


def test_a_changed_row_of_an_invoice_without_a_case_changes_its_ledger_row_once(service, tmp_path):
    service.import_invoices(INVOICES)
    changed = tmp_path / "changed.csv"
    changed.write_text(INVOICES.read_text().replace("1200.00", "1300.00"))
    result = service.import_invoices(changed)
    assert result["invoices_changed"] == 1 and result["changes"][0]["changes"] == ["amount"]
    assert str(service.ctx.ledger.invoice("INV-1001").amount) == "1300.00 EUR"
    again = service.import_invoices(changed)
    assert again["invoices_changed"] == 0 and again["changes"] == []


def test_an_invoice_does_not_move_to_another_customer(service, tmp_path):
    service.import_invoices(INVOICES)
    moved = tmp_path / "moved.csv"
    text = INVOICES.read_text()
    first_row = text.splitlines()[1]
    moved.write_text(text.replace(first_row, first_row.replace(first_row.split(",")[1], "C-OTHER", 1)))
    with pytest.raises(DomainError, match="line 2: customer_id: invoice .* belongs to customer"):
        service.import_invoices(moved)
    assert str(service.ctx.ledger.invoice("INV-1001").amount) == "1200.00 EUR"