"""Alembic, driven from code: `db upgrade` and the automatic upgrade on first use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest revision; a test checks it against alembic's own view of the scripts,
# so the check on every start needs one query and no alembic import.
HEAD = "0015"


def alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no schema yet
        return None


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
    return current_revision(engine)


def upgrade_if_needed(engine: Engine) -> None:
    if current_revision(engine) != HEAD:
        upgrade(engine)
