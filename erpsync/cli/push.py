"""``erpsync push stock|prices|products|fulfilment|all [--once] [--dry-run]``, ``erpsync plan`` and
``erpsync resync``.

``all`` runs products, then prices, then stock (Centra needs the product before its prices and
stock), then fulfilment (the ERP's deliveries and line cancellations, docs/erp-tables.md).
``--once`` runs one pass and exits (0 ok, 75 a transient fault stopped it, 2 fatal, 130 Ctrl-C);
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

from erpsync.cli.base import EXIT_RETRY, echo, open_engine, open_read_engine
from erpsync.clock import clock_from_environ

ORDER = ("products", "prices", "stock", "fulfilment")


def job_classes(what: str) -> list[Any]:
    from erpsync.outbound.fulfilment import PushFulfilment
    from erpsync.outbound.prices import PushPrices
    from erpsync.outbound.products import PushProducts
    from erpsync.outbound.stock import PushStock

    classes = {"products": PushProducts, "prices": PushPrices, "stock": PushStock, "fulfilment": PushFulfilment}
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
@click.argument("what", type=click.Choice(["stock", "prices", "products", "fulfilment", "all"]))
@click.option("--once", is_flag=True, help="one pass, then exit (default: repeat at the configured interval)")
@click.option("--dry-run", is_flag=True, help="print what would be sent as JSON; send nothing, record nothing")
@click.pass_obj
def push_cmd(obj: Any, what: str, once: bool, dry_run: bool) -> None:
    """Push changed ERP masters (stock, prices, products), the ERP's deliveries (fulfilment) or all to Centra."""
    from erpsync.outbound.port import centra_port
    from erpsync.outbound.push import DryRunSink
    from erpsync.store.engine import make_engine

    settings = obj.settings(require_secrets=set() if dry_run else {"centra.graphql.token"})
    clock = clock_from_environ(os.environ)
    engine = make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    stop = threading.Event()

    signalled: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second signal: stop now (what Centra accepted is read back next run)
            raise SystemExit(128 + signum)
        signalled.append(signum)
        stop.set()  # the first: finish the current batch, then exit (128 + signal: interrupted)
        echo("erpsync: stopping after the current batch (signal again to stop now)", err=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    sink = DryRunSink() if dry_run else None
    port = None if dry_run else centra_port(settings, engine, clock)
    worst = 0
    token_checked = False
    try:
        while True:
            sent = 0
            for cls in job_classes(what):
                if stop.is_set():
                    break
                extra = (settings.fulfilment,) if cls.name == "push_fulfilment" else ()
                result = cls(engine, port, settings.push, *extra, clock=clock, stop_event=stop, dry_run=sink).run()
                sent += sum(result.counts.values())
                counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
                echo(f"{result.job}: {result.outcome}" + (f" ({counts})" if counts else "")
                           + (f": {result.error}" if result.error else ""), err=dry_run)
                if result.outcome == "retry":
                    worst = max(worst, EXIT_RETRY)
                    if cls.name != "push_fulfilment":
                        break  # later entities depend on this one
            if port is not None and not token_checked and not sent and worst == 0 and not stop.is_set():
                # nothing to send means no request was made: a rejected token would pass unnoticed
                port.client.rate_limits()  # AuthenticationFailed → exit 2
            token_checked = True
            if once or dry_run or stop.is_set():
                break
            interval = min(settings.fulfilment.interval_seconds if w == "fulfilment" else
                           getattr(settings.push, f"{w}_interval_seconds") for w in
                           (ORDER if what == "all" else (what,)))
            stop.wait(interval / getattr(clock, "factor", 1.0))
    finally:  # a JobFailed propagates to erpsync.cli.main (exit 2, the reason on stderr)
        if port is not None:
            port.close()
        engine.dispose()
    if sink is not None:
        echo(json.dumps([{"operation": c.operation, "lane": c.lane, "variables": _jsonable(c.variables)}
                               for c in sink.calls], indent=2))
    # --once cut short by a signal did not do its work: 128 + signal (130 for Ctrl-C); without --once
    # a signal is the way to stop the loop: 0
    sys.exit(128 + signalled[0] if signalled and once else worst)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


@click.command("plan")
@click.option("--entity", "entities", multiple=True,
              type=click.Choice(["sizechart", "pricelist", "product", "price", "stock"]),
              help="only these entities (repeatable; default all)")
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
@click.pass_obj
def plan_cmd(obj: Any, entities: tuple[str, ...], as_json: bool) -> None:
    """Show what a push would send, without sending anything: items per entity and operation,
    mutations and requests needed, and how long that takes under the configured quota tier."""
    from sqlmodel import Session

    from erpsync.graphql.quota import limits_from_settings
    from erpsync.outbound.changes import ENTITIES, Batching, Refs, plan

    s = obj.settings(require_secrets=False)
    limits = limits_from_settings(s.quota)
    engine = open_read_engine(obj)
    try:
        with Session(engine) as session:
            result = plan(
                session, refs=Refs.from_settings(s.push), on_absent=s.push.on_absent,
                batching=Batching.from_settings(s.push, _learnt_batch_sizes(engine)), tier="custom",
                share=s.quota.share,
                limits_1h=(limits["requests_1h"], limits["mutations_1h"], limits["complexity_1h"]),
                limits_10s=(limits["requests_10s"], limits["mutations_10s"], limits["complexity_10s"]),
                entities=entities or ENTITIES, live_stock_share=s.push.stock_mutation_share,
            )
        from erpsync.outbound.fulfilment import fulfilment_plan

        fulfil = fulfilment_plan(engine, s.fulfilment.external_id_on_create)
    finally:
        engine.dispose()
    rate = result.mutations_per_second
    fulfil["seconds"] = fulfil["mutations"] / rate if rate else 0.0
    if as_json:
        import json

        data = result.as_dict()
        data["tier"] = s.quota.tier
        data["share"] = s.quota.share
        data["fulfilment"] = fulfil
        echo(json.dumps(data, indent=2))
        return
    ops = ("create", "update", "deactivate", "set")
    echo(f"{'entity':<10} {'items':>9} {'changed':>9} " + " ".join(f"{o:>10}" for o in ops)
               + f" {'parked':>7} {'mutations':>10} {'requests':>9}")
    for e in result.entities:
        echo(f"{e.entity:<10} {e.items:>9,} {e.changed:>9,} "
                   + " ".join(f"{e.operations.get(o, 0):>10,}" for o in ops)
                   + f" {e.parked:>7,} {e.mutations:>10,} {e.requests:>9,}")
    echo(f"total: {result.mutations:,} mutations in {result.requests:,} requests; "
               f"{s.quota.tier} tier × share {s.quota.share} = {result.mutations_per_second:.3f} mutations/s "
               f"({result.live_stock_per_second:.3f}/s kept for live stock changes, "
               f"push.stock_mutation_share) → about {_duration(result.seconds)}")
    # the fulfilment lane goes first in the governor: its ETA does not wait for the catalogue backlog
    echo(f"fulfilment: {fulfil['deliveries']:,} pending deliveries, {fulfil['cancellations']:,} cancellations, "
               f"{fulfil['mutations']:,} mutations → about {_duration(fulfil['seconds'])}"
               + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(fulfil["by_state"].items())) + ")"
                  if fulfil["by_state"] else ""))


def _learnt_batch_sizes(engine: Any) -> dict[str, int]:
    """The batch sizes the push jobs learnt (kept with the quota state), {} when none or unreadable."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session, select

    from erpsync.graphql.quota import learnt_batch_sizes
    from erpsync.store.models import QuotaState

    try:
        with Session(engine) as session:
            row = session.exec(select(QuotaState.estimates)).first()
    except SQLAlchemyError:
        return {}
    return learnt_batch_sizes(row)


@click.command("resync")
@click.argument("entity", type=click.Choice(["sizechart", "pricelist", "product", "price", "stock"]))
@click.option("--ids", "ids", multiple=True,
              help="only these items (erp keys: product number, 'WH-MAIN|<EAN>', 'PL-SEK|<product>'); "
                   "repeatable or comma-separated")
@click.pass_obj
def resync_cmd(obj: Any, entity: str, ids: tuple[str, ...]) -> None:
    """Forget what Centra last accepted for ENTITY (or --ids) so the next push re-sends it."""
    from erpsync.outbound.changes import resync
    from erpsync.store.engine import transaction

    keys = [k.strip() for raw in ids for k in raw.split(",") if k.strip()] or None
    engine = open_engine(obj)
    try:
        with transaction(engine) as session:
            n = resync(session, entity, keys)
    finally:
        engine.dispose()
    echo(f"{entity}: {n:,} item(s) will be re-sent by the next push")
