"""``erpsync demo``: the bundled sample ERP synced with an in-process Centra simulator.

A temporary SQLite store (``migrate.upgrade``), the simulator on a loopback port with a generous
quota tier and a fast clock, the bundled sample ERP data loaded into staging, then the daemon's own
jobs run until the sample is fully synced both ways (every sim event stored and acked, every ERP
item accepted by Centra) while the simulator keeps generating orders. Live progress on stderr, a
summary on stdout, exit 0. When a piece of erpsync is missing from this build it says which and
exits 2 instead of pretending.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from erpsync.bootstrap import ALL_JOBS, missing_capabilities

EXIT_MISSING = 2


def missing_pieces() -> list[str]:
    out = [f"the {job} job ({module})" for job, module in missing_capabilities(ALL_JOBS).items()]
    for module, what in (("erpsync.sim.server", "the Centra simulator"),
                         ("erpsync.sample", "the bundled sample ERP data"),
                         ("erpsync.erp.loader", "the ERP staging loader")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(f"{what} ({module})")
    return out


def run_demo(*, timeout_s: float = 110.0, keep_dir: Path | None = None, products: int = 0) -> int:
    missing = missing_pieces()
    if missing:
        click.echo("erpsync demo cannot run: this build lacks " + "; ".join(missing), err=True)
        return EXIT_MISSING
    from erpsync.daemon.demo_run import demo_main

    return demo_main(timeout_s=timeout_s, keep_dir=keep_dir, products=products)
