"""PostgreSQL for the benchmarks: the server of COLLECTIONS_TEST_POSTGRES_URL (or BENCH_POSTGRES_URL),
default postgresql+psycopg://postgres@127.0.0.1:5432/test; each benchmark makes its own database."""

from __future__ import annotations

import os

import sqlalchemy

ADMIN_URL = (os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("COLLECTIONS_TEST_POSTGRES_URL")
             or "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def available() -> bool:
    if os.environ.get("BENCH_POSTGRES", "1") == "0":
        return False
    try:
        engine = sqlalchemy.create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return True
    except Exception:
        return False


def url_for(name: str) -> str:
    return sqlalchemy.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def exists(name: str) -> bool:
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}).first()
    admin.dispose()
    return found is not None


def create_database(name: str) -> str:
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url_for(name)


def drop_database(url: str) -> None:
    name = sqlalchemy.engine.make_url(url).database
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
