"""``erpsync sim`` as an operator runs it: a subprocess, driven over HTTP, stopped by a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import zeep
from click.testing import CliRunner

from erpsync.cli import cli
from erpsync.sim.server import WSDL_PATH


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "erpsync", "sim", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"base_url=(\S+)", line)
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"no ready line: {line!r} {err}")
    return proc, match.group(1)


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    out, _err = proc.communicate(timeout=20)
    return proc.returncode, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_subprocess_serves_and_stops_cleanly_on_signal(sig: int, tmp_path: Path) -> None:
    state_file = tmp_path / "sim-state.json"
    proc, base = _start("--initial-events", "7", "--seed", "3", "--state-file", str(state_file))
    try:
        state = requests.get(f"{base}/_sim/state", timeout=10).json()
        assert state["soap"]["queue_depth"] == 7
        assert state["clock"]["factor"] == 1.0
        # zeep with erpsync's WSDL against `erpsync sim` (default login: quick start needs no flags)
        client = zeep.Client(wsdl=str(WSDL_PATH), settings=zeep.Settings(strict=False, forbid_external=True))
        service = client.create_service("{http://www.centra.com/webservices/}CentraBinding",
                                        f"{base}/ams/system/service/module/soap/api")
        login = {"username": "erp-user", "password": "s3cret"}
        ids = [e.id for e in service.events_Get(login=login, type="all").events.event]
        assert ids == [str(i) for i in range(1000, 1007)]
        assert service.events_Done(login=login, event=ids[:2]) == "OK"
        assert requests.get(f"{base}/_sim/state", timeout=10).json()["soap"]["queue_depth"] == 5
        ack = requests.post(f"{base}/_sim/faults", json={"endpoint": "soap", "kind": "http", "status": 503},
                            timeout=10)
        assert ack.status_code == 200 and ack.json()["rules"][0]["status"] == 503
    finally:
        rc, out = _stop(proc, sig)
    assert rc == 0
    assert "erpsync sim stopped" in out
    assert state_file.exists()

    proc, base = _start("--state-file", str(state_file))  # the state survives a restart
    try:
        state = requests.get(f"{base}/_sim/state", timeout=10).json()
        assert state["soap"]["queue_depth"] == 5
        assert state["soap"]["acked_count"] == 2
        assert state["soap"]["next_event_id"] == 1007
    finally:
        rc, _ = _stop(proc, signal.SIGTERM)
    assert rc == 0


def test_sim_help_documents_every_option() -> None:
    result = CliRunner().invoke(cli, ["sim", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--soap-user", "--soap-password", "--token", "--tier", "--seed",
                   "--time-scale", "--retry-after-format", "--generate-rate", "--other-integration-share",
                   "--batch-failure", "--state-file", "--limit", "--token-permissions", "--initial-events"):
        assert option in result.output
    assert "sim-token" in result.output and "erp-user" in result.output and "8765" in result.output


# SimOptions fields that are deliberately not command-line options (tests and Python callers set them)
NOT_ON_THE_COMMAND_LINE = {"expired_tokens", "warehouses", "pricelists", "first_event_id", "hang_seconds",
                           "keepalive_timeout"}
RENAMED = {"tokens": "token_perms", "limits": "limits", "token_ttl_seconds": "token_ttl"}


def test_every_simulator_option_is_a_sim_flag() -> None:
    import dataclasses

    from erpsync.sim.server import SimOptions

    sim_cmd = cli.commands["sim"]  # type: ignore[attr-defined]
    params = {p.name for p in sim_cmd.params}
    for field in dataclasses.fields(SimOptions):
        if field.name in NOT_ON_THE_COMMAND_LINE:
            continue
        assert RENAMED.get(field.name, field.name) in params, f"SimOptions.{field.name} has no `erpsync sim` flag"


def test_sim_rejects_bad_quota_options() -> None:
    args = ["sim", "--port", "0", "--tier", "custom", "--limit", "REQUEST_COUNT:TEN_SECONDS=5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "custom" in result.output
