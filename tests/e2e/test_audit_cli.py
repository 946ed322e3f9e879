"""`audit verify`, `audit anchor` and `audit export` as a person runs them: `starter.py` in a
subprocess on a SQLite file that the event store filled (no Temporal needed), then the file
changed behind the engine's back with sqlite3."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from domain import customer as cu
from domain.policy import RiskGrade
from domain.users import SYSTEM_ACTOR
from store.db import Database
from store.event_store import EventStore
from tests.domain.scenario import MANAGER
from tests.domain.test_customer import Customer, assessment
from tests.e2e.test_cli import Cli
from tests.harness import users_with_tokens
from tests.store.test_event_store_contract import busy_case

DAY1 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)


@pytest.fixture
def filled(tmp_path):
    """Two cases (one over two days) and a customer stream; returns the CLI and what was written."""
    path = tmp_path / "collections.db"
    db = Database(f"sqlite:///{path}")
    store = EventStore(db)
    a, b = busy_case("AUD-1"), busy_case("AUD-2")
    store.append(a.state.case_id, 0, a.events[:3], recorded_at=DAY1)
    store.append(b.state.case_id, 0, b.events, recorded_at=DAY1 + timedelta(hours=1))
    store.append(a.state.case_id, 3, a.events[3:], recorded_at=DAY2)
    c = Customer()
    c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B)
    c.when(cu.PlaceHold, reason="no payments")
    store.append(cu.customer_stream_id("C-1"), 0, c.events, recorded_at=DAY2 + timedelta(hours=1))
    records = list(store.read_all())
    db.dispose()
    env = {**os.environ, "COLLECTIONS_DATABASE_URL": f"sqlite:///{path}", "COLLECTIONS_DATA_DIR": str(tmp_path / "data"),
           "COLLECTIONS_USERS": str(users_with_tokens(tmp_path)), "COLUMNS": "200"}  # a supervisor's token
    return Cli(env, tmp_path), path, records, (a, b)


def test_verify_passes_then_names_a_row_changed_with_sqlite(filled, tmp_path):
    cli, path, records, (a, _) = filled
    done = cli.run("audit", "verify", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["intact"] and report["events"] == len(records) and report["first_problem"] is None
    assert report["head"]["position"] == records[-1].position and len(report["head"]["hash"]) == 64
    assert "intact" in cli.run("audit", "verify").stdout

    anchors = tmp_path / "anchors.jsonl"
    anchored = cli.json("audit", "anchor", str(anchors))
    assert anchored["anchored"] and json.loads(anchors.read_text())["hash"] == report["head"]["hash"]
    assert cli.run("audit", "verify", "--anchor", str(anchors)).returncode == 0

    target = next(r for r in records if r.stream_id == a.state.case_id and r.event.version == 4)
    with sqlite3.connect(path) as db:  # the write-off request's reason, changed out of band
        state = db.execute("SELECT state FROM case_events WHERE id = ?", (target.position,)).fetchone()[0]
        assert b'"reason":"goodwill"' in state
        db.execute("UPDATE case_events SET state = ? WHERE id = ?",
                   (state.replace(b'"reason":"goodwill"', b'"reason":"insolvency"'), target.position))
    broken = cli.run("audit", "verify", "--json", ok=False)
    assert broken.returncode == 1, broken.stderr
    first = json.loads(broken.stdout)["first_problem"]
    assert (first["kind"], first["stream_id"], first["version"], first["position"]) == (
        "changed", str(a.state.case_id), 4, target.position)
    human = cli.run("audit", "verify", ok=False)
    assert human.returncode == 1 and f"changed: stream {a.state.case_id} version 4" in human.stdout
    assert cli.run("audit", "verify", "--anchor", str(anchors), ok=False).returncode == 1
    refused = cli.run("audit", "anchor", str(anchors), "--json", ok=False)  # no anchor for a tampered store
    assert refused.returncode == 1 and len(anchors.read_text().splitlines()) == 1


def test_a_chain_rewritten_from_scratch_is_caught_by_the_anchor_only(filled, tmp_path):
    cli, path, records, _ = filled
    anchors = tmp_path / "anchors.jsonl"
    cli.json("audit", "anchor", str(anchors))
    from store.chain import GENESIS, compute

    with sqlite3.connect(path) as db:  # change an event and recompute every link, as an insider could
        target = next(r for r in records if r.event.__class__.__name__ == "WriteOffRequested")
        state = db.execute("SELECT state FROM case_events WHERE id = ?", (target.position,)).fetchone()[0]
        db.execute("UPDATE case_events SET state = ? WHERE id = ?",
                   (state.replace(b'"reason":"goodwill"', b'"reason":"insolvency"'), target.position))
        db.execute("DELETE FROM case_event_chain")
        previous, digest = 0, GENESIS
        for position, stream, version, topic, state in db.execute(
                "SELECT id, originator_id, originator_version, topic, state FROM case_events ORDER BY id").fetchall():
            stream = str(__import__("uuid").UUID(bytes=stream))
            digest = compute(digest, position, previous, stream, version, topic, state)
            db.execute("INSERT INTO case_event_chain VALUES (?, ?, ?, ?, ?)", (position, previous, stream, version,
                                                                               digest))
            previous = position
    assert cli.run("audit", "verify").returncode == 0  # the limit documented in docs/CONTROLS.md
    caught = cli.run("audit", "verify", "--anchor", str(anchors), "--json", ok=False)
    assert caught.returncode == 1
    anchor = json.loads(caught.stdout)["anchors"][0]
    assert not anchor["found"] and "rewritten" in anchor["detail"]
    assert cli.run("audit", "verify", "--anchor", str(tmp_path / "missing.jsonl"), ok=False).returncode == 2


def test_export_lists_every_stream_in_order_with_the_reasons(filled):
    cli, _, records, (a, b) = filled
    rows = cli.json("audit", "export")
    assert [r["position"] for r in rows] == [r.position for r in records]
    assert {r["stream"] for r in rows} == {str(a.state.case_id), str(b.state.case_id),
                                           str(cu.customer_stream_id("C-1"))}
    hold = next(r for r in rows if r["type"] == "CustomerPutOnHold")
    assert hold["reason"] == "no payments" and hold["subject"] == "C-1"
    request = next(r for r in rows if r["type"] == "WriteOffRequested" and r["stream"] == str(a.state.case_id))
    assert request["reason"] == "goodwill" and request["subject"] == "AUD-1" and request["version"] == 4
    assert request["recorded_at"].startswith("2026-03-03") and request["occurred_at"]

    day1 = cli.json("audit", "export", "--from", "2026-03-02", "--to", "2026-03-02")
    expected = [r.position for r in records if r.recorded_at.date() == DAY1.date()]
    assert [r["position"] for r in day1] == expected and 0 < len(expected) < len(records)

    by_manager = cli.json("audit", "export", "--actor", MANAGER.name)
    assert [r["type"] for r in by_manager] == ["WriteOffApproved", "WriteOffApproved"]
    assert {r["actor"] for r in by_manager} == {MANAGER.name}

    text = cli.run("audit", "export", "--from", "2026-03-03", "--to", "2026-03-03", "--csv").stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["position"]) for r in table] == [r.position for r in records if r.recorded_at.date() == DAY2.date()]
    assert list(table[0]) == ["position", "recorded_at", "occurred_at", "actor", "stream", "subject", "version", "type",
                              "reason", "note", "decision", "outcome", "amount", "currency", "value_date", "details"]
    assert cli.rejected("audit", "export", "--from", "2026-03-05", "--to", "2026-03-01", match="before it starts")
    assert cli.rejected("audit", "export", "--from", "yesterday", match="not a date")
