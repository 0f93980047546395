"""The daemon's scheduler and error policy with real template jobs on a real SQLite store."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from erpsync.daemon.service import Daemon, JobSpec
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.engine import make_engine
from erpsync.store.models import JobRun, ParkedItem
from tests.integration.daemon.helpers import running, scripted, wait_for


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def every(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone="UTC")


def make_daemon(engine: Engine, specs: list[JobSpec], stop: threading.Event, **kw: object) -> Daemon:
    opts: dict[str, object] = {"loop_interval": 0.05, "instance_interval": 0.2, "grace_seconds": 5.0}
    opts.update(kw)
    return Daemon(engine, specs, stop_event=stop, environ={}, **opts)  # type: ignore[arg-type]


def runs(engine: Engine, job: str) -> list[JobRun]:
    with Session(engine) as s:
        return list(s.exec(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)).scalars())  # type: ignore[arg-type]


def test_ok_job_runs_every_tick_and_never_overlaps(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(0.1))], stop)
    with running(d) as t:
        wait_for(lambda: len(job.calls) >= 3, 10, "three runs")
        assert t.stop() == 0
    rows = runs(sqlite_engine, "pull")
    assert len(rows) >= 3 and all(r.outcome == "ok" for r in rows)
    assert rows[0].counts == {"fetched": 3, "acked": 3}
    for a, b in itertools.pairwise(rows):  # max_instances=1: each starts after the last ended
        assert a.finished_at is not None and a.finished_at <= b.started_at
    assert d.events_pulled == 3 * len(rows)


def test_retry_backs_off_exponentially_then_resets_on_success(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("stock", sqlite_engine, ["retry", "retry", "ok"], stop_event=stop)
    spec = JobSpec("stock", job, every(0.1), entity="stock", retry_base_s=1.0)
    d = make_daemon(sqlite_engine, [spec], stop)
    with running(d):
        wait_for(lambda: len(job.calls) >= 3, 10, "three runs")
        gaps = [b - a for a, b in zip(job.calls, job.calls[1:], strict=False)]
        # backoff 1 s then 2 s (±10 % jitter) instead of the 0.1 s interval
        assert 0.85 <= gaps[0] < 1.6, gaps
        assert 1.75 <= gaps[1] < 2.8, gaps
        wait_for(lambda: d.states["stock"].failures == 0, 5, "reset")
    assert [r.outcome for r in runs(sqlite_engine, "stock")][:3] == ["retry", "retry", "ok"]
    assert d.metrics.runs.labels("stock", "retry")._value.get() == 2
    assert d.metrics.failures.labels("stock")._value.get() == 0


def test_backoff_is_capped_and_never_earlier_than_the_next_tick(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("prices", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("prices", job, every(60), max_backoff_s=300)], stop)
    d.states["prices"].failures = 1
    assert 54 <= d.backoff_delay("prices") <= 66
    d.states["prices"].failures = 3
    assert 216 <= d.backoff_delay("prices") <= 264
    d.states["prices"].failures = 40
    assert d.backoff_delay("prices") <= 330


def test_fatal_error_unschedules_the_job_and_reports_unhealthy(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    bad = scripted("products", sqlite_engine, ["fatal"], stop_event=stop)
    good = scripted("pull", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("products", bad, every(0.05)), JobSpec("pull", good, every(0.1))],
                    stop, metrics_address=("127.0.0.1", 0))
    with running(d) as t:
        wait_for(lambda: not d.states["products"].enabled, 5, "disabled")
        n_good = len(good.calls)
        wait_for(lambda: len(good.calls) >= n_good + 2, 5, "other jobs go on")
        assert len(bad.calls) == 1  # not retried, not spinning
        assert d.scheduler.get_job("products") is None
        ok, detail = d.health()
        assert not ok and "AuthenticationFailed" in detail["disabled_jobs"]["products"]
        assert "UNHEALTHY, disabled: products" in d.status_text()
        assert d.server is not None
        host, port = d.server.address
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert err.value.code == 503
        body = json.loads(err.value.read())
        err.value.close()
        assert body["ok"] is False and "products" in body["disabled_jobs"]
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'erpsync_job_enabled{job="products"} 0.0' in metrics
        assert 'erpsync_job_runs_total{job="products",outcome="failed"} 1.0' in metrics
        wait_for(lambda: _instance(sqlite_engine) is not None and _instance(sqlite_engine).state == "unhealthy",
                 5, "instance row says unhealthy")
        assert t.stop() == 0
    assert runs(sqlite_engine, "products")[0].outcome == "failed"


def test_repeated_crashes_back_off_then_disable(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], default="crash", stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(0.05), retry_base_s=0.01, max_backoff_s=0.01)],
                    stop)
    with running(d):
        wait_for(lambda: not d.states["pull"].enabled, 10, "disabled after crashes")
    assert len(job.calls) == 10
    assert "KeyError" in (d.states["pull"].disabled_reason or "")


def test_a_database_outage_backs_off_but_never_disables(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], default="dberror", stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(0.05), retry_base_s=0.01, max_backoff_s=0.01)],
                    stop)
    with running(d):
        # the failure is counted after the run ends: wait for the count, not just the call
        wait_for(lambda: d.states["pull"].failures >= 14, 10, "many failed runs")
        assert d.states["pull"].enabled
        assert d.metrics.failures.labels("pull")._value.get() >= 13
        job.default = "ok"
        wait_for(lambda: d.states["pull"].failures == 0, 5, "recovered")
    assert d.states["pull"].enabled


def test_metrics_and_health_endpoints_agree_with_the_database(sqlite_engine: Engine) -> None:
    from erpsync.store.engine import transaction

    with transaction(sqlite_engine) as s:
        s.add(ParkedItem(kind="stock", key="SKU-1", reason="unknown warehouse"))
        s.add(ParkedItem(kind="event", key="e1", reason="bad xml"))
        s.add(ParkedItem(kind="event", key="e2", reason="bad xml"))
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(0.1))], stop, metrics_address=("127.0.0.1", 0))
    with running(d):
        wait_for(lambda: len(job.calls) >= 2, 5, "runs")
        assert d.server is not None
        host, port = d.server.address
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["role"] == "single"
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://{host}:{port}/nope", timeout=5)
        err.value.close()
        assert err.value.code == 404
    assert 'erpsync_parked_items{kind="event"} 2.0' in text
    assert 'erpsync_parked_items{kind="stock"} 1.0' in text
    assert "erpsync_inbox_backlog 0.0" in text
    assert "erpsync_store_scrape_ok 1.0" in text
    assert 'erpsync_events_total{stage="fetched"}' in text
    assert 'erpsync_job_last_success_timestamp_seconds{job="pull"}' in text
    assert "erpsync_leader 1.0" in text


def test_instance_row_shows_role_jobs_and_next_run(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(30))], stop)
    with running(d) as t:
        wait_for(lambda: (row := _instance(sqlite_engine)) is not None and row.jobs
                 and row.jobs["pull"]["last_outcome"] == "ok", 5, "instance row")
        row = _instance(sqlite_engine)
        assert row is not None and row.role == "single" and row.state == "running"
        assert row.jobs is not None and row.jobs["pull"]["next_run"] is not None
        assert "pulled 3 events" in (row.status_text or "")
        t.stop()
    row = _instance(sqlite_engine)
    assert row is not None and row.state == "stopped"


def test_sighup_reload_reschedules_changed_intervals(sqlite_engine: Engine) -> None:
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(30))], stop,
                    reload=lambda: {"pull": every(0.1)})
    with running(d):
        wait_for(lambda: len(job.calls) >= 1, 5, "first run")
        time.sleep(0.3)
        assert len(job.calls) == 1
        d._on_sighup(1, None)
        wait_for(lambda: len(job.calls) >= 3, 5, "runs at the new interval")
        scheduled = d.scheduler.get_job("pull")
        assert scheduled is not None and scheduled.trigger.interval == timedelta(seconds=0.1)


def _instance(engine: Engine) -> DaemonInstance | None:
    with Session(engine) as s:
        return s.exec(select(DaemonInstance)).scalars().first()  # type: ignore[call-overload,no-any-return]


def test_a_busy_metrics_port_is_a_clear_config_error(sqlite_engine: Engine) -> None:
    import socket

    from erpsync.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = make_daemon(sqlite_engine, [], threading.Event(), metrics_address=("127.0.0.1", port))
        with pytest.raises(ConfigError, match=r"daemon\.metrics_port"):
            d.serve(install_signals=False)


def test_last_success_and_attempt_survive_a_restart(sqlite_engine: Engine) -> None:
    """After a restart (or a failover) /metrics must still say when each job last succeeded, as
    ``erpsync status`` does from job_run: an absent series never fires a "stale" alert."""
    from datetime import UTC, datetime

    from erpsync.store.engine import transaction

    ok_end = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with transaction(sqlite_engine) as s:
        s.add(JobRun(run_id="r1", job="pull", started_at=ok_end - timedelta(seconds=7), finished_at=ok_end,
                     outcome="ok"))
        s.add(JobRun(run_id="r2", job="pull", started_at=ok_end + timedelta(minutes=5),
                     finished_at=ok_end + timedelta(minutes=5, seconds=1), outcome="retry"))
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], default="retry", stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(30), run_at_start=False)], stop)
    with running(d):
        success = d.metrics.last_success.labels("pull")._value.get()
        attempt = d.metrics.last_attempt.labels("pull")._value.get()
    assert job.calls == []
    assert success == ok_end.timestamp()
    assert attempt == (ok_end + timedelta(minutes=5)).timestamp()
    # a standby exports no run times (a stale one would fire the alert beside the active leader)
    d._set_role("standby")
    from prometheus_client import generate_latest

    assert "erpsync_job_last_success_timestamp_seconds{" not in generate_latest(d.metrics.registry).decode()


def test_sighup_reload_keeps_a_running_backoff(sqlite_engine: Engine) -> None:
    """A reload that shortens an interval must not cut short the backoff of a failing job (it would
    hammer a Centra that is down right after every `systemctl reload`)."""
    stop = threading.Event()
    job = scripted("pull", sqlite_engine, [], default="retry", stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("pull", job, every(30), retry_base_s=60)], stop,
                    reload=lambda: {"pull": every(0.1)})
    with running(d):
        wait_for(lambda: d.states["pull"].failures == 1, 5, "first failure")
        wait_for(lambda: (j := d.scheduler.get_job("pull")) is not None and j.next_run_time is not None
                 and j.next_run_time > d.clock.now() + timedelta(seconds=45), 5, "backoff applied")
        d._on_sighup(1, None)
        wait_for(lambda: (j := d.scheduler.get_job("pull")) is not None
                 and j.trigger.interval == timedelta(seconds=0.1), 5, "rescheduled")
        time.sleep(0.5)
        assert len(job.calls) == 1
        scheduled = d.scheduler.get_job("pull")
        assert scheduled is not None and scheduled.next_run_time > d.clock.now() + timedelta(seconds=40)


def test_a_run_that_sent_something_wakes_the_jobs_waiting_for_it(sqlite_engine: Engine) -> None:
    """push_products accepted products: push_prices / push_stock run at once, not at their next tick."""
    from erpsync.job import RunContext
    from tests.integration.daemon.helpers import ScriptedJob

    class Products(ScriptedJob):
        name = "push_products"

        def execute(self, run: RunContext) -> None:
            self.calls.append(time.monotonic())
            time.sleep(0.3)  # the catalogue push ends after the stock run that started with it
            run.counts["sent"] += 1 if len(self.calls) == 1 else 0

    stop = threading.Event()
    products = Products(sqlite_engine, [], stop_event=stop)
    stock = scripted("push_stock", sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("push_products", products, every(3600), wakes=("push_stock",)),
                                    JobSpec("push_stock", stock, every(3600))], stop)
    with running(d) as t:
        wait_for(lambda: len(stock.calls) >= 2, 10, "the stock run woken by the catalogue push")
        assert stock.calls[1] >= products.calls[0] + 0.3
        assert t.stop() == 0


def test_a_self_paced_job_runs_again_after_the_delay_it_asks_for(sqlite_engine: Engine) -> None:
    """push_stock's quota-derived window: the daemon runs it again after ``next_run_in()`` seconds of
    the jobs' clock (here a clock 10× faster than real time: 2 s → 0.2 s), not at its hourly tick."""
    from erpsync.clock import ScaledClock
    from erpsync.job import RunContext
    from tests.integration.daemon.helpers import ScriptedJob

    class Paced(ScriptedJob):
        name = "push_stock"

        def execute(self, run: RunContext) -> None:
            self.calls.append(time.monotonic())

        def next_run_in(self) -> float | None:
            return 2.0

    stop = threading.Event()
    job = Paced(sqlite_engine, [], stop_event=stop)
    d = make_daemon(sqlite_engine, [JobSpec("push_stock", job, every(3600))], stop,
                    quota_clock=ScaledClock(10.0, time.time()))
    with running(d) as t:
        wait_for(lambda: len(job.calls) >= 3, 10, "three paced runs")
        assert t.stop() == 0
    gaps = [b - a for a, b in itertools.pairwise(job.calls)]
    assert all(0.15 <= g < 1.5 for g in gaps), gaps
