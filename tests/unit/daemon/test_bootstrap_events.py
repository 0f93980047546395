"""[centra.events] source picks the pull jobs; [centra.webhook] gives the daemon its listener."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from erpsync.app import build_app, default_jobs
from erpsync.config import Settings
from erpsync.daemon.leader import AlwaysLeader
from tests.unit.daemon.test_bootstrap import FakePort, FakeSource, engine  # noqa: F401 - fixture


def settings(tmp_path: Path, source: str, **webhook: Any) -> Settings:
    return Settings.model_validate({
        "centra": {"soap": {"url": "http://127.0.0.1:9/soap", "username": "u", "password": "pw-123"},
                   "graphql": {"url": "http://127.0.0.1:9/graphql", "token": "tok-123"},
                   "events": {"source": source}, "webhook": webhook},
        "paths": {"state_dir": str(tmp_path)}, "daemon": {"metrics_port": 0},
    })


@pytest.mark.parametrize(("source", "pulls"), [("soap", ["pull"]), ("graphql", ["pull_graphql"]),
                                               ("both", ["pull", "pull_graphql"])])
def test_source_picks_the_pull_jobs(tmp_path: Path, source: str, pulls: list[str]) -> None:
    jobs = default_jobs(settings(tmp_path, source))
    assert [j for j in jobs if j.startswith("pull")] == pulls
    assert "push_stock" in jobs


def test_both_with_webhook(tmp_path: Path, engine: Engine) -> None:  # noqa: F811 - the fixture
    s = settings(tmp_path, "both", port=8787, secret="whsec-1234")
    events_client = FakePort()
    app = build_app(s, engine=engine, leadership=AlwaysLeader(), environ={}, soap=FakeSource(), graphql=FakePort(),
                    graphql_events=events_client)
    try:
        assert {"pull", "pull_graphql"} <= set(app.jobs)
        assert app.jobs["pull_graphql"].gql_source.client is events_client
        cfg = app.daemon.webhook_config
        assert cfg is not None and (cfg.host, cfg.port, cfg.jobs) == ("127.0.0.1", 8787, ("pull", "pull_graphql"))
        assert "whsec-1234" not in repr(cfg)
        assert events_client.calls == []  # nothing connects while building
    finally:
        app.close()


def test_no_listener_without_port(tmp_path: Path, engine: Engine) -> None:  # noqa: F811
    app = build_app(settings(tmp_path, "soap"), engine=engine, leadership=AlwaysLeader(), environ={},
                    soap=FakeSource(), graphql=FakePort())
    try:
        assert app.daemon.webhook_config is None and "pull_graphql" not in app.jobs
    finally:
        app.close()
