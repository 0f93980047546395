"""Benchmark: a first sync with ``erpsync run`` at default settings, then a 10 % stock change.

    .venv/bin/python -m tests.bench.bench_first_sync [--products 2000] [--scale 60] [--db sqlite|postgres]

Imports the default sample (2,000 products × 3 variants × 5 sizes, 3 warehouses, 3 pricelists),
starts ``erpsync sim`` at Growth on a clock ``--scale`` times faster than real time and the daemon
(``erpsync run``, the push jobs and quota_refresh, default config) on the same clock, from an empty
Centra, until Centra equals the ERP (``erpsync.demo.verify.differences``). Prints:

- the first sync's wall time (simulated seconds) ÷ the quota-bound minimum (the least time Growth's
  buckets allow for the mutations and requests it took, from full buckets; also at erpsync's share);
- parked items (target 0) and duplicates (target 0);
- a snapshot re-import with 10 % of the stock levels changed: staging rows written vs rows changed
  (target: written ≤ 1.1 × changed);
- the stock run after it: real seconds from the run's start to its first accepted setStock, and
  the run's duration (the daemon's own JSON log lines).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from erpsync.config import QuotaSettings
from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.sample import Catalogue
from erpsync.store.engine import make_engine
from tests.integration.daemon.procs import Proc, prepare_db
from tests.integration.daemon.scenario import (
    ScaledSim,
    growth_limits,
    load_sample,
    quota_bound_seconds,
    run_until_synced,
    start_daemon,
)

PG_URL = os.environ.get("ERPSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def database(kind: str, tmp: Path) -> tuple[str, Any]:
    """(url, cleanup) of an empty database."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


def change_stock(erp: Path, share: float) -> int:
    """Rewrite ``stock.csv`` with every (1/share)-th level changed; returns how many changed."""
    path = erp / "stock.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    step = max(1, round(1 / share))
    changed = 0
    for i in range(1, len(rows), step):
        rows[i][2] = str(int(rows[i][2]) + 3)
        changed += 1
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return changed


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def stock_runs(daemon: Proc, scale: float) -> list[tuple[float, float, int]]:
    """(real seconds to the first accepted setStock, real run duration, items sent) per stock run that
    sent. Log timestamps are real time; ``duration_s`` is on the jobs' (scaled) clock."""
    events = daemon.events()
    first: dict[str, float] = {}
    for e in events:
        if e.get("event") == "push.batch_sent" and e.get("entity") == "stock" and e.get("run_id") not in first:
            first[str(e["run_id"])] = _ts(e)
    out = []
    for e in events:
        if e.get("event") == "job.finished" and e.get("job") == "push_stock" and e.get("sent", 0):
            duration = float(e["duration_s"]) / scale
            start = _ts(e) - duration
            out.append((first.get(str(e["run_id"]), _ts(e)) - start, duration, int(e["sent"])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=60.0)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--change", type=float, default=0.10, help="share of stock levels changed by the re-import")
    ap.add_argument("--timeout", type=float, default=1800.0, help="real seconds the first sync may take")
    ap.add_argument("--verbose", action="store_true", help="print the daemon's job summaries")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_first_sync_"))
    url, cleanup = database(args.db, tmp)
    sim: ScaledSim | None = None
    daemon: Proc | None = None
    engine = None
    try:
        prepare_db(url)
        catalogue = Catalogue(products=args.products)
        t0 = time.perf_counter()
        load_sample(url, tmp / "erp", catalogue)
        print(f"db {args.db}; import of {args.products} products: {time.perf_counter() - t0:.1f} s")
        engine = make_engine(url)
        sim = ScaledSim(args.scale)
        daemon = start_daemon(tmp, sim, url)
        sync = run_until_synced(sim, daemon, engine, timeout_real=args.timeout, poll_real=1.0)
        limits = growth_limits()
        share = QuotaSettings().share
        shared = quota_bound_seconds(sync.mutations, sync.requests, limits, share)
        print(f"first sync: Centra equals the ERP after {sync.sim_seconds:.0f} sim-s "
              f"({sync.real_seconds:.1f} real-s at ×{args.scale:g}); {sync.mutations} mutations, "
              f"{sync.requests} requests")
        print(f"quota-bound minimum (Growth, full quota): {sync.minimum_seconds:.0f} s -> "
              f"wall/minimum = {sync.sim_seconds / max(sync.minimum_seconds, 1e-9):.2f}")
        print(f"quota-bound minimum (Growth x share {share}): {shared:.0f} s -> "
              f"wall/minimum = {sync.sim_seconds / max(shared, 1e-9):.2f}")
        if args.verbose:
            for e in daemon.events():
                if e.get("event") in ("job.finished", "push.item_parked", "quota.rate_limited"):
                    print({k: v for k, v in e.items() if k not in ("level", "logger", "instance")})
        dups = sum(len(d) for d in sync.duplicates.values())
        print(f"parked: {sum(sync.parked.values())} (target 0) {sync.parked or ''}; duplicates: {dups} (target 0)")
        before = len(stock_runs(daemon, args.scale))

        # the ERP's next full snapshot: 10 % of the stock levels changed
        erp = tmp / "erp2"
        shutil.copytree(tmp / "erp", erp)
        changed = change_stock(erp, args.change)
        t0 = time.perf_counter()
        report = import_files(StagingLoader(engine), [erp / "stock.csv"], mode="snapshot")
        stock = report.entities[0]
        print(f"re-import ({args.change:.0%} of {stock.loaded} stock levels changed): {stock.written} staging rows "
              f"written for {changed} changed -> {stock.written / max(changed, 1):.2f} x changes (target <= 1.10); "
              f"{time.perf_counter() - t0:.1f} s")
        again = run_until_synced(sim, daemon, engine, timeout_real=args.timeout, poll_real=0.5)
        runs = stock_runs(daemon, args.scale)[before:]
        for first, duration, sent in runs:
            print(f"{args.db} stock run after the import: first setStock accepted {first:.2f} s after the run "
                  f"started; {sent} levels sent in {duration:.2f} s")
        print(f"in sync again after {again.sim_seconds:.0f} sim-s ({again.real_seconds:.1f} real-s)")
    finally:
        if daemon is not None:
            daemon.p.terminate()
            daemon.wait(60)
        if sim is not None:
            sim.stop()
        if engine is not None:
            engine.dispose()
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
