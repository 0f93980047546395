"""Crash safety of the GraphQL events source: `erpsync pull --once --source graphql` killed with
SIGKILL at every point of fetch → store → commit → confirm, then restarted: no lost event, no
duplicate row, nothing confirmed before its page committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from erpsync.inbound.crash import POINTS
from erpsync.store.engine import make_engine
from erpsync.store.models import CentraOrder, InboxEvent
from tests.fixtures.sim import SimFactory
from tests.integration.inbound.cli_helpers import create_schema, run_cli, write_config

#: where each kill lands: before anything of the run committed, or after one page committed
NTH = {"after_fetch": 1, "mid_transaction": 1, "after_commit": 2, "during_ack": 2}


@pytest.mark.slow
def test_kill_9_at_every_point_loses_and_duplicates_nothing(sim_factory: SimFactory, db_url: str,
                                                            tmp_path: Path) -> None:
    sim = sim_factory()
    create_schema(db_url)
    cfg = write_config(tmp_path, sim, db_url)
    pw = sim.soap_password
    first = run_cli(cfg, "pull", "--once", "--source", "graphql", "--json", password=pw)
    assert first.returncode == 0, first.stderr[-2000:]  # sets the listeners
    sim.generate(900)
    emitted = sim.state()["graphql"]["events"]["emitted"]
    assert emitted > 3 * 200  # several pages: the kills below never drain it
    assert set(NTH) == POINTS
    for point, nth in sorted(NTH.items()):
        before = sim.state()["graphql"]["events"]["confirmed"]
        res = run_cli(cfg, "pull", "--once", "--source", "graphql", password=pw,
                      extra_env={"ERPSYNC_TEST_CRASH_AT": f"{point}:{nth}"})
        assert res.returncode == -signal.SIGKILL, (point, res.returncode, res.stderr[-2000:])
        if nth == 1:  # killed before its first page committed: nothing confirmed
            assert sim.state()["graphql"]["events"]["confirmed"] == before
    assert sim.state()["graphql"]["events"]["depth"] > 0
    final = run_cli(cfg, "pull", "--once", "--source", "graphql", "--json", password=pw)
    assert final.returncode == 0, final.stderr[-2000:]
    assert json.loads(final.stdout)["drained"] == 1
    st = sim.state()["graphql"]["events"]
    assert st["depth"] == 0 and st["confirmed"] == emitted
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            ids = [r[0] for r in s.exec(select(InboxEvent.event_id)).all()]  # type: ignore[call-overload]
            orders = {r[0] for r in s.exec(select(CentraOrder.centra_id)).all()}  # type: ignore[call-overload]
            n = s.exec(select(func.count()).select_from(InboxEvent)).one()[0]  # type: ignore[call-overload]
    finally:
        engine.dispose()
    assert n == len(set(ids)) == emitted  # every event once: none lost, none twice
    assert orders == set(sim.orders.numbers())
    stats = json.loads(run_cli(cfg, "events", "stats", "--json", password=pw).stdout)
    assert {r["source"] for r in stats["rows"]} == {"graphql"} and stats["total"] == emitted
