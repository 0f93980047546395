"""Helpers to run ``erpsync run`` as a real subprocess and watch its JSON log lines."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.store import migrate
from erpsync.store.engine import make_engine

ROOT = Path(__file__).parents[3]

CONFIG = """
[centra.soap]
url = "{soap_url}"
username = "erp-user"
[centra.graphql]
url = "{graphql_url}"
[logging]
format = "json"
level = "INFO"
[daemon]
shutdown_grace_seconds = 20.0
metrics_port = {metrics_port}
leader_takeover_seconds = {takeover}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, *, soap_url: str = "http://127.0.0.1:9/soap",
                 graphql_url: str = "http://127.0.0.1:9/graphql", metrics_port: int = 0,
                 takeover: float = 30.0, extra: str = "") -> Path:
    path.write_text(CONFIG.format(soap_url=soap_url, graphql_url=graphql_url, metrics_port=metrics_port,
                                  takeover=takeover) + extra)
    return path


def prepare_db(url: str) -> None:
    """Schema at head (as `erpsync db upgrade` leaves it) plus any table newer than the migration."""
    eng = make_engine(url)
    try:
        migrate.upgrade(eng)
        SQLModel.metadata.create_all(eng)
    finally:
        eng.dispose()


def base_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ERPSYNC_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update({
        "ERPSYNC_DATABASE_URL": db_url,
        "ERPSYNC_CENTRA_SOAP_PASSWORD": "soap-secret-pw",
        "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "gql-secret-token",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class Proc:
    """``python -m erpsync ...`` (or another ``module``) with its output lines collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str], module: str = "erpsync") -> None:
        self.p = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
        self.p.stdout.close()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_event(self, name: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events():
                if e.get("event") == name and all(e.get(k) == v for k, v in match.items()):
                    return e
            if self.p.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {name} {match} within {timeout}s; output:\n" + "\n".join(self.lines[-40:]))

    def wait(self, timeout: float = 30) -> int:
        code = self.p.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.wait(10)


class SimProc:
    """``erpsync sim`` as a subprocess on a free port, driven over its ``/_sim`` HTTP API."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
        self.proc = Proc(["sim", "--port", str(self.port), *args], env)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/_sim/health")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.p.poll() is not None:
                    raise AssertionError("simulator did not start:\n" + "\n".join(self.proc.lines)) from None
                time.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def soap_url(self) -> str:
        return f"{self.base}/ams/system/service/module/soap/api"

    @property
    def graphql_url(self) -> str:
        return f"{self.base}/graphql"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        req = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def generate(self, count: int) -> list[str]:
        return [str(i) for i in self.post("/_sim/generate", {"count": count})["ids"]]

    def stop(self) -> None:
        if self.proc.p.poll() is None:
            self.proc.p.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


SIM_SECRETS = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "s3cret", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "sim-token"}

FAST_JOBS = """
[quota]
tier = "enterprise"
refresh_seconds = 30.0
[pull]
interval_seconds = 1.0
[push]
stock_interval_seconds = 1.0
prices_interval_seconds = 1.0
products_interval_seconds = 1.0
"""


def scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return str(resp.read().decode())


def metric_value(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line == name:
            return float(line.split()[-1])
    return None


def import_erp(db_url: str, paths: list[Path], *, mode: str = "snapshot", entity: str | None = None) -> None:
    """Load ERP files into staging in-process (what ``erpsync import`` does; its CLI has its own tests)."""
    from erpsync.erp.files import import_files
    from erpsync.erp.loader import StagingLoader

    eng = make_engine(db_url)
    try:
        report = import_files(StagingLoader(eng), paths, entity=entity, mode=mode)  # type: ignore[arg-type]
    finally:
        eng.dispose()
    assert not report.rejected and not report.failed, report.as_dict()
