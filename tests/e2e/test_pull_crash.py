"""Crash safety: `erpsync pull --once` is killed with SIGKILL (a real kill -9, from inside the
process at a crash point) at every point of the fetch → store → commit → ack cycle, at least 5
times each, then restarted. The end state must equal a crash-free run over the same queue: no lost
events, no duplicate rows, queue empty.

The simulator runs in the test process, so its queue outlives every killed puller.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from erpsync.clock import FakeClock
from erpsync.inbound.crash import POINTS
from erpsync.store.engine import make_engine
from tests.fixtures.sim import SimFactory
from tests.integration.inbound.cli_helpers import create_schema, dump, run_cli, write_config
from tests.integration.inbound.simhelpers import pull_job, soap_client

KILLS_PER_POINT = 5


@pytest.mark.slow
def test_kill_9_at_every_point_then_restart_equals_crash_free_run(
    sim_factory: SimFactory, db_url: str, tmp_path: Path,
) -> None:
    sim = sim_factory()
    sim.generate(1500)  # 15 batches: the kills below ack at most ~11 of them, so they never drain it
    reference_sim = sim_factory()
    reference_sim.restore(sim.snapshot())

    ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
    create_schema(ref_url)
    ref_engine = make_engine(ref_url)
    with soap_client(reference_sim) as client:
        assert pull_job(ref_engine, client, FakeClock()).run().outcome == "ok"
    assert reference_sim.state()["soap"]["queue_depth"] == 0

    create_schema(db_url)
    cfg = write_config(tmp_path, sim, db_url)
    kills: Counter[str] = Counter()
    acked_before = 0
    for point in sorted(POINTS):
        for i in range(KILLS_PER_POINT):
            nth = 1 + i % 2
            res = run_cli(cfg, "pull", "--once", password=sim.soap_password,
                          extra_env={"ERPSYNC_TEST_CRASH_AT": f"{point}:{nth}"})
            assert res.returncode == -signal.SIGKILL, (point, nth, res.returncode, res.stderr[-2000:])
            kills[point] += 1
            acked = sim.state()["soap"]["acked_count"]
            if point in ("after_fetch", "mid_transaction") and nth == 1:
                assert acked == acked_before  # killed before anything was stored: nothing acked
            acked_before = acked
    assert kills == dict.fromkeys(POINTS, KILLS_PER_POINT)
    assert sim.state()["soap"]["queue_depth"] > 0

    final = run_cli(cfg, "pull", "--once", password=sim.soap_password)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "drained=yes" in final.stdout
    state = sim.state()["soap"]
    assert state["queue_depth"] == 0 and state["acked_count"] == 1500

    engine = make_engine(db_url)
    try:
        got, want = dump(engine), dump(ref_engine)
        for table in want:
            assert got[table] == want[table], table
        assert len(got["inbox_event"]) == 1500
    finally:
        engine.dispose()
        ref_engine.dispose()
