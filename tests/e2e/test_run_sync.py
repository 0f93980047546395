"""The acceptance run: ``erpsync run`` as a subprocess against ``erpsync sim`` with a config file.

Orders are generated while it runs, the staging data changes under it, then SIGTERM: every event is
stored once and acknowledged, Centra equals the ERP, exit 0, the summary lines and metrics present.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from erpsync.demo.verify import differences
from erpsync.sample import EXAMPLES_DIR
from erpsync.store.engine import make_engine
from erpsync.store.models import InboxEvent, JobRun
from tests.integration.daemon.procs import (
    FAST_JOBS,
    ROOT,
    SIM_SECRETS,
    Proc,
    SimProc,
    base_env,
    free_port,
    import_erp,
    metric_value,
    prepare_db,
    scrape,
    write_config,
)

JOBS = ("pull", "push_stock", "push_prices", "push_products", "quota_refresh")


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erpsync", "--config", str(config), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def test_run_against_sim_subprocess_syncs_both_ways_and_stops_cleanly(tmp_path: Path, sqlite_url: str) -> None:
    sim = SimProc("--tier", "enterprise", "--initial-events", "130", "--seed", "3")
    daemon: Proc | None = None
    try:
        prepare_db(sqlite_url)
        port = free_port()
        config = write_config(tmp_path / "erpsync.toml", soap_url=sim.soap_url, graphql_url=sim.graphql_url,
                              metrics_port=port, extra=FAST_JOBS)
        env = base_env(sqlite_url, **SIM_SECRETS)
        erp = tmp_path / "erp"
        shutil.copytree(EXAMPLES_DIR, erp, ignore=shutil.ignore_patterns("*.py", "jsonl", "__pycache__"))
        import_erp(sqlite_url, sorted(erp.glob("*.csv")))

        daemon = Proc(["--config", str(config), "run"], env)
        daemon.wait_event("daemon.started", timeout=30)
        generated = 130
        for _ in range(5):  # the shop keeps taking orders while erpsync runs
            generated += len(sim.generate(7))
            time.sleep(0.2)

        # the ERP changes stock while the daemon runs: an incremental import of new quantities
        rows = (erp / "stock.csv").read_text().splitlines()
        header, body = rows[0], rows[1:]
        qty_col = header.split(",").index("quantity")
        changed = []
        for line in body[:10]:
            cells = line.split(",")
            cells[qty_col] = str(int(cells[qty_col]) + 100)
            changed.append(",".join(cells))
        (tmp_path / "stock.csv").write_text("\n".join([header, *changed]) + "\n")
        import_erp(sqlite_url, [tmp_path / "stock.csv"], mode="incremental", entity="stock")
        generated += len(sim.generate(5))

        engine = make_engine(sqlite_url)
        try:
            def synced() -> object:
                soap = sim.get("/_sim/state")["soap"]
                diffs = differences(engine, sim.get("/_sim/state")["graphql"])
                if soap["queue_depth"] or soap["acked_count"] < generated or diffs:
                    return {"queue": soap["queue_depth"], "acked": soap["acked_count"], "diffs": diffs[:3]}
                return True

            wait_until(synced, 90, "events acked and Centra equal to the ERP")

            metrics = scrape(port)
            with Session(engine) as s:
                stored = s.exec(select(func.count()).select_from(InboxEvent)).one()[0]  # type: ignore[call-overload]
                distinct = s.exec(select(func.count(func.distinct(InboxEvent.event_id)))).one()[0]  # type: ignore[call-overload]
                unacked = s.exec(select(func.count()).select_from(InboxEvent).where(  # type: ignore[call-overload]
                    InboxEvent.acked_at.is_(None))).one()[0]  # type: ignore[union-attr]
            assert stored == distinct == generated and unacked == 0
            assert metric_value(metrics, "erpsync_inbox_backlog") == 0
            assert metric_value(metrics, 'erpsync_events_total{stage="acked"}') == generated
            assert metric_value(metrics, "erpsync_leader") == 1
            for job in JOBS:
                assert f'erpsync_job_runs_total{{job="{job}",outcome="ok"}}' in metrics, job
            assert 'erpsync_quota_remaining{bucket="' in metrics

            st = cli(config, env, "status", "--json")
            assert st.returncode == 0, st.stdout + st.stderr
            status = json.loads(st.stdout)
            assert status["inbox_backlog"] == 0 and status["daemon"]["leader"]["role"] == "single"
            assert all(status["jobs"][j]["last_success"] for j in JOBS)

            daemon.p.send_signal(signal.SIGTERM)
            assert daemon.wait(40) == 0
            state = sim.get("/_sim/state")
            # nothing was created twice in Centra (a duplicated create would show here)
            assert not any(state["graphql"]["duplicates"].values()), state["graphql"]["duplicates"]
            assert differences(engine, state["graphql"]) == []
            with Session(engine) as s:
                running = s.exec(select(func.count()).select_from(JobRun).where(  # type: ignore[call-overload]
                    JobRun.outcome == "running")).one()[0]
            assert running == 0  # every run was closed before exit
        finally:
            engine.dispose()

        events = daemon.events()
        summaries = [e for e in events if e.get("event") == "job.finished"]
        for job in JOBS:
            line = next(e for e in summaries if e.get("job") == job and e.get("outcome") == "ok")
            assert line["run_id"] and "duration_s" in line
            assert isinstance(line["quota_left_pct"], float), line  # quota left on every summary line
        pulls = [e for e in summaries if e.get("job") == "pull"]
        assert sum(int(e.get("acked", 0)) for e in pulls) == generated
        assert any(e.get("event") == "daemon.stopped" for e in events)
        text = "\n".join(daemon.lines)
        assert "s3cret" not in text and "sim-token" not in text
    finally:
        if daemon is not None:
            daemon.kill()
        sim.stop()
