"""``erpsync db upgrade|status``: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from erpsync.cli.base import Ctx, echo
from erpsync.errors import SchemaMismatch


@click.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: Ctx, revision: str) -> None:
    """Create or migrate the schema to the current version (a no-op when already current)."""
    from erpsync.store import migrate
    from erpsync.store.engine import make_engine

    s = obj.settings(require_secrets=False)
    engine = make_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    echo(f"schema at {after}" + (" (already current)" if before == after else f" (was {before or 'empty'})"))


@db_group.command("status")
@click.pass_obj
def db_status(obj: Ctx) -> None:
    """Show the schema revision of the database and the one this erpsync needs."""
    from erpsync.store import migrate
    from erpsync.store.engine import make_engine

    s = obj.settings(require_secrets=False)
    engine = make_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
    echo(f"database: {current or 'empty'}; required: {head}; {'current' if current == head else 'OUT OF DATE'}")
    if current != head:
        raise SchemaMismatch(f"the database schema is at {current or 'none (empty)'}, this erpsync needs {head}: "
                             "run `erpsync db upgrade`")
