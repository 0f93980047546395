"""One validation path: whatever `run` (and every command) refuses at start, `config check` refuses
too, naming the same dotted key, both exiting 78 with no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from erpsync.cli.main import cli
from tests.integration.daemon.procs import ROOT, free_port

BASE = """
[centra.soap]
url = "http://127.0.0.1:9/soap"
username = "erp"
[centra.graphql]
url = "{graphql_url}"
[logging]
format = "json"
[daemon]
metrics_port = {metrics_port}
metrics_host = "{metrics_host}"
housekeeping_cron = "{cron}"
[quota]
{quota}
[erp.sql]
url = "{erp_url}"
"""

GOOD = {"graphql_url": "http://127.0.0.1:9/graphql", "metrics_host": "127.0.0.1", "cron": "17 3 * * *",
        "quota": "", "erp_url": "", "database_url": ""}

#: (case id, what differs from GOOD, the key both must name)
CASES = [
    ("cron", {"cron": "every day"}, "daemon.housekeeping_cron"),
    ("cron-range", {"cron": "61 3 * * *"}, "daemon.housekeeping_cron"),
    ("custom-tier-without-limits", {"quota": 'tier = "custom"'}, "quota.tier"),
    ("one-limit-only", {"quota": "limits_10s = [60, 20, 250000]"}, "quota.limits_1h"),
    ("deprecated-reserve-out-of-range", {"quota": "stock_reserve = 1.5"}, "quota.stock_reserve"),
    ("db-port", {"database_url": "postgresql+psycopg://u@127.0.0.1:54x2/db"}, "database.url"),
    ("db-driver-missing", {"database_url": "postgresql+psycopg2://u@127.0.0.1/db"}, "database.url"),
    ("db-mysql", {"database_url": "mysql://u@127.0.0.1/db"}, "database.url"),
    ("db-garbage", {"database_url": "not a url"}, "database.url"),
    ("erp-driver-missing", {"erp_url": "mysql+mysqldb://u:p@127.0.0.1/erp"}, "erp.sql.url"),
    ("graphql-port", {"graphql_url": "http://127.0.0.1:80x/graphql"}, "centra.graphql.url"),
    ("metrics-host-unresolvable", {"metrics_host": "no-such-host.invalid"}, "daemon.metrics_host"),
    ("metrics-host-not-local", {"metrics_host": "192.0.2.1"}, "daemon.metrics_host"),
]


def _write(tmp_path: Path, changes: dict[str, str]) -> tuple[Path, dict[str, str]]:
    values = {**GOOD, **changes, "metrics_port": str(free_port())}
    path = tmp_path / "erpsync.toml"
    path.write_text(BASE.format(**values))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERPSYNC_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update({"ERPSYNC_CENTRA_SOAP_PASSWORD": "pw-1234", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "tok-1234",
                "ERPSYNC_PATHS_STATE_DIR": str(tmp_path / "state")})
    if values["database_url"]:
        env["ERPSYNC_DATABASE_URL"] = values["database_url"]
    return path, env


def _run_in_process(path: Path, env: dict[str, str]) -> tuple[int, str]:
    # `--only nope`: were a problem not caught at start, run would stop at the unknown job (exit 2)
    # instead of running a daemon inside the test
    r = CliRunner().invoke(cli, ["--config", str(path), "run", "--upgrade-schema", "--only", "nope"], env=env)
    trace = "" if r.exception is None or isinstance(r.exception, SystemExit) else f"Traceback {r.exception!r}"
    return r.exit_code, r.stderr + trace


@pytest.mark.parametrize(("changes", "key"), [pytest.param(c, k, id=i) for i, c, k in CASES])
def test_config_check_and_run_refuse_the_same_key_with_78(tmp_path: Path, changes: dict[str, str], key: str) -> None:
    path, env = _write(tmp_path, changes)
    check = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], env=env)
    assert check.exit_code == 78, check.output
    assert f": {key}: " in check.stderr and "Traceback" not in check.output
    code, err = _run_in_process(path, env)
    assert code == 78, err
    assert f": {key}: " in err and "Traceback" not in err, err


def test_run_as_a_process_exits_78_naming_the_key(tmp_path: Path) -> None:
    path, env = _write(tmp_path, {"cron": "every day", "quota": 'tier = "custom"'})
    run = subprocess.run([sys.executable, "-m", "erpsync", "--config", str(path), "run", "--upgrade-schema"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert run.returncode == 78, run.stderr[-3000:]
    assert ": daemon.housekeeping_cron: " in run.stderr and ": quota.tier: " in run.stderr
    assert "Traceback" not in run.stderr


def test_the_good_config_passes_and_run_upgrades_an_empty_schema(tmp_path: Path) -> None:
    path, env = _write(tmp_path, {})
    check = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], env=env)
    assert check.exit_code == 0, check.output
    # run --upgrade-schema creates the schema, then refuses an unknown job (exit 2, not restarted)
    run = subprocess.run([sys.executable, "-m", "erpsync", "--config", str(path), "run", "--upgrade-schema",
                          "--only", "nope"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "UnknownJob" in run.stderr and "Traceback" not in run.stderr
    status = CliRunner().invoke(cli, ["--config", str(path), "db", "status"], env=env)
    assert status.exit_code == 0 and "current" in status.stdout, status.output
