"""The daemon: APScheduler jobs under an explicit supervising loop.

Threads:
- the **main thread** runs ``Daemon.serve()``: signals, leader election, health, systemd
  STATUS/WATCHDOG. It only sends ``WATCHDOG=1`` while it is itself ticking *and* the scheduler's
  own heartbeat job is fresh, so a wedged loop or a wedged scheduler makes systemd restart us;
- APScheduler's thread (``BackgroundScheduler``, in-memory job store rebuilt from config at
  start, ``coalesce=True``, ``max_instances=1``, explicit misfire grace) fires the jobs into a
  ``default`` pool; the heartbeat and the instance-row writer have their own one-thread pools so a
  busy job pool cannot starve them.

Error policy per run (the job template already logged the summary line and wrote ``job_run``):
``ok`` resets the failure streak; ``retry`` (and unexpected crashes) push the next run out with
exponential backoff (``max(next tick, now + base * 2**(n-1))``, capped); ``JobFailed`` (bad
credentials, schema mismatch) removes the job from the schedule and the daemon reports unhealthy
on ``/healthz``, in ``STATUS=`` and in ``erpsync status`` instead of spinning. A transient fault
never disables a job: after ``alert_after_failures`` failed runs in a row the job is *degraded*
(still scheduled, backing off; ``/healthz`` stays 200, ``/readyz`` and ``STATUS=`` name it,
``erpsync_job_degraded{job}`` is 1, ``daemon.job_degraded`` is logged once) until a run succeeds
(``daemon.job_recovered``).

Shutdown: the first SIGTERM/SIGINT stops scheduling and sets the jobs' ``stop_event`` (their
``checkpoint()`` ends the run after the current batch, committed); the daemon waits up to
``grace_seconds`` for running jobs, then exits 0. When the grace expires, or on a second signal, it
exits at once (code 1, or 128+signal): nothing uncommitted is acknowledged because every ack
follows its commit. SIGHUP re-reads the config and applies what can change live (job intervals,
log level); see ``docs/operations.md``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from erpsync.clock import Clock, SystemClock
from erpsync.daemon.leader import AlwaysLeader, Leadership
from erpsync.daemon.metrics import DEFAULT_QUOTA_SHARE, DaemonMetrics, MetricsServer, StoreCollector, store_figures
from erpsync.daemon.notify import SystemdNotifier, watchdog_interval
from erpsync.daemon.webhook import WebhookConfig, WebhookListener
from erpsync.errors import ConfigError, ConfigProblem, JobFailed
from erpsync.job import JobResult
from erpsync.logs import get_logger, scrub
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.engine import transaction

log = get_logger("erpsync.daemon")


class _DropExpectedSkips(logging.Filter):
    """APScheduler warns each time a tick finds the job still running; with ``max_instances=1``
    that is the intended behaviour, so it is counted (``erpsync_job_skipped_total``) not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_skip_filter = _DropExpectedSkips()

EXIT_OK = 0
EXIT_GRACE_EXPIRED = 1
STOP_MARGIN_S = 10.0  # beyond the grace: the final instance row, closing clients and engines
MAX_CONSECUTIVE_CRASHES = 10  # a job that crashes (a bug) this often in a row is disabled


class RunnableJob(Protocol):
    name: str

    def run(self) -> JobResult: ...


@dataclass
class JobSpec:
    """One scheduled capability. ``entity`` labels item metrics (stock, price, product)."""

    name: str
    job: RunnableJob
    trigger: BaseTrigger
    entity: str | None = None
    retry_base_s: float | None = None  # default: the interval (or 60 s for cron triggers)
    max_backoff_s: float = 900.0
    misfire_grace_s: int = 60
    run_at_start: bool = True  # interval jobs run as soon as this process leads
    #: jobs to run at once (not at their next tick) after a run of this one that sent something:
    #: prices and stock wait for the products the catalogue push just created
    wakes: tuple[str, ...] = ()


@dataclass
class JobState:
    enabled: bool = True
    failures: int = 0
    disabled_reason: str | None = None
    last_outcome: str | None = None
    last_started: float | None = None
    last_success: float | None = None
    last_counts: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    running: bool = False
    crashes: int = 0  # unexpected exceptions in a row (bugs); MAX_CONSECUTIVE_CRASHES disables the job
    degraded: bool = False  # failures reached alert_after_failures: still scheduled, monitoring alerts
    rerun: bool = False  # a trigger (webhook) came while running: one more run right after this one


def job_clock_factor(clock: Clock) -> float:
    """How much faster than real time the jobs' clock runs (a ``ScaledClock``, possibly behind the
    daemon's ``StopAwareClock``); 1 for the system clock."""
    inner = getattr(clock, "inner", clock)
    factor = getattr(inner, "factor", 1.0)
    return float(factor) if isinstance(factor, int | float) and factor > 0 else 1.0


class Daemon:
    def __init__(
        self,
        engine: Engine,
        jobs: list[JobSpec],
        *,
        leadership: Leadership | None = None,
        notifier: SystemdNotifier | None = None,
        clock: Clock | None = None,
        stop_event: threading.Event | None = None,
        grace_seconds: float = 30.0,
        metrics_address: tuple[str, int] | None = None,
        takeover_seconds: float = 30.0,
        loop_interval: float = 1.0,
        stall_after: float | None = None,
        instance_interval: float = 5.0,
        watchdog_seconds: float | None = None,
        environ: Mapping[str, str] | None = None,
        reload: Callable[[], Mapping[str, BaseTrigger]] | None = None,
        status_hook: Callable[[], str | None] | None = None,
        hard_exit: Callable[[int], None] = os._exit,
        read_engine: Engine | None = None,
        alert_after_failures: int = 5,
        quota_share: float = DEFAULT_QUOTA_SHARE,
        quota_clock: Clock | None = None,
        webhook: WebhookConfig | None = None,
    ) -> None:
        self.engine = engine
        # figures for /metrics and STATUS: never through BEGIN IMMEDIATE on SQLite (see store.engine.make_read_engine)
        self.read_engine = read_engine or engine
        self.specs = {s.name: s for s in jobs}
        self.leadership: Leadership = leadership or AlwaysLeader()
        self.notifier = notifier or SystemdNotifier.from_environ(environ)
        self.clock = clock or SystemClock()
        self.stop_event = stop_event or threading.Event()
        self.grace_seconds = grace_seconds
        self.takeover_seconds = takeover_seconds
        self.loop_interval = loop_interval
        self.stall_after = stall_after or max(5.0, 5 * loop_interval)
        self.instance_interval = instance_interval
        self.watchdog_seconds = (watchdog_seconds if watchdog_seconds is not None
                                 else watchdog_interval(environ))
        self.reload_fn = reload
        self.status_hook = status_hook
        self.hard_exit = hard_exit
        self.alert_after_failures = max(1, alert_after_failures)
        self.metrics = DaemonMetrics()
        # the quota figure is the governor's view: its share, topped up on the jobs' (governor's) clock
        self.quota_share = quota_share
        self.quota_clock = quota_clock or self.clock
        self.metrics.registry.register(StoreCollector(self.read_engine, quota_share=quota_share,
                                                      clock=self.quota_clock))
        self.metrics_address = metrics_address
        self.server: MetricsServer | None = None
        self.webhook_config = webhook
        self.webhook: WebhookListener | None = None
        self.states = {name: JobState() for name in self.specs}
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.role = "starting"
        self.leader_holder: str | None = None
        self.quota_left_pct: float | None = None
        self.events_pulled = 0
        self.ready = False
        self.stopping = False
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._signals: list[int] = []
        self._reload_requested = False
        self._loop_tick = time.monotonic()
        self._sched_beat = time.monotonic()
        self._next_ping = 0.0
        self._next_leader_check = 0.0
        self._last_status = ""
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={
                "default": ThreadPoolExecutor(max(1, len(self.specs))),
                "heartbeat": ThreadPoolExecutor(1),
                "state": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    # ------------------------------------------------------------------ health

    @property
    def leader_retry_seconds(self) -> float:
        """Standbys try the lock this often: a dead leader is replaced within ``takeover_seconds``."""
        return max(0.2, self.takeover_seconds / 3)

    def loop_healthy(self) -> bool:
        now = time.monotonic()
        return (now - self._loop_tick) < self.stall_after and (now - self._sched_beat) < self.stall_after

    def health(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            disabled = {n: s.disabled_reason for n, s in self.states.items() if not s.enabled}
            degraded = {n: s.failures for n, s in self.states.items() if s.enabled and s.degraded}
        loop_ok = self.loop_healthy()
        # a degraded job (failing, still retrying) does not make the process unhealthy: restarting
        # it would not help; the job's metric and log event are what monitoring alerts on
        return loop_ok and not disabled, {
            "role": self.role, "loop": "ok" if loop_ok else "stalled", "disabled_jobs": disabled,
            "degraded_jobs": degraded, "instance": self.instance_id}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = self.health()
        detail["started"] = self.ready
        detail["stopping"] = self.stopping
        return ok and self.ready and not self.stopping, detail

    # ------------------------------------------------------------------ running one job

    def _execute(self, name: str) -> None:
        state = self.states[name]
        if self.stop_event.is_set() or not state.enabled:
            return
        if self.role not in ("leader", "single") or not self.leadership.is_leader():
            return  # a standby never runs jobs; the loop notices lost leadership and reports it
        started = self.clock.time()
        with self._lock:
            state.last_started = started
            state.running = True
        try:
            self._run_and_apply_policy(name, started)
        finally:
            with self._lock:
                state.running = False
                rerun, state.rerun = state.rerun, False
            self.metrics.failures.labels(name).set(state.failures)
            if rerun:
                self.request_run(name)

    def request_run(self, name: str) -> str:
        """Run ``name`` now instead of at its next tick (the webhook trigger). Coalesced: while
        the job runs, any number of requests make exactly one more run after it; a request while
        a run is already due changes nothing; the scheduler's ``max_instances=1`` keeps every run
        apart from the scheduled ones. A job backing off after failures keeps its backoff.
        Returns what happened: ``scheduled``, ``queued``, ``pending`` or ``ignored``."""
        with self._lock:
            state = self.states.get(name)
            if state is None or not state.enabled or self.stop_event.is_set() or state.failures:
                return "ignored"
            if state.running:
                state.rerun = True
                return "queued"
        if self.role not in ("leader", "single") or not self.scheduler.running:
            return "ignored"
        job = self.scheduler.get_job(name)
        if job is None:
            return "ignored"
        now = self.clock.now()
        natural: datetime | None = job.next_run_time
        if natural is not None and natural <= now:
            return "pending"
        self.scheduler.modify_job(name, next_run_time=now)
        self.metrics.triggered.labels(name).inc()
        return "scheduled"

    def trigger_runs(self, names: list[str]) -> dict[str, str]:
        """``request_run`` for each configured job of ``names`` (the webhook's targets)."""
        return {n: self.request_run(n) for n in names if n in self.specs}

    def _run_and_apply_policy(self, name: str, started: float) -> None:
        spec, state = self.specs[name], self.states[name]
        try:
            result = spec.job.run()
        except JobFailed as exc:
            self._record(spec, "failed", {}, self.clock.time() - started, started)
            self._disable(name, f"{type(exc).__name__}: {exc}")
            return
        except (OperationalError, InterfaceError) as exc:
            # the database went away (restart, network): transient, however long it lasts
            self._record(spec, "failed", {}, self.clock.time() - started, started)
            with self._lock:
                state.failures += 1
            log.warning("daemon.database_unavailable", job=name, error_class=type(exc).__name__,
                        error=str(exc).splitlines()[0][:200] if str(exc) else None)
            self._check_degraded(name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
            self._back_off(name)
            return
        except Exception as exc:  # noqa: BLE001 - the daemon outlives a buggy job
            # a bug: the template logged job.crashed with the traceback; back off, disable if endless
            self._record(spec, "failed", {}, self.clock.time() - started, started)
            with self._lock:
                state.failures += 1
                state.crashes += 1
                crashes = state.crashes
            if crashes >= MAX_CONSECUTIVE_CRASHES:
                self._disable(name, f"crashed {crashes} times in a row, last: {type(exc).__name__}: {exc}")
            else:
                self._check_degraded(name, f"{type(exc).__name__}: {exc}")
                self._back_off(name)
            return
        self._record(spec, result.outcome, result.counts, result.duration_s, started)
        with self._lock:
            state.crashes = 0  # the job ran to an outcome: whatever crashed before is not endless
        if result.outcome == "ok":
            with self._lock:
                failed_before, was_degraded = state.failures, state.degraded
                state.failures = 0
                state.last_success = started
                state.degraded = False
            if was_degraded:
                self.metrics.degraded.labels(name).set(0)
                log.info("daemon.job_recovered", job=name, failed_runs=failed_before)
            self._pace(name)
            if result.counts.get("sent"):
                self._wake_jobs(spec.wakes)
        elif result.outcome == "retry":
            with self._lock:
                state.failures += 1
            self._check_degraded(name, f"{result.error_class}: {result.error}")
            self._back_off(name)

    def _record(self, spec: JobSpec, outcome: str, counts: dict[str, int], duration: float,
                started: float) -> None:
        state = self.states[spec.name]
        with self._lock:
            state.last_outcome = outcome
            state.last_counts = dict(counts)
            state.runs += 1
            if spec.name in ("pull", "pull_graphql"):
                self.events_pulled += int(counts.get("fetched", 0))
        self.metrics.record_run(spec.name, outcome, counts, duration, started, spec.entity)

    def backoff_delay(self, name: str) -> float:
        spec, state = self.specs[name], self.states[name]
        base = spec.retry_base_s
        if base is None:
            base = spec.trigger.interval.total_seconds() if isinstance(spec.trigger, IntervalTrigger) else 60.0
        base = max(base, 1.0)
        exp = min(max(state.failures - 1, 0), 30)
        delay = min(spec.max_backoff_s, base * (2 ** exp))
        return delay * random.uniform(0.9, 1.1)  # jitter: instances restarted together spread out

    def _back_off(self, name: str) -> None:
        if self.stop_event.is_set():
            return  # shutting down: nothing is scheduled any more
        delay = self.backoff_delay(name)
        job = self.scheduler.get_job(name)
        if job is None:
            return
        earliest = self.clock.now() + timedelta(seconds=delay)
        natural: datetime | None = job.next_run_time
        if natural is None or natural < earliest:
            self.scheduler.modify_job(name, next_run_time=earliest)
        log.warning("daemon.job_backoff", job=name, failures=self.states[name].failures,
                    retry_in_s=round(delay, 1))

    def _check_degraded(self, name: str, last_error: str) -> None:
        """After ``alert_after_failures`` failed runs in a row: degraded (once per streak)."""
        with self._lock:
            state = self.states[name]
            if state.degraded or state.failures < self.alert_after_failures:
                return
            state.degraded = True
            failures = state.failures
        self.metrics.degraded.labels(name).set(1)
        log.error("daemon.job_degraded", job=name, failures=failures, last_error=last_error[:300],
                  hint="the job keeps retrying with backoff; look at the cause (Centra, network, database)")

    def _disable(self, name: str, reason: str) -> None:
        reason = scrub(reason)  # shown by status and kept in daemon_instance.jobs
        with self._lock:
            state = self.states[name]
            state.enabled = False
            state.disabled_reason = reason
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)
        self.metrics.enabled.labels(name).set(0)
        log.error("daemon.job_disabled", job=name, reason=reason,
                  hint="fix the cause (credentials, schema, contract), then restart erpsync")
        self._wake.set()

    # ------------------------------------------------------------------ scheduler bookkeeping

    def _on_skip(self, event: JobSubmissionEvent) -> None:
        if event.job_id in self.specs:
            reason = "still_running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
            self.metrics.skipped.labels(event.job_id, reason).inc()

    def _beat(self) -> None:
        self._sched_beat = time.monotonic()

    def _schedule(self) -> None:
        now = self.clock.now()
        for name, spec in self.specs.items():
            start = now if (spec.run_at_start and isinstance(spec.trigger, IntervalTrigger)) else None
            kwargs: dict[str, Any] = {"next_run_time": start} if start else {}
            self.scheduler.add_job(self._execute, spec.trigger, args=[name], id=name, name=name,
                                   misfire_grace_time=spec.misfire_grace_s, replace_existing=True, **kwargs)
            self.metrics.enabled.labels(name).set(1)
            self.metrics.degraded.labels(name).set(0)
        beat = max(0.2, self.loop_interval)
        self.scheduler.add_job(self._beat, IntervalTrigger(seconds=beat), id="_heartbeat",
                               executor="heartbeat", misfire_grace_time=None, next_run_time=now)
        self.scheduler.add_job(self._write_instance, IntervalTrigger(seconds=self.instance_interval),
                               id="_instance", executor="state", misfire_grace_time=None, next_run_time=now)

    def _pace(self, name: str) -> None:
        """A job that paces itself (``next_run_in()``: clock seconds, or None for its trigger's
        interval; push_stock's quota-derived window) runs next after that long, not at its tick."""
        pace = getattr(self.specs[name].job, "next_run_in", None)
        delay = pace() if callable(pace) else None
        if delay is None or self.stop_event.is_set() or self.scheduler.get_job(name) is None:
            return
        # the jobs' clock may be a simulator's, `factor` times faster than the scheduler's real time
        real = max(0.0, float(delay)) / job_clock_factor(self.quota_clock)
        self.scheduler.modify_job(name, next_run_time=self.clock.now() + timedelta(seconds=real))

    def _wake_jobs(self, names: tuple[str, ...]) -> None:
        """Run these jobs now instead of at their next tick (one already running keeps its tick)."""
        for name in names:
            state = self.states.get(name)
            if (state is None or not state.enabled or state.running or self.stop_event.is_set()
                    or self.scheduler.get_job(name) is None):
                continue
            self.scheduler.modify_job(name, next_run_time=self.clock.now())

    def _run_now(self) -> None:
        """Leadership just won: start the interval jobs at once instead of at their next tick."""
        now = self.clock.now()
        for name, spec in self.specs.items():
            if (self.states[name].enabled and spec.run_at_start and isinstance(spec.trigger, IntervalTrigger)
                    and self.scheduler.get_job(name) is not None):
                self.scheduler.modify_job(name, next_run_time=now)

    def next_runs(self) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = {}
        for name in self.specs:
            job = self.scheduler.get_job(name) if self.scheduler.running else None
            out[name] = job.next_run_time if job is not None else None
        return out

    # ------------------------------------------------------------------ instance row and STATUS

    def _write_instance(self, state_override: str | None = None) -> None:
        """Refresh this process's ``daemon_instance`` row and the figures STATUS shows."""
        try:
            figures = store_figures(self.read_engine, quota_share=self.quota_share,
                                    quota_now=self.quota_clock.time())
            self.quota_left_pct = figures["quota_left_pct"]
        except SQLAlchemyError as exc:
            log.warning("daemon.store_unavailable", error_class=type(exc).__name__, error=str(exc)[:200])
        if self.role == "standby":
            self.leader_holder = self.leadership.holder()
        ok, _ = self.health()
        state = state_override or ("stopping" if self.stopping else ("running" if ok else "unhealthy"))
        with self._lock:
            jobs = {
                name: {"next_run": nr.isoformat() if nr else None, "enabled": s.enabled,
                       "failures": s.failures, "disabled_reason": s.disabled_reason,
                       "degraded": s.degraded,
                       "last_outcome": s.last_outcome}
                for (name, s), nr in zip(self.states.items(), self.next_runs().values(), strict=True)}
        try:
            with transaction(self.engine) as s:
                row = s.get(DaemonInstance, self.instance_id)
                if row is None:
                    row = DaemonInstance(instance_id=self.instance_id, host=socket.gethostname(),
                                         pid=os.getpid(), role=self.role, state=state,
                                         started_at=self.clock.now())
                row.role, row.state, row.jobs = self.role, state, jobs
                row.heartbeat_at = self.clock.now()
                row.status_text = self.status_text()
                s.add(row)
        except SQLAlchemyError as exc:
            log.warning("daemon.instance_write_failed", error_class=type(exc).__name__, error=str(exc)[:200])

    def status_text(self) -> str:
        """The one-line STATUS= for systemctl status (also stored in the instance row)."""
        parts: list[str] = []
        if self.stopping:
            parts.append("stopping")
        if self.role == "standby":
            parts.append(f"standby, leader {self.leader_holder or 'unknown'}")
        else:
            parts.append(f"{self.role}: pulled {self.events_pulled} events")
        if self.quota_left_pct is not None:
            parts.append(f"quota {self.quota_left_pct:g} % left")
        with self._lock:
            disabled = [n for n, s in self.states.items() if not s.enabled]
            backing = [n for n, s in self.states.items() if s.enabled and s.failures]
            degraded = [n for n, s in self.states.items() if s.enabled and s.degraded]
        if disabled:
            parts.append("UNHEALTHY, disabled: " + ", ".join(disabled))
        if degraded:
            parts.append("DEGRADED: " + ", ".join(degraded))
        if backing:
            parts.append("backing off: " + ", ".join(backing))
        if not self.loop_healthy():
            parts.append("scheduler stalled")
        if self.status_hook is not None:
            extra = self.status_hook()
            if extra:
                parts.append(extra)
        return "; ".join(parts)

    # ------------------------------------------------------------------ leadership

    def _check_leadership(self) -> None:
        now = time.monotonic()
        if now < self._next_leader_check:
            return
        self._next_leader_check = now + self.leader_retry_seconds
        if self.role == "single":
            return
        if self.role == "leader":
            if not self.leadership.is_leader():
                self._set_role("standby")
                log.error("leader.lost_leadership", instance=self.instance_id,
                          hint="jobs stop at their next batch; this process now stands by")
            return
        if self.leadership.try_acquire():
            self._set_role("leader")
            log.info("leader.acquired", instance=self.instance_id, lock=self.leadership.kind)
            self._run_now()
        elif self.role != "standby":
            self._set_role("standby")
            self.leader_holder = self.leadership.holder()
            log.info("leader.standby", instance=self.instance_id, leader=self.leader_holder)

    def _set_role(self, role: str) -> None:
        active, was_active = role in ("leader", "single"), self.role in ("leader", "single")
        self.role = role
        self.metrics.leader.set(1 if active else 0)
        if active and not was_active:
            # the active instance exports when each job last ran, as `erpsync status` shows from
            # job_run, even before its own first run (after a restart or a takeover)
            try:
                self.metrics.seed_from_store(self.read_engine, list(self.specs))
            except SQLAlchemyError as exc:
                log.warning("daemon.store_unavailable", error_class=type(exc).__name__, error=str(exc)[:200])
        elif was_active and not active:
            # a standby exports no run times: a stale one would fire "no success for N minutes"
            self.metrics.last_success.clear()
            self.metrics.last_attempt.clear()
        self._wake.set()

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_sighup)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request_stop(signum)

    def _on_sighup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested = True
        self._wake.set()

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._signals.append(signum)
        if len(self._signals) > 1:
            # second signal: exit now; uncommitted work rolls back, nothing uncommitted was acked
            # raw write: this handler may interrupt the main thread inside a write to sys.stderr,
            # where writing to it again raises "reentrant call" and would prevent the exit
            with contextlib.suppress(OSError):
                os.write(2, f'{{"event": "daemon.forced_exit", "signal": {signum}, "level": "warning"}}\n'.encode())
            self.hard_exit(128 + signum)
            return
        self.stop_event.set()
        self._wake.set()

    def _apply_reload(self) -> None:
        """SIGHUP: systemd hears ``RELOADING=1`` (+ ``MONOTONIC_USEC``) now and ``READY=1`` once the
        new configuration is applied or refused, so ``systemctl reload`` returns when it is done."""
        self._reload_requested = False
        self.notifier.reloading()
        try:
            self._reload()
        finally:
            self.notifier.ready(self.status_text())

    def _reload(self) -> None:
        if self.reload_fn is None:
            log.warning("daemon.reload_unsupported", hint="restart erpsync to apply a new configuration")
            return
        try:
            triggers = self.reload_fn()
        except Exception as exc:  # noqa: BLE001 - a bad config on reload must not kill a healthy daemon
            log.error("daemon.reload_failed", error_class=type(exc).__name__, error=str(exc),
                      hint="the running configuration stays in force")
            return
        changed = []
        for name, trigger in triggers.items():
            spec = self.specs.get(name)
            if spec is None or str(spec.trigger) == str(trigger):
                continue
            spec.trigger = trigger
            changed.append(name)
            job = self.scheduler.get_job(name)
            if self.states[name].enabled and job is not None:
                backing_off_until = job.next_run_time if self.states[name].failures else None
                job = self.scheduler.reschedule_job(name, trigger=trigger)
                if backing_off_until is not None and (job.next_run_time is None
                                                      or job.next_run_time < backing_off_until):
                    # a failing job keeps its backoff: the new interval applies once it recovers
                    self.scheduler.modify_job(name, next_run_time=backing_off_until)
        log.info("daemon.reloaded", rescheduled=changed)

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        """Start the metrics listener and the scheduler (``serve`` calls this)."""
        if isinstance(self.leadership, AlwaysLeader) or self.leadership.kind == "sqlite-file-lock":
            # single instance: the caller took the lock before building the daemon
            self._set_role("single")
        if self.metrics_address is not None:
            try:
                self.server = MetricsServer(*self.metrics_address, self.metrics.registry,
                                            self.health, self.readiness)
            except OSError as exc:
                host, port = self.metrics_address
                if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                    raise ConfigError([ConfigProblem(
                        "daemon.metrics_host", f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                        "(not an address of this host)", "configuration")]) from exc
                raise ConfigError([ConfigProblem(
                    "daemon.metrics_port", f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                    "(another erpsync on this host? give each its own port; 0 disables the listener)",
                    "configuration")]) from exc
            self.server.start()
            log.info("daemon.metrics_listening", address="{}:{}".format(*self.server.address))
        self._start_webhook()
        self._schedule()
        self._loop_tick = self._sched_beat = time.monotonic()
        logging.getLogger("apscheduler.scheduler").addFilter(_skip_filter)
        self.scheduler.add_listener(self._on_skip, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.scheduler.start()
        self._check_leadership()
        self.ready = True
        self.notifier.ready(self.status_text())
        log.info("daemon.started", instance=self.instance_id, role=self.role,
                 jobs={n: str(s.trigger) for n, s in self.specs.items()},
                 watchdog_s=self.watchdog_seconds, grace_s=self.grace_seconds)

    def _start_webhook(self) -> None:
        cfg = self.webhook_config
        if cfg is None:
            return
        jobs = [j for j in cfg.jobs if j in self.specs]
        try:
            self.webhook = WebhookListener(
                cfg.host, cfg.port, cfg.secret, lambda: self.trigger_runs(jobs), path=cfg.path,
                tolerance_s=cfg.tolerance_s, max_body=cfg.max_body, registry=self.metrics.registry)
        except OSError as exc:
            raise ConfigError([ConfigProblem(
                "centra.webhook.port", f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc} "
                "(another erpsync on this host? give each its own port; 0 disables the listener)",
                "configuration")]) from exc
        self.webhook.start()

    def tick(self) -> None:
        """One pass of the supervising loop."""
        self._loop_tick = time.monotonic()
        if self._reload_requested:
            self._apply_reload()
        self._check_leadership()
        healthy, _ = self.health()
        self.metrics.healthy.set(1 if healthy else 0)
        text = self.status_text()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)
        if self.watchdog_seconds and self.loop_healthy():
            now = time.monotonic()
            if now >= self._next_ping:
                if self.notifier.watchdog():
                    self.metrics.watchdog_pings.inc()
                self._next_ping = now + self.watchdog_seconds / 2

    def serve(self, *, install_signals: bool = True) -> int:
        """Run until a signal (or ``request_stop``); returns the process exit code."""
        if install_signals:
            self.install_signal_handlers()
        try:
            self.start()
            while not self.stop_event.is_set():
                self.tick()
                self._wake.wait(self.loop_interval)
                self._wake.clear()
            return self.shutdown()
        finally:
            self.close()

    def shutdown(self) -> int:
        self.stopping = True
        self.stop_event.set()
        running = [n for n, s in self.states.items() if s.running]
        log.info("daemon.stopping", grace_s=self.grace_seconds, signal=self._signals[:1] or None)
        # the unit's TimeoutStopSec may be shorter than the configured grace: ask for the grace
        self.notifier.stopping(self.status_text(), extend_timeout_s=self.grace_seconds + STOP_MARGIN_S)
        done = threading.Event()

        def _drain() -> None:
            self.scheduler.shutdown(wait=True)
            done.set()

        drainer = threading.Thread(target=_drain, name="erpsync-drain", daemon=True)
        drainer.start()
        deadline = time.monotonic() + self.grace_seconds
        while not done.wait(0.1):
            if time.monotonic() >= deadline:
                log.error("daemon.grace_expired", grace_s=self.grace_seconds, running=running,
                          hint="exiting now: uncommitted work rolls back and is redone at next start")
                self._write_instance("stopped")
                self.close()
                self.hard_exit(EXIT_GRACE_EXPIRED)
                return EXIT_GRACE_EXPIRED
        self._write_instance("stopped")
        log.info("daemon.stopped", instance=self.instance_id, events_pulled=self.events_pulled,
                 runs={n: s.runs for n, s in self.states.items()})
        return EXIT_OK

    def close(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.webhook is not None:
            self.webhook.close()
            self.webhook = None
        self.leadership.release()
        self.notifier.close()
