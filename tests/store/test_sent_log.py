"""The sent log of internal notifications (store/notifications.py) on SQLite and PostgreSQL:
a key is claimed once, counted on every further attempt, and once sent stays sent."""

from __future__ import annotations

from datetime import date

from store.db import Database
from store.notifications import SentLog

KEY = dict(kind="waiting", item="wo-1@supervisor", recipient="sam", day=date(2026, 12, 4))


def claim(log: SentLog, **key):
    return log.claim(**{**KEY, **key}, email="sam@example.com", role="supervisor", case_ids="c-1",
                     subject="Waiting for a supervisor", message_id="<team-1@test.local>")


def test_a_key_is_claimed_once_and_stays_sent(database_url):
    db = Database(database_url)
    log = SentLog(db)
    assert (claim(log).status, claim(log).attempts) == ("sending", 2)  # a retry counts another attempt
    log.finish(tuple(KEY.values()), "sent")
    again = claim(log)
    assert again.status == "sent" and again.attempts == 3
    assert claim(log, day=date(2026, 12, 5)).status == "sending"  # another day is another key
    rows = log.rows()
    assert [(r["day"], r["status"], r["case_ids"]) for r in rows] == [
        ("2026-12-04", "sent", ["c-1"]), ("2026-12-05", "sending", ["c-1"])]
    assert rows[0]["sent_at"] is not None and rows[1]["sent_at"] is None
    assert log.rows(start=date(2026, 12, 5)) == rows[1:]
    db.dispose()
