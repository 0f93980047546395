"""Soak benchmark: ``erpsync run`` against a time-scaled ``erpsync sim`` (Growth) for a simulated day.

    .venv/bin/python -m tests.bench.bench_soak [--db sqlite|postgres] [--sim-hours 24] [--scale 144]
                                               [--products 300] [--orders-per-hour 600] [--faults 0.05]
                                               [--drain 600] [--keep-log FILE] [--env NAME=VALUE]
                                               [--tracemalloc DIR [--tracemalloc-seconds 30]]

e.g. the 24-hour soak in 5 real minutes: ``--sim-hours 24 --scale 288 --drain 240``.

Everything an operator's day has, on the simulator's clock (``ERPSYNC_SIM_TIME_SCALE``): the
daemon with every job (pull, the three pushes, quota_refresh, housekeeping) from an empty Centra;
orders arriving continuously (``/_sim/generate``); every simulated hour the ERP's next snapshot
of stock (10 % of the levels changed) and prices (2 % changed) imported into staging; and
``--faults`` (5 %) of the calls to both endpoints failing, spread over every fault kind the
simulator has (``/_sim/faults``) except ``expired_token`` (refused credentials are fatal by policy:
the job stops and alerts, which is not something a soak can pass through). At the end the faults
and orders stop and the daemon gets time to drain; then it prints:

- events generated / stored / acknowledged, lost (generated, not stored) and duplicates;
- jobs disabled (target 0) and Centra vs the ERP (target: equal), parked items by kind;
- the daemon's RSS (first, last, max, slope per simulated hour) and open file descriptors;
- the database size after the first sync and at the end, and its growth per simulated day;
- log lines per simulated hour (and by level);
- how long the daemon takes to exit after SIGTERM (target: exit 0 within the shutdown grace).

To find what grows in the daemon, ``--tracemalloc DIR`` runs it under tracemalloc
(``tests.bench.traced_daemon``) and dumps snapshots; ``--env MALLOC_ARENA_MAX=4`` and the like try
allocator settings; ``--keep-log FILE`` keeps the daemon's JSON log (``push.batch_size``, runs).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, col

from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.sample import Catalogue
from erpsync.store.engine import make_engine
from erpsync.store.models import InboxEvent
from tests.bench.bench_first_sync import database
from tests.integration.daemon.procs import Proc, prepare_db
from tests.integration.daemon.scenario import ScaledSim, load_sample, open_parked, run_until_synced, start_daemon

ALL_JOBS = ("pull", "push_products", "push_prices", "push_stock", "quota_refresh", "housekeeping")
#: fault kinds per endpoint (expired_token left out: fatal by policy); hang outlasts the read timeout
KINDS = {
    "soap": ("latency", "hang", "http_500", "http_502", "http_503", "apply_then_499", "reset", "truncate",
             "malformed", "soap_fault"),
    "graphql": ("latency", "hang", "http_500", "http_502", "http_503", "apply_then_499", "reset", "truncate",
                "malformed"),
}
READ_TIMEOUT = 5.0  # real seconds; a "hang" fault lasts longer
GRACE_S = 20.0  # [daemon] shutdown_grace_seconds of the tests' config (tests.integration.daemon.procs)


def set_faults(sim: ScaledSim, total: float, skip: frozenset[str] = frozenset()) -> None:
    """``total`` of the calls to each endpoint fail, split evenly over its kinds (rules are checked
    in order, the first that fires decides: p per rule so that 1 - (1 - p)^n = total). ``skip``:
    ``endpoint:kind`` pairs left out."""
    for endpoint, all_kinds in KINDS.items():
        kinds = [k for k in all_kinds if f"{endpoint}:{k}" not in skip]
        p = 1 - (1 - total) ** (1 / len(kinds))
        for kind in kinds:
            rule: dict[str, Any] = {"endpoint": endpoint, "kind": kind, "probability": round(p, 6)}
            if kind == "latency":
                rule["seconds"] = 0.5
            elif kind == "hang":
                rule["seconds"] = 6.0
            sim.post("/_sim/faults", rule)


def clear_faults(sim: ScaledSim) -> None:
    import urllib.request

    req = urllib.request.Request(sim.base + "/_sim/faults", method="DELETE")
    urllib.request.urlopen(req, timeout=10).close()


def change_file(path: Path, column: str, share: float, rng: random.Random, money: bool = False) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys())
    n = 0
    for row in rows:
        if rng.random() < share:
            if money:
                row[column] = f"{float(row[column]) + 1:.2f}"
            else:
                row[column] = str(max(0, int(row[column]) + rng.randint(-3, 5)))
            n += 1
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return n


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def db_size_mb(engine: Engine, url: str) -> float:
    if engine.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6
    with engine.connect() as c:
        size = c.execute(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
        return float(size.scalar_one() or 0) / 1e6


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "postgres", "postgresql"), default="sqlite")
    ap.add_argument("--sim-hours", type=float, default=24.0)
    ap.add_argument("--scale", type=float, default=144.0, help="simulated seconds per real second")
    ap.add_argument("--products", type=int, default=300)
    ap.add_argument("--orders-per-hour", type=float, default=600.0, help="SOAP events generated per sim-hour")
    ap.add_argument("--faults", type=float, default=0.05)
    ap.add_argument("--skip", default="", help="comma-separated endpoint:kind faults to leave out")
    ap.add_argument("--drain", type=float, default=600.0, help="real seconds allowed to drain at the end")
    ap.add_argument("--keep-log", type=Path, default=None, help="write the daemon's log lines to this file")
    ap.add_argument("--tracemalloc", type=Path, default=None,
                    help="run the daemon under tracemalloc, dumping snapshots into this directory "
                         "(compare: python -m tests.bench.traced_daemon --diff A B)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the daemon (e.g. MALLOC_ARENA_MAX=2), repeatable")
    ap.add_argument("--tracemalloc-seconds", type=float, default=30.0, help="real seconds between snapshots")
    args = ap.parse_args()
    rng = random.Random(16)

    tmp = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    url, cleanup = database("postgres" if args.db == "postgresql" else args.db, tmp)
    sim: ScaledSim | None = None
    daemon: Proc | None = None
    engine = None
    try:
        prepare_db(url)
        load_sample(url, tmp / "erp", Catalogue(products=args.products))
        engine = make_engine(url)
        sim = ScaledSim(args.scale)
        set_faults(sim, args.faults, frozenset(k for k in args.skip.split(",") if k))
        clock = sim.clock()
        traced = ({"BENCH_TRACEMALLOC_DIR": str(args.tracemalloc),
                   "BENCH_TRACEMALLOC_SECONDS": str(args.tracemalloc_seconds)} if args.tracemalloc else {})
        extra_env = dict(kv.split("=", 1) for kv in args.env)
        daemon = start_daemon(tmp, sim, url, jobs=ALL_JOBS, read_timeout=READ_TIMEOUT, env={**traced, **extra_env},
                              module="tests.bench.traced_daemon" if args.tracemalloc else "erpsync")
        pid = daemon.p.pid
        t0 = clock.time()
        end = t0 + args.sim_hours * 3600
        generated = 0
        imports = 0
        next_import = t0 + 3600
        samples: list[tuple[float, float, int]] = []  # (sim hours, RSS MB, fds)
        size_first_sync: float | None = None
        last_gen = clock.time()
        last_sample = 0.0
        while clock.time() < end:
            now = clock.time()
            due = int((now - last_gen) / 3600 * args.orders_per_hour)
            if due:
                generated += len(sim.post("/_sim/generate", {"count": due})["ids"])
                last_gen += due * 3600 / args.orders_per_hour
            if now >= next_import:  # the ERP's hourly snapshot of stock and prices
                erp = tmp / "erp"
                change_file(erp / "stock.csv", "quantity", 0.10, rng)
                change_file(erp / "prices.csv", "price", 0.02, rng, money=True)
                import_files(StagingLoader(engine), [erp / "stock.csv", erp / "prices.csv"], mode="snapshot")
                imports += 1
                next_import += 3600
                if size_first_sync is None:
                    size_first_sync = db_size_mb(engine, url)
            if time.monotonic() - last_sample >= 2.0:
                samples.append(((now - t0) / 3600, rss_mb(pid), fds(pid)))
                last_sample = time.monotonic()
            if daemon.p.poll() is not None:
                raise AssertionError("the daemon exited:\n" + "\n".join(daemon.lines[-40:]))
            time.sleep(0.2)
        sim_hours = (clock.time() - t0) / 3600

        # drain: no more faults or orders; everything pulled must be stored and acknowledged
        clear_faults(sim)
        drain_start = time.monotonic()
        soap: dict[str, Any] = {}
        while time.monotonic() - drain_start < args.drain:
            soap = sim.get("/_sim/state")["soap"]
            if soap["queue_depth"] == 0:
                break
            time.sleep(1.0)
        try:
            sync = run_until_synced(sim, daemon, engine, timeout_real=args.drain, poll_real=1.0)
            diffs, dups = sync.differences, sum(len(d) for d in sync.duplicates.values())
        except AssertionError as exc:  # still print every figure: the first lines say what differs
            diffs, dups = [str(exc)[:2000]], -1
        samples.append((sim_hours, rss_mb(pid), fds(pid)))
        size_end = db_size_mb(engine, url)
        with Session(engine) as s:
            stored = s.execute(select(func.count()).select_from(InboxEvent)).scalar_one()
            distinct = s.execute(select(func.count(func.distinct(InboxEvent.event_id)))).scalar_one()
            acked = s.execute(select(func.count()).select_from(InboxEvent).where(
                col(InboxEvent.acked_at).is_not(None))).scalar_one()
        events = daemon.events()
        disabled = [e for e in events if e.get("event") == "daemon.job_disabled"]
        levels = Counter(str(e.get("level", "?")) for e in events)
        parked = open_parked(engine)
        fired = sim.get("/_sim/faults").get("fired", {})

        print(f"soak on {args.db}: {sim_hours:.1f} simulated hours in {sim_hours * 3600 / args.scale / 60:.1f} real "
              f"minutes (x{args.scale:g}); {args.products} products; {imports} hourly stock/price imports; "
              f"faults {args.faults:.0%} per endpoint, fired: {dict(fired)}")
        sim_acked = int(soap.get("acked_count") or 0)
        print(f"events: generated {generated}, stored {stored}, acked (erpsync) {acked}, acked (sim) {sim_acked}; "
              f"lost (acknowledged, not stored) {max(sim_acked - stored, 0)} (target 0), duplicates "
              f"{stored - distinct} (target 0); never pulled (left in the queue) {soap.get('queue_depth')} "
              f"(target 0)")
        print(f"jobs disabled: {len(disabled)} (target 0) {[e.get('job') for e in disabled]}")
        for e in events:
            if e.get("level") in ("error", "critical") or e.get("event") == "daemon.job_disabled":
                print("  ", {k: v for k, v in e.items() if k not in ("logger", "instance", "exception")})
        print(f"Centra vs ERP at the end: {diffs if diffs else 'equal'}; "
              f"created twice in Centra: {dups} (target 0)")
        print(f"parked (open): {parked or 0} (target 0 unexpected)")
        rss = [r for _, r, _ in samples]
        print(f"RSS MB: first {rss[0]:.0f}, last {rss[-1]:.0f}, max {max(rss):.0f}; slope "
              f"{slope([(h, r) for h, r, _ in samples[len(samples) // 4:]]):+.2f} MB per sim-hour (after the "
              f"first quarter)")
        hourly = {int(h): r for h, r, _ in samples}  # the last sample of each simulated hour
        print("RSS MB by simulated hour: " + " ".join(f"{r:.0f}" for _, r in sorted(hourly.items())))
        print(f"open fds: first {samples[0][2]}, last {samples[-1][2]}, max {max(f for _, _, f in samples)}")
        grown = size_end - (size_first_sync or size_end)
        print(f"database: {size_first_sync or 0:.1f} MB after the first hour, {size_end:.1f} MB at the end -> "
              f"{grown / max(sim_hours - 1, 1e-9) * 24:.1f} MB per simulated day")
        print(f"log lines: {len(daemon.lines)} in total, {len(daemon.lines) / max(sim_hours, 1e-9):.0f} per "
              f"simulated hour; by level {dict(levels)}")
        # an operator's stop: SIGTERM, then the daemon finishes or interrupts its runs within the grace
        stop_started = time.monotonic()
        daemon.p.terminate()
        code = daemon.wait(GRACE_S + 40)
        stopped = time.monotonic() - stop_started
        late = [e.get("event") for e in daemon.events() if e.get("event") == "daemon.grace_expired"]
        print(f"stop: SIGTERM -> exit {code} in {stopped:.1f} real s (grace {GRACE_S:g} s; target: exit 0 "
              f"within it){' GRACE EXPIRED' if late else ''}")
    finally:
        if daemon is not None and args.keep_log is not None:
            args.keep_log.write_text("\n".join(daemon.lines) + "\n")
        if daemon is not None and daemon.p.poll() is None:
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
