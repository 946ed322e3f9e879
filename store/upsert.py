"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def upsert(session: Session, table: Table, rows: list[dict], keys: list[str]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), rows)


def insert_ignore(session: Session, table: Table, rows: list[dict], keys: list[str]) -> int:
    """Insert rows whose keys are new; returns how many were inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    result = session.execute(statement.on_conflict_do_nothing(index_elements=keys), rows)
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)
