"""``erpsync quota`` against a real database and the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from erpsync.cli import cli
from erpsync.store import migrate
from erpsync.store.engine import make_engine


def write_config(tmp_path: Path, db_url: str, graphql_url: str) -> Path:
    path = tmp_path / "erpsync.toml"
    path.write_text(f"""
[centra]
store_timezone = "Europe/Stockholm"
[centra.soap]
url = "http://127.0.0.1:1/soap"
username = "erp-user"
[centra.graphql]
url = "{graphql_url}"
[database]
url = "{db_url}"
[quota]
tier = "growth"
share = 0.8
""", encoding="utf-8")
    return path


@pytest.fixture
def migrated_sqlite(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine, "head")
    engine.dispose()
    return sqlite_url


def test_quota_shows_the_governor_and_centra(tmp_path: Path, migrated_sqlite: str, sim: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, migrated_sqlite, sim.graphql_url)
    monkeypatch.setenv("ERPSYNC_CENTRA_GRAPHQL_TOKEN", sim.token)
    monkeypatch.setenv("ERPSYNC_CENTRA_SOAP_PASSWORD", "x")
    runner = CliRunner()

    local = runner.invoke(cli, ["--config", str(config), "quota", "--json"])
    assert local.exit_code == 0, local.output
    report = json.loads(local.output)
    by = {b["bucket"]: b for b in report["buckets"]}
    assert set(by) == {"requests_10s", "requests_1h", "complexity_10s", "complexity_1h", "mutations_10s",
                       "mutations_1h"}
    assert by["mutations_1h"]["quota"] == 1800
    assert by["mutations_1h"]["allowance"] == 1440
    assert report["rate_limited_total"] == 0

    remote = runner.invoke(cli, ["--config", str(config), "quota", "--remote"])
    assert remote.exit_code == 0, remote.output
    assert "centra remaining" in remote.output
    assert "mutations_1h" in remote.output
    assert sim.token not in remote.output
    again = json.loads(runner.invoke(cli, ["--config", str(config), "quota", "--json"]).output)
    assert again["last_refresh"] is not None  # the rateLimits read re-seeded the shared state
    assert {b["bucket"]: b for b in again["buckets"]}["requests_10s"]["tokens"] < 48


def test_quota_on_an_unmigrated_database_says_what_to_do(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url, "http://127.0.0.1:1/graphql")
    result = CliRunner().invoke(cli, ["--config", str(config), "quota"])
    assert result.exit_code != 0
    assert "erpsync db upgrade" in str(result.exception) + result.output
