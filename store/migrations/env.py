"""Alembic environment: runs on the engine handed over by store.migrate."""

from alembic import context
from sqlalchemy import text

from store.schema import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Two processes starting at once must not both run the migration.
        connection.execute(text("SELECT pg_advisory_lock(724001)"))
    try:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(724001)"))
            connection.commit()
