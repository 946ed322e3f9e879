"""PostgreSQL for the benchmarks: the server of COLLECTIONS_TEST_POSTGRES_URL (or BENCH_POSTGRES_URL),
default postgresql+psycopg://postgres@127.0.0.1:5432/test; each benchmark makes its own database."""

from __future__ import annotations

import os

import sqlalchemy

from store import databases

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
    return databases.url_for(ADMIN_URL, name)


def exists(name: str) -> bool:
    return databases.exists(ADMIN_URL, name)


def create_database(name: str) -> str:
    return databases.create_database(ADMIN_URL, name, replace=True)


def drop_database(url: str) -> None:
    databases.drop_database(ADMIN_URL, url)
