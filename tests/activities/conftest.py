"""Fixtures of the activity tests."""

from __future__ import annotations

import pytest

from activities.notices import NoticeActivities, SmtpSettings
from store.db import Database
from store.event_store import EventStore


@pytest.fixture
def stored(sqlite_url, smtp):
    """A real event store, and a notice sender that reads it (withdrawn cases, customer credit)."""
    db = Database(sqlite_url)
    store = EventStore(db)
    yield store, NoticeActivities(db, SmtpSettings(port=smtp.port, message_domain="test.local"), store=store)
    db.dispose()
