"""Leader election primitives against real PostgreSQL and real files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from erpsync.daemon.leader import AlreadyRunning, FileLock, PgAdvisoryLeader, identity
from erpsync.store.engine import make_engine
from tests.integration.daemon.helpers import scripted, wait_for


@pytest.mark.postgres
def test_only_one_pg_session_leads_and_release_hands_over(pg_url: str) -> None:
    a, b = PgAdvisoryLeader(pg_url), PgAdvisoryLeader(pg_url)
    try:
        assert a.try_acquire() and a.is_leader()
        assert not b.try_acquire() and not b.is_leader()
        assert b.holder() == identity()  # both live in this test process
        a.release()
        assert not a.is_leader()
        assert b.try_acquire() and b.is_leader()
    finally:
        a.release()
        b.release()


@pytest.mark.postgres
def test_locks_in_different_schemas_do_not_collide(pg_url: str) -> None:
    other = pg_url.rsplit("search_path%3D", 1)[0] + "search_path%3Dpublic"
    a, b = PgAdvisoryLeader(pg_url), PgAdvisoryLeader(other)
    try:
        assert a.try_acquire() and b.try_acquire()
    finally:
        a.release()
        b.release()


@pytest.mark.postgres
def test_a_leader_whose_session_dies_stops_writing_at_its_next_batch(pg_url: str) -> None:
    eng = make_engine(pg_url)
    SQLModel.metadata.create_all(eng)
    leader = PgAdvisoryLeader(pg_url)
    admin = create_engine(pg_url.split("?", maxsplit=1)[0], isolation_level="AUTOCOMMIT")
    try:
        assert leader.try_acquire()
        stop = threading.Event()
        job = scripted("push_stock", eng, ["batches"], stop_event=stop, may_write=leader.is_leader)
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(job.run().outcome))
        t.start()
        wait_for(lambda: job.batches_done >= 2, 10, "batches")
        with admin.connect() as conn:  # the server ends the leader's session (as a network loss would)
            killed = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name "
                "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"),
                {"name": f"erpsync leader {identity()}"[:63]}).scalars().all()
        assert killed and all(killed)
        t.join(10)
        assert result == ["stopped"]
        assert not leader.is_leader()
        assert leader.try_acquire()  # reconnects and leads again once the lock is free
    finally:
        leader.release()
        admin.dispose()
        eng.dispose()


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erpsync.db'}"
    first, second = FileLock.for_sqlite_url(url), FileLock.for_sqlite_url(url)
    first.acquire_or_raise()
    try:
        with pytest.raises(AlreadyRunning, match="already running on this SQLite database"):
            second.acquire_or_raise()
        assert second.holder() is not None
    finally:
        first.release()
    second.acquire_or_raise()
    second.release()
    with pytest.raises(ValueError):
        FileLock.for_sqlite_url("sqlite:///:memory:")


@pytest.mark.postgres
def test_the_server_notices_a_vanished_leader_host_within_the_takeover_time(pg_url: str) -> None:
    """A leader host that loses power or network sends no FIN: the server keeps its session (and
    the lock) until the *server's* TCP keepalive gives up, 2 h by the kernel default. The leader
    session therefore sets the server-side keepalives from the takeover time."""
    from erpsync.app import leadership_for
    from erpsync.config import Settings

    settings = Settings.model_validate({
        "centra": {"soap": {"url": "http://127.0.0.1:9/soap", "username": "u", "password": "pw"},
                   "graphql": {"url": "http://127.0.0.1:9/graphql", "token": "tok"}},
        "database": {"url": pg_url}, "daemon": {"leader_takeover_seconds": 12}})
    leader = leadership_for(settings)
    assert isinstance(leader, PgAdvisoryLeader)
    try:
        assert leader.try_acquire()
        assert leader._conn is not None
        got = {name: int(leader._conn.execute(text(f"SHOW {name}")).scalar_one())
               for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")}
    finally:
        leader.release()
    idle, interval, count = got["tcp_keepalives_idle"], got["tcp_keepalives_interval"], got["tcp_keepalives_count"]
    assert idle > 0 and interval > 0 and count > 0
    # dead-peer detection plus one standby retry (takeover / 3) fits in the takeover time
    assert idle + interval * count + 12 / 3 <= 12
