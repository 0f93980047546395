"""The failure policy on the daemon (``erpsync run``), against the simulator over loopback HTTP.

For each class of call — SOAP (``pull``), a GraphQL query (``quota_refresh``), a GraphQL mutation
(``push_products``) — unexpected statuses and malformed answers are transient: the job stays
scheduled, backs off, turns *degraded* after ``daemon.alert_after_failures`` failed runs
(``/healthz`` 200, ``/readyz`` lists it, ``erpsync_job_degraded{job}`` 1, ``daemon.job_degraded``),
and recovers (``daemon.job_recovered``) once Centra answers again. Only a refused login disables.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from erpsync.app import App, build_app
from erpsync.config import Settings
from erpsync.daemon.leader import AlwaysLeader
from erpsync.inbound.retry import Backoff
from erpsync.sample import Catalogue
from erpsync.sim.server import SimServer
from erpsync.store.engine import make_engine
from erpsync.store.models import InboxEvent
from tests.fixtures.sim import SimFactory
from tests.integration.daemon.helpers import DaemonThread, wait_for
from tests.unit.outbound.helpers import load_catalogue

ALERT_AFTER = 3


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'policy.db'}")
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def settings_for(sim: SimServer, engine: Engine) -> Settings:
    return Settings.model_validate({
        "centra": {"soap": {"url": sim.soap_url, "username": sim.soap_user, "password": sim.soap_password,
                            "read_timeout": 5, "operation_timeout": 10},
                   "graphql": {"url": sim.graphql_url, "token": sim.token, "read_timeout": 5}},
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "pull": {"interval_seconds": 0.2},
        "push": {"products_interval_seconds": 0.2, "max_attempts": 1, "unknown_outcome_wait_seconds": 0},
        "quota": {"tier": "enterprise"},
        "daemon": {"metrics_port": 0, "quota_refresh_seconds": 0.2, "alert_after_failures": ALERT_AFTER},
    })


def start(sim: SimServer, engine: Engine, job: str) -> App:
    app = build_app(settings_for(sim, engine), jobs=[job], engine=engine, leadership=AlwaysLeader(),
                    environ={}, daemon_options={"loop_interval": 0.05, "grace_seconds": 5.0,
                                                "metrics_address": ("127.0.0.1", 0)})
    if job == "pull":
        app.jobs["pull"].backoff = Backoff(attempts=1)  # one call per run: each fault is one failed run
    app.daemon.specs[job].max_backoff_s = 0.3  # the policy's backoff, shortened for the test
    return app


def get(app: App, path: str) -> tuple[int, str]:
    assert app.daemon.server is not None
    host, port = app.daemon.server.address
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
        return resp.status, resp.read().decode()


def exercise(app: App, job: str, sim: SimServer, endpoint: str, only: str | None,
             faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Arm ``faults`` (each once) then a permanent 520; wait for degraded; check the health
    surfaces; clear the faults; wait for recovery. Returns the daemon's log events."""
    for rule in faults:
        sim.set_fault(endpoint, only=only, count=1, **rule)
    sim.set_fault(endpoint, "http", status=520, probability=1.0, only=only)
    d = app.daemon
    with structlog.testing.capture_logs() as logs:
        t = DaemonThread(d).start()
        try:
            wait_for(lambda: d.states[job].degraded, 30, f"{job} degraded")
            assert d.states[job].enabled, d.states[job].disabled_reason
            assert d.states[job].failures >= ALERT_AFTER
            status, body = get(app, "/healthz")
            assert status == 200 and json.loads(body)["degraded_jobs"].get(job, 0) >= ALERT_AFTER
            status, body = get(app, "/readyz")
            assert status == 200 and job in json.loads(body)["degraded_jobs"]
            _status, text = get(app, "/metrics")
            assert f'erpsync_job_degraded{{job="{job}"}} 1.0' in text
            assert f'erpsync_job_enabled{{job="{job}"}} 1.0' in text
            assert "DEGRADED: " + job in d.status_text()
            sim.clear_faults()
            wait_for(lambda: not d.states[job].degraded and d.states[job].last_outcome == "ok", 30,
                     f"{job} recovered")
            _status, text = get(app, "/metrics")
            assert f'erpsync_job_degraded{{job="{job}"}} 0.0' in text
            assert d.states[job].enabled
        finally:
            t.stop()
            app.close()
    names = [e["event"] for e in logs]
    assert "daemon.job_disabled" not in names
    assert names.count("daemon.job_degraded") == 1, names
    assert names.count("daemon.job_recovered") == 1, names
    return logs


def test_soap_unexpected_statuses_and_malformed_batches_degrade_then_recover(
    sim_factory: SimFactory, engine: Engine,
) -> None:
    sim = sim_factory()
    sim.enqueue_event("paymentterm", "NET30", mission="delete")
    app = start(sim, engine, "pull")
    exercise(app, "pull", sim, "soap", None, [
        {"kind": "http", "status": 499}, {"kind": "http", "status": 418}, {"kind": "malformed"},
        {"kind": "truncate"}, {"kind": "http", "status": 504}])
    with Session(engine) as s:
        rows = s.exec(select(InboxEvent)).scalars().all()  # type: ignore[call-overload]
    assert len(rows) == 1 and rows[0].acked_at is not None
    assert sim.state()["soap"]["queue_depth"] == 0


def test_graphql_query_unexpected_statuses_and_non_graphql_bodies_degrade_then_recover(
    sim_factory: SimFactory, engine: Engine,
) -> None:
    sim = sim_factory(tier="enterprise")
    app = start(sim, engine, "quota_refresh")
    exercise(app, "quota_refresh", sim, "graphql", "query", [
        {"kind": "malformed"}, {"kind": "http", "status": 418}, {"kind": "truncate"},
        {"kind": "http", "status": 404}])


def test_graphql_mutation_unexpected_statuses_degrade_then_recover_without_duplicates(
    sim_factory: SimFactory, engine: Engine,
) -> None:
    sim = sim_factory(tier="enterprise")
    load_catalogue(engine, Catalogue(products=2, variants=1, sizes=1))
    app = start(sim, engine, "push_products")
    exercise(app, "push_products", sim, "graphql", "mutation", [
        {"kind": "malformed"}, {"kind": "http", "status": 418}, {"kind": "apply_then_499"}])
    gql = sim.state()["graphql"]
    assert gql["counts"]["products"] == 2, gql["counts"]
    assert not any(gql["duplicates"].values()), gql["duplicates"]


def test_a_refused_login_still_disables_the_job(sim_factory: SimFactory, engine: Engine) -> None:
    sim = sim_factory()
    sim.set_fault("soap", "expired_token", probability=1.0)
    app = start(sim, engine, "pull")
    d = app.daemon
    with structlog.testing.capture_logs() as logs:
        t = DaemonThread(d).start()
        try:
            wait_for(lambda: not d.states["pull"].enabled, 10, "pull disabled")
            assert get(app, "/metrics")[1].count('erpsync_job_enabled{job="pull"} 0.0') == 1
        finally:
            t.stop()
            app.close()
    assert "daemon.job_disabled" in [e["event"] for e in logs]
