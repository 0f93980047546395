"""``erpsync push stock|prices|products|all [--once] [--dry-run]`` (registered by ``erpsync/cli.py``).

``all`` runs products, then prices, then stock (Centra needs the product before its prices and
stock). ``--once`` runs one pass and exits (0 ok, 75 a transient fault stopped it, 2 fatal);
without it the pass repeats at ``push.<entity>_interval_seconds`` until SIGINT/SIGTERM.
``--dry-run`` prints, as JSON, every mutation a pass would send and sends nothing (no lookups
either: a product without a recorded Centra id is shown as a create).

Test and benchmark knob (beside the config, like ``erpsync sim``'s): ``ERPSYNC_SIM_TIME_SCALE`` and
``ERPSYNC_SIM_TIME_EPOCH`` make the client clock the simulator's scaled clock.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

import click

from erpsync.clock import clock_from_environ

ORDER = ("products", "prices", "stock")
EXIT_RETRY = 75


def job_classes(what: str) -> list[Any]:
    from erpsync.sync.push_prices import PushPrices
    from erpsync.sync.push_products import PushProducts
    from erpsync.sync.push_stock import PushStock

    classes = {"products": PushProducts, "prices": PushPrices, "stock": PushStock}
    return [classes[w] for w in (ORDER if what == "all" else (what,))]


def _jsonable(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


@click.command("push")
@click.argument("what", type=click.Choice(["stock", "prices", "products", "all"]))
@click.option("--once", is_flag=True, help="one pass, then exit (default: repeat at the configured interval)")
@click.option("--dry-run", is_flag=True, help="print what would be sent as JSON; send nothing, record nothing")
@click.pass_obj
def push_cmd(obj: Any, what: str, once: bool, dry_run: bool) -> None:
    """Push changed ERP masters (stock, prices, products or all) to Centra."""
    from erpsync.store.engine import make_engine
    from erpsync.sync.outbound_client import centra_port
    from erpsync.sync.push_base import DryRunSink

    settings = obj.settings(require_secrets=set() if dry_run else {"centra.graphql.token"})
    clock = clock_from_environ(os.environ)
    engine = make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second signal: stop now (what Centra accepted is read back next run)
            raise SystemExit(128 + signum)
        stop.set()  # the first: finish the current batch, then exit
        click.echo("erpsync: stopping after the current batch (signal again to stop now)", err=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    sink = DryRunSink() if dry_run else None
    port = None if dry_run else centra_port(settings, engine, clock)
    worst = 0
    try:
        while True:
            for cls in job_classes(what):
                if stop.is_set():
                    break
                result = cls(engine, port, settings.push, clock=clock, stop_event=stop, dry_run=sink).run()
                counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
                click.echo(f"{result.job}: {result.outcome}" + (f" ({counts})" if counts else "")
                           + (f": {result.error}" if result.error else ""), err=dry_run)
                if result.outcome == "retry":
                    worst = max(worst, EXIT_RETRY)
                    break  # later entities depend on this one
            if once or dry_run or stop.is_set():
                break
            interval = min(getattr(settings.push, f"{w}_interval_seconds") for w in
                           (ORDER if what == "all" else (what,)))
            stop.wait(interval / getattr(clock, "factor", 1.0))
    finally:  # a JobFailed propagates to erpsync.cli.main (exit 2, the reason on stderr)
        if port is not None:
            port.close()
        engine.dispose()
    if sink is not None:
        click.echo(json.dumps([{"operation": c.operation, "lane": c.lane, "variables": _jsonable(c.variables)}
                               for c in sink.calls], indent=2))
    sys.exit(worst)
