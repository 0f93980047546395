"""Two ``erpsync run`` processes on PostgreSQL with every job against ``erpsync sim``: only the leader
pulls and pushes; ``kill -9`` the leader mid-work, the standby takes over within the configured time,
no event is applied twice and nothing is created twice in Centra."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from erpsync.demo.verify import differences
from erpsync.sample import EXAMPLES_DIR
from erpsync.store.engine import make_engine
from erpsync.store.models import InboxEvent
from tests.integration.daemon.procs import (
    FAST_JOBS,
    SIM_SECRETS,
    Proc,
    SimProc,
    base_env,
    import_erp,
    prepare_db,
    write_config,
)

TAKEOVER_S = 3.0


@pytest.mark.postgres
def test_two_instances_one_leader_failover_without_duplicates(tmp_path: Path, pg_url: str) -> None:
    sim = SimProc("--tier", "enterprise", "--initial-events", "250", "--seed", "5")
    a: Proc | None = None
    b: Proc | None = None
    engine = make_engine(pg_url)
    try:
        prepare_db(pg_url)
        config = write_config(tmp_path / "erpsync.toml", soap_url=sim.soap_url, graphql_url=sim.graphql_url,
                              takeover=TAKEOVER_S, extra=FAST_JOBS)
        env = base_env(pg_url, **SIM_SECRETS)
        erp = tmp_path / "erp"
        shutil.copytree(EXAMPLES_DIR, erp, ignore=shutil.ignore_patterns("*.py", "jsonl", "__pycache__"))
        import_erp(pg_url, sorted(erp.glob("*.csv")))

        a = Proc(["--config", str(config), "run"], env)
        a.wait_event("leader.acquired", timeout=30)
        b = Proc(["--config", str(config), "run"], env)
        b.wait_event("leader.standby", timeout=30)
        generated = 250
        a.wait_event("job.finished", job="pull", timeout=30)
        for _ in range(4):
            generated += len(sim.generate(20))
            time.sleep(0.3)
        # the standby ran nothing while the leader lived
        assert not [e for e in b.events() if e.get("event") == "job.finished"]

        a.p.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.wait(10)
        b.wait_event("leader.acquired", timeout=15)
        took = time.monotonic() - killed
        assert took <= TAKEOVER_S, f"standby took {took:.1f}s to take over, configured {TAKEOVER_S}s"
        generated += len(sim.generate(30))

        deadline = time.monotonic() + 90
        while True:
            state = sim.get("/_sim/state")
            diffs = differences(engine, state["graphql"])
            soap = state["soap"]
            if not soap["queue_depth"] and soap["acked_count"] >= generated and not diffs:
                break
            assert time.monotonic() < deadline, (soap["queue_depth"], soap["acked_count"], generated, diffs[:3])
            time.sleep(0.3)
        with Session(engine) as s:
            stored = s.exec(select(func.count()).select_from(InboxEvent)).one()[0]  # type: ignore[call-overload]
            distinct = s.exec(select(func.count(func.distinct(InboxEvent.event_id)))).one()[0]  # type: ignore[call-overload]
        assert stored == distinct == generated
        assert not any(state["graphql"]["duplicates"].values()), state["graphql"]["duplicates"]
        assert any(e.get("event") == "job.finished" and e.get("job") == "pull" for e in b.events())
        b.p.send_signal(signal.SIGTERM)
        assert b.wait(40) == 0
    finally:
        for p in (a, b):
            if p is not None:
                p.kill()
        sim.stop()
        engine.dispose()
