"""``erpsync push`` as an operator runs it (a real subprocess) against the simulator over HTTP,
including ``kill -9`` in the middle of a push and a restart that converges with zero duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import SQLModel

import erpsync.store.tables
from erpsync.sample import Catalogue
from erpsync.sim.server import SimServer
from erpsync.store.engine import make_engine
from tests.fixtures.sim import SimFactory
from tests.unit.outbound.helpers import assert_same, centra_state, expected_state, load_catalogue

pytestmark = pytest.mark.slow  # several erpsync subprocesses per test

ROOT = Path(__file__).parents[2]
CATALOGUE = Catalogue(products=20, variants=3, sizes=5)


def write_config(tmp_path: Path, sim: SimServer) -> Path:
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra.soap]
url = "{sim.soap_url}"
username = "erp-user"
[centra.graphql]
url = "{sim.graphql_url}"
read_timeout = 5.0
[quota]
tier = "enterprise"
[push]
products_batch_size = 5
stock_batch_size = 200
prices_batch_size = 20
""")
    return cfg


def env_for(db_url: str, sim: SimServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    env.update({"ERPSYNC_DATABASE_URL": db_url, "ERPSYNC_CENTRA_GRAPHQL_TOKEN": sim.token,
                "ERPSYNC_CENTRA_SOAP_PASSWORD": sim.soap_password, "ERPSYNC_LOGGING_FORMAT": "json",
                "ERPSYNC_SIM_TIME_SCALE": str(sim.time_factor),
                "ERPSYNC_SIM_TIME_EPOCH": str(sim.time_epoch or 0)})
    env.update(extra)
    return env


def erpsync(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erpsync", "--config", str(cfg), *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=180)


@pytest.fixture
def prepared(db_url: str, tmp_path: Path, sim_factory: SimFactory) -> tuple[Path, SimServer, str]:
    sim = sim_factory(tier="enterprise", time_scale=20.0)
    engine = make_engine(db_url)
    SQLModel.metadata.create_all(engine)
    load_catalogue(engine, CATALOGUE)
    engine.dispose()
    return write_config(tmp_path, sim), sim, db_url


def no_duplicates(sim: SimServer) -> bool:
    return all(not d for d in sim.state()["graphql"]["duplicates"].values())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the CLI is the same on both databases
def test_dry_run_prints_and_sends_nothing_then_once_pushes_everything(prepared: tuple[Path, SimServer, str]) -> None:
    cfg, sim, db_url = prepared
    env = env_for(db_url, sim)
    dry = erpsync(cfg, env, "push", "all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    sent = json.loads(dry.stdout)
    ops = [c["operation"] for c in sent]
    assert ops.count("createProduct") == 20 and ops.count("createSizeChart") == 2
    assert sim.state()["graphql"]["counts"]["mutationsApplied"] == 0
    assert sim.gql.state.products == {}

    once = erpsync(cfg, env, "push", "all", "--once")
    assert once.returncode == 0, once.stderr
    assert "push_stock: ok" in once.stdout
    assert_same(expected_state(CATALOGUE), centra_state(sim.gql.state))
    assert no_duplicates(sim)
    assert sim.token not in once.stdout + once.stderr


def test_crash_after_a_create_was_applied_then_restart_converges(prepared: tuple[Path, SimServer, str]) -> None:
    cfg, sim, db_url = prepared
    # SIGKILL right after the 3rd catalogue request was applied by Centra, before anything is recorded
    crashed = erpsync(cfg, env_for(db_url, sim, ERPSYNC_TEST_PUSH_CRASH_AT="after_send:3"), "push", "all", "--once")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    applied = len(sim.gql.state.products)
    assert 0 < applied < 20
    again = erpsync(cfg, env_for(db_url, sim), "push", "all", "--once")
    assert again.returncode == 0, again.stderr
    assert_same(expected_state(CATALOGUE), centra_state(sim.gql.state))
    assert no_duplicates(sim)


def test_kill_9_at_a_random_moment_then_restart_converges(prepared: tuple[Path, SimServer, str]) -> None:
    cfg, sim, db_url = prepared
    sim.set_fault("graphql", "latency", seconds=0.03, probability=1.0, only="mutation")
    proc = subprocess.Popen([sys.executable, "-m", "erpsync", "--config", str(cfg), "push", "all", "--once"],
                            env=env_for(db_url, sim), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sim.state()["graphql"]["counts"]["mutationsApplied"] < 8:
            assert proc.poll() is None, "the push finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sim.clear_faults()
    assert len(sim.gql.state.products) < 20
    again = erpsync(cfg, env_for(db_url, sim), "push", "all", "--once")
    assert again.returncode == 0, again.stderr
    assert_same(expected_state(CATALOGUE), centra_state(sim.gql.state))
    assert no_duplicates(sim)
    applied = sim.state()["graphql"]["counts"]["mutationsApplied"]
    second = erpsync(cfg, env_for(db_url, sim), "push", "all", "--once")
    assert second.returncode == 0
    assert sim.state()["graphql"]["counts"]["mutationsApplied"] == applied


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_import_with_bad_rows_then_push_lands_every_good_row(
    db_url: str, tmp_path: Path, sim_factory: SimFactory,
) -> None:
    from erpsync.sample import generate

    sim = sim_factory(tier="enterprise", time_scale=20.0)
    engine = make_engine(db_url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    catalogue = Catalogue(products=10, variants=3, sizes=5)
    files = generate(tmp_path / "erp", catalogue)
    good_lines = len(files["stock"].read_text().splitlines())
    with files["stock"].open("a") as fh:
        fh.write("WH-MAIN,9999999999999,5\n")  # unknown EAN
        fh.write("WH-EU,7300000000011,lots\n")  # not a number
    with files["prices"].open("a") as fh:
        fh.write("PL-SEK,P000001,,12.3.4,\n")
    cfg, env = write_config(tmp_path, sim), env_for(db_url, sim)
    imported = erpsync(cfg, env, "import", str(tmp_path / "erp"))
    out = imported.stdout + imported.stderr
    assert f"stock.csv:{good_lines + 1}" in out and f"stock.csv:{good_lines + 2}" in out, out
    assert "prices.csv:" in out
    pushed = erpsync(cfg, env, "push", "all", "--once")
    assert pushed.returncode == 0, pushed.stderr
    assert_same(expected_state(catalogue), centra_state(sim.gql.state))
    assert no_duplicates(sim)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_once_it_repeats_until_sigterm(prepared: tuple[Path, SimServer, str]) -> None:
    cfg, sim, db_url = prepared
    proc = subprocess.Popen([sys.executable, "-m", "erpsync", "--config", str(cfg), "push", "products"],
                            env=env_for(db_url, sim, ERPSYNC_PUSH_PRODUCTS_INTERVAL_SECONDS="20"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()  # 20 s at ×20 = about 1 s later
        assert first.startswith("push_products: ok") and "createProduct=20" in first
        assert second.startswith("push_products: ok") and "createProduct" not in second
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert no_duplicates(sim) and len(sim.gql.state.products) == 20
