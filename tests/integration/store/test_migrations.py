"""The Alembic migrations create the schema on both databases and match the SQLModel metadata."""

import pytest
from sqlalchemy import inspect

from erpsync.errors import SchemaMismatch
from erpsync.store import migrate
from erpsync.store.engine import make_engine


def test_upgrade_creates_schema_twice_is_a_noop_and_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaMismatch, match="erpsync db upgrade"):
            migrate.ensure_current(engine)
        migrate.upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"inbox_event", "id_map", "centra_order", "centra_order_line", "outbound_item",
                "parked_item", "job_run", "quota_bucket"} <= tables
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.upgrade(engine)  # no-op
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert migrate.schema_diff(engine) == []
        migrate.ensure_current(engine)
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, busy_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    finally:
        engine.dispose()
