"""The CLI as an operator runs it: a real subprocess, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def erpsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "erpsync", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=120)


def test_example_config_checks(tmp_path: Path) -> None:
    r = erpsync("config", "check", "--config", "config/erpsync.example.toml")
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def test_config_check_says_which_jobs_a_configuration_enables(tmp_path: Path) -> None:
    cfg = tmp_path / "soap-only.toml"
    cfg.write_text('[centra.soap]\nurl = "http://127.0.0.1:1/soap"\nusername = "erp"\n')
    r = erpsync("--config", str(cfg), "config", "check", env={"ERPSYNC_CENTRA_SOAP_PASSWORD": "pw"})
    assert r.returncode == 0, r.stderr
    assert "jobs enabled: pull, housekeeping" in r.stdout
    assert "job off: push_stock (no [centra.graphql] section)" in r.stdout
    assert "warning" not in r.stderr  # no token is asked for a side that is not configured


def test_three_mistakes_exit_non_zero_naming_each(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[centra.soap]\nurl = "http://x"\nread_timeout = "x"\nnope = 1\n'
                   '[centra.graphql]\nurl = "http://y"\n')
    r = erpsync("--config", str(bad), "config", "check")
    assert r.returncode == 78
    for key in ("centra.soap.username", "centra.soap.read_timeout", "centra.soap.nope"):
        assert key in r.stderr
    assert "3 problem(s)" in r.stderr


def test_config_show_redacts_and_env_overrides(tmp_path: Path) -> None:
    r = erpsync("config", "show", "--config", "config/erpsync.example.toml", env={
        "ERPSYNC_CENTRA_SOAP_PASSWORD": "pw-very-secret", "ERPSYNC_QUOTA_TIER": "enterprise"})
    assert r.returncode == 0, r.stderr
    assert "pw-very-secret" not in r.stdout + r.stderr
    shown = json.loads(r.stdout)
    assert shown["centra"]["soap"]["password"] == "**********"
    assert shown["quota"]["tier"] == "enterprise"


def test_db_upgrade_on_empty_sqlite_then_noop(tmp_path: Path) -> None:
    env = {"ERPSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    first = erpsync("db", "upgrade", "--config", "config/erpsync.example.toml", env=env)
    assert first.returncode == 0, first.stderr
    assert "was empty" in first.stdout
    second = erpsync("db", "upgrade", "--config", "config/erpsync.example.toml", env=env)
    assert second.returncode == 0 and "already current" in second.stdout
    status = erpsync("db", "status", "--config", "config/erpsync.example.toml", env=env)
    assert status.returncode == 0 and "current" in status.stdout


def test_config_check_warns_about_the_deprecated_lane_reserves(tmp_path: Path) -> None:
    cfg = tmp_path / "old.toml"
    cfg.write_text('[centra.graphql]\nurl = "http://127.0.0.1:1/graphql"\n[quota]\nstock_reserve = 0.3\n'
                   'prices_reserve = 0.2\n')
    r = erpsync("--config", str(cfg), "config", "check", env={"ERPSYNC_CENTRA_GRAPHQL_TOKEN": "tok"})
    assert r.returncode == 0, r.stderr
    assert "warning: quota.stock_reserve = 0.3 has no effect" in r.stderr
    assert "warning: quota.prices_reserve = 0.2 has no effect" in r.stderr
