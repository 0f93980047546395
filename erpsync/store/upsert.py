"""One helper for INSERT … ON CONFLICT on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session


def insert_stmt(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"upsert not supported on {dialect}: erpsync ships SQLite and PostgreSQL")


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
    where: Any = None,
) -> None:
    """Insert ``rows``; on a conflict on ``key`` update ``update`` columns (all non-key by default),
    or do nothing when ``update`` is empty. ``where`` guards the update (e.g. only if newer)."""
    if isinstance(rows, Mapping):
        rows = [rows]
    if not rows:
        return
    stmt: Insert = insert_stmt(session, table).values(list(rows))
    cols = list(update) if update is not None else [c for c in rows[0] if c not in key]
    if not cols:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))  # type: ignore[attr-defined]
    else:
        stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=list(key),
            set_={c: stmt.excluded[c] for c in cols},  # type: ignore[attr-defined]
            where=where,
        )
    session.exec(stmt)  # type: ignore[call-overload]
