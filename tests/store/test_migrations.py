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


def test_the_chain_migration_links_the_events_already_there(database_url):
    """A database with events from before the chain (revision 0005) gets the same chain on
    upgrade as the appends would have written, and verifies."""
    from sqlalchemy import select

    from store import chain
    from store.event_store import EventStore
    from store.migrate import upgrade
    from store.schema import event_chain
    from tests.store.test_event_store_contract import three_cases

    db = Database(database_url)
    store = EventStore(db)
    three_cases(store)
    with db.read() as session:
        written = session.execute(select(event_chain).order_by(event_chain.c.position)).all()
    from alembic import command

    from store.migrate import alembic_config

    command.downgrade(alembic_config(db.engine), "0005")  # the database as it was before the chain
    assert "case_event_chain" not in inspect(db.engine).get_table_names()
    upgrade(db.engine)
    with db.read() as session:
        migrated = session.execute(select(event_chain).order_by(event_chain.c.position)).all()
    assert migrated == written and len(migrated) == store.count()
    assert chain.verify(store).intact
    db.dispose()


def test_the_exposure_recount_puts_back_what_a_rebuild_has(database_url):
    """Revision 0014 recounts every customer's exposure from the case summaries, as a rebuild does:
    rows an append had miscounted (an open deposit case counted as a receivable) come out right."""
    from alembic import command
    from sqlalchemy import select, update

    from store.event_store import EventStore
    from store.migrate import alembic_config, upgrade
    from store.schema import customer_exposure
    from tests.store.test_event_store_contract import three_cases

    db = Database(database_url)
    three_cases(EventStore(db))
    rows = select(customer_exposure).order_by(customer_exposure.c.customer_id, customer_exposure.c.currency)
    with db.read() as session:
        right = session.execute(rows).all()
    with db.engine.begin() as conn:  # as the appends before 0014 left a customer with an open deposit case
        conn.execute(update(customer_exposure).values(open_cases=customer_exposure.c.open_cases + 1,
                                                      open_balance_minor=customer_exposure.c.open_balance_minor + 30000))
    command.downgrade(alembic_config(db.engine), "0013")
    upgrade(db.engine)
    with db.read() as session:
        assert session.execute(rows).all() == right and right
    db.dispose()
