"""Graceful shutdown, the second signal, and sd_notify over a real datagram socket."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from erpsync.daemon.notify import SystemdNotifier, watchdog_interval
from erpsync.daemon.service import Daemon, JobSpec
from erpsync.store.engine import make_engine
from erpsync.store.models import JobRun
from tests.integration.daemon.helpers import NotifySocket, running, scripted, wait_for


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def every(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone="UTC")


def test_stop_lets_the_running_batch_finish_commits_and_exits_0(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("push_stock", sqlite_engine, ["batches"], stop_event=stop)
    d = Daemon(sqlite_engine, [JobSpec("push_stock", job, every(60))], stop_event=stop, environ={},
               loop_interval=0.05, grace_seconds=5)
    with running(d) as t:
        wait_for(job.in_batch.is_set, 5, "job in a batch")
        time.sleep(0.12)
        code = t.stop()
    assert code == 0
    with Session(sqlite_engine) as s:
        row = s.exec(select(JobRun)).scalars().one()  # type: ignore[call-overload]
    assert row.outcome == "stopped" and row.finished_at is not None
    assert row.counts == {"pushed": job.batches_done} and job.batches_done >= 1


def test_grace_expiry_exits_at_once_with_code_1(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    exits: list[int] = []
    job = scripted("push_stock", sqlite_engine, ["batches"], stop_event=stop)
    job.ignore_stop = True
    d = Daemon(sqlite_engine, [JobSpec("push_stock", job, every(60))], stop_event=stop, environ={},
               loop_interval=0.05, grace_seconds=0.3, hard_exit=exits.append)
    with running(d) as t:
        wait_for(lambda: job.batches_done >= 1, 5, "job stuck in a batch")
        t0 = time.monotonic()
        code = t.stop()
        assert time.monotonic() - t0 < 3
    job.release.set()  # let the stuck thread end so the test leaves nothing behind
    assert code == 1 and exits == [1]


def test_second_signal_exits_immediately(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    exits: list[int] = []
    d = Daemon(sqlite_engine, [], stop_event=stop, environ={}, hard_exit=exits.append)
    d.request_stop(signal.SIGTERM)
    assert stop.is_set() and exits == []
    d.request_stop(signal.SIGINT)
    assert exits == [128 + signal.SIGINT]
    d.close()


def test_notifier_speaks_the_datagram_protocol(notify_socket: NotifySocket, tmp_path: Path) -> None:
    n = SystemdNotifier.from_environ({"NOTIFY_SOCKET": str(notify_socket.path)})
    assert n.ready("starting") and n.status("pulled 3 events") and n.watchdog() and n.stopping()
    n.close()
    msgs = notify_socket.drain()
    assert msgs[0]["READY"] == "1" and msgs[0]["STATUS"] == "starting" and msgs[0]["MAINPID"].isdigit()
    assert msgs[1:] == [{"STATUS": "pulled 3 events"}, {"WATCHDOG": "1"}, {"STOPPING": "1"}]
    # no socket: a no-op; a vanished socket: counted, not raised
    assert SystemdNotifier.from_environ({}).send(READY=1) is False
    gone = SystemdNotifier(str(tmp_path / "missing.sock"))
    assert gone.watchdog() is False and gone.failed_sends == 1
    gone.close()


def test_notifier_abstract_namespace_socket() -> None:
    import socket as so

    name = f"erpsync-test-{time.monotonic_ns()}"
    srv = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    srv.bind("\0" + name)
    srv.settimeout(2)
    try:
        n = SystemdNotifier(f"@{name}")
        assert n.watchdog()
        n.close()
        assert srv.recv(100) == b"WATCHDOG=1"
    finally:
        srv.close()


def test_watchdog_interval_from_environment() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


def test_daemon_notifies_ready_status_watchdog_stopping_and_stops_pinging_when_wedged(
        sqlite_engine: Engine, notify_socket: NotifySocket) -> None:
    stop = threading.Event()
    wedge = threading.Event()
    job = scripted("pull", sqlite_engine, [], stop_event=stop)

    def status_hook() -> str | None:
        while wedge.is_set():  # the loop is stuck here: no tick, so no watchdog ping
            time.sleep(0.01)
        return None

    environ = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "200000"}
    d = Daemon(sqlite_engine, [JobSpec("pull", job, every(0.2))], stop_event=stop, environ=environ,
               loop_interval=0.02, stall_after=0.3, status_hook=status_hook)

    def pings() -> int:
        return sum(1 for m in notify_socket.drain() if m.get("WATCHDOG") == "1")

    with running(d) as t:
        wait_for(lambda: pings() >= 3, 5, "watchdog pings")
        msgs = notify_socket.drain()
        assert msgs[0]["READY"] == "1" and "single" in msgs[0]["STATUS"]
        wait_for(lambda: any("pulled 3 events" in m.get("STATUS", "")
                             for m in notify_socket.drain()), 5, "STATUS with figures")

        # 1) the supervising loop is wedged: pings stop
        wedge.set()
        time.sleep(0.1)
        before = pings()
        time.sleep(0.5)
        assert pings() == before
        wedge.clear()
        wait_for(lambda: pings() > before, 5, "pings resume")

        # 2) the scheduler is wedged (its heartbeat job no longer runs): pings stop too
        d.scheduler.pause()
        time.sleep(0.4)  # heartbeat goes stale after stall_after
        before = pings()
        time.sleep(0.5)
        assert pings() == before
        assert "scheduler stalled" in d.status_text()
        d.scheduler.resume()
        wait_for(lambda: pings() > before, 5, "pings resume after the scheduler recovers")
        assert t.stop() == 0
    assert notify_socket.drain()[-1].get("STOPPING") == "1"


def test_stopping_extends_systemds_stop_timeout_to_cover_the_grace(
        sqlite_engine: Engine, notify_socket: NotifySocket) -> None:
    """An operator who raises daemon.shutdown_grace_seconds past the unit's TimeoutStopSec must not
    see the running batch SIGKILLed: STOPPING=1 asks systemd for the grace (EXTEND_TIMEOUT_USEC)."""
    stop = threading.Event()
    d = Daemon(sqlite_engine, [], stop_event=stop, environ={"NOTIFY_SOCKET": str(notify_socket.path)},
               loop_interval=0.02, grace_seconds=120)
    with running(d) as t:
        assert t.stop() == 0
    stopping = [m for m in notify_socket.drain() if m.get("STOPPING") == "1"]
    assert len(stopping) == 1
    assert int(stopping[0]["EXTEND_TIMEOUT_USEC"]) >= 120_000_000


def test_second_signal_exits_even_while_stderr_is_in_use(sqlite_engine: Engine,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler runs between the main thread's bytecodes, possibly inside a write to stderr:
    writing there again raises 'reentrant call' and must not prevent the exit."""
    import sys

    class BusyStream:
        def write(self, _text: str) -> int:
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

        def flush(self) -> None:
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

    exits: list[int] = []
    d = Daemon(sqlite_engine, [], stop_event=threading.Event(), environ={}, hard_exit=exits.append)
    monkeypatch.setattr(sys, "stderr", BusyStream())
    d.request_stop(signal.SIGTERM)
    d.request_stop(signal.SIGTERM)
    monkeypatch.undo()
    d.close()
    assert exits == [128 + signal.SIGTERM]


def test_sigterm_during_a_retry_after_wait_stops_at_once_and_exits_0(tmp_path: Path) -> None:
    """A job waiting out a long Retry-After (or a quota wait) has nothing uncommitted: SIGTERM ends
    the wait, the run ends 'stopped' and the daemon exits 0 instead of letting the grace expire
    (exit 1, a failed unit on every `systemctl stop` during a Centra outage)."""
    from erpsync.app import build_app
    from erpsync.config import Settings
    from erpsync.daemon.leader import AlwaysLeader
    from erpsync.errors import SourceUnavailable
    from tests.integration.daemon.helpers import DaemonThread

    class DownSource:
        def __init__(self) -> None:
            self.fetches = 0

        def fetch(self) -> list[object]:
            self.fetches += 1
            raise SourceUnavailable("503 Service Unavailable", retry_after=300)

        def ack(self, ids: list[str]) -> None:
            raise AssertionError("nothing to ack")

    url = f"sqlite:///{tmp_path / 'e.db'}"
    eng = make_engine(url)
    SQLModel.metadata.create_all(eng)
    settings = Settings.model_validate({
        "centra": {"soap": {"url": "http://127.0.0.1:9/soap", "username": "u", "password": "pw"},
                   "graphql": {"url": "http://127.0.0.1:9/graphql", "token": "tok"}},
        "database": {"url": url}, "daemon": {"metrics_port": 0}})
    exits: list[int] = []
    source = DownSource()
    app = build_app(settings, jobs=["pull"], engine=eng, leadership=AlwaysLeader(), environ={}, soap=source,
                    daemon_options={"grace_seconds": 30.0, "loop_interval": 0.05, "hard_exit": exits.append})
    try:
        t = DaemonThread(app.daemon).start()
        wait_for(lambda: source.fetches >= 1, 5, "the pull waiting out Retry-After")
        time.sleep(0.2)
        t0 = time.monotonic()
        code = t.stop(timeout=40)
        took = time.monotonic() - t0
    finally:
        app.close()
    assert exits == [] and code == 0, (exits, code)
    assert took < 15, took  # far inside the 300 s Retry-After (and the grace): the wait was cut short
    with Session(eng) as s:
        row = s.exec(select(JobRun)).scalars().one()  # type: ignore[call-overload]
    assert row.outcome == "stopped"
    eng.dispose()


@pytest.mark.parametrize("reload_ok", [True, False])
def test_sighup_reload_speaks_reloading_then_ready(sqlite_engine: Engine, notify_socket: NotifySocket,
                                                   reload_ok: bool) -> None:
    """systemd (Type=notify, `systemctl reload`) hears RELOADING=1 with MONOTONIC_USEC when the
    reload starts and READY=1 when it is done — also when the new config is refused."""
    stop = threading.Event()

    def reload() -> dict[str, IntervalTrigger]:
        if not reload_ok:
            raise ValueError("bad config")
        return {}

    d = Daemon(sqlite_engine, [], stop_event=stop, environ={"NOTIFY_SOCKET": str(notify_socket.path)},
               loop_interval=0.02, reload=reload)
    with running(d) as t:
        wait_for(lambda: any(m.get("READY") == "1" for m in notify_socket.drain()), 5, "READY=1 at start")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notify_socket.messages.clear()
        d._on_sighup(signal.SIGHUP, None)
        wait_for(lambda: any(m.get("READY") == "1" for m in notify_socket.drain()), 5, "READY=1 after reload")
        t.stop()
    msgs = notify_socket.drain()
    reloading = [i for i, m in enumerate(msgs) if m.get("RELOADING") == "1"]
    ready = [i for i, m in enumerate(msgs) if m.get("READY") == "1"]
    assert len(reloading) == 1 and ready and reloading[0] < ready[0]
    usec = int(msgs[reloading[0]]["MONOTONIC_USEC"])
    assert before <= usec <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
