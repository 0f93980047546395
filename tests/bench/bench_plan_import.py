"""Benchmark: import a large stock file (default 1,000,000 rows) through ``erpsync import``'s loader.

    .venv/bin/python -m tests.bench.bench_plan_import [--rows 1000000]

Writes a catalogue's sizes plus a stock CSV of ``--rows`` rows, loads the sizes (setup), then
measures in a child process the stock import as a full snapshot (validation of every row,
duplicate and reference checks, upsert in one transaction) and a second, identical re-import.
Prints rows/s, CPU time and peak RSS; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.sample import WAREHOUSES, Catalogue, generate
from erpsync.store.engine import make_engine


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def write_files(directory: Path, rows: int) -> Catalogue:
    products = -(-rows // (len(WAREHOUSES) * 15))
    cat = Catalogue(products=products, variants=3, sizes=5)
    generate(directory, cat)
    (directory / "prices.csv").unlink()
    stock = directory / "stock.csv"
    with stock.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("warehouse", "ean", "quantity"))
        for n, row in enumerate(cat.rows("stock")):
            if n == rows:
                break
            w.writerow((row["warehouse"], row["ean"], row["quantity"]))
    return cat


def measure(url: str, stock: Path) -> dict[str, object]:
    engine = make_engine(url)
    out: dict[str, object] = {}
    try:
        for name in ("first", "again"):
            t0, c0 = time.perf_counter(), _cpu()
            report = import_files(StagingLoader(engine, log_every=0), [stock], mode="snapshot")
            e = report.entities[0]
            out[name] = {"seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(_cpu() - c0, 2),
                         "loaded": e.loaded, "rejected": e.rejected, "removed": e.removed}
    finally:
        engine.dispose()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--measure", nargs=2, metavar=("URL", "STOCK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-") as tmp:
        files = Path(tmp) / "files"
        t0 = time.perf_counter()
        write_files(files, args.rows)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        master = [p for p in sorted(files.iterdir()) if p.name != "stock.csv"]
        import_files(StagingLoader(engine, log_every=0), master, mode="snapshot")
        engine.dispose()
        print(f"setup: files written and sizes loaded in {time.perf_counter() - t0:.1f} s")
        out = subprocess.run([sys.executable, "-m", "tests.bench.bench_plan_import", "--measure", url,
                              str(files / "stock.csv")], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        for name in ("first", "again"):
            m = r[name]
            print(f"stock import ({name}): {m['loaded']:,} rows loaded, {m['rejected']} rejected, "
                  f"{m['removed']} removed; wall {m['seconds']:.1f} s ({m['loaded'] / m['seconds']:,.0f} rows/s), "
                  f"CPU {m['cpu_seconds']:.1f} s")
        print(f"peak RSS {r['peak_rss_mb']:.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
