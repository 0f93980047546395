"""The governor's state in SQLite and PostgreSQL: restarts, sharing between governors and processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

from erpsync.clock import FakeClock
from erpsync.graphql.quota import QuotaGovernor
from erpsync.sim.gql.quota import Quota
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore

NOW = 1_800_000_000.0
LIMITS = {"requests_10s": 1000, "requests_1h": 100_000, "complexity_10s": 10**7, "complexity_1h": 10**9,
          "mutations_10s": 10, "mutations_1h": 200}


def gov_on(engine: Engine, clock: FakeClock, **kw: object) -> QuotaGovernor:
    return QuotaGovernor(LIMITS, clock=clock, share=0.8, store=SqlQuotaStore(engine), **kw)  # type: ignore[arg-type]


def test_a_restart_keeps_the_spent_buckets_estimates_and_block(engine: Engine) -> None:
    clock = FakeClock(NOW)
    first = gov_on(engine, clock)
    granted = 0
    while first.try_acquire(mutations=1, complexity=10, lane="stock").granted:
        granted += 1
    assert granted == 8  # 10 × share
    permit = first.acquire(requests=1, complexity=None, lane="stock", op_key="query:products")
    first.settle(permit, 77)
    first.acquire(requests=1, complexity=None, lane="stock", op_key="query:x")  # flushes estimates
    first.on_rate_limited(30)

    restarted = gov_on(engine, clock)  # a new process: same database, empty memory
    p = restarted.try_acquire(mutations=1, complexity=10, lane="stock")
    assert not p.granted
    assert p.reason == "retry-after"
    clock.advance(30)
    views = {v.name: v for v in restarted.snapshot()[0]}
    assert views["mutations_1h"].tokens == pytest.approx(160 - 8 + 30 * 160 / 3600)  # not a fresh full hour
    assert restarted.estimate("query:products") == 77
    assert restarted.snapshot()[1]["rate_limited_count"] == 1


def test_concurrent_governors_never_grant_more_than_the_bucket(engine: Engine) -> None:
    clock = FakeClock(NOW)
    govs = [gov_on(engine, clock) for _ in range(4)]
    govs[0].snapshot()  # create the rows once
    counts = [0] * len(govs)

    def spend(i: int) -> None:
        for _ in range(15):
            if govs[i].try_acquire(mutations=1, complexity=1, lane="stock").granted:
                counts[i] += 1

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(len(govs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 8  # no lost update, no double spend
    assert govs[0].try_acquire(mutations=1, complexity=1, lane="stock").wait > 0


def test_first_use_by_two_governors_at_once(engine: Engine) -> None:
    clock = FakeClock(NOW)
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            gov_on(engine, clock).try_acquire(mutations=1, complexity=1, lane="stock")
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    views = {v.name: v for v in gov_on(engine, clock).snapshot()[0]}
    assert views["mutations_10s"].tokens == pytest.approx(8 - 3)


@pytest.mark.postgres
def test_two_processes_on_postgresql_never_exceed_the_quota(pg_url: str) -> None:
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    factor, seconds = 60.0, 4.0
    epoch = time.time()
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.graphql.quota_worker", pg_url, str(epoch), str(factor),
             str(seconds), json.dumps(LIMITS)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    grants = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(len(g) > 10 for g in grants)  # both processes did spend
    merged = sorted(t for g in grants for t in g)
    # referee: the server's buckets at exactly erpsync's share (8 / 10 s, 160 / h)
    clock = FakeClock(merged[0])
    referee = Quota({"REQUEST_COUNT:TEN_SECONDS": 800, "REQUEST_COUNT:ONE_HOUR": 80_000,
                     "QUERY_COMPLEXITY:TEN_SECONDS": 8 * 10**6, "QUERY_COMPLEXITY:ONE_HOUR": 8 * 10**8,
                     "MUTATION_COUNT:TEN_SECONDS": 8, "MUTATION_COUNT:ONE_HOUR": 160}, clock)
    for t in merged:
        clock.advance(t - clock.time())
        wait = referee.try_charge({"REQUEST_COUNT": 1, "QUERY_COMPLEXITY": 100, "MUTATION_COUNT": 1})
        assert wait is None or wait < 1e-6, f"over quota at {t - merged[0]:.3f} s"
    scaled = (merged[-1] - merged[0])
    expected = 160 + scaled * 160 / 3600  # initial allowance + refill over the run
    assert len(merged) == pytest.approx(expected, abs=3)


@pytest.mark.postgres
def test_two_processes_against_the_simulator_share_one_budget(pg_url: str, sim_factory: Any) -> None:
    limits = {"requests_10s": 60, "requests_1h": 5000, "complexity_10s": 250_000, "complexity_1h": 30_000_000,
              "mutations_10s": 20, "mutations_1h": 360}
    sim = sim_factory(tier="custom", time_scale=720.0, limits={
        "REQUEST_COUNT:TEN_SECONDS": 60, "REQUEST_COUNT:ONE_HOUR": 5000, "QUERY_COMPLEXITY:TEN_SECONDS": 250_000,
        "QUERY_COMPLEXITY:ONE_HOUR": 30_000_000, "MUTATION_COUNT:TEN_SECONDS": 20, "MUTATION_COUNT:ONE_HOUR": 360})
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.graphql.quota_worker", pg_url, str(sim.time_epoch),
             str(sim.time_factor), "8", json.dumps(limits), sim.graphql_url, sim.token],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=90) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(len(r["mutations"]) > 20 for r in results)  # both spent
    assert sim.state()["graphql"]["quota"]["rejected429"] == 0
    assert all(r["rate_limited"] == [] for r in results)
    merged = sorted(t for r in results for t in r["mutations"])
    span = merged[-1] - merged[0]
    # together: the initial allowance plus the refill at the share, not twice that
    assert len(merged) <= 360 * 0.8 + span * 360 * 0.8 / 3600 + 2


def test_learnt_refill_rate_is_shared_and_survives_a_restart(engine: Engine) -> None:
    clock = FakeClock(NOW)
    gov = gov_on(engine, clock)

    def rows(remaining: int) -> list[dict[str, object]]:
        return [{"type": "MUTATION_COUNT", "intervalSeconds": "ONE_HOUR", "quota": 200, "remainingQuota": remaining}]

    gov.reseed(rows(200))  # full: erpsync's 160 + others' 40
    clock.advance(600)
    gov.reseed(rows(100))  # others spent 100 in 10 minutes, far beyond their part
    learnt = {v.name: v for v in gov.snapshot()[0]}["mutations_1h"].refill_per_second
    assert learnt < 200 * 0.8 / 3600
    other_process = gov_on(engine, clock)
    view = {v.name: v for v in other_process.snapshot()[0]}["mutations_1h"]
    assert view.refill_per_second == pytest.approx(learnt)
    assert view.tokens == pytest.approx(100 - 40)
