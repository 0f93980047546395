"""Benchmark: diff and plan 1,000,000 stock rows (target ≤ 20 s and ≤ 500 MB peak RSS).

    .venv/bin/python -m tests.bench.bench_plan [--rows 1000000] [--db FILE] [--url postgresql+psycopg://…/test]

``--db FILE`` keeps the SQLite database: a second run with the same file measures only the steady
case. ``--url`` runs on PostgreSQL in a throw-away schema.

Builds a staging database (products × 3 variants × 5 sizes, stock in 3 warehouses) outside the
measurement, then measures, each in a fresh child process so the peak RSS is the phase's own:

1. ``first``:  nothing accepted yet — every row is pending (the initial load);
2. ``steady``: everything accepted, then 10,000 stock rows changed — 1,000,000 rows diffed,
   10,000 pending (the daily case);

Each phase runs ``changes.plan(entities=["stock"])``: stream every row with its OutboundItem,
build the Centra payload, hash it, compare, count setStock mutations. Prints figures and the
ratio to the target; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, text, update
from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.outbound.changes import Batching, payload_hash, plan
from erpsync.sample import WAREHOUSES, ean13
from erpsync.store.engine import make_engine, transaction
from erpsync.store.models import OutboundItem
from erpsync.store.staging import StagingProduct, StagingSize, StagingStock, StagingVariant

TARGET_S = 20.0
TARGET_MB = 500.0
CHUNK = 20_000


def build(engine: Engine, rows: int) -> None:
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    now = datetime.now(UTC)
    sizes_needed = -(-rows // len(WAREHOUSES))
    products = -(-sizes_needed // 15)
    base = {"import_run": "bench", "imported_at": now, "removed_at": None}
    with transaction(engine) as s:
        s.execute(insert(StagingProduct), [
            {**base, "product_number": f"P{p:07d}", "name": f"Product {p}", "status": "ACTIVE"}
            for p in range(products)])
        s.execute(insert(StagingVariant), [
            {**base, "variant_number": f"P{p:07d}-{v}", "product_number": f"P{p:07d}", "name": "c",
             "status": "ACTIVE", "size_chart": None} for p in range(products) for v in range(3)])
        batch = []
        n = 0
        for p in range(products):
            for v in range(3):
                for z in range(5):
                    n += 1
                    batch.append({**base, "variant_number": f"P{p:07d}-{v}", "size": str(z), "ean": ean13(n),
                                  "upc": None, "size_number": None})
                    if len(batch) == CHUNK:
                        s.execute(insert(StagingSize), batch)
                        batch = []
        if batch:
            s.execute(insert(StagingSize), batch)
    with transaction(engine) as s:
        batch = []
        done = 0
        for wh in WAREHOUSES:
            for i in range(1, sizes_needed + 1):
                if done == rows:
                    break
                batch.append({**base, "warehouse": wh, "ean": ean13(i), "quantity": (i * 7) % 50})
                done += 1
                if len(batch) == CHUNK:
                    s.execute(insert(StagingStock), batch)
                    batch = []
        if batch:
            s.execute(insert(StagingStock), batch)


def accept_all_then_change(engine: Engine, changed: int) -> None:
    """OutboundItem rows as if every stock row had been accepted; then ``changed`` rows differ."""
    now = datetime.now(UTC)
    with transaction(engine) as s:
        result = s.execute(text("SELECT warehouse, ean, quantity FROM staging_stock"))
        batch = []
        for wh, ean, qty in result:
            payload = {"warehouse": {"externalId": wh}, "productSize": {"EAN": ean}, "quantity": qty}
            batch.append({"entity": "stock", "erp_key": f"{wh}|{ean}", "accepted_hash": payload_hash(payload),
                          "status": "accepted", "attempts": 0, "updated_at": now, "accepted_at": now})
            if len(batch) == CHUNK:
                s.execute(insert(OutboundItem), batch)
                batch = []
        if batch:
            s.execute(insert(OutboundItem), batch)
    with transaction(engine) as s:
        t = StagingStock.__table__  # type: ignore[attr-defined]
        sizes = -(-_count_stock(s) // len(WAREHOUSES))
        step = max(1, sizes // changed)
        eans = [ean13(i) for i in range(1, sizes + 1, step)][:changed]
        for i in range(0, len(eans), 500):
            s.execute(update(t).where(t.c.warehouse == WAREHOUSES[0], t.c.ean.in_(eans[i:i + 500]))
                      .values(quantity=t.c.quantity + 1000))


def _count_stock(session: object) -> int:
    return int(session.execute(text("SELECT count(*) FROM staging_stock")).scalar_one())  # type: ignore[attr-defined]


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def measure(url: str) -> dict[str, object]:
    engine = make_engine(url)
    t0, c0 = time.perf_counter(), _cpu()
    with transaction(engine) as s:
        result = plan(s, entities=["stock"], batching=Batching(stock=1000), share=0.8)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    engine.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    e = result.entities[0]
    return {"seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb": round(peak_mb, 1),
            "rows": e.items, "pending": e.changed, "mutations": e.mutations, "rows_per_s": round(e.items / elapsed)}


def _child(url: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_plan", "--measure", "--url", url],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--changed", type=int, default=10_000)
    ap.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--db", type=Path, default=None,
                    help="SQLite file to build once and reuse (default: a temporary one)")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.url)))
        return
    tmp = tempfile.TemporaryDirectory(prefix="erpsync-bench-")
    reuse = args.db is not None and args.db.exists()
    schema = None
    if args.url:  # PostgreSQL: a throw-away schema, never the tables of the database given
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(args.url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.url else "?"
        url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{args.db or Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    try:
        first = None
        if not reuse:
            t0 = time.perf_counter()
            build(engine, args.rows)
            print(f"setup: {args.rows:,} stock rows staged in {time.perf_counter() - t0:.1f} s "
                  f"({engine.dialect.name})")
            first = _child(url)
            t0 = time.perf_counter()
            accept_all_then_change(engine, args.changed)
            print(f"setup: all accepted, {args.changed:,} changed in {time.perf_counter() - t0:.1f} s")
        steady = _child(url)
        results = [(f"steady ({args.changed:,} changed)", steady)]
        if first is not None:
            results.insert(0, ("first run (all pending)", first))
        for name, r in results:
            s, mb = float(r["seconds"]), float(r["peak_rss_mb"])  # type: ignore[arg-type]
            cpu = float(r["cpu_seconds"])  # type: ignore[arg-type]
            print(f"{name}: diffed {r['rows']:,} rows, {r['pending']:,} pending, {r['mutations']:,} setStock "
                  f"mutations; wall {s:.2f} s ({r['rows_per_s']:,} rows/s), CPU {cpu:.2f} s, peak RSS {mb:.0f} MB; "
                  f"ratio to target: time {s / TARGET_S:.2f} (CPU {cpu / TARGET_S:.2f}), memory {mb / TARGET_MB:.2f}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
              "(wall time above CPU time means the machine was shared)")
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    main()
