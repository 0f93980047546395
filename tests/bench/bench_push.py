"""Benchmark of the push jobs against the simulator over HTTP (prints figures, asserts correctness only).

    .venv/bin/python -m tests.bench.bench_push [--products 1000] [--time-scale 2] [--db sqlite|postgres]
        [--latency-per-item 0.001] [--timeout-items 2500] [--stock-changes-per-second 2]

Imports the sample catalogue (default 1,000 products × 3 variants × 5 sizes, 3 warehouses, 3
pricelists), starts ``erpsync sim`` with Growth limits on a scaled clock, and pushes products,
prices and stock through the real client and quota governor (share from the default config). Prints:

- items per mutation token for catalogue, prices and stock;
- the push's wall time in simulated seconds, and the quota-bound minimum: the least time in which
  Growth's buckets (full quota, and erpsync's configured share of it) allow that many mutations,
  starting from full buckets — wall ÷ minimum is the efficiency figure;
- that the sim equals the ERP, that there are zero duplicates, and that a second push sends 0;
- ``erpsync plan``'s mutation count and ETA (same lane model) next to what the push did;
- the batch sizes learnt (the simulator has a latency per item and a size above which it answers
  499) and how many 499s that cost;
- stock freshness while the catalogue backlog drains: a feeder changes stock levels of sizes
  already in Centra and the daemon's own ``push_stock`` (real scheduler, ``build_app``) pushes them,
  pacing itself by the quota-derived window (``push.stock_mutation_share`` of the hourly mutation
  allowance, erpsync.outbound.pacing); staging → Centra p50/p99 from the daemon's ``job_run`` rows,
  stock's share of the mutations, and how long stock calls waited behind the catalogue.

Choose ``--time-scale`` so the run is quota-bound, not CPU-bound: the push itself is quota-bound at
×5 (a 1,000-product push in about 2.5 real minutes), but each of the daemon's stock runs costs 1–5 s
of CPU on a loaded machine (a diff of 45,000 levels, the levels waiting for their products), which
at ×5 is 5–25 simulated seconds added to every change's latency. The default ×2 (about 6 real
minutes) keeps the freshness figures a live store's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel, col, select

import erpsync.store.tables  # noqa: F401
from erpsync.clock import ScaledClock
from erpsync.config import PushSettings, QuotaSettings
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import QuotaGovernor, tier_limits
from erpsync.logs import configure_logging
from erpsync.outbound.changes import Batching, plan
from erpsync.outbound.port import GraphqlPort
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.sim.gql.state import State
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore
from tests.unit.outbound.helpers import assert_same, centra_state, expected_state, load_catalogue

PG_URL = os.environ.get("ERPSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: stock may spend at most this fraction of the hourly mutation share (freshness target: p99 ≤ 30 s)
STOCK_SHARE = 0.25


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

    def __init__(self, time_scale: float, state_file: Path, extra: list[str] | None = None) -> None:
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
             "--log-level", "WARNING", *(extra or [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--time-scale", type=float, default=2.0)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--latency-per-item", type=float, default=0.001, help="real seconds per batch item")
    ap.add_argument("--timeout-items", type=int, default=2500, help="the sim answers 499 above this")
    ap.add_argument("--stock-changes-per-second", type=float, default=2.0, help="stock level changes (sim time)")
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

    sim = SimProcess(args.time_scale, tmp / "sim-state.json",
                     ["--latency-per-item", str(args.latency_per_item), "--timeout-items", str(args.timeout_items)])
    clock = sim.client_clock()
    quota = QuotaSettings(tier="growth")
    governor = QuotaGovernor.from_settings(quota, clock=clock, store=SqlQuotaStore(engine))
    port = GraphqlPort(CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=clock))
    push = PushSettings()
    limits = tier_limits("growth")
    with Session(engine) as session:
        planned = plan(session, batching=Batching.from_settings(push), tier="growth", share=quota.share,
                       limits_10s=(limits["requests_10s"], limits["mutations_10s"], limits["complexity_10s"]),
                       live_stock_share=push.stock_mutation_share)
    freshness = Freshness(engine, url, port, governor, push, clock, sim.graphql_url, args.stock_changes_per_second)
    try:
        started_sim, started_real = clock.time(), time.perf_counter()
        counts = {}
        freshness.start()
        for cls in (PushProducts, PushPrices, PushStock):
            t_sim, t_real = clock.time(), time.perf_counter()
            if cls is PushStock:
                freshness.stop()  # the daemon's stock runs end where the push's own stock run starts
            result = cls(engine, port, push, clock=clock).run()
            assert result.outcome == "ok", result
            counts[cls.name] = result.counts
            print(f"{cls.name:14s} {result.counts.get('sent', 0):>7} items  {result.counts.get('mutations', 0):>5} "
                  f"mutations  {clock.time() - t_sim:8.1f} sim-s  {time.perf_counter() - t_real:6.1f} real-s")
        wall_sim, wall_real = clock.time() - started_sim, time.perf_counter() - started_real
        state = sim.inspect()
        expected = expected_state(catalogue)
        with engine.connect() as conn:  # the feeder changed levels in staging: those are the ERP's now
            expected["stock"] = {(w, e): int(q) for w, e, q in conn.execute(
                text("SELECT warehouse, ean, quantity FROM staging_stock"))}
        assert_same(expected, centra_state(sim.gql_state()))
        assert all(not d for d in state["duplicates"].values()), state["duplicates"]
        mutations = state["counts"]["mutationsApplied"]
        requests = state["requests"]["total"]
        rejected_429 = state["requests"]["byStatus"].get("429", 0)
        gave_up_499 = state["requests"]["byStatus"].get("499", 0)

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
        stock_sent = stock.get("sent", 0) + freshness.levels
        stock_mut = stock.get("mutations", 0) + freshness.mutations
        print(f"  stock:     {stock_sent / max(1, stock_mut):.1f} levels per setStock (main push: "
              f"{stock.get('sent', 0) / max(1, stock.get('mutations', 0)):.1f})")
        print(f"batch sizes learnt: {governor.batch_sizes()} (start: setStock {push.stock_batch_size}, "
              f"setPricesBatch {push.prices_batch_size}); the store answered 499 {gave_up_499} times "
              f"(sim: {args.latency_per_item:g} s per item, 499 above {args.timeout_items} items)")
        full = quota_bound_seconds(mutations, requests, limits, 1.0)
        shared = quota_bound_seconds(mutations, requests, limits, quota.share)
        print(f"mutations {mutations}, requests {requests} (429s: {rejected_429})")
        print(f"wall time: {wall_sim:.0f} sim-s ({wall_real:.1f} real-s at ×{args.time_scale:g})")
        print(f"quota-bound minimum (Growth, full quota):          {full:.0f} s -> "
              f"wall/minimum = {wall_sim / full:.2f}")
        print(f"quota-bound minimum (Growth × share {quota.share}):         {shared:.0f} s -> "
              f"wall/minimum = {wall_sim / shared:.2f}")
        print(f"sim equals ERP: yes; duplicates: 0; second push mutations: {second}")
        main_mutations = mutations - freshness.mutations
        print(f"plan: {planned.mutations} mutations, ETA {planned.seconds:.0f} s (live stock's budget "
              f"{planned.live_stock_per_second:.2f}/s ahead of it); push: {main_mutations} mutations "
              f"(+{freshness.mutations} by the daemon's paced push_stock), {wall_sim:.0f} s -> ETA/actual = "
              f"{planned.seconds / wall_sim:.2f}")
        freshness.report(mutations)
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


class Freshness:
    """While the catalogue pushes: a feeder changes stock levels Centra already holds, and the
    daemon's own ``push_stock`` job (``build_app(jobs=["push_stock"])``: the real scheduler, the job
    pacing itself by the quota-derived window of ``push.stock_mutation_share``) pushes them.

    A change's latency is the end of the first successful ``push_stock`` run that started after it
    (the daemon's ``job_run`` rows) minus the change: an upper bound (the run reads staging after it
    starts, and its batch may land before the run ends)."""

    def __init__(self, engine: Any, url: str, port: Any, governor: Any, push: PushSettings, clock: ScaledClock,
                 graphql_url: str, changes_per_second: float) -> None:
        from erpsync.app import build_app
        from erpsync.config import Settings
        from erpsync.daemon.leader import AlwaysLeader

        self.engine, self.clock, self.push = engine, clock, push
        self.rate = changes_per_second
        settings = Settings.model_validate({
            "centra": {"graphql": {"url": graphql_url}}, "database": {"url": url},
            "daemon": {"metrics_port": 0}, "quota": {"tier": "growth"}, "push": push.model_dump()})
        self.app = build_app(settings, jobs=["push_stock"], engine=engine, clock=clock, leadership=AlwaysLeader(),
                             environ={}, graphql=port, governor=governor)
        self.window = self.app.jobs["push_stock"].pacer.window() or 0.0
        self.profile = None
        if os.environ.get("BENCH_PROFILE_STOCK"):  # where the daemon's stock runs spend their CPU
            import cProfile

            job, profile = self.app.jobs["push_stock"], cProfile.Profile()
            inner = job.execute

            def profiled(run: Any) -> None:
                profile.enable()
                try:
                    inner(run)
                finally:
                    profile.disable()

            job.execute, self.profile = profiled, profile
        self.stop_event = threading.Event()
        self.changes: list[float] = []
        self.threads: list[threading.Thread] = []
        self.started = self.stopped = 0.0
        self.mutations = self.levels = 0

    def start(self) -> None:
        self.started = self.clock.time()
        self.threads = [threading.Thread(target=self._feed),
                        threading.Thread(target=self.app.daemon.serve, kwargs={"install_signals": False})]
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.app.daemon.request_stop()
        for t in self.threads:
            t.join()
        self.stopped = self.clock.time()
        if self.app.daemon.read_engine is not self.engine:
            self.app.daemon.read_engine.dispose()
        if self.profile is not None:
            self.profile.dump_stats(os.environ["BENCH_PROFILE_STOCK"])
        ok = [r for r in self.runs() if r[2] == "ok"]
        self.mutations = sum(r[3].get("mutations", 0) for r in ok)
        self.levels = sum(r[3].get("sent", 0) for r in ok)

    def _feed(self) -> None:
        """Live changes: levels Centra already holds (accepted once), in WH-MAIN, ``rate`` a second."""
        rng = random.Random(7)
        eans: list[str] = []
        held = text("SELECT erp_key FROM outbound_item WHERE entity = 'stock' AND accepted_hash IS NOT NULL "
                    "AND erp_key LIKE 'WH-MAIN|%'")
        while not self.stop_event.is_set():
            self.clock.sleep(1.0 / self.rate)
            if len(self.changes) % 20 == 0 or not eans:
                with self.engine.connect() as conn:
                    eans = sorted(k.partition("|")[2] for (k,) in conn.execute(held))
            if not eans:
                continue
            with self.engine.begin() as conn:
                conn.execute(text("UPDATE staging_stock SET quantity = quantity + 1 "
                                  "WHERE warehouse = 'WH-MAIN' AND ean = :ean"), {"ean": rng.choice(eans)})
            self.changes.append(self.clock.time())

    def runs(self) -> list[tuple[float, float, str, dict[str, int]]]:
        """The daemon's push_stock runs: (started, finished, outcome, counts), clock seconds."""
        from erpsync.store.models import JobRun

        with Session(self.engine) as session:
            rows = session.exec(select(JobRun).where(col(JobRun.job) == "push_stock")  # type: ignore[call-overload]
                                .order_by(col(JobRun.started_at))).all()
        out = []
        for run in rows:
            if run.finished_at is None or not self.started <= aware(run.started_at).timestamp() <= self.stopped:
                continue  # not one of the daemon's (the push's own stock runs come after it stopped)
            out.append((aware(run.started_at).timestamp(), aware(run.finished_at).timestamp(), run.outcome,
                        dict(run.counts or {})))
        return out

    def report(self, total_mutations: int) -> int:
        """Print freshness and stock's share; returns the mutations the daemon's stock runs sent."""
        runs = [r for r in self.runs() if r[2] == "ok"]
        latencies, unmeasured = [], 0
        for t0 in self.changes:
            after = [r for r in runs if r[0] >= t0]
            if after:
                latencies.append(after[0][1] - t0)
            else:
                unmeasured += 1
        mutations = sum(r[3].get("mutations", 0) for r in runs)
        first = sum(r[3].get("first_level_mutations", 0) for r in runs)
        live = mutations - first
        held = max((r[3].get("held_for_full_batch", 0) for r in runs), default=0)
        lat = sorted(latencies)
        print("the daemon's push_stock runs (start s, duration s, mutations, levels): " + ", ".join(
            f"{r[0] - self.started:.0f}+{r[1] - r[0]:.1f}:{r[3].get('mutations', 0)}/{r[3].get('sent', 0)}"
            for r in runs))
        if lat:
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(f"stock freshness while the catalogue drained (the daemon's push_stock): {len(lat)} changes "
                  f"({unmeasured} after its last run), p50 {p50:.1f} s, p99 {p99:.1f} s "
                  f"(target ≤ 30 s: p99/target = {p99 / 30:.2f}); window {self.window:.1f} s")
        span = self.stopped - self.started
        hourly = 1800 * 0.8 / 3600 * span
        print(f"stock's mutations for live changes: {live} in {len(runs)} runs over {span:.0f} s = "
              f"{live / hourly:.1%} of the hourly share over that time (target ≤ 25 %; push.stock_mutation_share "
              f"= {self.push.stock_mutation_share}), {live / max(1, total_mutations):.1%} of all mutations; besides, "
              f"{first} full setStock of first levels of the new products (the push's own work, in plan; at most "
              f"{held} held for a full batch): all stock = {mutations / hourly:.1%} of the hourly share")
        gov = self.app.wiring.overrides["governor"]
        st = gov.stats
        print(f"stock calls behind the catalogue: {st.lane_waited.get('stock', 0)} of "
              f"{st.lane_acquires.get('stock', 0)} waited, at most {st.lane_max_sleeps.get('stock', 0)} governor "
              f"wait(s) per call, longest {st.lane_max_wait.get('stock', 0.0):.1f} s")
        return mutations


def aware(dt: Any) -> Any:
    from datetime import UTC

    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


if __name__ == "__main__":
    main()
