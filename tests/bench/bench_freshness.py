"""Benchmark (prints figures, asserts nothing): freshness — an order placed in the simulator until
its row is in ``centra_order`` — with the scheduled pull only and with the webhook trigger, for
both event sources (SOAP queue, GraphQL events queue). SQLite, the real daemon (scheduler +
webhook listener), the simulator over loopback HTTP sending signed webhooks.

    .venv/bin/python -m tests.bench.bench_freshness [--interval 60] [--orders 12] [--max-gap 10]

Targets (issue 15): p99 ≤ 5 s with the webhook; p99 ≤ interval + 5 s without. Orders are placed
at random gaps (uniform 0…max-gap s) so they land at every phase of the pull's interval.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger
from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import Session, SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.clock import SystemClock
from erpsync.daemon.service import Daemon, JobSpec
from erpsync.daemon.webhook import WebhookConfig
from erpsync.graphql.client import CentraGraphql
from erpsync.inbound.gql_source import GraphqlEventSource, GraphqlPullJob
from erpsync.inbound.pull import PullJob
from erpsync.sim.server import SimOptions, SimServer
from erpsync.soap.client import CentraSoapClient
from erpsync.store.engine import make_engine
from erpsync.store.models import CentraOrder

SECRET = "bench-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def scenario(source: str, webhook: bool, interval: float, orders: int, max_gap: float, seed: int) -> list[float]:
    port = free_port()
    sim = SimServer(SimOptions(port=0, webhook_url=f"http://127.0.0.1:{port}/centra/webhook" if webhook else None,
                               webhook_secret=SECRET))
    sim.start()
    tmp = tempfile.mkdtemp()
    engine = make_engine(f"sqlite:///{Path(tmp) / 'fresh.db'}")
    SQLModel.metadata.create_all(engine)
    stop = threading.Event()
    closers: list[Any] = []
    job: Any
    if source == "soap":
        client = CentraSoapClient(sim.soap_url, sim.soap_user, sim.soap_password,
                                  store_tz=ZoneInfo("Europe/Stockholm"))
        closers.append(client.close)
        job, name = PullJob(engine, client, store_tz=ZoneInfo("Europe/Stockholm"), stop_event=stop), "pull"
    else:
        gql = CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=None, clock=SystemClock(),
                            decimal_floats=True)
        closers.append(gql.close)
        job, name = GraphqlPullJob(engine, GraphqlEventSource(gql), stop_event=stop), "pull_graphql"
    hook = WebhookConfig("127.0.0.1", port, SECRET, jobs=(name,)) if webhook else None
    daemon = Daemon(engine, [JobSpec(name, job, IntervalTrigger(seconds=interval, timezone="UTC"))],
                    stop_event=stop, environ={}, loop_interval=0.2, webhook=hook)
    runner = threading.Thread(target=daemon.serve, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    latencies: list[float] = []
    rng = random.Random(seed)
    try:
        deadline = time.monotonic() + 30
        while daemon.states[name].runs < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the run at start (the GraphQL source sets its listeners)
        pending: dict[str, float] = {}
        lock = threading.Lock()
        placing = threading.Event()
        placing.set()

        def poll() -> None:  # looks for new rows every 20 ms, like an ERP polling its tables
            end = float("inf")
            while time.monotonic() < end:
                with lock:
                    _collect(engine, pending, latencies)
                    if not pending and not placing.is_set():
                        return
                if not placing.is_set() and end == float("inf"):
                    end = time.monotonic() + interval + 30
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        for _ in range(orders):
            time.sleep(rng.uniform(0, max_gap))
            with lock:
                placed = time.monotonic()
                number = sim.generator.new_order().entry
                pending[number] = placed
        placing.clear()
        poller.join()
        if pending:
            print(f"  ! {len(pending)} order(s) never seen")
    finally:
        daemon.request_stop()
        runner.join(30)
        for close in closers:
            close()
        sim.stop()
        engine.dispose()
    return latencies


def _collect(engine: Any, pending: dict[str, float], latencies: list[float]) -> None:
    if not pending:
        return
    with Session(engine) as s:
        seen = set(s.exec(select(CentraOrder.centra_id).where(  # type: ignore[call-overload]
            CentraOrder.centra_id.in_(list(pending)))).scalars())  # type: ignore[attr-defined]
    now = time.monotonic()
    for number in seen:
        latencies.append(now - pending.pop(number))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=float, default=60.0, help="the pull's interval (default: the default 60 s)")
    ap.add_argument("--orders", type=int, default=12)
    ap.add_argument("--max-gap", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print(f"freshness: order placed in the simulator -> row in centra_order (SQLite; interval {args.interval:g} s; "
          f"{args.orders} orders per scenario)")
    for source in ("soap", "graphql"):
        for webhook in (False, True):
            lat = scenario(source, webhook, args.interval, args.orders, args.max_gap, args.seed)
            target = 5.0 if webhook else args.interval + 5.0
            p50, p99 = statistics.median(lat), pct(lat, 99)
            mode = "webhook  " if webhook else "scheduled"
            print(f"{source:<8} {mode} n={len(lat):3d}  p50 {p50:6.2f} s  p99 {p99:6.2f} s  "
                  f"target p99 <= {target:g} s  (p99/target {p99 / target:.2f})")


if __name__ == "__main__":
    main()
