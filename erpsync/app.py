"""The composition root: ``build_app(settings, **overrides)`` wires engines, clients, the quota
governor, the jobs and the daemon. Nothing connects at import time or while building: clients are
created lazily by the jobs that need them, connections open on first use. Tests pass fakes as
overrides (``engine``, ``clock``, ``leadership``, ``notifier``, ``soap``, ``graphql``, ``governor``).

The jobs (one per capability) and their schedule:

=============  =================================  ==========================================
job            built from                         trigger
=============  =================================  ==========================================
pull           erpsync.inbound.pull               every ``pull.interval_seconds``
pull_graphql   erpsync.inbound.gql_source         every ``centra.events.interval_seconds``, when
                                                  ``centra.events.source`` is graphql or both
push_stock     erpsync.outbound.stock             every ``push.stock_interval_seconds``
push_prices    erpsync.outbound.prices            every ``push.prices_interval_seconds``
push_products  erpsync.outbound.products          every ``push.products_interval_seconds``
push_fulfilment erpsync.outbound.fulfilment       every ``fulfilment.interval_seconds``
quota_refresh  erpsync.daemon.quota_refresh       every ``daemon.quota_refresh_seconds``
housekeeping   erpsync.daemon.housekeeping        cron ``daemon.housekeeping_cron`` (UTC)
import_sql     erpsync.erp.job                    every ``erp.sql.interval_seconds``, only when
                                                  ``erp.sql.url`` is set
=============  =================================  ==========================================
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from erpsync.clock import Clock, ScaledClock, SystemClock, clock_from_environ
from erpsync.config import Settings, load_settings, redacted_dump
from erpsync.daemon.housekeeping import HousekeepingJob
from erpsync.daemon.leader import AlwaysLeader, FileLock, Leadership, PgAdvisoryLeader, keepalive_for
from erpsync.daemon.memory import limit_malloc_arenas
from erpsync.daemon.notify import SystemdNotifier
from erpsync.daemon.quota_refresh import QuotaRefreshJob
from erpsync.daemon.service import Daemon, JobSpec
from erpsync.daemon.webhook import WebhookConfig
from erpsync.erp.job import SqlImportJob
from erpsync.errors import ConfigError, ConfigProblem, DatabaseUnavailable, ErpsyncError, JobFailed
from erpsync.graphql.quota import QuotaGovernor
from erpsync.graphql.quota import quota_left_pct as left_pct_of
from erpsync.inbound.gql_source import GraphqlEventSource, GraphqlPullJob
from erpsync.inbound.pull import PullJob
from erpsync.job import StopRequested
from erpsync.logs import configure_logging, get_logger
from erpsync.outbound.fulfilment import PushFulfilment
from erpsync.outbound.port import centra_port as build_port
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.soap.client import CentraSoapClient
from erpsync.store import migrate
from erpsync.store.engine import make_engine, make_read_engine
from erpsync.store.inbox import InboxRepository
from erpsync.store.quota_repo import SqlQuotaStore

log = get_logger("erpsync.daemon")


class UnknownJob(JobFailed):
    """A job name that is not one of erpsync's jobs (``erpsync run --only``)."""


def interval(seconds: float, factor: float = 1.0) -> IntervalTrigger:
    """Every ``seconds`` of the jobs' clock; a clock ``factor`` times faster fires as often in real time."""
    return IntervalTrigger(seconds=seconds / factor, timezone="UTC")


class ScaledCronTrigger(CronTrigger):
    """A cron expression read in a ``ScaledClock``'s time: it fires at the real moment the scaled
    clock shows the matching time (the scheduler itself runs on real time)."""

    scaled: ScaledClock | None = None

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        clock = self.scaled
        if clock is None:
            return super().get_next_fire_time(previous_fire_time, now)  # type: ignore[no-any-return]

        def scaled(dt: datetime) -> datetime:
            return datetime.fromtimestamp(clock.epoch + (dt.timestamp() - clock.epoch) * clock.factor, dt.tzinfo)

        prev = None
        if previous_fire_time is not None:
            # cron fires on whole seconds: round the float round trip (real → scaled) to the nearest
            # one, or a fire time read back a microsecond early is returned again, and APScheduler's
            # catch-up loop (Job._get_run_times) collects it for ever
            exact = scaled(previous_fire_time)
            prev = exact.replace(microsecond=0) + timedelta(seconds=1 if exact.microsecond >= 500_000 else 0)
        now_scaled = scaled(now) if prev is None else max(scaled(now), prev + timedelta(microseconds=1))
        nxt = super().get_next_fire_time(prev, now_scaled)
        if nxt is None:
            return None
        return datetime.fromtimestamp(clock.epoch + (nxt.timestamp() - clock.epoch) / clock.factor, nxt.tzinfo)


def cron(expr: str, clock: Clock | None = None) -> CronTrigger:
    trigger = ScaledCronTrigger.from_crontab(expr, timezone="UTC")
    if isinstance(clock, ScaledClock):
        trigger.scaled = clock
    return trigger


def triggers(settings: Settings, clock: Clock | None = None) -> dict[str, BaseTrigger]:
    """Every job's trigger from the config (also used by SIGHUP reload). With a ``ScaledClock`` (a
    time-scaled simulator, ``ERPSYNC_SIM_TIME_SCALE``) intervals and the cron are read in its time."""
    factor = clock.factor if isinstance(clock, ScaledClock) else 1.0
    return {
        "pull": interval(settings.pull.interval_seconds, factor),
        "pull_graphql": interval(settings.centra.events.interval_seconds, factor),
        "push_stock": interval(settings.push.stock_interval_seconds, factor),
        "push_prices": interval(settings.push.prices_interval_seconds, factor),
        "push_products": interval(settings.push.products_interval_seconds, factor),
        "push_fulfilment": interval(settings.fulfilment.interval_seconds, factor),
        "quota_refresh": interval(settings.daemon.quota_refresh_seconds, factor),
        "housekeeping": cron(settings.daemon.housekeeping_cron, clock),
        "import_sql": interval(settings.erp.sql.interval_seconds, factor),
    }


class StopAwareClock:
    """The jobs' clock: ``sleep`` (a Retry-After, a backoff, a quota wait) ends as soon as the daemon
    is stopping, with ``StopRequested``: the job is waiting, so nothing is half done, and the run
    ends ``stopped`` at once instead of outliving the shutdown grace (exit 1, a failed unit)."""

    SLICE = 0.2  # real seconds between looks at the stop flag

    def __init__(self, inner: Clock, stop_event: threading.Event) -> None:
        self.inner = inner
        self.stop_event = stop_event

    def now(self) -> datetime:
        return self.inner.now()

    def time(self) -> float:
        return self.inner.time()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def real_monotonic(self) -> float:
        return self.inner.real_monotonic()

    def sleep(self, seconds: float) -> None:
        # a scaled clock (the simulator's) runs `factor` times faster than real time
        self._wait(seconds, self.inner.monotonic, self.inner.sleep,
                   self.SLICE * float(getattr(self.inner, "factor", 1.0)))

    def real_sleep(self, seconds: float) -> None:
        self._wait(seconds, self.inner.real_monotonic, self.inner.real_sleep, self.SLICE)

    def _wait(self, seconds: float, now: Callable[[], float], sleep: Callable[[float], None], piece: float) -> None:
        """Sleep ``seconds`` of the ``now`` clock in pieces of at most ``piece``, ending early at a stop."""
        end = now() + seconds
        while True:
            if self.stop_event.is_set():
                raise StopRequested("shutdown requested during a wait")
            left = end - now()
            if left <= 0:
                return
            sleep(min(left, piece))


@dataclass
class Wiring:
    """What job builders draw from; shared clients are created on first use and closed by ``close``."""

    settings: Settings
    engine: Engine
    clock: Clock
    stop_event: threading.Event
    may_write: Callable[[], bool]
    overrides: dict[str, Any]
    closers: list[Callable[[], None]] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def job_kwargs(self) -> dict[str, Any]:
        return {"clock": self.clock, "stop_event": self.stop_event, "may_write": self.may_write}

    def shared(self, name: str, factory: Callable[[], Any], close: str | None = "close") -> Any:
        if name in self.overrides:
            return self.overrides[name]
        with self._lock:
            if name not in self._cache:
                obj = factory()
                self._cache[name] = obj
                if close and hasattr(obj, close):
                    self.closers.append(getattr(obj, close))
            return self._cache[name]

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


def _build_housekeeping(w: Wiring) -> Any:
    return HousekeepingJob(w.engine, retention=w.settings.retention, **w.job_kwargs())


def soap_client(w: Wiring) -> Any:
    """The one SOAP client (``EventSource``) of this process; override with ``soap=``."""

    def make() -> Any:
        soap = w.settings.centra.soap
        if soap is None:
            raise ConfigError([ConfigProblem("centra.soap", "pulling events needs a [centra.soap] section",
                                             "configuration")])
        types = soap.event_types
        if len(types) != 1:
            raise ConfigError([ConfigProblem(
                "centra.soap.event_types", "the daemon pulls one queue: give one type or [\"all\"]",
                "configuration")])
        assert soap.password is not None  # required by load_settings for the commands that pull
        return CentraSoapClient(
            soap.url, soap.username, soap.password.get_secret_value(), store_tz=w.settings.store_tz,
            event_type=types[0], markets=soap.markets, connect_timeout=soap.connect_timeout,
            read_timeout=soap.read_timeout, operation_timeout=soap.operation_timeout)

    return w.shared("soap", make)


def _build_pull(w: Wiring) -> Any:
    # with the GraphQL queue read too (source = "both"), objects it stored follow its events
    repository = InboxRepository(graphql_queue_read=w.settings.centra.events.source != "soap")
    return PullJob(w.engine, soap_client(w), store_tz=w.settings.store_tz, repository=repository,
                   max_batches=w.settings.pull.max_batches_per_run,
                   malformed_retries=w.settings.pull.malformed_retries, **w.job_kwargs())


def _build_pull_graphql(w: Wiring) -> Any:
    """The GraphQL events source: its own client (money decoded as Decimal), the shared governor."""

    def make() -> Any:
        from erpsync.graphql.client import CentraGraphql  # gql loads on first use, not at CLI start

        g = w.settings.centra.graphql
        assert g is not None and g.token is not None  # required by load_settings for the daemon
        return CentraGraphql(g.url, g.token, governor=governor(w), clock=w.clock, connect_timeout=g.connect_timeout,
                             read_timeout=g.read_timeout, decimal_floats=True)

    client = w.shared("graphql_events", make)
    return GraphqlPullJob(w.engine, GraphqlEventSource(client), max_batches=w.settings.pull.max_batches_per_run,
                          **w.job_kwargs())


def governor(w: Wiring) -> Any:
    """The quota governor, its state in the database so every process spends one budget."""

    def make() -> Any:
        return QuotaGovernor.from_settings(w.settings.quota, clock=w.clock, store=SqlQuotaStore(w.engine))

    return w.shared("governor", make, close=None)


def centra_port(w: Wiring) -> Any:
    """One GraphQL client (thread-safe) behind the push jobs' port; override with ``graphql=``."""

    def make() -> Any:
        return build_port(w.settings, w.engine, w.clock, governor=governor(w))

    return w.shared("graphql", make)


def _push_builder(job_cls: type) -> Callable[[Wiring], Any]:
    def build(w: Wiring) -> Any:
        return job_cls(w.engine, centra_port(w), w.settings.push, **w.job_kwargs())

    return build


def _build_fulfilment(w: Wiring) -> Any:
    return PushFulfilment(w.engine, centra_port(w), w.settings.push, w.settings.fulfilment, **w.job_kwargs())


def _build_import_sql(w: Wiring) -> Any:
    return SqlImportJob(w.engine, w.settings.erp.sql, **w.job_kwargs())


def _build_quota_refresh(w: Wiring) -> Any:
    return QuotaRefreshJob(w.engine, centra_port(w).client, **w.job_kwargs())


@dataclass(frozen=True)
class Capability:
    """One job: how to build it from the wiring, and the staging entity its backlog is counted in."""

    build: Callable[[Wiring], Any]
    entity: str | None = None


CAPABILITIES: dict[str, Capability] = {
    "pull": Capability(_build_pull),
    "pull_graphql": Capability(_build_pull_graphql),
    "push_stock": Capability(_push_builder(PushStock), entity="stock"),
    "push_prices": Capability(_push_builder(PushPrices), entity="price"),
    "push_products": Capability(_push_builder(PushProducts), entity="product"),
    "push_fulfilment": Capability(_build_fulfilment),
    "quota_refresh": Capability(_build_quota_refresh),
    "housekeeping": Capability(_build_housekeeping),
    "import_sql": Capability(_build_import_sql),
}

#: the jobs a complete erpsync runs, in the order they are listed by ``status``
ALL_JOBS = ("pull", "push_stock", "push_prices", "push_products", "push_fulfilment", "quota_refresh", "housekeeping")
#: run as well when configured: the snapshot import from the ERP's database (``[erp.sql] url``), the
#: GraphQL events queue (``[centra.events] source = "graphql"`` or ``"both"``)
OPTIONAL_JOBS = ("import_sql", "pull_graphql")


#: the jobs an accepted webhook runs at once (those configured; the scheduled runs stay the safety net)
WEBHOOK_JOBS = ("pull", "pull_graphql")


#: the jobs each side of Centra's API serves: a configuration without that side runs without them
SOAP_JOBS = ("pull",)
GRAPHQL_JOBS = ("pull_graphql", "push_stock", "push_prices", "push_products", "push_fulfilment", "quota_refresh")
#: after a run that sent something, run these at once: rows waiting for new products go out now
WAKES = {"push_products": ("push_prices", "push_stock")}


def default_jobs(settings: Settings) -> list[str]:
    """Every job the configuration enables, in ``status`` order: ``pull`` with ``[centra.soap]`` and
    ``pull_graphql`` with ``[centra.graphql]``, as ``[centra.events] source`` says (soap, graphql or
    both); the push jobs and ``quota_refresh`` with ``[centra.graphql]``; ``housekeeping`` always;
    ``import_sql`` when ``[erp.sql] url`` is set."""
    off = jobs_off(settings)
    return [j for j in ("pull", "pull_graphql", *ALL_JOBS[1:], "import_sql") if j not in off]


def jobs_off(settings: Settings) -> dict[str, str]:
    """The jobs the configuration leaves off, with the reason (a side of the API not configured, the
    event source not chosen, no ERP database)."""
    off: dict[str, str] = {}
    source = settings.centra.events.source
    if source == "soap":
        off["pull_graphql"] = 'centra.events.source = "soap"'
    if source == "graphql":
        off["pull"] = 'centra.events.source = "graphql"'
    if settings.centra.soap is None:
        off.update({j: "no [centra.soap] section" for j in SOAP_JOBS})
    if settings.centra.graphql is None:
        off.update({j: "no [centra.graphql] section" for j in GRAPHQL_JOBS})
    if not settings.erp.sql.url:
        off["import_sql"] = "no [erp.sql] url"
    return off


def leadership_for(settings: Settings) -> Leadership:
    url = settings.database_url
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        lock = FileLock.for_sqlite_url(url)
        lock.acquire_or_raise()
        return lock
    if backend == "postgresql":
        return PgAdvisoryLeader(url, keepalive_s=keepalive_for(settings.daemon.leader_takeover_seconds))
    return AlwaysLeader()


def quota_left_pct(w: Wiring) -> float | None:
    """The quota figure (``graphql.quota.quota_left_pct`` of the governor's view), when a governor exists."""
    gov = w.overrides.get("governor") or w._cache.get("governor")
    if gov is None:
        return None
    try:
        views, _info = gov.snapshot()
    except (SQLAlchemyError, ErpsyncError):
        return None  # the summary line must never fail a run
    return left_pct_of(views)


def _add_quota_left(job: Any, w: Wiring) -> None:
    """Every job's summary line (``job.finished``) carries ``quota_left_pct``."""
    own = job.summary_fields

    def summary_fields() -> dict[str, object]:
        fields = dict(own())
        fields.setdefault("quota_left_pct", quota_left_pct(w))
        return fields

    job.summary_fields = summary_fields


@dataclass
class App:
    settings: Settings
    engine: Engine
    wiring: Wiring
    daemon: Daemon
    jobs: dict[str, Any]

    def close(self) -> None:
        self.daemon.close()
        self.wiring.close()
        if self.daemon.read_engine is not self.engine:
            self.daemon.read_engine.dispose()
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    jobs: Sequence[str] | None = None,
    engine: Engine | None = None,
    clock: Clock | None = None,
    leadership: Leadership | None = None,
    notifier: SystemdNotifier | None = None,
    environ: Mapping[str, str] | None = None,
    reload: Callable[[], Mapping[str, BaseTrigger]] | None = None,
    daemon_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> App:
    """Assemble the daemon for ``settings``. ``jobs`` limits it to some of them (default: all;
    ``UnknownJob`` for a name that is not a job). On SQLite this takes the
    single-instance lock (``AlreadyRunning`` if another process holds it)."""
    wanted = list(jobs) if jobs is not None else default_jobs(settings)
    off = {j: why for j, why in jobs_off(settings).items() if j in ALL_JOBS}
    if off and jobs is None:
        log.info("daemon.jobs_off", jobs=off, hint="a side of Centra's API that is not configured runs no jobs")
    unknown = [j for j in wanted if j not in (*ALL_JOBS, *OPTIONAL_JOBS)]
    if unknown:
        raise UnknownJob(f"unknown job(s) {unknown}; jobs are {', '.join((*ALL_JOBS, *OPTIONAL_JOBS))}")
    if "import_sql" in wanted and not settings.erp.sql.url:
        raise ConfigError([ConfigProblem("erp.sql.url", "the import_sql job needs the ERP database URL",
                                         "configuration")])
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms,
                                   echo=settings.database.echo)
    lead = leadership or leadership_for(settings)
    stop_event = threading.Event()
    wiring = Wiring(settings, engine, StopAwareClock(clock, stop_event), stop_event, lead.is_leader,
                    dict(overrides))
    built: dict[str, Any] = {}
    specs: list[JobSpec] = []
    trig = triggers(settings, clock)
    try:
        for name in wanted:
            cap = CAPABILITIES[name]
            job = cap.build(wiring)
            _add_quota_left(job, wiring)
            built[name] = job
            specs.append(JobSpec(name, job, trig[name], entity=cap.entity,
                                 run_at_start=name != "housekeeping", wakes=WAKES.get(name, ())))
    except BaseException:
        wiring.close()
        lead.release()
        raise
    host, port = settings.daemon.metrics_host, settings.daemon.metrics_port
    opts: dict[str, Any] = {
        "grace_seconds": settings.daemon.shutdown_grace_seconds,
        "takeover_seconds": settings.daemon.leader_takeover_seconds,
        "alert_after_failures": settings.daemon.alert_after_failures,
        "metrics_address": (host, port) if port else None,
        "quota_share": settings.quota.share,
        "quota_clock": wiring.clock,
    }
    hook = settings.centra.webhook
    if hook.port and hook.secret is not None:
        opts["webhook"] = WebhookConfig(
            hook.host, hook.port, hook.secret.get_secret_value(), jobs=WEBHOOK_JOBS, path=hook.path,
            tolerance_s=hook.tolerance_seconds, max_body=hook.max_body_bytes)
    opts.update(daemon_options or {})
    if "read_engine" not in opts and engine.dialect.name == "sqlite":
        opts["read_engine"] = make_read_engine(engine.url.render_as_string(hide_password=False),
                                               busy_timeout_ms=settings.database.busy_timeout_ms)
    # the scheduler runs on real time; the injected clock (possibly a simulator's scaled one) is the
    # jobs', and the triggers above are read in it
    daemon = Daemon(engine, specs, leadership=lead, notifier=notifier, stop_event=stop_event,
                    environ=environ, reload=reload, **opts)
    return App(settings, engine, wiring, daemon, built)


#: settings a SIGHUP applies live; anything else changed needs a restart (clients, database, paths)
LIVE_KEYS = ("pull.interval_seconds", "push.stock_interval_seconds", "push.prices_interval_seconds",
             "push.products_interval_seconds", "fulfilment.interval_seconds",
             "daemon.quota_refresh_seconds", "daemon.housekeeping_cron",
             "logging.level", "centra.events.interval_seconds")


def run_daemon(settings: Settings, config_path: Path | None, jobs: Sequence[str] | None = None,
               environ: Mapping[str, str] | None = None, *, upgrade_schema: bool = False) -> int:
    """Run the daemon until stopped. ``upgrade_schema``: create or migrate the schema first, in this
    process (the systemd unit's way: its exit status reaches ``RestartPreventExitStatus=``, which an
    ``ExecStartPre=`` command's does not)."""
    import os

    env = os.environ if environ is None else environ
    arenas = limit_malloc_arenas(env)  # before the job threads start (erpsync.daemon.memory)
    if arenas is not None:
        log.info("daemon.malloc_arenas", arenas=arenas)
    # one clock for every job and trigger: the system clock, or a time-scaled simulator's
    clock = clock_from_environ(env)
    if isinstance(clock, ScaledClock):
        log.warning("daemon.time_scaled", factor=clock.factor, epoch=clock.epoch,
                    detail="ERPSYNC_SIM_TIME_SCALE is set: jobs and schedules run on the simulator's clock")
    for warning in settings.deprecations():
        log.warning("config.deprecated_key", detail=warning)
    engine = make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms,
                         echo=settings.database.echo)
    try:
        if upgrade_schema:
            before = migrate.current_revision(engine)
            migrate.upgrade(engine)
            after = migrate.current_revision(engine)
            if before != after:
                log.info("daemon.schema_upgraded", revision=after, previous=before or "empty")
        migrate.ensure_current(engine)  # SchemaMismatch: an operator must run `erpsync db upgrade`
    except (OperationalError, InterfaceError) as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
        log.error("daemon.database_unavailable", database=where, error_class=type(exc).__name__,
                  hint="transient: erpsync exits 75 and systemd starts it again")
        raise DatabaseUnavailable(f"cannot reach the database {where}: "
                                  f"{reason[0] if reason else type(exc).__name__}") from exc
    except BaseException:
        engine.dispose()
        raise
    current = {"settings": settings}

    def reload() -> Mapping[str, BaseTrigger]:
        new = load_settings(config_path)
        old = current["settings"]
        changed = _changed_keys(redacted_dump(old), redacted_dump(new))
        needs_restart = sorted(k for k in changed if k not in LIVE_KEYS)
        if needs_restart:
            log.warning("daemon.reload_needs_restart", keys=needs_restart,
                        hint="these settings apply at the next restart; the rest is live now")
        if new.logging.level != old.logging.level:
            configure_logging(new.logging.level, new.logging.format, stream=sys.stderr)
        current["settings"] = new
        return triggers(new, clock)

    app = build_app(settings, jobs=jobs, engine=engine, clock=clock, reload=reload)
    try:
        return app.daemon.serve()
    finally:
        app.close()


def _changed_keys(a: Mapping[str, object], b: Mapping[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out.extend(_changed_keys(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
