"""``erpsync demo``: the bundled sample ERP synced with an in-process Centra simulator.

A temporary SQLite store (``migrate.upgrade``), the simulator on a loopback port with a generous
quota tier and a fast clock, the bundled sample ERP data loaded into staging, then the daemon's own
jobs run until the sample is fully synced both ways (every sim event stored and acked, every ERP
item accepted by Centra) while the simulator keeps generating orders. Once the shop stops, the
sample ERP warehouse ships part of the pulled orders (``erpsync.demo.fulfil``: deliveries, some
partial, some with a capture) and erpsync writes them back to Centra as shipments. Live progress on stderr, a
summary on stdout, exit 0 (1 when the sample is not synced before the timeout).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel, col

import erpsync.store.tables  # noqa: F401
from erpsync.app import ALL_JOBS, App, build_app
from erpsync.config import Settings
from erpsync.daemon.leader import AlwaysLeader
from erpsync.demo.fulfil import write_sample_deliveries
from erpsync.demo.verify import differences
from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.logs import configure_logging
from erpsync.outbound.changes import plan
from erpsync.sample import EXAMPLES_DIR, Catalogue, generate
from erpsync.sim.server import SimOptions, SimServer
from erpsync.store import migrate
from erpsync.store.engine import make_engine
from erpsync.store.fulfilment import ErpDelivery
from erpsync.store.models import InboxEvent, OutboundItem, ParkedItem, QuotaState

EXIT_OK, EXIT_INCOMPLETE = 0, 1
DEMO_TIER = "enterprise"  # generous, so the demo is quick; the governor still paces every call
INITIAL_EVENTS = 150  # more than one 100-event batch: the first pull drains in two
GENERATE_SECONDS = 8.0  # the "shop" keeps taking orders this long while erpsync syncs
GENERATE_PER_TICK = 4
TICK = 0.5


@dataclass
class Progress:
    generated: int = 0
    queue_depth: int = 0
    acked: int = 0
    stored: int = 0
    pending_outbound: int = 0
    accepted_outbound: int = 0
    parked: int = 0
    deliveries: int = 0
    deliveries_done: int = 0
    deliveries_written: bool = False
    done: bool = False
    lines: list[str] = field(default_factory=list)

    def line(self, elapsed: float) -> str:
        return (f"[{elapsed:5.1f}s] events generated {self.generated}, stored {self.stored}, acked {self.acked}, "
                f"queued {self.queue_depth} | items accepted {self.accepted_outbound}, "
                f"pending {self.pending_outbound}, parked {self.parked}"
                + (f" | deliveries done {self.deliveries_done}/{self.deliveries}" if self.deliveries_written
                   else ""))


def demo_settings(sim: SimServer, db_url: str) -> Settings:
    return Settings.model_validate({
        "centra": {
            "soap": {"url": sim.soap_url, "username": sim.soap_user, "password": sim.soap_password,
                     "read_timeout": 10.0, "operation_timeout": 20.0},
            "graphql": {"url": sim.graphql_url, "token": sim.token, "read_timeout": 20.0},
        },
        "database": {"url": db_url},
        "logging": {"level": "WARNING", "format": "console"},
        "quota": {"tier": DEMO_TIER, "refresh_seconds": 30.0},
        "pull": {"interval_seconds": 1.0},
        "push": {"stock_interval_seconds": 1.0, "prices_interval_seconds": 1.0,
                 "products_interval_seconds": 1.0},
        "fulfilment": {"interval_seconds": 1.0},
        "daemon": {"shutdown_grace_seconds": 20.0, "metrics_port": 0, "quota_refresh_seconds": 10.0},
    })


@contextmanager
def _workdir(keep_dir: Path | None) -> Iterator[Path]:
    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        yield keep_dir
        return
    with tempfile.TemporaryDirectory(prefix="erpsync-demo-") as tmp:
        yield Path(tmp)


def demo_main(*, timeout_s: float = 110.0, keep_dir: Path | None = None, products: int = 0) -> int:
    configure_logging("WARNING", "console", stream=sys.stderr)
    t0 = time.monotonic()
    say = _sayer()
    with _workdir(keep_dir) as work:
        db_url = f"sqlite:///{work / 'erpsync-demo.db'}"
        engine = make_engine(db_url)
        sim = SimServer(SimOptions(port=0, tier=DEMO_TIER, seed=7))
        sim.start()
        app: App | None = None
        try:
            say(f"simulated Centra at {sim.base_url} (tier {DEMO_TIER}); store {db_url}")
            migrate.upgrade(engine)
            SQLModel.metadata.create_all(engine)  # tables newer than the bundled migration, if any
            files = sorted(EXAMPLES_DIR.glob("*.csv"))
            if products:  # a bigger, generated catalogue instead of the bundled example files
                files = sorted(generate(work / "erp", Catalogue(products=products)).values())
            report = import_files(StagingLoader(engine), files, mode="snapshot")
            say("sample ERP data loaded: " + ", ".join(f"{e.entity} {e.loaded}" for e in report.entities))
            sim.generate(INITIAL_EVENTS)
            settings = demo_settings(sim, db_url)
            app = build_app(settings, jobs=list(ALL_JOBS), engine=engine, clock=sim.client_clock(),
                            leadership=AlwaysLeader(), environ={},
                            daemon_options={"loop_interval": 0.2, "metrics_address": None})
            code = _drive(app, sim, app.daemon.read_engine, settings, t0, timeout_s, say)
            return code
        finally:
            if app is not None:
                app.close()
            else:
                engine.dispose()
            sim.stop()


def _sayer() -> Any:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    return say


def _drive(app: App, sim: SimServer, engine: Engine, settings: Settings, t0: float, timeout_s: float,
           say: Any) -> int:
    daemon = app.daemon
    engine_w = app.engine  # the sample ERP writes its deliveries like any ERP: into erpsync's database
    runner = threading.Thread(target=lambda: daemon.serve(install_signals=False), name="erpsync-demo-daemon",
                              daemon=True)
    runner.start()
    progress = Progress(generated=INITIAL_EVENTS)
    tty = sys.stderr.isatty()
    last_print = 0.0
    generating_until = time.monotonic() + GENERATE_SECONDS
    interrupted = False
    try:
        while True:
            now = time.monotonic()
            if now < generating_until:
                progress.generated += len(sim.generate(GENERATE_PER_TICK))
            _measure(progress, sim, engine, settings)
            if tty or now - last_print >= 2.0:
                text = progress.line(now - t0)
                print(("\r" + text) if tty else text, file=sys.stderr, end="" if tty else "\n", flush=True)
                last_print = now
            disabled = [n for n, s in daemon.states.items() if not s.enabled]
            if disabled:
                say("")
                say(f"a job was disabled: {disabled}; see the log lines above")
                break
            if now >= generating_until and not progress.deliveries_written and _synced(progress):
                progress.deliveries = write_sample_deliveries(engine_w)  # the shop is quiet: ship
                progress.deliveries_written = True
                say("")
                say(f"sample ERP warehouse wrote {progress.deliveries} deliveries")
                continue
            if now >= generating_until and progress.deliveries_written and _synced(progress):
                progress.done = True
                break
            if now - t0 > timeout_s:
                break
            time.sleep(TICK)
    except KeyboardInterrupt:
        interrupted = True
    if tty:
        print(file=sys.stderr, flush=True)
    daemon.request_stop()
    runner.join(settings.daemon.shutdown_grace_seconds + 5)
    _measure(progress, sim, engine, settings)
    diffs = differences(engine, sim.state()["graphql"], warehouses=settings.push.warehouses,
                        pricelists=settings.push.pricelists)
    _summary(progress, sim, engine, daemon, time.monotonic() - t0, diffs)
    if interrupted:
        say("interrupted")
        return EXIT_INCOMPLETE
    if not progress.done or diffs:
        say(f"NOT fully synced after {timeout_s:.0f}s" if not progress.done else "Centra differs from the ERP")
        return EXIT_INCOMPLETE
    return EXIT_OK


def _synced(p: Progress) -> bool:
    return (p.queue_depth == 0 and p.acked >= p.generated and p.stored >= p.generated and p.pending_outbound == 0
            and p.deliveries_done >= p.deliveries)


def _measure(p: Progress, sim: SimServer, engine: Engine, settings: Settings) -> None:
    soap = sim.state()["soap"]
    p.queue_depth, p.acked = int(soap["queue_depth"]), int(soap["acked_count"])
    # the shop's events, and those Centra emits when a shipment changes an order
    p.generated = max(p.generated, sum(int(n) for n in soap.get("emitted_by_type", {}).values()))
    with Session(engine) as s:
        p.stored = int(s.exec(select(func.count()).select_from(InboxEvent)).one()[0])  # type: ignore[call-overload]
        p.accepted_outbound = int(s.exec(select(func.count()).select_from(OutboundItem).where(  # type: ignore[call-overload]
            col(OutboundItem.accepted_hash).is_not(None))).one()[0])
        p.parked = int(s.exec(select(func.count()).select_from(ParkedItem).where(  # type: ignore[call-overload]
            col(ParkedItem.resolved_at).is_(None))).one()[0])
        pl = plan(s, on_absent=settings.push.on_absent, tier=settings.quota.tier, share=settings.quota.share)
        p.deliveries_done = int(s.exec(select(func.count()).select_from(ErpDelivery).where(  # type: ignore[call-overload]
            col(ErpDelivery.state).in_(("shipped", "parked", "rejected")))).one()[0])
    p.pending_outbound = sum(e.changed for e in pl.entities)


def _summary(p: Progress, sim: SimServer, engine: Engine, daemon: Any, duration: float, diffs: list[str]) -> None:
    gql = sim.state()["graphql"]
    quota = gql["quota"]
    limits = quota.get("limits", {})
    used_mut = int(gql["counts"].get("mutationsApplied", 0))
    with Session(engine) as s:
        by_entity = s.exec(select(OutboundItem.entity, func.count()).where(  # type: ignore[call-overload]
            col(OutboundItem.accepted_hash).is_not(None)).group_by(OutboundItem.entity)).all()
        seen_429 = s.exec(select(QuotaState.rate_limited_count)).first()  # type: ignore[call-overload]
        states: dict[str, int] = dict(s.exec(select(ErpDelivery.state, func.count())  # type: ignore[call-overload]
                                             .group_by(ErpDelivery.state)).all())
    runs = {n: st.runs for n, st in daemon.states.items()}
    book = gql.get("orders", {})
    ships = [x for per in book.get("shipmentsByOrder", {}).values() for x in per if not x.get("byCentra")]
    duplicates = len(book.get("duplicateShipments", {})) + len(book.get("shipmentsWithoutExternalId", []))
    lines = [
        "",
        "erpsync demo summary",
        f"  events generated by the shop : {p.generated}",
        f"  events pulled (stored once)  : {p.stored}",
        f"  events acknowledged          : {p.acked} (left in the queue: {p.queue_depth})",
        "  items pushed and accepted    : " + (", ".join(f"{e} {n}" for e, n in sorted(by_entity)) or "none"),
        f"  items parked                 : {p.parked}",
        f"  mutations used / allowed     : {used_mut} / {_allowed(limits)} per hour ({DEMO_TIER} tier)",
        f"  HTTP 429 answers             : {int(seen_429[0]) if seen_429 else 0} seen by erpsync, "
        f"{quota.get('rejected429', 0)} sent by Centra",
        f"  deliveries written by the ERP: {p.deliveries} ("
        + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none") + ")",
        f"  shipments created in Centra  : {len(ships)}, captured {sum(1 for x in ships if x['isCaptured'])}, "
        f"completed {sum(1 for x in ships if x['isShipped'])}",
        f"  duplicate shipments          : {duplicates}, double captures {len(book.get('doubleCaptures', []))}",
        "  job runs                     : " + ", ".join(f"{n} {r}" for n, r in runs.items()),
        f"  duration                     : {duration:.1f} s",
        "  Centra equals the ERP        : " + ("yes" if not diffs else "NO"),
        *[f"    - {d}" for d in diffs],
    ]
    print("\n".join(lines), flush=True)


def _allowed(limits: dict[str, Any]) -> str:
    for key, value in limits.items():
        if "MUTATION" in key.upper() and ("HOUR" in key.upper() or "1h" in key):
            return str(value)
    return "?"
