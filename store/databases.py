"""Creating and dropping whole PostgreSQL databases on a server, through an administrative
URL (any database on it): each test and each benchmark works in a database of its own."""

from __future__ import annotations

import sqlalchemy


def url_for(admin_url: str, name: str) -> str:
    return sqlalchemy.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _admin(admin_url: str, *statements: str) -> None:
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def exists(admin_url: str, name: str) -> bool:
    engine = sqlalchemy.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}).first()
    finally:
        engine.dispose()
    return found is not None


def create_database(admin_url: str, name: str, replace: bool = False) -> str:
    """A new empty database ``name``; with ``replace``, whatever had that name is dropped first."""
    drop = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'] if replace else []
    _admin(admin_url, *drop, f'CREATE DATABASE "{name}"')
    return url_for(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = sqlalchemy.engine.make_url(url).database
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
