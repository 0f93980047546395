"""Benchmark (prints figures, asserts nothing): events per second end to end (fetch + store + ack)
for order events with 5 lines each against the in-process simulator over loopback HTTP, on SQLite
and PostgreSQL, and the pull's peak memory.

    .venv/bin/python -m tests.bench.bench_pull [--events 10000] [--db sqlite|postgres|both]
                                               [--memory] [--sim-nodelay]

``--memory`` adds tracemalloc runs at 1/5 and all of ``--events`` (SQLite): the pull's peak of
traced allocations above the baseline taken once the simulator's queue is filled should not grow
with the number of events (the simulator itself keeps every queued event in memory, so the
process RSS does). ``--sim-nodelay`` sets TCP_NODELAY on the simulator's sockets: its stdlib HTTP
server writes headers and body separately, and Nagle + delayed ACK then add ~40 ms to small
responses (events_Done) — an artefact of the simulator, not of erpsync.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
import time
import tracemalloc
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.clock import SystemClock
from erpsync.inbound.pull import PullJob
from erpsync.inbound.retry import Backoff
from erpsync.logs import configure_logging
from erpsync.sim import server as sim_server
from erpsync.sim.server import SimOptions, SimServer
from erpsync.store.engine import make_engine
from tests.fixtures.db import PG_URL
from tests.integration.inbound.simhelpers import TZ, soap_client


def order_payload(n: int) -> dict[str, Any]:
    lines = []
    total = Decimal(0)
    for i in range(1, 6):
        price = Decimal(f"{100 + i}.{n % 100:02d}")
        qty = 1 + (n + i) % 3
        subtotal = price * qty
        total += subtotal
        lines.append({
            "id": f"P{i}", "tax": "25.000", "sku": f"SKU{i}", "origprice": str(price), "price": str(price),
            "discount": "0.00", "qty": str(qty), "subtotal": str(subtotal), "description": f"Product {i}",
            "variation": {"id": f"P{i}-BLK", "description": "Black"},
            "sizes": {"size": [{"id": "M", "sku": f"SKU{i}BLKM", "qty": str(qty), "preorder": "no",
                                "orderitem": {"id": f"{n}-{i}"},
                                "warehouseitems": {"warehouse": [{"id": "WH-MAIN", "qty": str(qty)}]}}]},
        })
    return {
        "id": str(n), "ordernumber": str(n), "type": "retail", "store": "1", "locked": "no", "status": "pending",
        "ordertotal": str(total + Decimal("49.00")), "currency": "SEK", "currencyrate": "1.00000",
        "basecurrency": "SEK", "created": "2026-11-20T09:13:58+01:00", "internal": "false",
        "customer": {"id": "88", "description": "Ada Berg"},
        "shippingaddress": {"firstname": "Ada", "lastname": "Berg", "address1": "Sveavägen 12",
                            "city": "Stockholm", "zipcode": "111 57", "country": "SE"},
        "market": {"id": "Retail-SE", "description": "Retail Sweden"},
        "pricelist": {"id": "PL-SEK", "description": "Retail SEK"},
        "shipping": {"subtotal": "49.00", "description": "Standard"},
        "products": {"product": lines},
    }


def fill(sim: SimServer, count: int) -> None:
    for n in range(count):
        sim.queue.enqueue("order", str(100_000 + n), date="2026-11-20 09:14:03", data=order_payload(100_000 + n))


def pg_url() -> tuple[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def run(db: str, events: int, *, memory: bool, tmpdir: str) -> dict[str, Any]:
    if db == "sqlite":
        url, cleanup = f"sqlite:///{tmpdir}/bench-{uuid.uuid4().hex[:6]}.db", (lambda: None)
    else:
        url, cleanup = pg_url()
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    sim = SimServer(SimOptions(port=0))
    sim.start()
    try:
        fill(sim, events)
        gc.collect()
        with soap_client(sim, read_timeout=30.0, operation_timeout=60.0) as client:
            job = PullJob(engine, client, store_tz=TZ, clock=SystemClock(), max_batches=10**6,
                          backoff=Backoff(attempts=3, base=0.1, cap=1.0))
            if memory:
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            result = job.run()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            peak = None
            if memory:
                peak = tracemalloc.get_traced_memory()[1] - base
                tracemalloc.stop()
        assert result.outcome == "ok" and result.counts["acked"] == events, result
        assert sim.state()["soap"]["queue_depth"] == 0
        return {"db": db, "events": events, "seconds": elapsed, "events_per_s": events / elapsed, "cpu_s": cpu,
                "peak_traced_mb": None if peak is None else peak / 2**20,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        sim.stop()
        engine.dispose()
        cleanup()


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--sim-nodelay", action="store_true")
    args = ap.parse_args()
    configure_logging("WARNING", "json")
    if args.sim_nodelay:
        original = sim_server._Handler.setup

        def setup(self: Any) -> None:
            original(self)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        sim_server._Handler.setup = setup  # type: ignore[method-assign]
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"pull benchmark: {args.events} order events x 5 lines, in-process simulator over loopback HTTP"
          f"{' (sim TCP_NODELAY)' if args.sim_nodelay else ''}")
    with tempfile.TemporaryDirectory() as tmpdir:
        for db in dbs:
            r = run(db, args.events, memory=False, tmpdir=tmpdir)
            print(f"  {db:<9} {r['events']:>6} events in {r['seconds']:6.2f}s = {r['events_per_s']:7.0f} events/s;"
                  f" CPU {r['cpu_s']:.2f}s (client + in-process simulator; load avg {os.getloadavg()[0]:.1f});"
                  f" process max RSS {r['maxrss_mb']:.0f} MB (includes the simulator's queue)")
        if args.memory:
            for n in (max(100, args.events // 5), args.events):
                r = run("sqlite", n, memory=True, tmpdir=tmpdir)
                print(f"  memory   {n:>6} events: peak traced allocations during the pull "
                      f"{r['peak_traced_mb']:.1f} MB above baseline (tracemalloc on: {r['events_per_s']:.0f} ev/s)")


if __name__ == "__main__":
    main()
