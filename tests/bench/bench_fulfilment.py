"""Benchmark and acceptance run of the fulfilment job (prints figures; asserts correctness only).

    .venv/bin/python -m tests.bench.bench_fulfilment [--deliveries 500] [--db sqlite|postgres|both]
                                                     [--latency-deliveries 120] [--skip-acceptance]

1. **Acceptance** (per database): ``--deliveries`` deliveries (two per order: partial; by line id and
   by SKU; 2/3 with a capture, 1/3 paid outside; the captures of a few orders set to fail) against
   the simulator over HTTP with 5 % each of 499-after-apply, 5xx and resets on mutations, and
   ``erpsync push fulfilment --once`` SIGKILLed at every step (at a random n-th passage), then run
   to the end. Prints shipped / parked, duplicate shipments, double captures, completions after a
   failed capture, and mutations per delivery.
2. **Latency** at the default interval (``[fulfilment] interval_seconds = 60``) on Growth limits and
   the default share, on a scaled clock: an ERP writes deliveries at random times; each delivery's
   "written → shipment completed in Centra" time in simulated seconds, p50/p99.
3. **Contention**: the same while a catalogue backlog (create products) and stock pushes run at the
   same time through the same governor. Prints the fulfilment lane's longest governor wait as a
   ratio to one governor wait (one mutation token's refill at the configured share) and the p50/p99
   with and without the backlog.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, func, insert, select, text, update
from sqlmodel import Session, SQLModel, col

import erpsync.store.tables  # noqa: F401
from erpsync.clock import Clock
from erpsync.config import FulfilmentSettings, PushSettings, QuotaSettings
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import QuotaGovernor, tier_limits
from erpsync.logs import configure_logging
from erpsync.outbound.fulfilment import CRASH_POINTS, PushFulfilment
from erpsync.outbound.port import GraphqlPort
from erpsync.outbound.products import PushProducts
from erpsync.outbound.push import CRASH_ENV
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.sim.server import SimOptions, SimServer
from erpsync.store.engine import make_engine
from erpsync.store.fulfilment import ErpDelivery, ErpDeliveryLine, ErpLineCancellation
from erpsync.store.models import JobRun
from erpsync.store.quota_repo import SqlQuotaStore
from erpsync.store.staging import StagingStock
from tests.e2e.test_fulfilment_crash import write_config
from tests.e2e.test_push_cli import env_for
from tests.e2e.test_push_cli import erpsync as run_erpsync
from tests.integration.outbound.fulfilment_helpers import (
    confirmed_orders,
    deliveries,
    order_items,
    write_cancellation,
)
from tests.unit.outbound.helpers import load_catalogue

PG_URL = os.environ.get("ERPSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TERMINAL = ("shipped", "parked", "rejected")


def fresh_db(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def write_deliveries(engine: Engine, sim: SimServer, n: int, clock: Clock | None = None,
                     failing: int = 0) -> tuple[int, set[str]]:
    """``n`` deliveries, two per order (partial), mixed by line id / SKU, capture / paid outside."""
    orders = confirmed_orders(sim, (n + 1) // 2)
    failing_orders = set(orders[:failing])
    for order in failing_orders:
        sim.set_capture_outcome(order, "failed")
    written = 0
    i = -1
    while written < n:
        i += 1
        if i >= len(orders):  # an order of one single unit gives one delivery: take another order
            orders += confirmed_orders(sim, 1)
        order = orders[i]
        items = order_items(sim, order)
        if len(items) > 1:
            parts = [items[: len(items) // 2], items[len(items) // 2:]]
        else:  # one item: ship part of its units first when it has several
            x = items[0]
            parts = [[{**x, "qty": x["qty"] // 2}], [{**x, "qty": x["qty"] - x["qty"] // 2}]] if x["qty"] > 1 \
                else [items]
        for j, part in enumerate(p for p in parts if p and all(x["qty"] > 0 for x in p)):
            if written >= n:
                break
            did = f"D-{order}-{j}"
            by_sku = (i + j) % 2 == 1
            with engine.begin() as conn:
                conn.execute(insert(ErpDeliveryLine), [
                    {"delivery_id": did, "line_no": k, "quantity": x["qty"],
                     "order_line_id": None if by_sku else x["id"], "sku": x["sku"] if by_sku else None}
                    for k, x in enumerate(part, start=1)])
                values: dict[str, Any] = {"delivery_id": did, "order_number": order, "carrier": "PostNord",
                                          "tracking_number": f"PN{did}", "capture": (i + j) % 3 != 2,
                                          "paid_outside": (i + j) % 3 == 2}
                if clock is not None:
                    values["imported_at"] = clock.now()
                conn.execute(insert(ErpDelivery).values(**values))
            written += 1
    return written, failing_orders


# ---------------------------------------------------------------------------------------- acceptance


def acceptance(kind: str, n: int, tmp: Path) -> None:
    url = fresh_db(kind, tmp)
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    sim = SimServer(SimOptions(port=0, tier="enterprise", time_scale=20.0, hang_seconds=5.0))
    sim.start()
    try:
        written, failing = write_deliveries(engine, sim, n, failing=3)
        for kind_, extra in (("apply_then_499", {}), ("http", {"status": 503}), ("reset", {})):
            sim.set_fault("graphql", kind_, only="mutation", probability=0.05, **extra)
        cfg_dir = tmp / f"cfg-{uuid.uuid4().hex[:6]}"
        cfg_dir.mkdir()
        cfg = write_config(cfg_dir, sim.graphql_url)
        cancel_orders: list[tuple[str, dict[str, Any]]] = []
        while len(cancel_orders) < 3:  # a line of 2 units or more: two cancellations of 1
            order = confirmed_orders(sim, 1)[0]
            big = max(order_items(sim, order), key=lambda i: i["qty"])
            if big["qty"] >= 2:
                cancel_orders.append((order, big))
        for k, (order, x) in enumerate(cancel_orders):
            write_cancellation(engine, f"C-{k}-a", order, 1, order_line_id=x["id"])
            write_cancellation(engine, f"C-{k}-b", order, 1, sku=x["sku"])
        rng = random.Random(14)
        kills = 0
        t0 = time.perf_counter()
        for point in CRASH_POINTS:
            for _ in range(2):
                # the first run goes far: kill it early; cancellations are few
                nth = rng.randint(1, 3) if point == "fulfil_after_cancel" else rng.randint(1, max(1, n // 25))
                res = run_erpsync(cfg, env_for(url, sim, **{CRASH_ENV: f"{point}:{nth}"}), "push", "fulfilment",
                              "--once")
                kills += res.returncode == -signal.SIGKILL
                if os.environ.get("BENCH_DEBUG") or res.returncode not in (0, 75, -signal.SIGKILL):
                    print(f"  {point}:{nth}: exit {res.returncode}: {res.stderr[-500:]}")
        rounds = 0
        while rounds < 10:
            rounds += 1
            res = run_erpsync(cfg, env_for(url, sim), "push", "fulfilment", "--once")
            rows = deliveries(engine)
            if all(d.state in TERMINAL for d in rows.values()):
                break
        wall = time.perf_counter() - t0
        rows = deliveries(engine)
        states: dict[str, int] = {}
        for d in rows.values():
            states[d.state] = states.get(d.state, 0) + 1
        book = sim.state()["graphql"]["orders"]
        ships = {s["externalId"]: s for per in book["shipmentsByOrder"].values() for s in per}
        completed_after_failed = sum(1 for d in rows.values() if d.order_number in failing and d.capture
                                     and ships.get(d.delivery_id, {}).get("isShipped"))
        with Session(engine) as s:
            counts = s.exec(select(JobRun.counts).where(  # type: ignore[call-overload]
                col(JobRun.job) == "push_fulfilment")).all()
        mutations = sum(int((c or {}).get("mutations", 0)) for (c,) in counts)
        shipped = states.get("shipped", 0)
        print(f"acceptance[{kind}]: {written} deliveries, {kills} kill -9 (every step), faults fired "
              f"{sum(sim.faults.inspect()['fired'].values())}: states {dict(sorted(states.items()))}; "
              f"duplicate shipments {len(book['duplicateShipments']) + len(book['shipmentsWithoutExternalId'])}, "
              f"shipments {len(ships)} for {written} deliveries, double captures {len(book['doubleCaptures'])}, "
              f"double completions {len(book['doubleCompletions'])}, completions after a failed capture "
              f"{completed_after_failed}; wall {wall:.1f} s")
        gql = sim.state()["graphql"]
        cancels = sum(book["cancelledLines"].values())
        with_capture = sum(1 for d in rows.values() if d.capture)
        print(f"acceptance[{kind}]: mutations applied by Centra per delivery "
              f"{(gql['counts']['mutationsApplied'] - cancels) / max(written, 1):.2f} "
              f"(flow minimum {(4 * with_capture + 3 * (written - with_capture)) / max(written, 1):.2f}: 4 with a "
              f"capture, 3 without; a failed capture is not applied); sent by runs that finished "
              f"{mutations} for {shipped} shipped; HTTP answers {gql['requests']['byStatus']}")
        assert len(book["duplicateShipments"]) == 0 and not book["shipmentsWithoutExternalId"]
        assert len(ships) == written and not book["doubleCaptures"] and completed_after_failed == 0
        assert set(states) <= {"shipped", "parked"}, states
        cancelled = book["cancelledLines"]
        with Session(engine) as s:
            c_states = s.exec(select(ErpLineCancellation.state, func.count())  # type: ignore[call-overload]
                              .group_by(ErpLineCancellation.state)).all()
        print(f"acceptance[{kind}]: cancellations: 6 rows of 1 unit on 3 lines → cancelledQuantity "
              f"{sorted(cancelled.values())} (expected [2, 2, 2]); rows {dict(c_states)}")
        assert sorted(cancelled.values()) == [2, 2, 2]
    finally:
        sim.stop()
        engine.dispose()


# ---------------------------------------------------------------------------------------- latency


class WaitRecorder:
    """Wraps ``governor.acquire`` to record each call's wait per lane (clock seconds)."""

    def __init__(self, governor: QuotaGovernor, clock: Clock) -> None:
        self.waits: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.reasons: dict[str, dict[str, float]] = {}  # lane -> reason -> longest wait
        self._local = threading.local()
        inner: Callable[..., Any] = governor.acquire
        inner_try: Callable[..., Any] = governor.try_acquire

        def try_acquire(**kw: Any) -> Any:
            permit = inner_try(**kw)
            if not permit.granted:
                self._local.reason = permit.reason
            return permit

        def acquire(**kw: Any) -> Any:
            t0 = clock.time()
            self._local.reason = ""
            permit = inner(**kw)
            waited = clock.time() - t0
            lane = kw.get("lane", "catalogue")
            with self._lock:
                self.waits.setdefault(lane, []).append(waited)
                per = self.reasons.setdefault(lane, {})
                reason = self._local.reason or "none"
                per[reason] = max(per.get(reason, 0.0), waited)
            return permit

        governor.try_acquire = try_acquire  # type: ignore[method-assign]
        governor.acquire = acquire  # type: ignore[method-assign]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def latency(kind: str, n: int, tmp: Path, *, backlog: bool, time_scale: float) -> dict[str, float]:
    url = fresh_db(kind, tmp)
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    sim = SimServer(SimOptions(port=0, tier="growth", time_scale=time_scale))
    sim.start()
    clock = sim.client_clock()
    quota = QuotaSettings(tier="growth")
    governor = QuotaGovernor.from_settings(quota, clock=clock, store=SqlQuotaStore(engine))
    recorder = WaitRecorder(governor, clock)
    port = GraphqlPort(CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=clock))
    settings = FulfilmentSettings()  # interval_seconds = 60
    push = PushSettings()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        if backlog:
            load_catalogue(engine, Catalogue(products=400, variants=2, sizes=4))

            def catalogue_loop() -> None:
                while not stop.is_set():
                    PushProducts(engine, port, push, clock=clock, stop_event=stop).run()
                    clock.sleep(1.0)

            def stock_loop() -> None:
                while not stop.is_set():
                    PushStock(engine, port, push, clock=clock, stop_event=stop).run()
                    with engine.begin() as conn:  # the ERP's stock keeps moving
                        conn.execute(update(StagingStock).values(quantity=StagingStock.quantity + 1))
                    clock.sleep(push.stock_interval_seconds)

            threads += [threading.Thread(target=catalogue_loop, daemon=True),
                        threading.Thread(target=stock_loop, daemon=True)]
        window = n / 400 * 3600  # 400 deliveries an hour: 1,600 mutations, within Growth × share
        written_box = [0]

        def erp_writer() -> None:
            rng = random.Random(7)
            while written_box[0] < n and not stop.is_set():
                clock.sleep(rng.expovariate(n / window))
                w, _ = write_deliveries(engine, sim, 1, clock=clock)
                written_box[0] += w

        def fulfil_loop() -> None:
            while not stop.is_set():
                PushFulfilment(engine, port, push, settings, clock=clock, stop_event=stop).run()
                clock.sleep(settings.interval_seconds)

        threads += [threading.Thread(target=erp_writer, daemon=True), threading.Thread(target=fulfil_loop,
                                                                                       daemon=True)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + (window * 2 + 600) / time_scale
        while time.monotonic() < deadline:
            with Session(engine) as s:
                done = s.exec(select(func.count()).select_from(ErpDelivery).where(  # type: ignore[call-overload]
                    col(ErpDelivery.state).in_(TERMINAL))).one()[0]
            if written_box[0] >= n and done >= n:
                break
            time.sleep(0.5)
        stop.set()
        rows = deliveries(engine)
        lat = [(d.completed_at - d.imported_at).total_seconds() for d in rows.values()
               if d.completed_at is not None]
        fw = recorder.waits.get("fulfilment", [])
        refused = {r: w for r, w in recorder.reasons.get("fulfilment", {}).items() if r != "none"}
        gov_max = max(refused.values(), default=0.0)  # waits the governor imposed (a bucket, a Retry-After)
        limits = tier_limits(quota.tier)
        one_wait = 3600.0 / (limits["mutations_1h"] * quota.share)  # one mutation token's refill
        label = "with catalogue backlog + stock pushes" if backlog else "alone"
        book = sim.state()["graphql"]["orders"]
        print(f"latency[{kind}] {label}: {len(lat)}/{n} shipped; written → completed p50 {pct(lat, 0.5):.1f} s, "
              f"p99 {pct(lat, 0.99):.1f} s (simulated, interval {settings.interval_seconds:.0f} s; "
              f"p50/interval {pct(lat, 0.5) / settings.interval_seconds:.2f}); duplicates "
              f"{len(book['duplicateShipments'])}")
        print(f"latency[{kind}] {label}: fulfilment lane: {len(fw)} calls; longest wait the governor imposed "
              f"{gov_max:.2f} s ({', '.join(refused) or 'none'}); one governor wait {one_wait:.2f} s → "
              f"{gov_max / one_wait:.2f} governor waits (target ≤ 1); time inside acquire incl. the shared "
              f"quota store's lock: max {max(fw or [0]):.2f} s, p99 {pct(fw, 0.99):.2f} s; other lanes' calls: "
              + ", ".join(f"{k} {len(v)}" for k, v in sorted(recorder.waits.items()) if k != "fulfilment")
              + f"; longest fulfilment wait by reason {recorder.reasons.get('fulfilment', {})}; 429s "
              f"{sim.state()['graphql']['requests']['byStatus'].get('429', 0)}")
        return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max_wait": gov_max, "one_wait": one_wait}
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        port.close()
        sim.stop()
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deliveries", type=int, default=500)
    ap.add_argument("--latency-deliveries", type=int, default=60)
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    # simulated seconds per real second; real overheads (HTTP, commits) count this many times over
    ap.add_argument("--time-scale", type=float, default=10.0)
    ap.add_argument("--skip-acceptance", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    configure_logging("ERROR", "console")
    tmp = Path(tempfile.mkdtemp(prefix="bench_fulfil_"))
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    if not args.skip_acceptance:
        for kind in kinds:
            acceptance(kind, args.deliveries, tmp)
    if not args.skip_latency:
        alone = latency(kinds[0], args.latency_deliveries, tmp, backlog=False, time_scale=args.time_scale)
        busy = latency(kinds[0], args.latency_deliveries, tmp, backlog=True, time_scale=args.time_scale)
        print(f"contention: p50 {alone['p50']:.1f} → {busy['p50']:.1f} s, p99 {alone['p99']:.1f} → "
              f"{busy['p99']:.1f} s; extra p99 {busy['p99'] - alone['p99']:.1f} s = "
              f"{(busy['p99'] - alone['p99']) / busy['one_wait']:.2f} governor waits")


if __name__ == "__main__":
    main()
