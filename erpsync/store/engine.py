"""Engines and transactions. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every
transaction (deferred BEGIN loses updates or fails with "database is locked" under concurrent
read-then-write; see STACK-NOTES); PostgreSQL uses psycopg 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, echo: bool = False, **kwargs: Any) -> Engine:
    """Build the engine for ``url``. Nothing connects until first use. Bound parameters (customer
    e-mails, addresses, payloads) are never logged nor put in error messages, at any log level
    (``hide_parameters``): the statement is enough to diagnose."""
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_serializer", json_text)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs)
        _sqlite_pragmas(engine, busy_timeout_ms)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)


# JSON columns (Centra payloads: a few KB per order, written twice per line) serialised exactly as
# json.dumps does, without its reference-cycle bookkeeping (payloads are trees parsed from XML or
# JSON: they cannot hold a cycle). A fifth cheaper, measured on order payloads.
_JSON = json.JSONEncoder(check_circular=False)


def json_text(value: Any) -> str:
    """A JSON column's text: orjson (several times faster than the json module on Centra payloads:
    the largest share of storing an order on SQLite), falling back to ``json`` for what orjson
    refuses (integers beyond 64 bits, keys that are not strings) so every value json could store
    still stores. The text is compact; both databases read it back to the same value."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _JSON.encode(value)


def make_read_engine(url: str, *, busy_timeout_ms: int = 10_000) -> Engine:
    """An engine for read-only figures and reports (``status``, ``/metrics``, ``plan``, the demo).

    On SQLite it skips ``make_engine``'s ``BEGIN IMMEDIATE``: a reader must never take the write
    lock the jobs need (WAL readers need no lock; each SELECT sees one consistent snapshot).
    """
    if make_url(url).get_backend_name() != "sqlite":
        return make_engine(url, busy_timeout_ms=busy_timeout_ms)
    return create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, hide_parameters=True)


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
