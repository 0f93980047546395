"""``erpsync pull | events | export | parked``.

- ``pull --once``: check the schema, drain the SOAP queue once, print the summary; exit 0 when
  ok, 75 when a transient fault stopped it (events stored so far are kept; the rest come again),
  2 when fatal (bad login …, via ``erpsync.cli.main``). Without ``--once`` it repeats every
  ``pull.interval_seconds`` until SIGINT/SIGTERM (the daemon does the same on its scheduler).
- ``events stats``: inbox counts by type and status (``--json``).
- ``export``: new or changed orders as JSON Lines + CSV lines, each version once (see
  ``erpsync.inbound.export``).
- ``parked list|retry|drop``: dead letters of every kind. ``retry`` of an ``event`` replays its
  raw XML now; of any other kind it closes the row (``retried``): the push jobs re-send items
  whose hash differs from what Centra accepted anyway.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from erpsync.cli.base import EXIT_RETRY, config_exit, echo
from erpsync.errors import ConfigError, ConfigProblem


def _engine(settings: Any) -> Any:
    from erpsync.store.engine import make_engine

    return make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)


@contextmanager
def _database(settings: Any) -> Iterator[Any]:
    """The engine for one command, disposed at the end. A database that cannot be reached or has no
    schema is told by the CLI's one error translator (``erpsync.cli.base.translate``: 75 / 2)."""
    engine = _engine(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def _summary(result: Any) -> str:
    c = result.counts
    return (f"pull: {result.outcome} in {result.duration_s:.2f}s: fetched={c.get('fetched', 0)} "
            f"applied={c.get('applied', 0)} superseded={c.get('superseded', 0)} "
            f"duplicates={c.get('duplicates', 0)} parked={c.get('parked', 0)} acked={c.get('acked', 0)} "
            f"batches={c.get('batches', 0)} drained={'yes' if c.get('drained') else 'no'}"
            + (f": {result.error}" if result.error else ""))


@click.command("pull")
@click.option("--once", is_flag=True,
              help="drain the queue once and exit (default: repeat every pull.interval_seconds)")
@click.option("--json", "as_json", is_flag=True, help="print the run summary as JSON")
@click.option("--source", type=click.Choice(["soap", "graphql"]), default=None,
              help="which queue (default: [centra.events] source; soap when it is \"both\")")
@click.pass_obj
def pull_cmd(obj: Any, once: bool, as_json: bool, source: str | None) -> None:
    """Pull Centra's events (the SOAP queue or the GraphQL events queue) into the ERP mapping
    tables, exactly once, then acknowledge them."""
    from erpsync.inbound.pull import PullJob
    from erpsync.store import migrate

    settings = obj.settings(require_secrets=False)
    source = source or ("graphql" if settings.centra.events.source == "graphql" else "soap")
    side = settings.centra.soap if source == "soap" else settings.centra.graphql
    if side is None:
        config_exit(ConfigError([ConfigProblem(f"centra.{source}", f"pull from the {source} queue needs a "
                                               f"[centra.{source}] section", "configuration")]))
    needed = "centra.soap.password" if source == "soap" else "centra.graphql.token"
    problems = settings.missing_secrets([needed])
    if problems:
        config_exit(ConfigError(problems))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    client: Any
    if source == "soap":
        from erpsync.soap.client import CentraSoapClient

        soap = settings.centra.soap
        assert soap is not None  # checked above
        if len(soap.event_types) != 1:
            raise click.BadParameter("pull one queue: set centra.soap.event_types to one type, e.g. [\"all\"]")
        assert soap.password is not None  # required above
        client = CentraSoapClient(
            soap.url, soap.username, soap.password.get_secret_value(), store_tz=settings.store_tz,
            event_type=soap.event_types[0], markets=soap.markets, connect_timeout=soap.connect_timeout,
            read_timeout=soap.read_timeout, operation_timeout=soap.operation_timeout)
    else:
        from erpsync.clock import SystemClock
        from erpsync.graphql.client import CentraGraphql
        from erpsync.graphql.quota import QuotaGovernor
        from erpsync.store.quota_repo import SqlQuotaStore

        g = settings.centra.graphql
        assert g is not None and g.token is not None  # required above
        token = g.token

        def gql_client(engine: Any) -> Any:
            # the daemon's governor (its state in the database): requests and complexity spent here come
            # out of the same budget, on the same `events` lane, as the pull_graphql job's
            governor = QuotaGovernor.from_settings(settings.quota, clock=SystemClock(), store=SqlQuotaStore(engine))
            return CentraGraphql(g.url, token, governor=governor, clock=SystemClock(),
                                 connect_timeout=g.connect_timeout, read_timeout=g.read_timeout, decimal_floats=True)
        client = None
    code = 0
    try:
        with _database(settings) as engine:
            migrate.ensure_current(engine)
            if client is None:
                client = gql_client(engine)
            job: PullJob
            if source == "soap":
                from erpsync.store.inbox import InboxRepository

                repository = InboxRepository(graphql_queue_read=settings.centra.events.source != "soap")
                job = PullJob(engine, client, store_tz=settings.store_tz, stop_event=stop, repository=repository,
                              max_batches=settings.pull.max_batches_per_run,
                              malformed_retries=settings.pull.malformed_retries)
            else:
                from erpsync.inbound.gql_source import GraphqlEventSource, GraphqlPullJob

                job = GraphqlPullJob(engine, GraphqlEventSource(client), stop_event=stop,
                                     max_batches=settings.pull.max_batches_per_run)
            while True:
                result = job.run()  # JobFailed propagates: erpsync.cli.main prints it and exits 2
                echo(json.dumps({"outcome": result.outcome, "duration_s": round(result.duration_s, 3),
                                       "error": result.error, **result.counts}) if as_json else _summary(result))
                code = EXIT_RETRY if result.outcome == "retry" else 0
                if once or stop.wait(settings.pull.interval_seconds):
                    break
    finally:
        if client is not None:
            client.close()
    if code:
        click.get_current_context().exit(code)


@click.group("events")
def events_group() -> None:
    """The event inbox."""


@events_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def events_stats(obj: Any, as_json: bool) -> None:
    """Inbox counts by source (soap | graphql), event type and status (applied | superseded | parked),
    with how many acked: during a cut-over (source = "both") the GraphQL rows should be mostly
    superseded (versions SOAP already applied), then applied once SOAP is off."""
    from erpsync.store.engine import transaction
    from erpsync.store.inbox import InboxRepository

    with _database(obj.settings(require_secrets=False)) as engine:
        with transaction(engine) as session:
            rows = InboxRepository().stats(session)
            parked_open = len(InboxRepository().parked(session, kind="event"))
    if as_json:
        echo(json.dumps({"rows": rows, "total": sum(r["count"] for r in rows),
                               "parked_open": parked_open}, indent=2))
        return
    echo(f"{'source':<8} {'type':<14} {'status':<11} {'count':>8} {'acked':>8}")
    for r in rows:
        echo(f"{r['source']:<8} {r['type']:<14} {r['status']:<11} {r['count']:>8} {r['acked']:>8}")
    echo(f"total {sum(r['count'] for r in rows)} events; {parked_open} parked event(s) open")


@click.command("export")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="directory for orders-<stamp>.jsonl and order-lines-<stamp>.csv")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
              default=None, help="only orders changed at or after this UTC time")
@click.option("--status", "statuses", multiple=True, help="only orders in this status (repeatable)")
@click.option("--no-deleted", is_flag=True, help="leave out orders deleted in Centra")
@click.option("--dry-run", is_flag=True, help="write the files but do not move the cursor")
@click.pass_obj
def export_cmd(obj: Any, out_dir: str, since: datetime | None, statuses: tuple[str, ...], no_deleted: bool,
               dry_run: bool) -> None:
    """Write new or changed orders (each version once) as JSON Lines, their lines as CSV."""
    from erpsync.inbound.export import export_orders
    from erpsync.store import migrate

    with _database(obj.settings(require_secrets=False)) as engine:
        migrate.ensure_current(engine)
        result = export_orders(engine, Path(out_dir), now=datetime.now(UTC),
                               since=since.replace(tzinfo=UTC) if since else None, statuses=statuses,
                               include_deleted=not no_deleted, move_cursor=not dry_run)
    if not result.orders:
        echo("export: nothing new")
        return
    echo(f"export: {result.orders} order(s) -> {result.orders_file}; {result.lines} line(s) -> "
               f"{result.lines_file}" + (" (dry run: cursor not moved)" if dry_run else ""))


@click.group("parked")
def parked_group() -> None:
    """Dead letters (events, stock, prices, products, import rows, deliveries, cancellations): list, retry, drop."""


_KINDS = click.Choice(["event", "stock", "price", "product", "import", "delivery", "cancellation"])


@parked_group.command("list")
@click.option("--kind", type=_KINDS, default=None)
@click.option("--all", "include_resolved", is_flag=True, help="also resolved (retried/dropped/applied) rows")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def parked_list(obj: Any, kind: str | None, include_resolved: bool, as_json: bool) -> None:
    """List parked items with their reason."""
    from erpsync.store.engine import transaction
    from erpsync.store.inbox import InboxRepository

    with _database(obj.settings(require_secrets=False)) as engine:
        with transaction(engine) as session:
            items = InboxRepository().parked(session, kind=kind, include_resolved=include_resolved)
            rows = [{"id": p.id, "kind": p.kind, "key": p.key, "reason": p.reason, "attempts": p.attempts,
                     "created_at": p.created_at.isoformat(), "resolution": p.resolution} for p in items]
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        echo(f"#{r['id']} {r['kind']} {r['key']} (attempts {r['attempts']}"
                   + (f", {r['resolution']}" if r["resolution"] else "") + f"): {r['reason']}")
    echo(f"{len(rows)} parked item(s)")


def _select(session: Any, ids: tuple[int, ...], all_: bool, kind: str | None) -> list[Any]:
    from erpsync.store.inbox import InboxRepository

    if not ids and not all_:
        raise click.UsageError("give parked item ids, or --all (optionally with --kind)")
    items = InboxRepository().parked(session, kind=kind, ids=ids)
    missing = set(ids) - {p.id for p in items}
    if missing:
        raise click.UsageError(f"no open parked item with id {sorted(missing)}")
    return items


@parked_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="every open parked item (of --kind)")
@click.option("--kind", type=_KINDS, default=None)
@click.pass_obj
def parked_retry(obj: Any, ids: tuple[int, ...], all_: bool, kind: str | None) -> None:
    """Replay parked events and re-import parked import rows now (from the row kept with them);
    mark other kinds for retry (their job re-sends them). Exit 1 when any stays parked."""
    from erpsync.inbound.replay import replay_parked_event
    from erpsync.store.engine import transaction
    from erpsync.store.inbox import InboxRepository

    settings = obj.settings(require_secrets=False)
    repo = InboxRepository(graphql_queue_read=settings.centra.events.source != "soap")
    still = 0
    imports: list[tuple[int, str]] = []
    with _database(settings) as engine:
        with transaction(engine) as session:
            items = _select(session, ids, all_, kind)
            now = datetime.now(UTC)
            for item in items:
                if item.kind == "event":
                    res = replay_parked_event(session, repo, item, settings.store_tz, now)
                    still += res.status == "parked"
                    echo(f"#{item.id} event {item.key}: {res.status}" + (f": {res.reason}" if res.reason else ""))
                elif item.kind == "import":
                    assert item.id is not None
                    imports.append((item.id, item.key))  # re-imported below, each in its own transaction
                else:
                    repo.resolve_parked(session, item, "retried", now)
                    echo(f"#{item.id} {item.kind} {item.key}: marked for retry")
        if imports:
            from erpsync.erp.loader import StagingLoader

            loader = StagingLoader(engine)
            for park_id, key in imports:
                # an import row is re-imported now from the raw row kept with it (nothing else would)
                loaded, detail = loader.reimport_parked(park_id)
                still += loaded is not True
                status = {True: "re-imported", False: "still parked", None: "not retried"}[loaded]
                echo(f"#{park_id} import {key}: {status}" + ("" if loaded else f": {detail}"))
    if still:
        click.get_current_context().exit(1)


@parked_group.command("drop")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="every open parked item (of --kind)")
@click.option("--kind", type=_KINDS, default=None)
@click.pass_obj
def parked_drop(obj: Any, ids: tuple[int, ...], all_: bool, kind: str | None) -> None:
    """Give up on parked items (kept as resolved=dropped for the record)."""
    from erpsync.store.engine import transaction
    from erpsync.store.inbox import InboxRepository

    with _database(obj.settings(require_secrets=False)) as engine:
        with transaction(engine) as session:
            items = _select(session, ids, all_, kind)
            for item in items:
                InboxRepository().resolve_parked(session, item, "dropped", datetime.now(UTC))
                echo(f"#{item.id} {item.kind} {item.key}: dropped")


INBOUND_COMMANDS = (pull_cmd, events_group, export_cmd, parked_group)
