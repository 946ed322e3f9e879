"""The event store: a thin adapter over eventsourcing-sqlalchemy's application recorder.

The recorder gives the table, optimistic concurrency (unique stream+version)
and gap-free global positions (it locks the table on PostgreSQL). This adapter
adds what the engine's contract needs on top:

* idempotent appends: re-appending the same event ids at the same versions
  succeeds without writing; anything else at a taken version is a
  ``ConcurrencyError``;
* unique event ids, and the envelope (type, actor, metadata, recorded_at);
* inline projections, updated in the same transaction as the append.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Collection, Iterator, Sequence
from uuid import UUID

import eventsourcing.persistence as es
import sqlalchemy.exc
from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import func, insert, select, text

from domain.admin import is_admin_event
from domain.customer import evolve_customer, is_customer_event
from domain.events import ENVELOPE_FIELDS, Event, event_from_record
from domain.state import CaseState, fold
from store import chain
from store.collector import cyclic_collector_paused
from store.db import Database
from store.payments import payment_changes, project_payments, write_payment_changes
from store.projections import Projected, Projector
from store.schema import EVENTS_TABLE, PROJECTION_TABLES, event_ids, invoices


class ConcurrencyError(Exception):
    """Another writer got to this stream first (or the caller's version is stale)."""


@dataclass(frozen=True)
class AppendResult:
    version: int
    already_appended: bool = False


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    stream_id: UUID
    event: Event
    metadata: dict
    recorded_at: datetime

    def as_dict(self) -> dict:
        e = self.event
        return {
            "position": self.position,
            "event_id": str(e.event_id),
            "type": type(e).__name__,
            "version": e.version,
            "occurred_at": e.occurred_at.isoformat(),
            "actor": e.actor,
            "data": e.data(),
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _encode(event: Event, metadata: dict, recorded_at: datetime) -> bytes:
    envelope = {
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "data": event.data(),
        "metadata": metadata,
        "recorded_at": recorded_at.isoformat(),
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _decode(position: int, stream_id: UUID, version: int, topic: str, state: bytes) -> RecordedEvent:
    body = json.loads(state)
    envelope = {
        "type": topic,
        "event_id": body["event_id"],
        "case_id": str(stream_id),
        "version": version,
        "occurred_at": body["occurred_at"],
        "actor": body["actor"],
    }
    return RecordedEvent(
        position=position,
        stream_id=stream_id,
        event=event_from_record(envelope, body["data"]),
        metadata=body.get("metadata", {}),
        recorded_at=datetime.fromisoformat(body["recorded_at"]),
    )


class EventStore:
    def __init__(self, db: Database, projector: Projector | None = None) -> None:
        self.db = db
        self.projector = projector or Projector()
        # One recorder writes (write transactions), one reads (never takes the write lock).
        self.recorder = SQLAlchemyApplicationRecorder(
            SQLAlchemyDatastore(session_maker=db.write_sessions), events_table_name=EVENTS_TABLE
        )
        self.reader = SQLAlchemyApplicationRecorder(
            SQLAlchemyDatastore(session_maker=db.sessions), events_table_name=EVENTS_TABLE
        )
        self._records = self.recorder.events_record_cls
        # the new positions come back for the hash chain (in the rows' order)
        self._insert_events = insert(self._records.__table__).returning(
            self._records.__table__.c.id, sort_by_parameter_order=True)
        # Appends run on a Core connection (BEGIN IMMEDIATE on SQLite, as every write), not
        # through the recorder's ORM session: the session's bookkeeping cost more than a
        # statement per append.
        self._writer = db.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._recent = _RecentCases()

    # -- writing -------------------------------------------------------------------
    def append(
        self,
        stream_id: UUID,
        expected_version: int,
        events: Sequence[Event],
        metadata: dict | None = None,
        recorded_at: datetime | None = None,
        within: Callable[[object], object] | None = None,
    ) -> AppendResult:
        """Append ``events`` at ``expected_version``. ``within(session)``, when given, runs in
        the append's transaction before the events are written: the change an administration
        event records (a ledger row, a policy) commits with its event or not at all."""
        if not events:
            return AppendResult(version=expected_version)
        for offset, event in enumerate(events, start=1):
            if event.case_id != stream_id or event.version != expected_version + offset:
                raise ValueError(f"event {event.event_id} is not version {expected_version + offset} of {stream_id}")
        recorded_at = recorded_at or datetime.now(timezone.utc)
        stored = [
            StoredEvent(
                originator_id=stream_id,
                originator_version=e.version,
                topic=type(e).__name__,
                state=_encode(e, metadata or {}, recorded_at),
            )
            for e in events
        ]
        case_stream = not (is_customer_event(events[0]) or is_admin_event(events[0]))
        known = self._recent.get(stream_id, expected_version) if case_stream and expected_version else None
        try:
            with self._writer.begin() as connection:
                session = _Transaction(connection)
                # The case's summary row carries the stream's version (both are written in every
                # append's transaction), so it doubles as the version check. A new stream (0) needs
                # no check: the unique (stream, version) index refuses a second version 1. Nor does
                # a case this store appended at exactly the expected version (``known``): its rows
                # cannot be behind that, and if another writer went further since, the unique
                # index refuses this append's first version.
                current = known
                if case_stream and expected_version and known is None:
                    current = self.projector.current(session, stream_id)
                    if current is None or current.version != expected_version:
                        found = self._version(session, stream_id)
                        if found != expected_version:
                            raise _VersionMismatch(found)
                pending = self.projector.prepare(session, stream_id, events, self._events_between, current)
                if within is not None:
                    within(session)
                session.connection().execute(
                    _INSERT_EVENT_IDS,
                    [{"event_id": str(e.event_id), "stream_id": str(stream_id), "version": e.version} for e in events],
                )
                pending.write(session)
                if case_stream and _PAYMENT_TYPES.intersection(type(e).__name__ for e in events):
                    project_payments(session.connection(), str(stream_id), pending.projected.state.invoice_id,
                                     events, recorded_at)
                # The event rows last: on PostgreSQL their table lock (which orders global positions)
                # is then held for this insert and the commit only, never while waiting on a row.
                self._insert(session, stored)
        except (_VersionMismatch, sqlalchemy.exc.IntegrityError, es.IntegrityError):
            self._recent.forget(stream_id)
            return self._already_appended(stream_id, expected_version, events)
        if pending.projected is not None:
            self._recent.put(stream_id, pending.projected)  # committed: the next append can start here
        return AppendResult(version=events[-1].version)

    def _insert(self, session, stored: Sequence[StoredEvent]) -> None:
        """The recorder's rows with one Core INSERT instead of its ORM session.add and flush,
        under the recorder's own lock (EXCLUSIVE on the table on PostgreSQL: global positions
        commit in order, no gaps) and with its NOTIFY (for its subscriptions). The new
        positions are read back (RETURNING) for the hash chain only."""
        if self.db.dialect == "postgresql":
            # the recorder's LOCK TABLE and NOTIFY (delivered at commit), in one round trip
            session.connection().connection.cursor().execute(
                f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE; NOTIFY {self.recorder.channel_name}")
        rows = [{"originator_id": e.originator_id, "originator_version": e.originator_version, "topic": e.topic,
                 "state": e.state} for e in stored]
        positions = session.connection().execute(self._insert_events, rows).scalars().all()
        self._link(session, rows, positions)

    @staticmethod
    def _link(session, rows: list[dict], positions: Sequence[int]) -> None:
        """Tamper evidence: chain the rows just inserted to the store's previous event
        (store/chain.py), in this transaction and under the insert's lock."""
        chain.link(session.connection(), [{**row, "id": p} for row, p in zip(rows, positions, strict=True)])

    def _already_appended(self, stream_id: UUID, expected_version: int, events: Sequence[Event]) -> AppendResult:
        last = expected_version + len(events)
        recorded = self.reader.select_events(stream_id, gt=expected_version, lte=last)
        ids = [json.loads(r.state)["event_id"] for r in recorded]
        if ids == [str(e.event_id) for e in events]:
            return AppendResult(version=last, already_appended=True)
        current = self.version(stream_id)
        raise ConcurrencyError(
            f"case {stream_id} is at version {current}; the append expected version {expected_version}"
        )

    def _version(self, session, stream_id: UUID) -> int:
        column = self._records.originator_version
        return session.execute(
            select(func.coalesce(func.max(column), 0)).where(self._records.originator_id == stream_id)
        ).scalar_one()

    # -- reading ---------------------------------------------------------------------
    def version(self, stream_id: UUID) -> int:
        with self.db.read() as session:
            return self._version(session, stream_id)

    def records(self, stream_id: UUID) -> list[RecordedEvent]:
        with self.db.read() as session:
            rows = session.execute(
                select(self._records)
                .where(self._records.originator_id == stream_id)
                .order_by(self._records.originator_version)
            ).scalars()
            return [_decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state)) for r in rows]

    def load(self, stream_id: UUID) -> list[Event]:
        return [r.event for r in self.records(stream_id)]

    def load_types(self, stream_id: UUID, types: Sequence[str]) -> list[Event]:
        """The stream's events of the given types only, in order (a cheap look for one kind of fact)."""
        rec = self._records
        with self.db.read() as session:
            rows = session.execute(
                select(rec).where(rec.originator_id == stream_id, rec.topic.in_(list(types)))
                .order_by(rec.originator_version)
            ).scalars()
            return [_decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state)).event for r in rows]

    def state(self, stream_id: UUID) -> CaseState | None:
        return fold(self.load(stream_id))

    def read_all(self, after: int = 0, batch: int = 5000) -> Iterator[RecordedEvent]:
        """Every event in global order (for rebuilds and exports)."""
        position = after
        while True:
            page = self.reader.select_notifications(position, batch, inclusive_of_start=False)
            if not page:
                return
            for n in page:
                yield _decode(n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
            position = page[-1].id

    def settled_head(self) -> int:
        """The highest position below which every event is committed for good: no append in
        flight can still commit an event at or below it (the feed reads up to here only).

        SQLite: write transactions are serialized by the database's write lock and a position
        is taken inside one, so positions commit in order and the last committed one is settled.
        PostgreSQL: concurrent transactions could commit out of position order (a sequence value
        is taken at insert, the row is seen at commit). Appends hold an EXCLUSIVE lock on the
        events table from before their insert to their commit, and this takes a SHARE lock on it
        for one statement: it waits for every transaction that is inserting rows (any INSERT's
        ROW EXCLUSIVE lock conflicts with SHARE, whoever wrote it), reads the highest position,
        and lets appends go on. Every position at or below that head is then committed or
        rolled back for good; new appends take higher ones. The lock is held for one indexed
        read, so appends wait at most that long."""
        column = self._records.id
        if self.db.dialect != "postgresql":
            with self.db.read() as session:
                return session.execute(select(func.coalesce(func.max(column), 0))).scalar_one()
        with self.db.read() as session, session.begin():
            session.execute(text(f"LOCK TABLE {EVENTS_TABLE} IN SHARE MODE"))
            return session.execute(select(func.coalesce(func.max(column), 0))).scalar_one()

    def read_page(self, after: int, limit: int, types: Sequence[str] | None = None,
                  ) -> tuple[list[RecordedEvent], int]:
        """Up to ``limit`` events after position ``after``, in global order, never past the
        settled head (see ``settled_head``), and that head: a reader that continues after the
        last position it got can never skip an event committed later with a lower position.
        ``types``: only events of these types (a subscriber's filter)."""
        head = self.settled_head()
        if head <= after:
            return [], head
        t = self._records.__table__
        query = (select(t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
                 .where(t.c.id > after, t.c.id <= head))
        if types is not None:
            query = query.where(t.c.topic.in_(list(types)))
        with self.db.read() as session:
            rows = session.execute(query.order_by(t.c.id).limit(limit))
            return [_decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state))
                    for r in rows], head

    def read_types(self, types: Sequence[str], streams: Collection[UUID] | None = None) -> list[RecordedEvent]:
        """Every event of the given types, in global order (for reports); ``streams``: only the events
        of these streams (one customer's, say), read by stream instead of scanning every stream's."""
        rec = self._records
        ids = None if streams is None else list(streams)
        wanted = [None] if ids is None else [ids[i:i + STREAMS_PER_QUERY] for i in range(0, len(ids), STREAMS_PER_QUERY)]
        found: list[RecordedEvent] = []
        with self.db.read() as session:
            for chunk in wanted:
                query = select(rec).where(rec.topic.in_(list(types)))
                if chunk is not None:
                    query = query.where(rec.originator_id.in_(chunk))
                rows = session.execute(query.order_by(rec.id)).scalars()
                found.extend(_decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state)) for r in rows)
        return found if len(wanted) <= 1 else sorted(found, key=lambda r: r.position)

    def count(self) -> int:
        with self.db.read() as session:
            return session.execute(select(func.count()).select_from(self._records)).scalar_one()

    # -- projections -------------------------------------------------------------------
    def rebuild_projections(self) -> int:
        """Replay every event into fresh projection rows; returns events replayed.

        Reads and rewrites in one write transaction that appenders wait for (the
        write lock on SQLite; on PostgreSQL, EXCLUSIVE locks on the read models and a SHARE
        lock on the event table), so no event recorded meanwhile can be missing from the new
        rows."""
        states: dict[UUID, CaseState] = {}
        customers: dict[UUID, object] = {}  # customer streams (domain/customer.py)
        payment_events: list[RecordedEvent] = []  # the payments table's rows of cases, in order
        replayed = 0
        with cyclic_collector_paused(), self.db.transaction() as session:
            if self.db.dialect == "postgresql":
                # The read models first, then the events: an append writes its rows before it
                # takes the events table's lock, so the other order could deadlock with one.
                names = ", ".join(t.name for t in PROJECTION_TABLES)
                session.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
                session.execute(text(f"LOCK TABLE {EVENTS_TABLE} IN SHARE MODE"))
            t = self._records.__table__  # plain rows (no ORM objects): a rebuild reads every event
            rows = session.connection().execute(
                select(t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
                .order_by(t.c.id).execution_options(yield_per=5000))
            for r in rows:
                record = _decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state))
                if is_admin_event(record.event):
                    pass  # administration streams feed no read model
                elif is_customer_event(record.event):
                    customers[record.stream_id] = evolve_customer(customers.get(record.stream_id), record.event)
                else:
                    states[record.stream_id] = fold([record.event], states.get(record.stream_id))
                    if r.topic in _PAYMENT_TYPES:
                        payment_events.append(record)
                replayed += 1
            self.projector.replace_all(session, states.values(), customers=customers.values())
            ledgered = set(session.connection().execute(select(invoices.c.invoice_id)).scalars())
            changes = [change for record in payment_events
                       for change in payment_changes(str(record.stream_id), states[record.stream_id].invoice_id,
                                                     [record.event], record.recorded_at)
                       if change[0] != "applied" or change[1]["invoice_id"] in ledgered]
            write_payment_changes(session.connection(), changes)
        self._recent.clear()
        return replayed

    def _events_between(self, session, stream_id: UUID, after: int, before: int) -> list[Event]:
        t = self._records.__table__
        rows = session.execute(
            select(t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
            .where(t.c.originator_id == stream_id, t.c.originator_version > after, t.c.originator_version < before)
            .order_by(t.c.originator_version))
        return [_decode(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state)).event for r in rows]


_INSERT_EVENT_IDS = insert(event_ids)
STREAMS_PER_QUERY = 500  # stream ids bound in one query of ``read_types`` (SQLite binds at most 32766)
_PAYMENT_TYPES = frozenset({"PaymentReceived", "PaymentReversed"})


class _RecentCases:
    """The cases this store appended last, as their rows now show them (bounded, least
    recently used out): a case's next append starts from here instead of reading its
    summary row back and parsing its state. Used only at exactly the cached version; the
    database stays the judge of every other version (thread-safe: activities append from
    a thread pool)."""

    def __init__(self, capacity: int = 1000) -> None:  # about 5 KB a case
        self.capacity = capacity
        self._items: OrderedDict[UUID, Projected] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_id: UUID, version: int) -> Projected | None:
        with self._lock:
            found = self._items.get(stream_id)
            if found is None or found.version != version:
                return None
            self._items.move_to_end(stream_id)
            return found

    def put(self, stream_id: UUID, projected: Projected) -> None:
        with self._lock:
            self._items[stream_id] = projected
            self._items.move_to_end(stream_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def forget(self, stream_id: UUID) -> None:
        with self._lock:
            self._items.pop(stream_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _Transaction:
    """An append's Core connection, offering what the projectors call on a Session."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def connection(self):
        return self._connection

    def get_bind(self):
        return self._connection

    def execute(self, statement, parameters=None):
        return self._connection.execute(statement, parameters)


class _VersionMismatch(Exception):
    def __init__(self, current: int) -> None:
        self.current = current


__all__ = ["AppendResult", "ConcurrencyError", "EventStore", "RecordedEvent", "ENVELOPE_FIELDS"]
