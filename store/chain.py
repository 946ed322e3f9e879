"""Tamper evidence: every event row is chained to the previous one of the store by a hash.

Each event (global order) has a row in ``case_event_chain``: its position, the position of
the event before it in the chain, its stream and version, and

    hash = SHA-256(previous hash, position, previous position, stream id, version, type,
                   the stored envelope)

The envelope is the event's canonical JSON as stored (sorted keys, no spaces: event id,
occurred_at, actor, data, metadata, recorded_at), so the hash covers every field of the row.
The first event links to ``GENESIS``.

The chain rows are written in the append's transaction (``link``), after the event rows:
on PostgreSQL under the append's EXCLUSIVE lock on the events table (which orders global
positions), so the last link read there is the last committed one; on SQLite every write
transaction holds the database's write lock. Nothing is cached between appends: several
stores and processes append to one database.

``verify`` recomputes the chain, streaming, and names each row changed, deleted or inserted
out of band (docs/CONTROLS.md says what that proves and what it does not). Positions may
skip numbers on PostgreSQL (a rolled-back append consumes sequence values), so a deletion
is found by the chain's own links and by a stream's versions, not by arithmetic on positions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence
from uuid import UUID

from sqlalchemy import func, insert, select

from domain.errors import DomainError
from store.schema import event_chain

GENESIS = "0" * 64
MAX_PROBLEMS = 100
BATCH = 5000


def compute(previous_hash: str, position: int, previous_position: int, stream_id, version: int, topic: str,
            state: bytes) -> str:
    """One link of the chain (hex). Each field before the envelope is on a line of its own,
    and none can hold a newline (hex, integers, a uuid, an event class name)."""
    head = f"{previous_hash}\n{position}\n{previous_position}\n{stream_id}\n{version}\n{topic}\n".encode()
    return hashlib.sha256(head + bytes(state)).hexdigest()


_INSERT = insert(event_chain)


_LAST_SQL = "SELECT position, hash FROM case_event_chain ORDER BY position DESC LIMIT 1"
_INSERT_SQL = "INSERT INTO case_event_chain (position, previous, stream_id, version, hash) VALUES ({0}, {0}, {0}, {0}, {0})"
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def link(connection, rows: Sequence[dict]) -> None:
    """Chain the event rows an append has just inserted (each with its ``id``, in position
    order). Runs in the append's transaction after the event rows: on PostgreSQL under the
    events table's EXCLUSIVE lock, on SQLite under the write lock, so the last link it reads
    is the last one committed and no other append can link in between. (The last link is read
    every time, never cached: another store or process may have appended since. Both
    statements go to the driver's cursor: SQLAlchemy's statement overhead was most of the cost.)"""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_LAST_SQL)
        last = cursor.fetchone()
        previous_position, previous_hash = (last[0], last[1]) if last else (0, GENESIS)
        links = []
        for row in rows:
            stream = str(row["originator_id"])
            digest = compute(previous_hash, row["id"], previous_position, stream, row["originator_version"],
                             row["topic"], row["state"])
            links.append((row["id"], previous_position, stream, row["originator_version"], digest))
            previous_position, previous_hash = row["id"], digest
        cursor.executemany(_INSERT_SQL.format(_PLACEHOLDER[connection.dialect.paramstyle]), links)
    finally:
        cursor.close()


def chain_existing(connection, events) -> int:
    """Compute and write the chain over the events of a database that has none (migration 0006),
    in position order, a batch at a time."""
    previous_position, previous_hash, done = 0, GENESIS, 0
    while True:
        rows = connection.execute(
            select(events.c.id, events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state)
            .where(events.c.id > previous_position).order_by(events.c.id).limit(BATCH)).all()
        if not rows:
            return done
        links = []
        for r in rows:
            stream = str(_uuid(r.originator_id))
            digest = compute(previous_hash, r.id, previous_position, stream, r.originator_version, r.topic, r.state)
            links.append({"position": r.id, "previous": previous_position, "stream_id": stream,
                          "version": r.originator_version, "hash": digest})
            previous_position, previous_hash = r.id, digest
        connection.execute(_INSERT, links)
        done += len(links)


def _uuid(value) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)) and len(bytes(value)) == 16:
        return UUID(bytes=bytes(value))
    return UUID(str(value))


# -- verifying -------------------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # changed | deleted | inserted
    position: int | None
    stream_id: str | None
    version: int | None
    detail: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "position": self.position, "stream_id": self.stream_id, "version": self.version,
                "detail": self.detail}

    def line(self) -> str:
        where = f"stream {self.stream_id} version {self.version}" if self.stream_id else "an event of unknown stream"
        at = f" (position {self.position})" if self.position is not None else ""
        return f"{self.kind}: {where}{at}: {self.detail}"


@dataclass
class Verification:
    events: int = 0
    head_position: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    anchors: list[dict] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and all(a["found"] for a in self.anchors)

    def as_dict(self) -> dict:
        first = self.problems[0] if self.problems else None
        return {"intact": self.intact, "events": self.events,
                "head": {"position": self.head_position, "hash": self.head_hash},
                "first_problem": first.as_dict() if first else None,
                "problems": [p.as_dict() for p in self.problems],
                "anchors": self.anchors}


class _Walk:
    """The state of one pass over the events in position order."""

    def __init__(self, wanted: set[int]) -> None:
        self.result = Verification()
        self.wanted = wanted
        self.seen_anchor: dict[int, str] = {}
        self.streams: dict[UUID, tuple[int, int]] = {}  # stream -> (last version, its position)
        self.previous_position, self.previous_hash = 0, GENESIS
        self.previous_row: tuple[str, int] | None = None  # stream, version of the last linked row
        self.gaps: list[Problem] = []  # deletions found by a link, not yet named

    def report(self, kind: str, position, stream, version, detail: str) -> Problem:
        problem = Problem(kind, position, None if stream is None else str(stream), version, detail)
        if len(self.result.problems) < MAX_PROBLEMS:
            self.result.problems.append(problem)
        return problem

    def row(self, connection, r) -> None:
        stream, position, version = _uuid(r.originator_id), r.id, r.originator_version
        self.result.events += 1
        if r.hash is None:
            self.report("inserted", position, stream, version,
                        "an event row with no link in the chain (written outside the event store)")
        else:
            self._linked(connection, r, stream, position, version)
        self._version(stream, position, version, checked=r.hash is not None)

    def _linked(self, connection, r, stream: UUID, position: int, version: int) -> None:
        if r.previous > self.previous_position:  # the chain links an event this walk did not see: deleted
            named = _link_between(connection, self.previous_position, r.previous)
            if named is not None:
                self.gaps.append(self.report("deleted", named.position, named.stream_id, named.version,
                                             "the event row is gone (its link in the chain remains)"))
            else:
                self.gaps.append(self.report(
                    "deleted", r.previous, None, None,
                    f"the event at position {r.previous} and its link are gone: the next link "
                    f"(stream {stream} version {version}, position {position}) points to it"))
            recomputed = r.hash  # its predecessor is gone: nothing to recompute it from
        elif r.previous < self.previous_position:  # the row before this one was slipped in between
            s, v = self.previous_row or (None, None)
            self.report("inserted", self.previous_position, s, v,
                        f"the next link (position {position}) skips it: it was inserted out of band")
            recomputed = r.hash
        else:
            recomputed = compute(self.previous_hash, position, r.previous, str(stream), version, r.topic, r.state)
            if recomputed != r.hash or (r.stream_id, r.version) != (str(stream), version):
                self.report("changed", position, stream, version,
                            "the row differs from what the chain recorded (hash mismatch; or the link of "
                            "the row before it was recomputed)")
        if position in self.wanted:
            self.seen_anchor[position] = recomputed
        # carry on from the stored link: each tampering is reported once
        self.previous_position, self.previous_hash = position, r.hash
        self.previous_row = (str(stream), version)
        self.result.head_position, self.result.head_hash = position, r.hash

    def _version(self, stream: UUID, position: int, version: int, checked: bool) -> None:
        last_version, last_position = self.streams.get(stream, (0, 0))
        if checked and version > last_version + 1:
            missing = last_version + 1
            gap = next((g for g in self.gaps if last_position < g.position < position
                        and g.stream_id in (None, str(stream))), None)
            if gap is not None:  # the deletion the chain's link found: now it has a name
                gap.stream_id, gap.version = str(stream), missing
            else:
                self.report("deleted", None, stream, missing,
                            f"the stream jumps from version {last_version} to {version}")
        elif checked and version <= last_version:
            self.report("inserted", position, stream, version,
                        f"version {version} comes after version {last_version} of its stream")
        self.streams[stream] = (max(version, last_version), position)


def verify(store, progress: Callable[[int, int], None] | None = None, anchors: Iterable[dict] = ()) -> Verification:
    """Recompute the chain over every event of ``store`` (an EventStore) in position order, in
    one streamed query; ``anchors`` ({position, hash}) must still be in the chain."""
    events = store.recorder.events_record_cls.__table__
    c = event_chain.c
    wanted = {int(a["position"]): a["hash"] for a in anchors}
    walk = _Walk(set(wanted))
    with store.db.read() as session:
        connection = session.connection()
        total = connection.execute(select(func.count()).select_from(events)).scalar_one() if progress else 0
        rows = connection.execute(
            select(events.c.id, events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state,
                   c.previous, c.stream_id, c.version, c.hash)
            .select_from(events.outerjoin(event_chain, c.position == events.c.id))
            .order_by(events.c.id)
            .execution_options(stream_results=True, yield_per=BATCH))
        for r in rows:
            walk.row(connection, r)
            if progress and walk.result.events % BATCH == 0:
                progress(walk.result.events, total)
        rows.close()
        # a link whose event row is gone, after the last event (or missed above)
        named = {p.position for p in walk.result.problems if p.kind == "deleted"}
        for orphan in connection.execute(
                select(c.position, c.stream_id, c.version)
                .select_from(event_chain.outerjoin(events, events.c.id == c.position))
                .where(events.c.id.is_(None)).order_by(c.position).limit(MAX_PROBLEMS)):
            if orphan.position not in named:
                walk.report("deleted", orphan.position, orphan.stream_id, orphan.version,
                            "the event row is gone (its link in the chain remains)")
    result = walk.result
    if progress:
        progress(result.events, result.events)
    for position, recorded in sorted(wanted.items()):
        found = walk.seen_anchor.get(position)
        entry = {"position": position, "hash": recorded, "found": found == recorded}
        if found is None:
            entry["detail"] = f"position {position} is no longer in the chain (the store was cut back or rewritten)"
        elif found != recorded:
            entry["detail"] = (f"the chain up to position {position} was rewritten: it now hashes to {found}, "
                               f"the anchor recorded {recorded}")
        result.anchors.append(entry)
    result.problems.sort(key=lambda p: (p.position is None, p.position or 0))
    return result


def _link_between(connection, after: int, upto: int):
    """The first link row in (after, upto]: the name of a deleted event whose link remains."""
    c = event_chain.c
    return connection.execute(select(c.position, c.stream_id, c.version)
                              .where(c.position > after, c.position <= upto)
                              .order_by(c.position).limit(1)).first()


# -- anchors -------------------------------------------------------------------------------------


def read_anchors(path: Path) -> list[dict]:
    """Anchors recorded by ``audit anchor`` (one JSON object a line)."""
    if not path.is_file():
        raise DomainError(f"anchor file {path} not found", "anchor")
    anchors = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            anchors.append({"position": int(item["position"]), "hash": str(item["hash"])})
        except (ValueError, KeyError, TypeError):
            raise DomainError(f"{path} line {n} is not an anchor written by `audit anchor`", "anchor") from None
    if not anchors:
        raise DomainError(f"{path} holds no anchor", "anchor")
    return anchors


__all__ = ["GENESIS", "Problem", "Verification", "chain_existing", "compute", "link", "read_anchors", "verify"]
