"""Alembic environment for the application database.

The database URL is taken from, in order: the URL :func:`store.db.upgrade` passes in code, ``-x url=…``
on the command line, ``sqlalchemy.url`` in an ini file, ``COLLECT_DATABASE_URL``, ``DATABASE_URL``, and
finally the application's own default (``runtime.settings``), so operators and the app always agree.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import URL

from store.db import migration_engine, normalize_url
from store.models import Base

config = context.config
target_metadata = Base.metadata
if config.config_file_name is not None:  # the operator's CLI; the app configures its own logging
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Any constant works; it only has to be the same for every process migrating this database.
MIGRATION_LOCK_KEY = 0x68756D616E65  # "humane"


def database_url() -> URL:
    given = config.attributes.get("url")
    if given is not None:
        return normalize_url(given)
    for candidate in (
        context.get_x_argument(as_dictionary=True).get("url"),
        config.get_main_option("sqlalchemy.url"),
        os.environ.get("COLLECT_DATABASE_URL"),
        os.environ.get("DATABASE_URL"),
    ):
        if candidate:
            return normalize_url(candidate)
    from runtime.settings import get_settings

    return normalize_url(get_settings().database_url)


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: emit the SQL for a DBA instead of running it."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
                # SQLite DDL is transactional once the driver stops auto-committing (store.db emits BEGIN):
                # a failed migration then leaves the database as it was, as on PostgreSQL.
                transactional_ddl=True,
                compare_type=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Workers and the CLI all migrate at start-up: let one do it, the others then see head.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
