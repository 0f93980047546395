"""`erpsync pull --once`, `events stats`, `parked list|retry|drop` and `export` as a user runs them,
against a simulator over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from erpsync.sim.server import SimServer
from tests.integration.inbound.cli_helpers import create_schema, run_cli, write_config


def test_pull_once_stats_parked_and_export(sim: SimServer, db_url: str, tmp_path: Path) -> None:
    create_schema(db_url)
    cfg = write_config(tmp_path, sim, db_url)
    events = sim.generate(300)
    sim.queue.enqueue("giftcard", "GC1", date="2026-11-20 10:00:00", data={"id": "GC1"})
    pw = sim.soap_password

    res = run_cli(cfg, "pull", "--once", password=pw)
    assert res.returncode == 0, res.stderr
    assert "pull: ok" in res.stdout and "acked=301" in res.stdout and "parked=1" in res.stdout
    assert "drained=yes" in res.stdout
    assert pw not in res.stdout + res.stderr
    assert sim.state()["soap"]["queue_depth"] == 0

    stats = json.loads(run_cli(cfg, "events", "stats", "--json", password=pw).stdout)
    assert stats["total"] == 301 and stats["parked_open"] == 1
    assert {r["status"] for r in stats["rows"]} >= {"applied", "parked"}
    assert all(r["acked"] == r["count"] for r in stats["rows"])

    listed = json.loads(run_cli(cfg, "parked", "list", "--json", password=pw).stdout)
    assert len(listed) == 1 and listed[0]["kind"] == "event" and "giftcard" in listed[0]["reason"]
    pid = str(listed[0]["id"])
    retry = run_cli(cfg, "parked", "retry", pid, password=pw)
    assert retry.returncode == 1 and "parked" in retry.stdout  # still unknown: stays parked
    again = json.loads(run_cli(cfg, "parked", "list", "--json", password=pw).stdout)
    assert again[0]["attempts"] == 2
    assert run_cli(cfg, "parked", "drop", pid, password=pw).returncode == 0
    assert json.loads(run_cli(cfg, "parked", "list", "--json", password=pw).stdout) == []
    assert run_cli(cfg, "parked", "retry", password=pw).returncode != 0  # neither ids nor --all

    out = tmp_path / "export"
    first = run_cli(cfg, "export", "--out", str(out), password=pw)
    assert first.returncode == 0, first.stderr
    orders_files = list(out.glob("orders-*.jsonl"))
    lines_files = list(out.glob("order-lines-*.csv"))
    assert len(orders_files) == 1 and len(lines_files) == 1
    exported = [json.loads(line) for line in orders_files[0].read_text().splitlines()]
    order_ids = {e.entry for e in events if e.type == "order"}
    assert {o["centra_id"] for o in exported} == order_ids
    assert all(isinstance(o["order_total"], str) for o in exported)  # decimal strings, never floats
    with lines_files[0].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["order_id"] for r in rows} == order_ids and rows[0]["price"]
    assert run_cli(cfg, "export", "--out", str(out), password=pw).stdout.strip() == "export: nothing new"

    # one order changes in Centra: pulled, then exported once more (and only it)
    changed = sorted(order_ids)[0]
    sim.generator.advance_order(changed)
    assert run_cli(cfg, "pull", "--once", password=pw).returncode == 0
    run_cli(cfg, "export", "--out", str(out), "--status", "confirmed", "--status", "cancelled",
            "--status", "processing", "--status", "completed", "--status", "refunded", password=pw)
    newest = sorted(out.glob("orders-*.jsonl"))[-1]
    assert [json.loads(x)["centra_id"] for x in newest.read_text().splitlines()] == [changed]


def test_bad_login_exits_non_zero_with_a_clear_error(sim: SimServer, sqlite_url: str, tmp_path: Path) -> None:
    create_schema(sqlite_url)
    cfg = write_config(tmp_path, sim, sqlite_url)
    sim.generate(5)
    res = run_cli(cfg, "pull", "--once", password="not-the-password")
    assert res.returncode == 2
    assert "AuthenticationFailed" in res.stderr and "Login failed" in res.stderr
    assert "not-the-password" not in res.stdout + res.stderr
    assert sim.state()["soap"]["acked_count"] == 0


def test_pull_refuses_an_outdated_schema(sim: SimServer, sqlite_url: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, sim, sqlite_url)
    res = run_cli(cfg, "pull", "--once", password=sim.soap_password)
    assert res.returncode == 2 and "erpsync db upgrade" in res.stderr


def test_pull_without_once_repeats_until_sigterm(sim: SimServer, sqlite_url: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.integration.inbound.cli_helpers import REPO, cli_env

    create_schema(sqlite_url)
    cfg = write_config(tmp_path, sim, sqlite_url, interval=0.2)
    proc = subprocess.Popen([sys.executable, "-m", "erpsync", "--config", str(cfg), "pull"],
                            env=cli_env(sim.soap_password), cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        sim.generate(30)
        deadline = time.monotonic() + 60
        while sim.state()["soap"]["acked_count"] < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        sim.generate(20)  # arrives after the first drain: picked up by a later run
        while sim.state()["soap"]["acked_count"] < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sim.state()["soap"]["acked_count"] == 50
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert out.count("pull: ok") >= 2


def test_an_unreachable_database_is_a_clear_retry_later_not_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text("""
[centra]
store_timezone = "Europe/Stockholm"
[centra.soap]
url = "http://127.0.0.1:9/soap"
username = "u"
[centra.graphql]
url = "http://127.0.0.1:9/graphql"
[database]
url = "postgresql+psycopg://postgres@127.0.0.1:9/test"
""", encoding="utf-8")
    for args in (("pull", "--once"), ("events", "stats"), ("parked", "list"),
                 ("export", "--out", str(tmp_path / "out"))):
        res = run_cli(cfg, *args, password="not-used")
        assert "Traceback" not in res.stderr, (args, res.stderr[-2000:])
        assert res.returncode == 75, (args, res.returncode, res.stderr[-500:])
        assert "database" in res.stderr.lower()


def test_pull_source_graphql_spends_through_the_shared_governor(sim: SimServer, db_url: str, tmp_path: Path) -> None:
    """`pull --source graphql` takes its requests and complexity from the daemon's governor (state in
    the database, the `events` lane), not around it: what it spent shows in the shared buckets."""
    from sqlalchemy import text

    from erpsync.store.engine import make_engine
    from erpsync.store.quota_repo import LANES_KEY

    create_schema(db_url)
    cfg = write_config(tmp_path, sim, db_url)
    pw = sim.soap_password
    assert run_cli(cfg, "pull", "--once", "--source", "graphql", password=pw).returncode == 0  # listeners
    sim.generate(120)
    res = run_cli(cfg, "pull", "--once", "--source", "graphql", "--json", password=pw)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["drained"] == 1
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, capacity, tokens FROM quota_bucket"))
            buckets = {r[0]: (r[1], r[2]) for r in rows}
            estimates = conn.execute(text("SELECT estimates FROM quota_state WHERE id = 1")).scalar()
    finally:
        engine.dispose()
    assert buckets, "the CLI pull never went through the governor"
    spent = {name: cap - tokens for name, (cap, tokens) in buckets.items()}
    assert any(v > 0 for k, v in spent.items() if k.startswith("complexity")), spent
    if isinstance(estimates, str):
        estimates = json.loads(estimates)
    assert "events" in (estimates or {}).get(LANES_KEY, {}), estimates  # the events lane spent it
