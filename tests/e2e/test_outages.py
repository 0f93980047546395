"""Every command, every outage: one line on stderr and a meaningful exit code (75 transient,
78 config, 2 fatal/auth, 130 interrupted), never a traceback.

The commands run in-process (Click's runner) through the same group as ``erpsync`` itself, so the
CLI's one error translator (``erpsync.cli.base.translate``) is what is tested; one process runs
the whole command × outage table.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlmodel import SQLModel

from erpsync.cli.main import cli
from erpsync.clock import FakeClock
from erpsync.inbound.pull import PullJob
from erpsync.store import migrate
from erpsync.store.engine import make_engine
from tests.integration.inbound.fakes import FakeQueue, order_event

CONFIG = """
[centra.soap]
url = "{soap_url}"
username = "erp"
read_timeout = 0.5
[centra.graphql]
url = "{graphql_url}"
read_timeout = 0.5
[logging]
level = "WARNING"
format = "json"
[push]
max_attempts = 1
unknown_outcome_wait_seconds = 0
"""


def _env(tmp_path: Path, db_url: str, soap_url: str = "http://127.0.0.1:9/soap",
         graphql_url: str = "http://127.0.0.1:9/graphql", token: str = "tok-1234") -> dict[str, str]:
    path = tmp_path / "erpsync.toml"
    path.write_text(CONFIG.format(soap_url=soap_url, graphql_url=graphql_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERPSYNC_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update({"ERPSYNC_CONFIG": str(path), "ERPSYNC_DATABASE_URL": db_url,
                "ERPSYNC_CENTRA_SOAP_PASSWORD": "pw-1234", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": token})
    return env


class Outcome:
    def __init__(self, args: list[str], code: int, stdout: str, stderr: str, exc: BaseException | None) -> None:
        self.args, self.code, self.stdout, self.stderr, self.exc = args, code, stdout, stderr, exc
        # log lines are JSON objects; what the operator reads are the other lines
        self.lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.lstrip().startswith(("{", "<"))]

    def __repr__(self) -> str:
        return f"erpsync {' '.join(self.args)} -> {self.code}: {self.lines} {self.exc!r}"


def invoke(args: list[str], env: dict[str, str]) -> Outcome:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        r = CliRunner().invoke(cli, args, env=env)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    exc = None if r.exception is None or isinstance(r.exception, SystemExit) else r.exception
    return Outcome(args, r.exit_code, r.stdout, r.stderr, exc)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    out = tmp_path / "sample"
    r = CliRunner().invoke(cli, ["sample", "generate", str(out), "--products", "2"])
    assert r.exit_code == 0, r.output
    return out


def _commands(tmp_path: Path, sample: Path) -> list[list[str]]:
    return [["db", "upgrade"], ["db", "status"], ["status"], ["push", "stock", "--once"], ["push", "all", "--once"],
            ["plan"], ["import", str(sample / "stock.csv")], ["quota"], ["pull", "--once"],
            ["export", "--out", str(tmp_path / "export")], ["events", "stats"], ["parked", "list"],
            ["resync", "stock"]]


def _down_url(db_url: str, tmp_path: Path) -> tuple[str, str]:
    """A database that cannot be reached, and the word the one line must name it by."""
    if db_url.startswith("sqlite"):
        (tmp_path / "down.db").mkdir()  # a directory where the file should be: cannot be opened
        return f"sqlite:///{tmp_path / 'down.db'}", "down.db"
    return "postgresql+psycopg://postgres@127.0.0.1:1/erpsync?connect_timeout=2", "127.0.0.1:1"


def test_every_command_database_down_or_empty(tmp_path: Path, db_url: str, sample: Path) -> None:
    down_url, where = _down_url(db_url, tmp_path)
    bad: list[str] = []
    for outage, url in (("down", down_url), ("empty", db_url)):
        env = _env(tmp_path, url)
        for args in _commands(tmp_path, sample):
            if outage == "empty" and args[:2] == ["db", "upgrade"]:
                continue  # it would create the schema: run last
            o = invoke(args, env)
            if outage == "down":
                expected, must = 75, where
            elif args[0] == "status":
                expected, must = 75, "cannot read the database"  # documented: 75 = cannot be read
            else:
                expected, must = 2, "db upgrade"
            if o.exc is not None or o.code != expected or len(o.lines) != 1 or must not in o.lines[0] \
                    or not o.lines[0].startswith("erpsync:"):
                bad.append(f"[{outage}] expected {expected} and one line naming {must!r}: {o!r}")
    assert bad == [], "\n".join(bad)
    assert invoke(["db", "upgrade"], _env(tmp_path, db_url)).code == 0


class _Slow(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        time.sleep(2)
        try:
            self.send_response(500)
            self.end_headers()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_connection_errors_name_the_cause_and_the_host(tmp_path: Path, sqlite_url: str, slow_server: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from erpsync.inbound import pull
    from erpsync.inbound.retry import Backoff

    monkeypatch.setattr(pull, "Backoff", lambda: Backoff(attempts=1))  # one try: the table stays fast
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    outages = {
        "dns": ("no-such-host.invalid:80", "http", "DNS"),
        "refused": ("127.0.0.1:1", "http", "refused"),
        "tls": (slow_server, "https", "TLS"),
        "timeout": (slow_server, "http", "timed out"),
    }
    bad = []
    for outage, (host, scheme, cause) in outages.items():
        env = _env(tmp_path, sqlite_url, soap_url=f"{scheme}://{host}/soap", graphql_url=f"{scheme}://{host}/graphql")
        for args in (["pull", "--once"], ["quota", "--remote"], ["push", "all", "--once"]):
            o = invoke(args, env)
            text = "\n".join(o.lines) + o.stdout
            if o.exc is not None or o.code != 75 or cause not in text or host.split(":")[0] not in text:
                bad.append(f"[{outage}] expected 75 naming {cause!r} and {host!r}: {o!r} {o.stdout!r}")
    assert bad == [], "\n".join(bad)


def test_a_soap_url_that_is_not_soap_says_so(tmp_path: Path, sqlite_url: str, sim: Any) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    o = invoke(["pull", "--once"], _env(tmp_path, sqlite_url, soap_url=sim.graphql_url, graphql_url=sim.graphql_url))
    # transient like any unexpected answer (a proxy's page looks the same): 75, and said clearly
    text = "\n".join(o.lines) + o.stdout
    assert o.code == 75 and o.exc is None, o
    assert "not SOAP" in text and "username and password" not in text, (o, o.stdout)


def test_push_with_a_rejected_token_and_nothing_to_send_exits_2(tmp_path: Path, sqlite_url: str, sim: Any) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    o = invoke(["push", "all", "--once"], _env(tmp_path, sqlite_url, graphql_url=sim.graphql_url, token="wrong"))
    assert o.code == 2 and o.lines and o.lines[-1].startswith("erpsync: AuthenticationFailed"), o


def test_ctrl_c_during_push_exits_130(tmp_path: Path, sqlite_url: str, sample: Path, slow_server: str) -> None:
    env = _env(tmp_path, sqlite_url, graphql_url=f"http://{slow_server}/graphql")
    assert invoke(["db", "upgrade"], env).code == 0
    assert invoke(["import", str(sample)], env).code == 0
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        o = invoke(["push", "all", "--once"], env)
    finally:
        timer.cancel()
    assert o.code == 130, o


def test_export_on_a_full_disk_leaves_nothing_and_exits_75(tmp_path: Path, sqlite_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    SQLModel.metadata.create_all(engine)
    clock = FakeClock(1_790_000_000.0)
    job = PullJob(engine, FakeQueue([order_event(1, "O1", "10.50", lines=2)]),
                  store_tz=ZoneInfo("Europe/Stockholm"), clock=clock)
    assert job.run().outcome == "ok"
    engine.dispose()
    from erpsync.inbound import export

    calls = []

    def full_disk(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the second file: the first is written and must go too
            raise OSError(errno.ENOSPC, "No space left on device")
        os.fsync(fd)

    monkeypatch.setattr(export.os, "fsync", full_disk)
    out = tmp_path / "export"
    o = invoke(["export", "--out", str(out)], _env(tmp_path, sqlite_url))
    assert o.code == 75 and len(o.lines) == 1 and "disk full" in o.lines[0], o
    assert list(out.iterdir()) == []  # no .part, no half export
    monkeypatch.undo()
    again = invoke(["export", "--out", str(out)], _env(tmp_path, sqlite_url))
    assert again.code == 0 and "1 order(s)" in again.stdout, again  # the cursor did not move
