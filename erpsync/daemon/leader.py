"""Who may write: one active erpsync per database.

- PostgreSQL: any number of ``erpsync run`` processes; the leader holds a *session* advisory lock
  on a dedicated connection (the lock lives exactly as long as that connection). The jobs call
  ``is_leader()`` before every batch (``RunContext.checkpoint``): it asks the server whether this
  session still holds the lock, so a leader whose connection died stops writing at its next batch.
  Standbys retry ``try_acquire()`` every ``retry_seconds``; when a leader dies its connection closes,
  the server frees the lock and a standby takes over at its next attempt.
- SQLite: a single process. An exclusive ``flock`` on ``<database>.lock`` beside the database file
  is taken at start; a second ``erpsync run`` on the same file refuses to start (``AlreadyRunning``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from erpsync.errors import ErpsyncError
from erpsync.logs import get_logger

log = get_logger("erpsync.daemon.leader")

LOCK_NAME = "erpsync.leader"
KEEPALIVE_PROBES = 3


def keepalive_for(takeover_seconds: float) -> int:
    """Keepalive idle/interval (s) so a dead peer is noticed (idle + interval * probes) and a standby
    retries (takeover / 3) within ``takeover_seconds``."""
    return max(1, int(takeover_seconds * 2 / 3 / (1 + KEEPALIVE_PROBES)))


class AlreadyRunning(ErpsyncError):
    """Another erpsync process already runs on this (single-instance) database."""


class Leadership(Protocol):
    kind: str

    def try_acquire(self) -> bool:
        """Become the leader if possible, without blocking. True when this process now leads."""
        ...

    def is_leader(self) -> bool:
        """Re-check (cheaply, against the source of truth) that this process still leads."""
        ...

    def holder(self) -> str | None:
        """Who leads, when known (for status and standby reporting)."""
        ...

    def release(self) -> None: ...


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class AlwaysLeader:
    """For tests and in-process runs that need no coordination (the demo's temporary store)."""

    kind = "none"

    def try_acquire(self) -> bool:
        return True

    def is_leader(self) -> bool:
        return True

    def holder(self) -> str | None:
        return identity()

    def release(self) -> None:
        return None


class FileLock:
    """Single instance on SQLite: an exclusive, non-blocking ``flock`` on a file beside the DB.

    The kernel drops the lock when the process dies (even by SIGKILL), so no stale lock survives.
    """

    kind = "sqlite-file-lock"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_sqlite_url(cls, url: str) -> FileLock:
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError("an in-memory SQLite database cannot be shared: nothing to lock")
        return cls(Path(database + ".lock"))

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{identity()}\n".encode())
        self._fd = fd
        return True

    def acquire_or_raise(self) -> None:
        if not self.try_acquire():
            raise AlreadyRunning(
                f"another erpsync is already running on this SQLite database (lock {self.path} held by "
                f"{self.holder() or 'an unknown process'}); SQLite allows one instance — stop it, or use "
                "PostgreSQL to run several")

    def is_leader(self) -> bool:
        return self._fd is not None

    def holder(self) -> str | None:
        if self._fd is not None:
            return identity()
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PgAdvisoryLeader:
    """Leader election with ``pg_try_advisory_lock`` on a dedicated, unpooled connection.

    The lock key is derived from the current schema, so erpsync installations sharing one database
    in different schemas do not block each other.
    """

    kind = "postgres-advisory-lock"

    def __init__(self, url: str, *, statement_timeout_ms: int = 5000, keepalive_s: int = 5) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._engine: Engine = create_engine(
            parsed, poolclass=NullPool, hide_parameters=True,
            connect_args={
                "application_name": f"erpsync leader {identity()}"[:63],
                "connect_timeout": 5,
                # notice a silently dead network within ~keepalive_s * 3
                "keepalives": 1, "keepalives_idle": max(1, int(keepalive_s)),
                "keepalives_interval": max(1, int(keepalive_s)), "keepalives_count": KEEPALIVE_PROBES,
            })
        self._statement_timeout_ms = statement_timeout_ms
        self._keepalive_s = max(1, int(keepalive_s))
        self._conn: Connection | None = None
        self._key: int | None = None
        self._leading = False
        self._lock = threading.RLock()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f"SET statement_timeout = {int(self._statement_timeout_ms)}"))
            # the *server* must notice a leader host that vanished without closing its socket (power
            # loss, partition): until then it keeps the session and the lock, and with the kernel's
            # default keepalive (2 h) no standby could take over. Ignored on Unix sockets.
            ka = int(self._keepalive_s)
            conn.execute(text(f"SET tcp_keepalives_idle = {ka}; SET tcp_keepalives_interval = {ka}; "
                              f"SET tcp_keepalives_count = {KEEPALIVE_PROBES}"))
            self._key = int(conn.execute(
                text("SELECT hashtextextended(:name || ':' || current_schema(), 0)"),
                {"name": LOCK_NAME}).scalar_one())
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None
        self._leading = False

    def try_acquire(self) -> bool:
        with self._lock:
            if self._leading and self.is_leader():
                return True
            try:
                conn = self._connection()
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar_one())
            except SQLAlchemyError as exc:
                log.warning("leader.acquire_failed", error_class=type(exc).__name__, error=str(exc)[:200])
                self._drop_connection()
                return False
            self._leading = got
            return got

    def is_leader(self) -> bool:
        with self._lock:
            if not self._leading or self._conn is None or self._key is None:
                return False
            hi, lo = (self._key >> 32) & 0xFFFFFFFF, self._key & 0xFFFFFFFF
            try:
                held = bool(self._conn.execute(text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND classid = CAST(:hi AS oid) "
                    "AND objid = CAST(:lo AS oid) AND objsubid = 1)"), {"hi": hi, "lo": lo}).scalar_one())
            except SQLAlchemyError as exc:
                log.error("leader.lost", reason="connection failed", error_class=type(exc).__name__)
                self._drop_connection()
                return False
            if not held:
                log.error("leader.lost", reason="lock no longer held")
                self._leading = False
            return held

    def holder(self) -> str | None:
        """The application_name of the session holding the lock (``erpsync leader host:pid``)."""
        with self._lock:
            try:
                conn = self._connection()
                hi, lo = (self._key or 0) >> 32 & 0xFFFFFFFF, (self._key or 0) & 0xFFFFFFFF
                name = conn.execute(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = CAST(:hi AS oid) "
                    "AND l.objid = CAST(:lo AS oid) AND l.objsubid = 1"), {"hi": hi, "lo": lo}).scalar()
            except SQLAlchemyError:
                self._drop_connection()
                return None
            return str(name).removeprefix("erpsync leader ") if name else None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self._leading and self._key is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._drop_connection()
            self._engine.dispose()


def leadership_for(url: str, takeover_seconds: float = 30.0) -> FileLock | PgAdvisoryLeader:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return FileLock.for_sqlite_url(url)
    if backend == "postgresql":
        return PgAdvisoryLeader(url, keepalive_s=keepalive_for(takeover_seconds))
    raise ValueError(f"no leader election for database backend {backend!r}")
