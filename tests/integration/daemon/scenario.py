"""``erpsync run`` against a time-scaled ``erpsync sim`` (Growth), as an operator rehearses a day.

Shared by the first-sync end-to-end test and the first-sync and soak benchmarks: the simulator
and the daemon are real subprocesses; the daemon reads the simulator's clock from
``ERPSYNC_SIM_TIME_SCALE`` / ``ERPSYNC_SIM_TIME_EPOCH`` like an operator's shell would pass it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from erpsync.clock import SIM_TIME_EPOCH_ENV, SIM_TIME_SCALE_ENV, ScaledClock
from erpsync.demo.verify import differences
from erpsync.sample import Catalogue, generate
from erpsync.store.models import ParkedItem
from tests.integration.daemon.procs import SIM_SECRETS, Proc, SimProc, base_env, import_erp, write_config

PUSH_JOBS = ("push_products", "push_prices", "push_stock", "quota_refresh")

#: Growth's buckets (requests, mutations) per 10 s and per hour, from the quota module
def growth_limits() -> dict[str, int]:
    from erpsync.graphql.quota import tier_limits

    return tier_limits("growth")


def quota_bound_seconds(mutations: int, requests: int, limits: dict[str, int], share: float) -> float:
    """Least time for ``mutations`` and ``requests`` from full buckets of ``limits`` × ``share``:
    a bucket of capacity C refilling C per interval allows C + C·t/interval by time t."""
    worst = 0.0
    for kind, n in (("mutations", mutations), ("requests", requests)):
        for interval, seconds in (("10s", 10.0), ("1h", 3600.0)):
            cap = limits[f"{kind}_{interval}"] * share
            worst = max(worst, max(0.0, n - cap) / (cap / seconds))
    return worst


class ScaledSim(SimProc):
    """``erpsync sim`` at Growth on a clock ``scale`` times faster than real time."""

    def __init__(self, scale: float, *args: str) -> None:
        self.scale = scale
        self.epoch = time.time()
        super().__init__("--tier", "growth", "--time-scale", str(scale), "--time-epoch", repr(self.epoch),
                         "--log-level", "WARNING", *args)

    def clock(self) -> ScaledClock:
        return ScaledClock(self.scale, self.epoch)

    def env(self, db_url: str) -> dict[str, str]:
        return base_env(db_url, **SIM_SECRETS, **{SIM_TIME_SCALE_ENV: str(self.scale),
                                                  SIM_TIME_EPOCH_ENV: repr(self.epoch)})

    def graphql_state(self) -> dict[str, Any]:
        return self.get("/_sim/state")["graphql"]  # type: ignore[no-any-return]


def load_sample(db_url: str, directory: Path, catalogue: Catalogue) -> None:
    files = generate(directory, catalogue)
    import_erp(db_url, list(files.values()))


def open_parked(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        rows = s.execute(select(ParkedItem.kind, func.count()).where(  # type: ignore[call-overload]
            col(ParkedItem.resolved_at).is_(None)).group_by(ParkedItem.kind))
        return {k: int(n) for k, n in rows}


@dataclass
class FirstSync:
    sim_seconds: float
    real_seconds: float
    mutations: int
    requests: int
    minimum_seconds: float
    differences: list[str]
    parked: dict[str, int]
    duplicates: dict[str, Any]


def start_daemon(tmp: Path, sim: ScaledSim, db_url: str, *, jobs: tuple[str, ...] = PUSH_JOBS,
                 extra: str = "", read_timeout: float | None = None, module: str = "erpsync",
                 env: dict[str, str] | None = None) -> Proc:
    config = write_config(tmp / "erpsync.toml", soap_url=sim.soap_url, graphql_url=sim.graphql_url,
                          extra=extra)
    if read_timeout is not None:  # under both [centra.soap] and [centra.graphql]
        body = config.read_text()
        for section in ("[centra.soap]\n", "[centra.graphql]\n"):
            body = body.replace(section, f"{section}read_timeout = {read_timeout}\n")
        config.write_text(body)
    args = ["--config", str(config), "run"]
    for job in jobs:
        args += ["--only", job]
    daemon = Proc(args, {**sim.env(db_url), **(env or {})}, module)
    daemon.wait_event("daemon.started", timeout=60)
    return daemon


def run_until_synced(sim: ScaledSim, daemon: Proc, engine: Engine, *, timeout_real: float,
                     poll_real: float = 0.5) -> FirstSync:
    """Wait until Centra equals the ERP (``differences`` empty), measured on the simulator's clock
    from the daemon's start. Raises AssertionError on timeout (with the remaining differences)."""
    clock = sim.clock()
    started = next(e for e in daemon.events() if e.get("event") == "daemon.started")
    t0_sim = clock.time() - 0.0
    t0_real = time.monotonic()
    diffs: list[str] = ["not checked yet"]
    state: dict[str, Any] = {}
    while time.monotonic() - t0_real < timeout_real:
        state = sim.graphql_state()
        diffs = differences(engine, state)
        if not diffs:
            break
        if daemon.p.poll() is not None:
            raise AssertionError("the daemon exited:\n" + "\n".join(daemon.lines[-40:]))
        time.sleep(poll_real)
    else:
        summaries = [e for e in daemon.events() if e.get("level") in ("error", "critical")
                     or e.get("event") in ("job.finished", "job.crashed", "daemon.job_disabled")]
        raise AssertionError(f"not in sync after {timeout_real:.0f} real s ({started}): {diffs}\n"
                             + "\n".join(str(e) for e in summaries[-30:]))
    sim_s, real_s = clock.time() - t0_sim, time.monotonic() - t0_real
    mutations = int(state["counts"]["mutationsApplied"])
    requests = int(state["requests"]["total"])
    limits = growth_limits()
    return FirstSync(sim_s, real_s, mutations, requests, quota_bound_seconds(mutations, requests, limits, 1.0),
                     diffs, open_parked(engine), state["duplicates"])
