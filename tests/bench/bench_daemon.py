"""Daemon figures (prints, asserts nothing):

- PostgreSQL takeover latency: the leader's session dies, how long until a standby polling every
  ``takeover / 3`` seconds holds the lock (the configured bound is ``takeover``);
- the leadership re-check every job batch pays (``is_leader()`` round trip);
- scheduler overhead: how late a 0.05 s interval job starts, and how many runs per second it sustains.

Run: ``.venv/bin/python tests/bench/bench_daemon.py`` (PostgreSQL from ERPSYNC_TEST_PG_URL).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.daemon.leader import PgAdvisoryLeader, identity
from erpsync.daemon.service import Daemon, JobSpec
from erpsync.job import Job, RunContext
from erpsync.logs import configure_logging
from erpsync.store.engine import make_engine

PG_URL = os.environ.get("ERPSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def bench_takeover(rounds: int = 5, takeover: float = 3.0) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    latencies, checks = [], []
    for _ in range(rounds):
        leader, standby = PgAdvisoryLeader(PG_URL), PgAdvisoryLeader(PG_URL)
        assert leader.try_acquire() and not standby.try_acquire()
        for _ in range(200):
            t = time.perf_counter()
            leader.is_leader()
            checks.append(time.perf_counter() - t)
        acquired: list[float] = []

        def poll(standby: PgAdvisoryLeader = standby, acquired: list[float] = acquired) -> None:
            # the standby polls the way the daemon's loop does, at its own phase
            while not standby.try_acquire():
                time.sleep(takeover / 3)
            acquired.append(time.perf_counter())

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(random.uniform(0.1, takeover))
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = :n AND pid IN (SELECT pid FROM pg_locks "
                              "WHERE locktype = 'advisory') AND pid <> pg_backend_pid()"),
                         {"n": f"erpsync leader {identity()}"[:63]})
        died = time.perf_counter()
        poller.join(30)
        assert acquired
        latencies.append(acquired[0] - died)
        leader.release()
        standby.release()
    admin.dispose()
    print(f"takeover (poll every {takeover / 3:.1f}s, bound {takeover:.1f}s): "
          f"median {statistics.median(latencies):.3f}s, max {max(latencies):.3f}s over {rounds} rounds")
    print(f"is_leader() re-check per batch: median {statistics.median(checks) * 1000:.2f} ms, "
          f"p99 {sorted(checks)[int(len(checks) * 0.99)] * 1000:.2f} ms")


class Tick(Job):
    name = "tick"

    def __init__(self, *a: object, **k: object) -> None:
        super().__init__(*a, **k)  # type: ignore[arg-type]
        self.starts: list[float] = []

    def execute(self, run: RunContext) -> None:
        self.starts.append(time.monotonic())


def bench_scheduler(seconds: float = 5.0, interval: float = 0.05) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        eng = make_engine(f"sqlite:///{Path(tmp) / 'b.db'}")
        SQLModel.metadata.create_all(eng)
        stop = threading.Event()
        job = Tick(eng, stop_event=stop)
        d = Daemon(eng, [JobSpec("tick", job, IntervalTrigger(seconds=interval))], stop_event=stop, environ={},
                   loop_interval=0.2)
        t = threading.Thread(target=lambda: d.serve(install_signals=False))
        t.start()
        time.sleep(seconds)
        d.request_stop()
        t.join(30)
        eng.dispose()
    gaps = [b - a for a, b in zip(job.starts, job.starts[1:], strict=False)]
    print(f"scheduler: {len(job.starts)} runs in {seconds:.0f}s of a {interval}s job (each run writes 2 job_run "
          f"transactions on SQLite); start gap median {statistics.median(gaps) * 1000:.1f} ms, "
          f"max {max(gaps) * 1000:.1f} ms")


if __name__ == "__main__":
    configure_logging("WARNING", "console")
    bench_takeover()
    bench_scheduler()
