"""Each side of Centra's API runs alone: [centra.soap] alone pulls under the daemon (push jobs off,
said at start-up); [centra.graphql] alone pushes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine
from sqlmodel import SQLModel

from erpsync.app import build_app
from erpsync.config import Settings
from erpsync.daemon.leader import AlwaysLeader
from erpsync.sample import Catalogue
from erpsync.store.engine import make_engine
from tests.fixtures.sim import SimFactory
from tests.integration.daemon.helpers import DaemonThread, wait_for
from tests.unit.outbound.helpers import load_catalogue


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def test_a_soap_only_configuration_pulls_and_runs_no_push_job(sim_factory: SimFactory, engine: Engine) -> None:
    sim = sim_factory()
    sim.generate(30)
    settings = Settings.model_validate({
        "centra": {"soap": {"url": sim.soap_url, "username": sim.soap_user, "password": sim.soap_password}},
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "daemon": {"metrics_port": 0}})
    with structlog.testing.capture_logs() as logs:
        app = build_app(settings, engine=engine, leadership=AlwaysLeader(), environ={},
                        daemon_options={"loop_interval": 0.05})
    assert sorted(app.daemon.specs) == ["housekeeping", "pull"]
    [off] = [e for e in logs if e["event"] == "daemon.jobs_off"]
    assert off["jobs"]["push_stock"] == "no [centra.graphql] section"
    t = DaemonThread(app.daemon).start()
    try:
        wait_for(lambda: app.daemon.states["pull"].last_outcome == "ok", 20, "a pull")
    finally:
        t.stop()
        app.close()
    assert sim.queue.depth == 0


def test_a_graphql_only_configuration_pushes(sim_factory: SimFactory, engine: Engine) -> None:
    sim = sim_factory(tier="enterprise")
    load_catalogue(engine, Catalogue(products=2, variants=1, sizes=1))
    settings = Settings.model_validate({
        "centra": {"graphql": {"url": sim.graphql_url, "token": sim.token}},
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "quota": {"tier": "enterprise"}, "daemon": {"metrics_port": 0}})
    app = build_app(settings, engine=engine, leadership=AlwaysLeader(), environ={},
                    daemon_options={"loop_interval": 0.05})
    assert "pull" not in app.daemon.specs and "push_products" in app.daemon.specs
    t = DaemonThread(app.daemon).start()
    try:
        wait_for(lambda: app.daemon.states["push_products"].last_outcome == "ok", 30, "a push")
    finally:
        t.stop()
        app.close()
    assert sim.state()["graphql"]["counts"]["products"] == 2
