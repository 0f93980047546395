"""Helpers to run ``erpsync run`` as a real subprocess and watch its JSON log lines."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
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
shutdown_grace_seconds = 10.0
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
    """``python -m erpsync ...`` with its output lines collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "erpsync", *args], cwd=ROOT, env=env,
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
