"""Schema migrations: automatic on first use, explicit with `db upgrade`."""

from __future__ import annotations

from sqlalchemy import inspect

from store.db import Database
from store.migrate import HEAD, current_revision, head_revision
from store.schema import metadata


def test_head_constant_matches_the_migration_scripts(sqlite_url):
    db = Database(sqlite_url, migrate=False)
    assert head_revision(db.engine) == HEAD
    db.dispose()


def test_first_use_migrates_and_the_schema_matches_the_tables_in_code(database_url):
    db = Database(database_url)
    assert current_revision(db.engine) == HEAD
    inspector = inspect(db.engine)
    for table in metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == {c.name for c in table.columns}, table.name
    db.dispose()
    Database(database_url).dispose()  # a second start finds nothing to do
