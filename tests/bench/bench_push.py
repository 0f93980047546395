"""Benchmark of the push jobs against the simulator over HTTP (prints figures, asserts correctness only).

    .venv/bin/python -m tests.bench.bench_push [--products 2000] [--time-scale 100] [--db sqlite|postgres]

Imports the sample catalogue (default 2,000 products × 3 variants × 5 sizes, 3 warehouses, 3
pricelists), starts ``erpsync sim`` with Growth limits on a scaled clock, and pushes products,
prices and stock through the real client and quota governor (share and lane reserves from the
default config). Prints:

- items per mutation token for catalogue, prices and stock;
- the push's wall time in simulated seconds, and the quota-bound minimum: the least time in which
  Growth's buckets (full quota, and erpsync's configured share of it) allow that many mutations,
  starting from full buckets — wall ÷ minimum is the efficiency figure;
- that the sim equals the ERP, that there are zero duplicates, and that a second push sends 0.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.clock import ScaledClock
from erpsync.config import PushSettings, QuotaSettings
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import QuotaGovernor, tier_limits
from erpsync.logs import configure_logging
from erpsync.outbound.port import GraphqlPort
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.sim.gql.state import State
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore
from tests.unit.outbound.helpers import assert_same, centra_state, expected_state, load_catalogue

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def quota_bound_seconds(mutations: int, requests: int, limits: dict[str, int], share: float) -> float:
    """Least time for ``mutations`` and ``requests`` from full buckets of ``limits`` × ``share``:
    every bucket of capacity C refilling C per interval allows C + C·t/interval by time t."""
    worst = 0.0
    for kind, n in (("mutations", mutations), ("requests", requests)):
        for interval, seconds in (("10s", 10.0), ("1h", 3600.0)):
            cap = limits[f"{kind}_{interval}"] * share
            worst = max(worst, max(0.0, n - cap) / (cap / seconds))
    return worst


class SimProcess:
    """``erpsync sim`` in its own process (its CPU is not the client's), Growth tier, scaled clock."""

    def __init__(self, time_scale: float, state_file: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.epoch = time.time()
        self.time_scale = time_scale
        self.state_file = state_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "erpsync", "sim", "--port", str(self.port), "--tier", "growth",
             "--time-scale", str(time_scale), "--time-epoch", str(self.epoch), "--state-file", str(state_file),
             "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/_sim/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("erpsync sim did not start") from None
                time.sleep(0.1)
        self.graphql_url = f"{self.base}/graphql"
        self.token = "sim-token"

    def client_clock(self) -> ScaledClock:
        return ScaledClock(self.time_scale, self.epoch)

    def inspect(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_sim/state", timeout=30) as r:
            return json.loads(r.read())["graphql"]  # type: ignore[no-any-return]

    def gql_state(self) -> State:
        req = urllib.request.Request(f"{self.base}/_sim/save", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=60).close()
        return State.from_json(json.loads(self.state_file.read_text())["graphql"]["state"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--time-scale", type=float, default=100.0)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    configure_logging("WARNING", "console")

    tmp = Path(tempfile.mkdtemp(prefix="bench_push_"))
    schema = None
    if args.db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    catalogue = Catalogue(products=args.products)
    t0 = time.perf_counter()
    load_catalogue(engine, catalogue)
    print(f"import: {args.products} products, {time.perf_counter() - t0:.1f} s")

    sim = SimProcess(args.time_scale, tmp / "sim-state.json")
    clock = sim.client_clock()
    quota = QuotaSettings(tier="growth")
    governor = QuotaGovernor.from_settings(quota, clock=clock, store=SqlQuotaStore(engine))
    port = GraphqlPort(CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=clock))
    push = PushSettings()
    try:
        started_sim, started_real = clock.time(), time.perf_counter()
        counts = {}
        for cls in (PushProducts, PushPrices, PushStock):
            t_sim, t_real = clock.time(), time.perf_counter()
            result = cls(engine, port, push, clock=clock).run()
            assert result.outcome == "ok", result
            counts[cls.name] = result.counts
            print(f"{cls.name:14s} {result.counts.get('sent', 0):>7} items  {result.counts.get('mutations', 0):>5} "
                  f"mutations  {clock.time() - t_sim:8.1f} sim-s  {time.perf_counter() - t_real:6.1f} real-s")
        wall_sim, wall_real = clock.time() - started_sim, time.perf_counter() - started_real
        state = sim.inspect()
        assert_same(expected_state(catalogue), centra_state(sim.gql_state()))
        assert all(not d for d in state["duplicates"].values()), state["duplicates"]
        mutations = state["counts"]["mutationsApplied"]
        requests = state["requests"]["total"]
        rejected_429 = state["requests"]["byStatus"].get("429", 0)

        before = mutations
        for cls in (PushProducts, PushPrices, PushStock):
            cls(engine, port, push, clock=clock).run()
        second = sim.inspect()["counts"]["mutationsApplied"] - before

        products, prices, stock = counts["push_products"], counts["push_prices"], counts["push_stock"]
        sizes = args.products * catalogue.variants * catalogue.sizes
        print()
        print("items per mutation token:")
        print(f"  catalogue: {products['sent'] / products['mutations']:.2f} products "
              f"({sizes / products['mutations']:.1f} sizes; size charts included)")
        print(f"  prices:    {prices['sent'] / prices['mutations']:.1f} prices per setPricesBatch")
        print(f"  stock:     {stock['sent'] / stock['mutations']:.1f} levels per setStock")
        limits = tier_limits("growth")
        full = quota_bound_seconds(mutations, requests, limits, 1.0)
        shared = quota_bound_seconds(mutations, requests, limits, quota.share)
        print(f"mutations {mutations}, requests {requests} (429s: {rejected_429})")
        print(f"wall time: {wall_sim:.0f} sim-s ({wall_real:.1f} real-s at ×{args.time_scale:g})")
        print(f"quota-bound minimum (Growth, full quota):          {full:.0f} s -> "
              f"wall/minimum = {wall_sim / full:.2f}")
        print(f"quota-bound minimum (Growth × share {quota.share}):         {shared:.0f} s -> "
              f"wall/minimum = {wall_sim / shared:.2f}")
        print(f"sim equals ERP: yes; duplicates: 0; second push mutations: {second}")
        st = governor.stats
        print(f"governor: waits {st.waits}, waited {st.waited_seconds:.0f} s, first wait by {st.first_wait}, "
              f"lane max sleeps {st.lane_max_sleeps}, lane max wait {st.lane_max_wait}")
    finally:
        port.close()
        sim.stop()
        engine.dispose()
        if schema is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
