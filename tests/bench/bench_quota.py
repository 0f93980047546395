"""Benchmark of the quota governor (issue 5). Prints figures; asserts nothing about timing.

    .venv/bin/python -m tests.bench.bench_quota [--seconds 25] [--factor 360] [--quick]

1. Throughput against the simulator over loopback HTTP, time-scaled, for Growth and Enterprise
   limits (and Growth with a second integration spending half): achieved ÷ allowed mutations/s and
   requests/s in the steady state (after the first scaled hour, which includes the initial
   allowance), and the 429 count.
2. Governor overhead per call (one try_acquire + settle): CPU and wall time with the in-memory
   store, SQLite and PostgreSQL (ERPSYNC_TEST_PG_URL, default the local server).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid

import structlog
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.clock import SystemClock
from erpsync.graphql.quota import MemoryQuotaStore, QuotaGovernor, QuotaStore, tier_limits
from erpsync.sim.gql.options import TIERS as SIM_TIERS
from erpsync.sim.server import SimOptions, SimServer
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore
from tests.integration.graphql.drive import drive

SHARE = 0.8


def allowed_rates(limits: dict[str, int]) -> tuple[float, float]:
    """(mutations/s, requests/s) erpsync may sustain: the tighter window of each, × share."""
    mut = min(limits["mutations_10s"] / 10, limits["mutations_1h"] / 3600) * SHARE
    req = min(limits["requests_10s"] / 10, limits["requests_1h"] / 3600) * SHARE
    return mut, req


def throughput(name: str, tier: str, *, factor: float, seconds: float, per_request: int, other: float = 0.0,
               threads: int = 2) -> None:
    limits = tier_limits(tier)
    sim = SimServer(SimOptions(port=0, tier=tier, time_scale=factor, other_integration_share=other,
                               limits=dict(SIM_TIERS[tier])))
    sim.start()
    try:
        result, gov = drive(sim.graphql_url, sim.token, sim.client_clock(), limits, seconds=seconds,
                            per_request=per_request, threads=threads)
        rejected = sim.state()["graphql"]["quota"]["rejected429"]
    finally:
        sim.stop()
    mut_allowed, req_allowed = allowed_rates(limits)
    if other:
        mut_allowed = min(mut_allowed, limits["mutations_1h"] / 3600 * (1 - other))
    # steady state: from the first wait on the hourly mutation bucket (the initial allowance spent)
    t0 = gov.stats.first_wait.get("mutations_1h")
    if t0 is None:
        achieved = len(result.mutation_times) / result.duration
        print(f"{name}: never bound by the hourly mutation bucket in {result.duration:.0f} scaled s "
              f"({achieved:.3f} mutations/s): client-bound, not quota-bound")
        return
    span = result.ended - t0
    muts = result.mutations_between(t0, result.ended) / span
    reqs = sum(1 for s in result.sent if s >= t0) / span
    print(f"{name:<34} scaled {result.duration / 3600:4.2f} h (steady {span / 3600:4.2f} h)  "
          f"mutations/s {muts:8.4f} / {mut_allowed:8.4f} = "
          f"{muts / mut_allowed:6.1%}   requests/s {reqs:7.4f} / {req_allowed:7.4f} = {reqs / req_allowed:6.1%}   "
          f"429s {rejected} (client saw {len(result.rate_limited)}, early resends "
          f"{result.requests_before_retry_after()})   waits {gov.stats.waits}  reseeds {gov.stats.reseeds}")


def overhead(label: str, store: QuotaStore, calls: int) -> None:
    big = {"requests_10s": 10**9, "requests_1h": 10**12, "complexity_10s": 10**12, "complexity_1h": 10**15,
           "mutations_10s": 10**9, "mutations_1h": 10**12}
    gov = QuotaGovernor(big, clock=SystemClock(), share=SHARE, store=store)
    for _ in range(20):  # warm up (first use creates the rows)
        gov.settle(gov.try_acquire(mutations=1, lane="stock", op_key="mutation:setStock"), 142)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        permit = gov.try_acquire(mutations=1, lane="stock", op_key="mutation:setStock")
        gov.settle(permit, 142)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    tx = getattr(store, "transactions", None)
    print(f"governor overhead {label:<12} {cpu / calls * 1e6:8.1f} µs CPU  {wall / calls * 1e6:8.1f} µs wall per call"
          + (f"  ({tx} transactions)" if tx is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=25.0, help="real seconds per throughput run")
    parser.add_argument("--factor", type=float, default=360.0, help="time scale (1 h = 3600/factor s)")
    parser.add_argument("--quick", action="store_true", help="overhead only")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.getLogger().setLevel(logging.ERROR)

    overhead("memory", MemoryQuotaStore(), 20_000)
    sqlite_path = f"/tmp/bench-quota-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{sqlite_path}")
    SQLModel.metadata.create_all(engine)
    overhead("sqlite", SqlQuotaStore(engine), 2_000)
    engine.dispose()
    os.unlink(sqlite_path)
    pg = os.environ.get("ERPSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(f"{pg}?options=-csearch_path%3D{schema}")
        SQLModel.metadata.create_all(engine)
        overhead("postgresql", SqlQuotaStore(engine), 2_000)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    if args.quick:
        return
    throughput("growth (1 mutation/request)", "growth", factor=args.factor, seconds=args.seconds, per_request=1)
    throughput("growth, other integration 50%", "growth", factor=args.factor, seconds=args.seconds, per_request=1,
               other=0.5)
    # Enterprise's 6.9 mutations/s would need thousands of requests per real second at ×360
    throughput("enterprise (20 mutations/request)", "enterprise", factor=args.factor / 6, seconds=args.seconds,
               per_request=20)


if __name__ == "__main__":
    main()
