"""Schema migrations (Alembic), driven from code: ``erpsync db upgrade`` and the start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.errors import SchemaMismatch

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return cfg


#: PostgreSQL advisory lock key held while migrating: instances starting together upgrade one at a time
UPGRADE_LOCK_KEY = 0x65727073796E63  # "erpsync"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` (a no-op when there). Concurrent upgrades on PostgreSQL wait for each
    other (a transaction-level advisory lock): the second finds the schema current. A database at a
    revision this erpsync does not know (newer) is ``SchemaMismatch``."""
    from alembic.util import CommandError
    from sqlalchemy import text

    cfg = _config()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": UPGRADE_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as exc:
        raise SchemaMismatch(f"cannot migrate the database schema: {exc} (is it newer than this erpsync?)") from exc


def revision(engine: Engine, message: str, rev_id: str | None = None) -> None:
    """Autogenerate a new migration from the difference between the database and the models."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_diff(engine: Engine) -> list[object]:
    """Differences between the live schema and the models (empty when they match)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def ensure_current(engine: Engine) -> None:
    """Refuse to run on a schema that is not at the head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaMismatch(
            f"database schema is at revision {current or 'none (empty)'}, this erpsync needs {head}: "
            "run `erpsync db upgrade`")
