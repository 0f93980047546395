"""Alembic environment. Run through ``erpsync db upgrade`` (erpsync.store.migrate), which hands
over an open connection in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401  (registers every table on the metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
