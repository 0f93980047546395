"""The webhook trigger over real HTTP: the simulator's webhook plugin → the daemon's listener → the
pull runs now; bursts coalesce; everything else is refused (PROTOCOL.md §2.3)."""

from __future__ import annotations

import io
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import SQLModel

from erpsync.clock import SystemClock
from erpsync.daemon.service import Daemon, JobSpec
from erpsync.daemon.webhook import WebhookConfig
from erpsync.job import Job, RunContext
from erpsync.logs import configure_logging
from erpsync.sim.webhooks import WebhookSender
from erpsync.store.engine import make_engine
from tests.integration.daemon.helpers import running, wait_for

SECRET = "whsec-test-9f2c"


class SlowPull(Job):
    """Records each run and how many ran at once; each run takes ``seconds``."""

    name = "pull"

    def __init__(self, engine: Engine, seconds: float, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.seconds = seconds
        self.starts: list[float] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.started = threading.Event()

    def execute(self, run: RunContext) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.starts.append(time.monotonic())
        self.started.set()
        try:
            time.sleep(self.seconds)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def make(engine: Engine, seconds: float, **cfg: Any) -> tuple[Daemon, SlowPull]:
    stop = threading.Event()
    job = SlowPull(engine, seconds, stop_event=stop)
    hook = WebhookConfig("127.0.0.1", 0, SECRET, jobs=("pull",), **cfg)
    spec = JobSpec("pull", job, IntervalTrigger(seconds=3600, timezone="UTC"))
    d = Daemon(engine, [spec], stop_event=stop, environ={}, loop_interval=0.05, instance_interval=0.5,
               grace_seconds=5.0, webhook=hook)
    return d, job


def url_of(d: Daemon) -> str:
    assert d.webhook is not None
    host, port = d.webhook.address
    return f"http://{host}:{port}/centra/webhook"


def test_a_signed_webhook_runs_the_pull_now_and_bad_ones_are_refused(sqlite_engine: Engine) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        d, job = make(sqlite_engine, 0.01, max_body=4096)
        with running(d):
            wait_for(lambda: len(job.starts) == 1 and job.active == 0, 10, "the run at start")
            sender = WebhookSender(url_of(d), SECRET, SystemClock())
            for kind, status in [("bad_signature", 401), ("wrong_secret", 401), ("stale", 401),
                                 ("future", 401), ("no_signature", 400), ("not_form", 400)]:
                assert sender.send(kind) == status, kind
            assert sender.send("oversized", size=5000) == 413
            time.sleep(0.3)
            assert len(job.starts) == 1, "a refused webhook triggered a run"
            assert sender.send("good") == 204
            wait_for(lambda: len(job.starts) == 2, 10, "the triggered run")
            # the same body and header again within the tolerance is only one more trigger (harmless);
            # beyond the tolerance the stale test above shows it is refused
            assert sender.send("replay") == 204
            # another path and another method
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url_of(d).replace("/centra/webhook", "/other"), data=b"x", timeout=5)
            assert err.value.code == 404
            err.value.close()
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url_of(d), timeout=5)
            assert err.value.code == 405
            err.value.close()
        logs = out.getvalue()
    finally:
        configure_logging("WARNING", "json")
    assert SECRET not in logs
    for reason in ("signature_mismatch", "timestamp_outside_tolerance", "signature_missing", "not_form",
                   "body_too_large", "unknown_path", "method_not_allowed"):
        assert f'"reason": "{reason}"' in logs, reason
    assert '"event": "webhook.accepted"' in logs


def test_a_burst_of_100_webhooks_causes_at_most_one_extra_run(sqlite_engine: Engine) -> None:
    d, job = make(sqlite_engine, 0.5)
    with running(d):
        job.started.wait(10)  # the run at start is going: the burst arrives while it runs
        sender = WebhookSender(url_of(d), SECRET, SystemClock())
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: sender.send("good"), range(100)))
        assert statuses == [204] * 100
        wait_for(lambda: len(job.starts) >= 2 and job.active == 0, 10, "the coalesced run")
        time.sleep(0.8)  # anything else would have started by now
        runs_after_burst = len(job.starts)
        # a second burst while idle: again one run (plus at most one queued behind it)
        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(lambda _: sender.send("good"), range(100))) == {204}
        wait_for(lambda: len(job.starts) > runs_after_burst and job.active == 0, 10, "second burst's run")
        time.sleep(1.2)
        second = len(job.starts) - runs_after_burst
    assert job.max_active == 1, "runs overlapped"
    assert runs_after_burst == 2, f"the burst caused {runs_after_burst - 1} extra runs"
    assert 1 <= second <= 2
    assert d.metrics.registry.get_sample_value("erpsync_webhook_requests_total", {"outcome": "accepted"}) == 200
