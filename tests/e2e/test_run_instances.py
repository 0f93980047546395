"""``erpsync run`` as a process: single instance on SQLite, leader/standby on PostgreSQL, SIGTERM,
``erpsync status`` and ``/metrics`` agreeing with the database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from erpsync.daemon.leader import FileLock
from tests.integration.daemon.procs import ROOT, Proc, base_env, free_port, prepare_db, write_config


def status(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erpsync", "--config", str(config), "status", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_sqlite_single_instance_sigterm_status_and_metrics(tmp_path: Path, sqlite_url: str) -> None:
    prepare_db(sqlite_url)
    port = free_port()
    config = write_config(tmp_path / "erpsync.toml", metrics_port=port)
    env = base_env(sqlite_url)
    first = Proc(["--config", str(config), "run", "--only", "housekeeping"], env)
    try:
        first.wait_event("daemon.started", role="single")
        second = Proc(["--config", str(config), "run", "--only", "housekeeping"], env)
        code = second.wait(30)
        out = "\n".join(second.lines)
        assert code == 75, out
        assert "already running on this SQLite database" in out and "erpsync.db.lock" in out

        time.sleep(0.5)
        st = status(config, env, "--json")
        assert st.returncode == 0, st.stdout + st.stderr
        data = json.loads(st.stdout)
        assert data["daemon"]["running"] and data["daemon"]["leader"]["role"] == "single"
        assert data["jobs"]["housekeeping"]["next_run"] is not None
        assert data["inbox_backlog"] == 0

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert "erpsync_leader 1.0" in metrics and "erpsync_inbox_backlog 0.0" in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["ok"] is True

        first.p.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        first.wait_event("daemon.stopped")
        for line in first.lines:  # secrets never reach the log
            assert "soap-secret-pw" not in line and "gql-secret-token" not in line
    finally:
        first.kill()
    after = status(config, env)  # the human table
    assert after.returncode == 3, after.stdout + after.stderr
    assert "daemon: not running" in after.stdout and "housekeeping" in after.stdout
    # the lock died with the process: the next instance may start
    lock = FileLock.for_sqlite_url(sqlite_url)
    lock.acquire_or_raise()
    lock.release()


def test_run_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    config = write_config(tmp_path / "erpsync.toml")
    p = Proc(["--config", str(config), "run", "--only", "housekeeping"], base_env(url))
    assert p.wait(30) == 2
    assert "erpsync db upgrade" in "\n".join(p.lines)


@pytest.mark.postgres
def test_postgres_one_leader_and_standby_takes_over_after_kill_9(tmp_path: Path, pg_url: str) -> None:
    prepare_db(pg_url)
    config = write_config(tmp_path / "erpsync.toml", takeover=3.0)
    env = base_env(pg_url)
    a = Proc(["--config", str(config), "run", "--only", "housekeeping"], env)
    b: Proc | None = None
    try:
        a.wait_event("leader.acquired")
        b = Proc(["--config", str(config), "run", "--only", "housekeeping"], env)
        b.wait_event("leader.standby")
        time.sleep(1.5)
        assert not any(e.get("event") == "leader.acquired" for e in b.events())
        st = json.loads(status(config, env, "--json").stdout)
        assert st["daemon"]["leader"]["pid"] == a.p.pid
        assert [s["pid"] for s in st["daemon"]["standbys"]] == [b.p.pid]

        a.p.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.wait(10)
        b.wait_event("leader.acquired", timeout=10)
        took = time.monotonic() - killed
        assert took <= 3.0, f"standby took {took:.1f}s, configured 3s"
        b.p.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_run_with_the_database_down_exits_75_with_a_clear_message(tmp_path: Path) -> None:
    """A database that is down at start (remote PostgreSQL rebooting) is transient: a one-line
    reason and EX_TEMPFAIL for systemd to retry, not a traceback."""
    url = "postgresql+psycopg://erpsync@127.0.0.1:1/erpsync?connect_timeout=3"
    config = write_config(tmp_path / "erpsync.toml")
    p = Proc(["--config", str(config), "run", "--only", "housekeeping"], base_env(url))
    code = p.wait(30)
    out = "\n".join(p.lines)
    assert code == 75, out
    assert "Traceback" not in out, out
    assert "database" in out and "127.0.0.1:1" in out, out


def test_status_with_the_database_down_says_so_in_one_line(tmp_path: Path) -> None:
    """Operators run `erpsync status` precisely when something is wrong: no traceback."""
    url = "postgresql+psycopg://erpsync:pw-not-shown@127.0.0.1:1/erpsync?connect_timeout=3"
    config = write_config(tmp_path / "erpsync.toml")
    st = status(config, base_env(url))
    out = st.stdout + st.stderr
    assert st.returncode == 75, out
    assert "Traceback" not in out and "pw-not-shown" not in out, out
    assert "cannot read the database" in out and "127.0.0.1:1" in out, out
