"""The event-store contract, one suite subclassed per database backend."""

from __future__ import annotations

import json
import multiprocessing
import threading
from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import inspect, select, text

from domain.decider import case_uuid
from store import chain
from store.db import Database
from store.event_store import ConcurrencyError, EventStore
from store.schema import EVENTS_TABLE, PROJECTION_TABLES, approvals, case_summary, customer_exposure, event_chain
from tests.conftest import drop_postgres_database, postgres_database
from tests.domain.scenario import MANAGER, Case, invoice

from domain import commands as cmd


def projection_rows(db: Database) -> dict[str, list[tuple]]:
    with db.read() as session:
        return {
            table.name: sorted(tuple(r) for r in session.execute(select(table)))
            for table in PROJECTION_TABLES
        }


def busy_case(invoice_id: str = "INV-1") -> Case:
    case = Case().open(invoice(invoice_id=invoice_id))
    case.at(timedelta(days=3)).remind()
    case.pay("100.00")
    events = case.when(cmd.RequestWriteOff, amount=case.state.balance.model_copy(update={"amount": case.state.balance.amount / 2}), reason="goodwill")
    case.when(cmd.DecideApproval, actor=MANAGER, approval_id=events[0].approval_id, approve=True)
    return case


def chain_rows(db: Database) -> list[tuple]:
    with db.read() as session:
        return [tuple(r) for r in session.execute(select(event_chain).order_by(event_chain.c.position))]


def assert_intact(store: EventStore, events: int) -> chain.Verification:
    found = chain.verify(store)
    assert found.intact, [p.line() for p in found.problems]
    assert found.events == events == store.count() and found.head_position == max(r.position for r in store.read_all())
    return found


def three_cases(store: EventStore) -> list[Case]:
    """Three busy cases appended in turns, so their events interleave in the global order."""
    cases = [busy_case(f"INV-{n}") for n in range(3)]
    for start, end in ((0, 2), (2, 4), (4, None)):
        for case in cases:
            store.append(case.state.case_id, start, case.events[start:end], {"actor": "test"})
    return cases


def rewrite_chain(store: EventStore) -> None:
    """Recompute every link from the rows as they are now, as an insider with write access could."""
    table = store.recorder.events_record_cls.__table__
    with store.db.engine.begin() as conn:
        rows = conn.execute(select(table).order_by(table.c.id)).all()
        conn.execute(event_chain.delete())
        previous, digest = 0, chain.GENESIS
        for r in rows:
            digest = chain.compute(digest, r.id, previous, str(r.originator_id), r.originator_version, r.topic, r.state)
            conn.execute(event_chain.insert().values(position=r.id, previous=previous, stream_id=str(r.originator_id),
                                                     version=r.originator_version, hash=digest))
            previous = r.id


def _append_in_process(url: str, prefix: str, count: int) -> None:
    db = Database(url)
    store = EventStore(db)
    for n in range(count):
        case = busy_case(f"{prefix}-{n}")
        for version, event in enumerate(case.events):
            store.append(case.state.case_id, version, [event])
    db.dispose()


class EventStoreContract:
    """Subclasses provide ``url``; every test runs on an empty database."""

    @pytest.fixture
    def store(self):
        url = self.make_url()
        db = Database(url)
        yield EventStore(db)
        db.dispose()
        self.drop(url)

    def make_url(self) -> str:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        pass

    def test_append_and_load_round_trip(self, store):
        case = busy_case()
        result = store.append(case.state.case_id, 0, case.events, {"actor": "test"})
        assert result.version == len(case.events) and not result.already_appended
        assert store.load(case.state.case_id) == case.events
        records = store.records(case.state.case_id)
        assert [r.event.version for r in records] == list(range(1, len(case.events) + 1))
        assert all(r.metadata == {"actor": "test"} for r in records)

    def test_global_positions_are_monotonic_across_streams(self, store):
        a, b = busy_case("INV-A"), busy_case("INV-B")
        store.append(a.state.case_id, 0, a.events[:2])
        store.append(b.state.case_id, 0, b.events)
        store.append(a.state.case_id, 2, a.events[2:])
        positions = [r.position for r in store.read_all()]
        assert positions == sorted(positions) and len(set(positions)) == len(a.events) + len(b.events)

    def test_reappending_the_same_events_is_a_no_op(self, store):
        case = busy_case()
        store.append(case.state.case_id, 0, case.events[:2])
        again = store.append(case.state.case_id, 0, case.events[:2])
        assert again.already_appended and again.version == 2
        assert store.count() == 2

    def test_different_events_at_a_taken_version_conflict(self, store):
        case = busy_case()
        other = busy_case()  # same case id, different event ids
        store.append(case.state.case_id, 0, case.events[:2])
        with pytest.raises(ConcurrencyError, match="at version 2"):
            store.append(other.state.case_id, 0, other.events[:2])
        assert store.load(case.state.case_id) == case.events[:2]

    def test_stale_expected_version_conflicts_and_gaps_are_refused(self, store):
        case = busy_case()
        store.append(case.state.case_id, 0, case.events[:2])
        with pytest.raises(ConcurrencyError):
            store.append(case.state.case_id, 3, case.events[3:4])  # would leave a gap
        assert store.version(case.state.case_id) == 2

    def test_event_versions_must_follow_the_expected_version(self, store):
        case = busy_case()
        with pytest.raises(ValueError):
            store.append(case.state.case_id, 1, case.events[:1])

    def test_concurrent_writers_one_wins(self, store):
        case_id = case_uuid("INV-1")
        attempts = [busy_case() for _ in range(6)]
        outcomes: list[str] = []

        def write(case: Case) -> None:
            try:
                store.append(case_id, 0, case.events)
                outcomes.append("ok")
            except ConcurrencyError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=write, args=(c,)) for c in attempts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
        versions = [e.version for e in store.load(case_id)]
        assert versions == list(range(1, len(attempts[0].events) + 1))
        assert_intact(store, len(versions))  # refused appends (rolled back) leave no link behind

    def test_concurrent_appends_to_many_streams_give_one_valid_chain(self, store):
        """Threads, each with a store of its own on the database, append one event at a time to
        streams of their own: the chain links every event exactly once, in position order."""
        errors: list[Exception] = []

        def write(n: int) -> None:
            mine = EventStore(store.db)
            try:
                for k in range(3):
                    case = busy_case(f"T{n}-{k}")
                    for version, event in enumerate(case.events):
                        mine.append(case.state.case_id, version, [event])
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        found = assert_intact(store, 6 * 3 * len(busy_case().events))
        links = chain_rows(store.db)
        assert [link[1] for link in links] == [0] + [link[0] for link in links[:-1]]  # each to the one before
        assert found.head_hash == links[-1][-1]

    def test_projections_follow_appends_and_equal_a_rebuild(self, store):
        for n in range(3):
            case = busy_case(f"INV-{n}")
            store.append(case.state.case_id, 0, case.events[:3])
            store.append(case.state.case_id, 3, case.events[3:])
        live = projection_rows(store.db)
        assert len(live["case_summary"]) == 3
        assert len(live["approvals"]) == 3 and all(r for r in live["approvals"])
        with store.db.read() as session:
            exposure = session.execute(select(customer_exposure)).one()
            summary = session.execute(select(case_summary.c.balance_minor)).scalars().all()
        assert exposure.open_cases == 3 and exposure.open_balance_minor == sum(summary)
        links = chain_rows(store.db)
        assert store.rebuild_projections() == sum(len(busy_case().events) for _ in range(3))
        assert projection_rows(store.db) == live
        assert chain_rows(store.db) == links  # a rebuild leaves the chain alone
        assert_intact(store, len(links))

    def test_a_rebuild_pauses_the_cyclic_collector_and_gives_it_back(self, store, monkeypatch):
        """The collector's passes over a rebuild's growing heap were a third of its time
        (docs/PERFORMANCE.md, section 2); it is paused while the rows are rebuilt, and on again
        after, also when the rebuild fails."""
        import gc

        case = busy_case("INV-GC")
        store.append(case.state.case_id, 0, case.events)
        seen = []
        replace_all = store.projector.replace_all
        monkeypatch.setattr(store.projector, "replace_all",
                            lambda *a, **k: (seen.append(gc.isenabled()), replace_all(*a, **k))[1])
        assert gc.isenabled()
        store.rebuild_projections()
        assert seen == [False] and gc.isenabled()

        def broken(*_a, **_k):
            raise RuntimeError("disk full")

        monkeypatch.setattr(store.projector, "replace_all", broken)
        with pytest.raises(RuntimeError):
            store.rebuild_projections()
        assert gc.isenabled()

    def test_an_administration_event_commits_with_its_change_or_not_at_all(self, store):
        from datetime import datetime, timezone

        from domain import admin
        from domain.money import Money
        from store.schema import policies

        case = busy_case()
        store.append(case.state.case_id, 0, case.events)
        live = projection_rows(store.db)
        stream = admin.admin_stream_id("policy", "v9")

        def pinned(version: int, reason: str):
            return admin.record(admin.PolicyPinned, stream, version, uuid4(), datetime.now(timezone.utc), "sup", reason,
                                "policy v9", policy_version="v9", digest="d", source="f")

        def insert(session) -> None:
            session.execute(policies.insert().values(version="v9", digest="d", content="x",
                                                     recorded_at=datetime.now(timezone.utc)))

        def insert_then_fail(session) -> None:
            insert(session)
            raise ValueError("refused after the change")

        with pytest.raises(ValueError, match="refused"):
            store.append(stream, 0, [pinned(0, "first try")], within=insert_then_fail)
        assert store.version(stream) == 0  # neither the event ...
        with store.db.read() as session:  # ... nor the change
            assert session.execute(select(policies).where(policies.c.version == "v9")).first() is None
        store.append(stream, 0, [pinned(0, "pinned")], within=insert)
        with store.db.read() as session:
            assert session.execute(select(policies.c.digest).where(policies.c.version == "v9")).scalar_one() == "d"
        [recorded] = store.records(stream)
        assert (recorded.event.reason, recorded.event.actor, recorded.event.subject) == ("pinned", "sup", "policy v9")
        payment = admin.record(admin.LedgerPaymentRecorded, admin.admin_stream_id("payment", "P-1"), 0, uuid4(),
                               datetime.now(timezone.utc), "col", "paid", "payment P-1", payment_id="P-1",
                               invoice_id="INV-1", amount=Money.of("10.00", "EUR", "amount"),
                               received_on=datetime.now(timezone.utc).date(), matched_by="direct")
        store.append(payment.case_id, 0, [payment])
        assert projection_rows(store.db) == live  # administration streams feed no read model
        assert store.rebuild_projections() == len(case.events) + 2
        assert projection_rows(store.db) == live
        assert_intact(store, len(case.events) + 2)  # and they are in the chain

    def test_a_row_left_behind_catches_up_on_the_next_append(self, store):
        case = busy_case()
        store.append(case.state.case_id, 0, case.events[:2])
        with store.db.transaction() as session:  # simulate a rebuild that missed event 2
            session.execute(case_summary.update().values(
                version=1, state=Case().open(invoice(invoice_id="INV-1")).state.model_copy(
                    update={"case_id": case.state.case_id}).model_dump_json()))
        EventStore(store.db).append(case.state.case_id, 2, case.events[2:])  # a store that reads the row
        rows = projection_rows(store.db)
        store.rebuild_projections()
        assert projection_rows(store.db) == rows

    def test_exposure_follows_openings_payments_and_closings_and_equals_a_rebuild(self, store):
        cases = [Case().open(invoice(amount=f"{100 * (n + 1)}.00", invoice_id=f"INV-{n}")) for n in range(4)]
        for case in cases:
            store.append(case.state.case_id, 0, case.events)
        written = {case.state.case_id: len(case.events) for case in cases}
        cases[0].pay("100.00")  # paid in full: closed
        cases[1].pay("50.00")  # part paid
        cases[2].pay("300.00")  # closed
        for case in cases[:3]:
            store.append(case.state.case_id, written[case.state.case_id], case.events[written[case.state.case_id]:])
        with store.db.read() as session:
            row = session.execute(select(customer_exposure)).one()
        assert (row.open_cases, row.open_balance_minor) == (2, 150_00 + 400_00)
        live = projection_rows(store.db)
        store.rebuild_projections()
        assert projection_rows(store.db) == live

    def test_payment_rows_follow_appends_and_equal_a_rebuild(self, store):
        """The payments table from the cases' receipts: a receipt split across two invoices is one
        row (the first share's invoice, the sum), a reversed one is marked reversed, an imported
        unmatched receipt is marked applied; a rebuild writes the same rows."""
        from datetime import date, datetime, timezone

        from sqlalchemy import insert

        from domain.commands import ReversePayment
        from store.payments import SPLIT_NOTE
        from store.schema import customers, invoices, payments

        cases = [Case().open(invoice(amount="500.00", invoice_id=f"INV-P{n}")) for n in range(3)]
        now = datetime.now(timezone.utc)
        with store.db.transaction() as session:
            session.execute(insert(customers).values(customer_id="C-1", name="Acme GmbH", email="ap@acme.test",
                                                     country="DE", language="en", timezone="UTC", risk_grade="B"))
            session.execute(insert(invoices), [
                {"invoice_id": f"INV-P{n}", "customer_id": "C-1", "currency": "USD", "amount_minor": 500_00,
                 "paid_minor": 0, "issue_date": date(2026, 1, 15), "due_date": date(2026, 2, 14), "imported_at": now}
                for n in range(3)])
            session.execute(insert(payments).values(  # imported from a statement, matched later
                payment_id="BANK-9", currency="USD", amount_minor=70_00, received_on=date(2026, 3, 1),
                payer="Acme", reference="?", status="unmatched", recorded_at=now, note="no invoice named"))
        written = {}
        for case in cases:
            store.append(case.state.case_id, 0, case.events)
            written[case.state.case_id] = len(case.events)
        cases[0].pay("120.00", payment_id="SPLIT-1")
        cases[1].pay("80.00", payment_id="SPLIT-1")
        cases[1].pay("30.00", payment_id="BACK-1")
        cases[1].when(ReversePayment, payment_id="BACK-1", reason="returned by the bank")
        cases[2].pay("70.00", payment_id="BANK-9")
        for case in cases:
            store.append(case.state.case_id, written[case.state.case_id], case.events[written[case.state.case_id]:])

        def rows() -> dict[str, tuple]:
            with store.db.read() as session:
                return {r.payment_id: (r.status, r.invoice_id, r.amount_minor, r.note)
                        for r in session.execute(select(payments))}

        live = rows()
        assert live == {"SPLIT-1": ("applied", "INV-P0", 200_00, SPLIT_NOTE),
                        "BACK-1": ("reversed", "INV-P1", 30_00, "returned by the bank"),
                        "BANK-9": ("applied", "INV-P2", 70_00, None)}, live
        with store.db.transaction() as session:  # rows lost out of band: a rebuild writes them again
            session.execute(payments.delete())
        store.rebuild_projections()
        assert rows() == live
        store.rebuild_projections()  # and over the rows it wrote, the same
        assert rows() == live

    def test_two_stores_on_one_database_agree(self, store):
        """Two workers (two stores, each keeping the cases it appended) append to one case in
        turn: a stale expected version is refused, and the rows equal a rebuild."""
        other = EventStore(store.db)
        case = busy_case()
        case_id, events = case.state.case_id, case.events
        store.append(case_id, 0, events[:2])
        other.append(case_id, 2, events[2:3])
        with pytest.raises(ConcurrencyError, match="at version 3"):
            store.append(case_id, 2, busy_case().events[2:3])
        store.append(case_id, 3, events[3:])
        assert store.load(case_id) == events
        live = projection_rows(store.db)
        store.rebuild_projections()
        assert projection_rows(store.db) == live

    def test_rebuild_while_appending(self, store):
        cases = [busy_case(f"INV-{n}") for n in range(8)]
        errors: list[Exception] = []

        def append_all() -> None:
            try:
                for case in cases:
                    for version, event in enumerate(case.events):
                        store.append(case.state.case_id, version, [event])
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        writer = threading.Thread(target=append_all)
        writer.start()
        while writer.is_alive():
            store.rebuild_projections()
        writer.join()
        assert errors == []
        live = projection_rows(store.db)
        store.rebuild_projections()
        assert projection_rows(store.db) == live and len(live["case_summary"]) == 8

    def test_approval_rows_track_their_decision(self, store):
        case = busy_case()
        store.append(case.state.case_id, 0, case.events)
        with store.db.read() as session:
            row = session.execute(select(approvals)).one()
        assert row.kind == "write_off" and row.status == "approved" and row.decided_by == MANAGER.name

    def test_customer_streams_project_risk_and_outbox_and_equal_a_rebuild(self, store):
        from tests.domain.test_customer import Customer, assessment
        from domain import customer as cu
        from domain.policy import RiskGrade
        from domain.users import SYSTEM_ACTOR
        from store.schema import credit_hold_outbox, customer_risk

        case = busy_case()
        store.append(case.state.case_id, 0, case.events)
        c = Customer()
        c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B)
        held = c.when(cu.PlaceHold, reason="no payments")
        stream = cu.customer_stream_id("C-1")
        store.append(stream, 0, c.events)
        c.when(cu.AcknowledgeHoldNotice, outbox_id=str(held[0].event_id), consumer="erp")
        c.when(cu.ReleaseHold, reason="paid up")
        store.append(stream, 2, c.events[2:])
        assert store.load(stream) == c.events
        live = projection_rows(store.db)
        with store.db.read() as session:
            risk = session.execute(select(customer_risk)).one()
            outbox = session.execute(select(credit_hold_outbox).order_by(credit_hold_outbox.c.occurred_at,
                                                                         credit_hold_outbox.c.action)).all()
        assert (risk.grade, risk.previous_grade, risk.score, risk.on_hold, risk.version) == ("C", "B", "46.66", False, 4)
        assert [(o.action, o.acked_by) for o in outbox] == [("hold", "erp"), ("release", None)]
        assert store.rebuild_projections() == len(case.events) + 4
        assert projection_rows(store.db) == live

    def test_schema_matches_the_recorders_table(self, store):
        columns = {c["name"] for c in inspect(store.db.engine).get_columns(EVENTS_TABLE)}
        expected = {c.name for c in store.recorder.events_record_cls.__table__.columns}
        assert columns == expected
        indexes = {i["name"]: i for i in inspect(store.db.engine).get_indexes(EVENTS_TABLE)}
        assert indexes["case_events_aggregate_idx"]["unique"]


    # -- tamper evidence (store/chain.py): rows changed, deleted or inserted out of band -------

    def _position(self, store, case: Case, version: int) -> int:
        return store.records(case.state.case_id)[version - 1].position

    def _sql(self, store, statement: str, **params) -> None:
        with store.db.engine.begin() as conn:  # raw SQL, as someone with write access would
            assert conn.execute(text(statement), params).rowcount == 1

    def test_an_untouched_store_verifies(self, store):
        assert chain.verify(store).as_dict()["intact"] and chain.verify(store).head_hash == chain.GENESIS
        three_cases(store)
        found = assert_intact(store, 3 * len(busy_case().events))
        assert found.head_hash == chain_rows(store.db)[-1][-1]

    def test_a_changed_event_row_is_named(self, store):
        cases = three_cases(store)
        target = cases[1]
        position = self._position(store, target, 3)  # its payment
        with store.db.read() as session:
            state = session.execute(text(f"SELECT state FROM {EVENTS_TABLE} WHERE id = :p"), {"p": position}).scalar_one()
        body = json.loads(bytes(state))
        assert body["data"]["amount"]["amount"] == "100.00"
        body["data"]["amount"]["amount"] = "10.00"
        forged = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        self._sql(store, f"UPDATE {EVENTS_TABLE} SET state = :s WHERE id = :p", s=forged, p=position)
        found = chain.verify(store)
        assert not found.intact
        assert [(p.kind, p.stream_id, p.version, p.position) for p in found.problems] == [
            ("changed", str(target.state.case_id), 3, position)]

    def test_a_changed_type_is_named(self, store):
        cases = three_cases(store)
        position = self._position(store, cases[0], 2)
        self._sql(store, f"UPDATE {EVENTS_TABLE} SET topic = 'ReminderFailed' WHERE id = :p", p=position)
        first = chain.verify(store).problems[0]
        assert (first.kind, first.stream_id, first.version) == ("changed", str(cases[0].state.case_id), 2)

    def test_a_deleted_event_row_is_named(self, store):
        cases = three_cases(store)
        position = self._position(store, cases[2], 2)
        self._sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE id = :p", p=position)
        found = chain.verify(store)
        assert [(p.kind, p.stream_id, p.version, p.position) for p in found.problems] == [
            ("deleted", str(cases[2].state.case_id), 2, position)]

    def test_a_deleted_row_and_its_link_are_named(self, store):
        cases = three_cases(store)
        position = self._position(store, cases[0], 3)
        self._sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE id = :p", p=position)
        self._sql(store, "DELETE FROM case_event_chain WHERE position = :p", p=position)
        found = chain.verify(store)
        assert [(p.kind, p.stream_id, p.version, p.position) for p in found.problems] == [
            ("deleted", str(cases[0].state.case_id), 3, position)]

    def test_the_last_event_deleted_with_its_link_left_is_named(self, store):
        cases = three_cases(store)
        last = store.records(cases[2].state.case_id)[-1]
        self._sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE id = :p", p=last.position)
        first = chain.verify(store).problems[0]
        assert (first.kind, first.stream_id, first.version) == ("deleted", str(cases[2].state.case_id),
                                                                last.event.version)

    def test_an_event_row_inserted_out_of_band_is_named(self, store):
        cases = three_cases(store)
        target = cases[1]
        model = store.records(target.state.case_id)[-1]
        forged = model.event.model_copy(update={"event_id": uuid4(), "version": model.event.version + 1})
        table = store.recorder.events_record_cls.__table__
        with store.db.engine.begin() as conn:  # the row as the store would write it, but not through it
            from store.event_store import _encode

            conn.execute(table.insert().values(originator_id=target.state.case_id, originator_version=forged.version,
                                               topic=model.event.__class__.__name__,
                                               state=_encode(forged, {}, model.recorded_at)))
        found = chain.verify(store)
        assert [(p.kind, p.stream_id, p.version) for p in found.problems] == [
            ("inserted", str(target.state.case_id), forged.version)]
        assert found.events == 3 * len(busy_case().events) + 1

    def test_a_rewritten_chain_passes_alone_and_fails_against_an_anchor(self, store):
        """The limit (docs/CONTROLS.md): whoever recomputes every later link is not caught by the
        chain alone; the head recorded outside the database (an anchor) catches it."""
        cases = three_cases(store)
        anchor = chain.verify(store)
        anchors = [{"position": anchor.head_position, "hash": anchor.head_hash}]
        assert chain.verify(store, anchors=anchors).intact
        position = self._position(store, cases[0], 1)
        with store.db.read() as session:
            state = bytes(session.execute(text(f"SELECT state FROM {EVENTS_TABLE} WHERE id = :p"),
                                          {"p": position}).scalar_one())
        self._sql(store, f"UPDATE {EVENTS_TABLE} SET state = :s WHERE id = :p",
                  s=state.replace(b'"actor":"', b'"actor":"x'), p=position)
        rewrite_chain(store)
        assert chain.verify(store).intact
        against = chain.verify(store, anchors=anchors)
        assert not against.intact and not against.anchors[0]["found"]
        assert "was rewritten" in against.anchors[0]["detail"]

    def test_a_deletion_inside_a_stream_is_named_even_with_the_chain_rewritten(self, store):
        cases = three_cases(store)
        position = self._position(store, cases[1], 2)
        self._sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE id = :p", p=position)
        rewrite_chain(store)
        found = chain.verify(store)
        assert [(p.kind, p.stream_id, p.version) for p in found.problems] == [
            ("deleted", str(cases[1].state.case_id), 2)]

    def test_the_head_cut_off_with_its_links_is_caught_by_an_anchor_only(self, store):
        cases = three_cases(store)
        head = chain.verify(store)
        last = store.records(cases[2].state.case_id)[-1].position
        self._sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE id = :p", p=last)
        self._sql(store, "DELETE FROM case_event_chain WHERE position = :p", p=last)
        assert chain.verify(store).intact  # the limit docs/CONTROLS.md states
        against = chain.verify(store, anchors=[{"position": head.head_position, "hash": head.head_hash}])
        assert not against.intact and "no longer in the chain" in against.anchors[0]["detail"]


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path):
        self.tmp = tmp_path

    def make_url(self) -> str:
        return f"sqlite:///{self.tmp / f'{uuid4().hex}.db'}"


class TestPostgresEventStore(EventStoreContract):
    def make_url(self) -> str:
        return postgres_database()

    def drop(self, url: str) -> None:
        drop_postgres_database(url)

    def test_appends_from_several_processes_give_one_valid_chain(self, store):
        url = store.db.url
        spawn = multiprocessing.get_context("spawn")
        workers = [spawn.Process(target=_append_in_process, args=(url, f"P{n}", 3)) for n in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert [w.exitcode for w in workers] == [0, 0, 0]
        assert_intact(store, 3 * 3 * len(busy_case().events))

    def test_an_append_notifies_listeners_when_it_commits(self, store):
        """The recorder's subscriptions LISTEN on the events table's channel."""
        import psycopg

        dsn = store.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {store.recorder.channel_name}")
            case = busy_case()
            store.append(case.state.case_id, 0, case.events[:2])
            heard = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in heard] == [store.recorder.channel_name]

