"""Prometheus metrics and the ``/metrics``, ``/healthz``, ``/readyz`` listener.

Run counters and timestamps are kept in-process as jobs finish. Backlog, parked items, pending
outbound items, quota and 429s are read from the database at scrape time (``StoreCollector``), so
``/metrics`` always agrees with the tables ``erpsync status`` reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from erpsync.clock import Clock, SystemClock
from erpsync.config import QuotaSettings
from erpsync.logs import get_logger, scrub
from erpsync.store.fulfilment import DELIVERY_STATES, ErpDelivery
from erpsync.store.models import InboxEvent, JobRun, MappingCheck, OutboundItem, ParkedItem, QuotaState
from erpsync.store.quota_repo import learnt_batch_sizes, read_quota

log = get_logger("erpsync.daemon.metrics")

#: ``quota.share`` when the caller does not say (the configuration's default)
DEFAULT_QUOTA_SHARE: float = QuotaSettings.model_fields["share"].default

# run.counts keys that mean "events" for the pull job and "items" for the push jobs
EVENT_COUNT_KEYS = ("fetched", "applied", "superseded", "duplicates", "parked", "acked")
ITEM_COUNT_KEYS = ("changed", "sent", "parked", "still_parked", "waiting")


class DaemonMetrics:
    """The daemon's metric set, in its own registry (several daemons may live in one test process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter("erpsync_job_runs", "Job runs by job and outcome (ok, stopped, retry, failed).",
                            ["job", "outcome"], registry=r)
        self.duration = Histogram("erpsync_job_duration_seconds", "Duration of job runs.", ["job"],
                                  buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600), registry=r)
        self.last_attempt = Gauge("erpsync_job_last_attempt_timestamp_seconds",
                                  "Unix time the job last started.", ["job"], registry=r)
        self.last_success = Gauge("erpsync_job_last_success_timestamp_seconds",
                                  "Unix time the job last finished with outcome ok.", ["job"], registry=r)
        self.enabled = Gauge("erpsync_job_enabled",
                             "1 while the job is scheduled, 0 after a fatal error disabled it.", ["job"],
                             registry=r)
        self.degraded = Gauge("erpsync_job_degraded",
                              "1 while the job has failed daemon.alert_after_failures runs in a row "
                              "(still scheduled, retrying with backoff); 0 once it succeeds.", ["job"],
                              registry=r)
        self.failures = Gauge("erpsync_job_consecutive_failures",
                              "Failed or retried runs since the last success (drives the backoff).", ["job"],
                              registry=r)
        self.counts = Counter("erpsync_job_items", "Everything jobs counted in run.counts, by key.",
                              ["job", "key"], registry=r)
        self.events = Counter(
            "erpsync_events", "SOAP events by stage (fetched, applied, superseded, duplicates, parked, acked).",
            ["stage"], registry=r)
        self.items = Counter(
            "erpsync_items", "Outbound items by entity and result (changed, sent, parked, still_parked, waiting).",
            ["entity", "result"], registry=r)
        self.skipped = Counter("erpsync_job_skipped", "Ticks skipped: the previous run was still going "
                               "(still_running) or the tick came too late (missed).", ["job", "reason"],
                               registry=r)
        self.rate_limited = Counter("erpsync_job_rate_limited", "HTTP 429 answers a job met, by job.",
                                    ["job"], registry=r)
        self.leader = Gauge("erpsync_leader", "1 when this process is the active instance, 0 on standby.",
                            registry=r)
        self.healthy = Gauge("erpsync_healthy", "1 when the scheduler loop is healthy and no job is disabled.",
                             registry=r)
        self.triggered = Counter("erpsync_job_triggered", "Runs brought forward by a trigger (webhook), by job.",
                                 ["job"], registry=r)
        self.watchdog_pings = Counter("erpsync_watchdog_pings", "WATCHDOG=1 messages sent to systemd.",
                                      registry=r)
        # exposed as erpsync_fulfilment_capture_failures_total (alert rules use that exact name)
        self.capture_failures = Counter("erpsync_fulfilment_capture_failures",
                                        "Shipment captures Centra refused (the delivery is parked for a person).",
                                        registry=r)

    def record_run(self, job: str, outcome: str, counts: dict[str, int], duration_s: float,
                   started_at: float, entity: str | None) -> None:
        self.runs.labels(job, outcome).inc()
        self.duration.labels(job).observe(max(duration_s, 0.0))
        self.last_attempt.labels(job).set(started_at)
        if outcome == "ok":
            self.last_success.labels(job).set(started_at + duration_s)
        for key, value in counts.items():
            if value:
                self.counts.labels(job, key).inc(value)
        if job == "pull":
            for key in EVENT_COUNT_KEYS:
                if counts.get(key):
                    self.events.labels(key).inc(counts[key])
        elif entity is not None:
            for key in ITEM_COUNT_KEYS:
                if counts.get(key):
                    self.items.labels(entity, key).inc(counts[key])
        if counts.get("rate_limited"):
            self.rate_limited.labels(job).inc(counts["rate_limited"])
        if job == "push_fulfilment" and counts.get("capture_failed"):
            self.capture_failures.inc(counts["capture_failed"])

    def seed_from_store(self, engine: Engine, jobs: list[str]) -> None:
        """Last attempt / last success per job from ``job_run``, so a restarted (or newly leading)
        process exports what ``erpsync status`` shows instead of no series at all (an absent series
        never fires a "no success for N minutes" alert)."""
        attempts, successes = last_run_times(engine, jobs)
        for job, ts in attempts.items():
            self.last_attempt.labels(job).set(ts)
        for job, ts in successes.items():
            self.last_success.labels(job).set(ts)


class StoreCollector(Collector):
    """Figures read from the database at scrape time."""

    def __init__(self, engine: Engine, *, quota_share: float = DEFAULT_QUOTA_SHARE, clock: Clock | None = None,
                 ) -> None:
        self.engine = engine
        self.quota_share = quota_share
        self.clock = clock or SystemClock()

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to pre-register

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("erpsync_store_scrape_ok", "1 when the database figures below could be read.")
        try:
            figures = store_figures(self.engine, quota_share=self.quota_share, quota_now=self.clock.time())
        except SQLAlchemyError as exc:
            log.warning("metrics.store_unavailable", error_class=type(exc).__name__, error=str(exc)[:200])
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        backlog = GaugeMetricFamily("erpsync_inbox_backlog",
                                    "Inbox events stored but not yet acknowledged to Centra.")
        backlog.add_metric([], figures["inbox_unacked"])
        yield backlog
        parked = GaugeMetricFamily("erpsync_parked_items", "Open (unresolved) parked items by kind.",
                                   labels=["kind"])
        for kind, n in figures["parked_open"].items():
            parked.add_metric([kind], n)
        yield parked
        outbound = GaugeMetricFamily("erpsync_outbound_items", "Outbound items by entity and status.",
                                     labels=["entity", "status"])
        for (entity, status), n in figures["outbound"].items():
            outbound.add_metric([entity, status], n)
        yield outbound
        remaining = GaugeMetricFamily("erpsync_quota_remaining",
                                      "erpsync's tokens left in each quota bucket, topped up to now "
                                      "(the governor's view).",
                                      labels=["bucket"])
        capacity = GaugeMetricFamily("erpsync_quota_capacity", "Capacity of each quota bucket.",
                                     labels=["bucket"])
        allowance = GaugeMetricFamily("erpsync_quota_allowance",
                                      "erpsync's share of each quota bucket (capacity × quota.share).",
                                      labels=["bucket"])
        for name, (tokens, cap, allowed) in figures["quota"].items():
            remaining.add_metric([name], tokens)
            capacity.add_metric([name], cap)
            allowance.add_metric([name], allowed)
        yield remaining
        yield capacity
        sizes = GaugeMetricFamily("erpsync_batch_size", "Learnt batch size (items per mutation) by mutation kind.",
                                  labels=["mutation"])
        for kind, size in figures.get("batch_sizes", {}).items():
            sizes.add_metric([kind], size)
        yield sizes
        deliveries = GaugeMetricFamily("erpsync_deliveries", "ERP deliveries (erp_delivery) by fulfilment state.",
                                       labels=["state"])
        for state in DELIVERY_STATES:  # every state, zeros included: an alert on "parked" needs the series
            deliveries.add_metric([state], figures["deliveries"].get(state, 0))
        yield deliveries
        yield allowance
        if figures["quota_left_pct"] is not None:
            left = GaugeMetricFamily("erpsync_quota_left_pct",
                                     "The quota figure: the tightest bucket's tokens as % of erpsync's allowance "
                                     "(as in STATUS=, job.finished and erpsync status).")
            left.add_metric([], figures["quota_left_pct"])
            yield left
        unknown = GaugeMetricFamily(
            "erpsync_unknown_mapping", "1 for a push.warehouses / push.pricelists code Centra does not have "
            "(its items are parked), 0 once found; from the last check.", labels=["kind", "code"])
        for kind, code, _ref, _mapped, known in figures["mappings"]:
            unknown.add_metric([kind, code], 0 if known else 1)
        yield unknown
        limited = CounterMetricFamily("erpsync_rate_limited", "HTTP 429 answers received from Centra.")
        limited.add_metric([], figures["rate_limited"])
        yield limited


def store_figures(engine: Engine, *, quota_share: float = DEFAULT_QUOTA_SHARE,
                  quota_now: float | None = None) -> dict[str, Any]:
    """Backlog, parked, outbound and quota figures, shared by /metrics, STATUS= and ``erpsync status``.

    The quota is the governor's view at clock time ``quota_now`` (default: now) for ``quota_share``:
    ``quota`` is bucket → (tokens topped up to now, capacity, allowance), ``quota_left_pct`` the one figure.
    """
    with Session(engine) as s:
        unacked = s.exec(select(func.count()).select_from(InboxEvent).where(  # type: ignore[call-overload]
            col(InboxEvent.acked_at).is_(None))).one()[0]
        parked_rows = s.exec(select(ParkedItem.kind, func.count()).where(  # type: ignore[call-overload]
            col(ParkedItem.resolved_at).is_(None)).group_by(ParkedItem.kind)).all()
        outbound_rows = s.exec(select(OutboundItem.entity, OutboundItem.status,  # type: ignore[call-overload]
                                      func.count()).group_by(OutboundItem.entity, OutboundItem.status)).all()
        state = s.exec(select(QuotaState.rate_limited_count, QuotaState.estimates)).first()  # type: ignore[call-overload]
        delivery_rows = s.exec(select(ErpDelivery.state, func.count())  # type: ignore[call-overload]
                               .group_by(ErpDelivery.state)).all()
        mappings = s.exec(select(MappingCheck.kind, MappingCheck.code, MappingCheck.ref,  # type: ignore[call-overload]
                                 MappingCheck.mapped, MappingCheck.known).order_by(
            col(MappingCheck.kind), col(MappingCheck.code))).all()
    views, left_pct = read_quota(engine, quota_share, SystemClock().time() if quota_now is None else quota_now)
    return {
        "deliveries": {str(k): int(n) for k, n in delivery_rows},
        "inbox_unacked": int(unacked),
        "parked_open": {str(k): int(n) for k, n in parked_rows},
        "outbound": {(str(e), str(st)): int(n) for e, st, n in outbound_rows},
        "quota": {v.name: (float(v.tokens), float(v.capacity), float(v.allowance)) for v in views},
        "quota_left_pct": left_pct,
        "rate_limited": int(state[0]) if state else 0,
        # learnt batch sizes per mutation kind (erpsync.outbound.batching), kept with the quota state
        "batch_sizes": learnt_batch_sizes(state[1] if state else None),
        "mappings": [(str(k), str(c), str(r), bool(m), bool(kn)) for k, c, r, m, kn in mappings],
    }


def last_run_times(engine: Engine, jobs: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Unix times of each job's latest start and latest successful end, from ``job_run``."""
    with Session(engine) as s:
        started = s.exec(select(JobRun.job, func.max(JobRun.started_at)).where(  # type: ignore[call-overload]
            col(JobRun.job).in_(jobs)).group_by(JobRun.job)).all()
        ok = s.exec(select(JobRun.job, func.max(JobRun.finished_at)).where(  # type: ignore[call-overload]
            col(JobRun.job).in_(jobs), JobRun.outcome == "ok").group_by(JobRun.job)).all()
    return ({str(j): _unix(t) for j, t in started if t is not None},
            {str(j): _unix(t) for j, t in ok if t is not None})


def _unix(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()  # SQLite returns naive UTC


HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one small threaded HTTP listener."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 healthz: HealthCheck, readyz: HealthCheck) -> None:
        handler = _handler(registry, healthz, readyz)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="erpsync-metrics",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def _handler(registry: CollectorRegistry, healthz: HealthCheck,
             readyz: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "erpsync"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = generate_latest(registry)
                self._send(200, body, CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, detail = (healthz if path == "/healthz" else readyz)()
                body = json.dumps({"ok": ok, **detail}, default=str).encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            body = scrub(body.decode("utf-8", "replace")).encode()  # label values come from data
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # scrapes every few seconds would drown the journal

    return Handler
