"""Test jobs built on the real job template, and a daemon running in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from erpsync.daemon.service import Daemon
from erpsync.errors import AuthenticationFailed, RetryLater
from erpsync.job import Job, RunContext


class ScriptedJob(Job):
    """Plays a script of run behaviours: "ok", "retry", "fatal", "crash", "batches" (until stopped)."""

    name = "scripted"

    def __init__(self, engine: Engine, script: list[str], *, default: str = "ok", **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.script = list(script)
        self.default = default
        self.calls: list[float] = []
        self.batches_done = 0
        self.in_batch = threading.Event()
        self.release = threading.Event()
        self.ignore_stop = False

    def execute(self, run: RunContext) -> None:
        self.calls.append(time.monotonic())
        step = self.script.pop(0) if self.script else self.default
        if step == "ok":
            run.counts["fetched"] += 3
            run.counts["acked"] += 3
        elif step == "retry":
            raise RetryLater("sim answered 503")
        elif step == "fatal":
            raise AuthenticationFailed("login rejected")
        elif step == "crash":
            raise KeyError("bug")
        elif step == "dberror":
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        elif step == "batches":
            while True:
                run.checkpoint()
                self.in_batch.set()
                # one "batch": waits until released (or a short time), then counts and commits
                self.release.wait(0.05)
                run.counts["pushed"] += 1
                self.batches_done += 1
                if self.ignore_stop:
                    self.release.wait(30)
        else:
            raise AssertionError(step)


def scripted(name: str, engine: Engine, script: list[str], **kw: Any) -> ScriptedJob:
    cls = type(f"Job_{name}", (ScriptedJob,), {"name": name})
    job: ScriptedJob = cls(engine, script, **kw)
    return job


class DaemonThread:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.code = self.daemon.serve(install_signals=False)

    def start(self) -> DaemonThread:
        self.thread.start()
        wait_for(lambda: self.daemon.ready, 10, "daemon ready")
        return self

    def stop(self, timeout: float = 10) -> int | None:
        self.daemon.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "daemon did not stop"
        return self.code


@contextmanager
def running(daemon: Daemon) -> Iterator[DaemonThread]:
    t = DaemonThread(daemon).start()
    try:
        yield t
    finally:
        if t.thread.is_alive():
            daemon.request_stop()
            t.thread.join(10)


def wait_for(cond: Callable[[], object], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)

    def close(self) -> None:
        self.sock.close()
