"""The command line. The only module that parses argv and calls sys.exit."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any, NoReturn

import click

from erpsync.config import Settings, load_settings, redacted_dump, resolve_config_path
from erpsync.erp.commands import COMMANDS as ERP_COMMANDS
from erpsync.errors import ConfigError, ErpsyncError, JobFailed
from erpsync.graphql.command import quota_cmd
from erpsync.sync.inbound_commands import INBOUND_COMMANDS
from erpsync.sync.push_command import push_cmd

EXIT_CONFIG = 78  # EX_CONFIG: systemd's Restart=on-failure will not help, an operator must act
EXIT_FATAL = 2
EXIT_RETRY = 75  # EX_TEMPFAIL


class Ctx:
    def __init__(self, config: str | None) -> None:
        self.config_arg = config
        self._settings: Settings | None = None

    @property
    def config_path(self) -> Path:
        return resolve_config_path(self.config_arg, os.environ)

    def settings(self, *, require_secrets: bool | Collection[str] = True) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path, require_secrets=require_secrets)
            except ConfigError as exc:
                _config_exit(exc)
            from erpsync.logs import configure_logging

            s = self._settings
            configure_logging(
                s.logging.level, s.logging.format, stream=sys.stderr,
                secrets=[v.get_secret_value() for v in (s.centra.soap.password, s.centra.graphql.token) if v],
            )
        return self._settings


def _config_exit(exc: ConfigError) -> NoReturn:
    click.echo(f"erpsync: invalid configuration ({len(exc.problems)} problem(s)):", err=True)
    for p in exc.problems:
        click.echo(f"  - {p}", err=True)
    sys.exit(EXIT_CONFIG)


def _fail(exc: ErpsyncError) -> NoReturn:
    click.echo(f"erpsync: {type(exc).__name__}: {exc}", err=True)
    sys.exit(EXIT_FATAL if isinstance(exc, JobFailed) else EXIT_RETRY)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_object(Ctx).config_arg = value  # type: ignore[union-attr]


class ErpsyncGroup(click.Group):
    """Every command also accepts ``--config`` after its name (``erpsync config check --config F``)."""

    group_class = type  # subgroups are ErpsyncGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "config_late" for p in cmd.params):
            cmd.params.append(click.Option(
                ["--config", "config_late"], type=click.Path(dir_okay=False), expose_value=False,
                callback=_set_config, help="config file (same as erpsync --config)"))
        super().add_command(cmd, name)


@click.group(cls=ErpsyncGroup)
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="config file (default: $ERPSYNC_CONFIG, else /etc/erpsync/erpsync.toml)")
@click.version_option(package_name="erpsync")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """erpsync: keeps an ERP and a Centra store in sync."""
    ctx.obj = Ctx(config)


# ---------------------------------------------------------------- config


@cli.group("config")
def config_group() -> None:
    """Validate or show the configuration."""


@config_group.command("check")
@click.option("--require-secrets", is_flag=True,
              help="also fail when the SOAP password or GraphQL token is not available")
@click.pass_obj
def config_check(obj: Ctx, require_secrets: bool) -> None:
    """Validate the config file and environment overrides; exit non-zero listing every problem.

    Secrets are looked up too; their absence is a warning unless --require-secrets (the commands
    that talk to Centra always require them).
    """
    settings = obj.settings(require_secrets=require_secrets)
    for problem in settings.missing_secrets():
        click.echo(f"warning: {problem}", err=True)
    click.echo(f"configuration OK: {obj.config_path}")


@config_group.command("show")
@click.pass_obj
def config_show(obj: Ctx) -> None:
    """Print the effective configuration (file + environment + defaults), secrets redacted."""
    _print_json(redacted_dump(obj.settings(require_secrets=False)))


# ---------------------------------------------------------------- database


@cli.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: Ctx, revision: str) -> None:
    """Create or migrate the schema to the current version (a no-op when already current)."""
    from erpsync.store import migrate
    from erpsync.store.engine import make_engine

    s = obj.settings(require_secrets=False)
    engine = make_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    click.echo(f"schema at {after}" + (" (already current)" if before == after else f" (was {before or 'empty'})"))


@db_group.command("status")
@click.pass_obj
def db_status(obj: Ctx) -> None:
    """Show the schema revision of the database and the one this erpsync needs."""
    from erpsync.store import migrate
    from erpsync.store.engine import make_engine

    s = obj.settings(require_secrets=False)
    engine = make_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    click.echo(f"database: {current or 'empty'}; required: {head}; {'current' if current == head else 'OUT OF DATE'}")
    if current != head:
        sys.exit(EXIT_FATAL)


# ---------------------------------------------------------------- daemon


@cli.command("run")
@click.option("--only", "only", multiple=True, metavar="JOB",
              help="run only this job (repeatable): pull, push_stock, push_prices, push_products, "
                   "quota_refresh, housekeeping, import_sql")
@click.pass_obj
def run_cmd(obj: Ctx, only: tuple[str, ...]) -> None:
    """Run the daemon until SIGTERM/SIGINT (systemd: Type=notify). SIGHUP reloads the config.

    On SQLite one instance per database; on PostgreSQL any number, one active (leader), the
    others standing by.
    """
    from erpsync.daemon.runner import run_daemon

    settings = obj.settings()
    sys.exit(run_daemon(settings, obj.config_path, list(only) or None))


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def status_cmd(obj: Ctx, as_json: bool) -> None:
    """Per job last run, outcome and next run; leader/standbys; backlog, parked items, quota.

    Exit status: 0 a live daemon with every job enabled, 1 a job is disabled (fatal error),
    3 no live daemon, 75 the database cannot be read.
    """
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from erpsync.bootstrap import default_jobs
    from erpsync.daemon.runner import DatabaseUnavailable
    from erpsync.daemon.status import collect_status, render_status
    from erpsync.store.engine import make_read_engine

    s = obj.settings(require_secrets=False)
    engine = make_read_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    try:
        st = collect_status(engine, datetime.now(UTC), default_jobs(s))
    except SQLAlchemyError as exc:  # down, or not created yet: one line, exit 75
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnavailable(f"cannot read the database {engine.url.render_as_string(hide_password=True)}: "
                                  f"{reason[0] if reason else type(exc).__name__}") from exc
    finally:
        engine.dispose()
    if as_json:
        _print_json(st)
    else:
        click.echo(render_status(st))
    if not st["daemon"]["running"]:
        sys.exit(3)
    if any(j.get("enabled") is False for j in st["jobs"].values()):
        sys.exit(1)


@cli.command("demo")
@click.option("--timeout", "timeout_s", type=float, default=110.0, show_default=True,
              help="give up (exit 1) when the sample is not fully synced after this many seconds")
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), default=None,
              help="keep the demo database in this directory instead of a temporary one")
@click.option("--products", type=click.IntRange(0, 20_000), default=0, show_default=True,
              help="sync a generated catalogue of this many products instead of the bundled sample (0)")
def demo_cmd(timeout_s: float, keep_dir: str | None, products: int) -> None:
    """Sync the bundled sample ERP with an in-process Centra simulator; no config needed."""
    from erpsync.daemon.demo import run_demo

    sys.exit(run_demo(timeout_s=timeout_s, keep_dir=Path(keep_dir) if keep_dir else None, products=products))


# ---------------------------------------------------------------- simulator


@cli.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port (0 = any free port)")
@click.option("--soap-path", default="/ams/system/service/module/soap/api", show_default=True,
              help="path of the SOAP endpoint (the WSDL is this path + ?wsdl)")
@click.option("--soap-user", default="erp-user", show_default=True, help="SOAP login username")
@click.option("--soap-password", default="s3cret", show_default=True, help="SOAP login password")
@click.option("--token", default="sim-token", show_default=True, help="GraphQL Bearer token with every permission")
@click.option("--token-permissions", "token_perms", multiple=True, metavar="TOKEN=PERM[,PERM…]",
              help="an extra token with only these permissions, e.g. ro=Product:read (repeatable)")
@click.option("--tier", type=click.Choice(["growth", "enhanced", "high_volume", "enterprise", "custom"]),
              default="growth", show_default=True, help="quota tier (PROTOCOL.md §2.1)")
@click.option("--limit", "limits", multiple=True, metavar="TYPE:INTERVAL=N",
              help="override one bucket, e.g. MUTATION_COUNT:ONE_HOUR=100 (repeatable; all six for --tier custom)")
@click.option("--seed", type=int, default=1, show_default=True, help="seed of the generated data and faults")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="simulated seconds per real second (e.g. 60: an hour window passes in a minute)")
@click.option("--time-epoch", type=float, default=None,
              help="Unix time at which scaled time equals real time (default: start time)")
@click.option("--retry-after-format", type=click.Choice(["seconds", "unix", "http-date"]), default="seconds",
              show_default=True, help="format of Retry-After on 429")
@click.option("--generate-rate", type=float, default=0.0, show_default=True,
              help="generated SOAP events per second in the background (0 = off)")
@click.option("--initial-events", type=int, default=0, show_default=True, help="events generated at start")
@click.option("--other-integration-share", type=float, default=0.0, show_default=True,
              help="share (0–1) of every quota bucket spent by a simulated other integration")
@click.option("--batch-failure", type=click.Choice(["reject", "skip"]), default="reject", show_default=True,
              help="one bad item in a batch mutation: reject the whole batch, or skip it with a warning")
@click.option("--state-file", type=click.Path(dir_okay=False), default=None,
              help="load state from this JSON file at start (if it exists) and save it at stop")
@click.option("--autosave-seconds", type=float, default=5.0, show_default=True,
              help="with --state-file: also save this often (a crash loses at most this much)")
@click.option("--store-timezone", default="Europe/Stockholm", show_default=True,
              help="the Centra store's time zone: SOAP event dates without an offset are in it")
@click.option("--token-ttl", "token_ttl", type=float, default=None,
              help="tokens expire (403) this many simulated seconds after start (default: never)")
@click.option("--soap-action-check/--no-soap-action-check", default=True, show_default=True,
              help="a missing or wrong SOAPAction header is a Client fault")
@click.option("--unknown-ack", type=click.Choice(["ignore", "fault"]), default="ignore", show_default=True,
              help="[open] events_Done with an unknown or already acked id: ignore it, or answer a fault")
@click.option("--update-response", type=click.Choice(["result", "ok"]), default="result", show_default=True,
              help="[open] answer of *_Update: result{success,errors,notices}, or <…UpdateResponse>OK")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING"]), default="INFO", show_default=True)
def sim_cmd(host: str, port: int, soap_path: str, soap_user: str, soap_password: str, token: str,
            token_perms: tuple[str, ...], tier: str, limits: tuple[str, ...], seed: int, time_scale: float,
            time_epoch: float | None, retry_after_format: str, generate_rate: float, initial_events: int,
            other_integration_share: float, batch_failure: str, state_file: str | None,
            autosave_seconds: float, store_timezone: str, token_ttl: float | None, soap_action_check: bool,
            unknown_ack: str, update_response: str, log_level: str) -> None:
    """Run the Centra simulator (SOAP event queue + GraphQL Integration API with quota and faults).

    Quick start, no flags: SOAP at http://127.0.0.1:8765/ams/system/service/module/soap/api (login
    erp-user / s3cret), GraphQL at http://127.0.0.1:8765/graphql (Bearer sim-token), state at
    GET /_sim/state, fault injection at POST /_sim/faults. Stops cleanly on SIGINT/SIGTERM.
    """
    from erpsync.logs import configure_logging
    from erpsync.sim.runner import serve
    from erpsync.sim.server import SimOptions

    configure_logging(log_level, "auto", stream=sys.stderr)
    try:
        parsed_limits = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in limits)}
        tokens = {t.strip(): frozenset(p.strip() for p in perms.split(",") if p.strip())
                  for t, perms in (item.split("=", 1) for item in token_perms)}
        options = SimOptions(
            host=host, port=port, soap_path=soap_path, soap_user=soap_user, soap_password=soap_password,
            token=token, tokens=tokens, tier=tier, limits=parsed_limits or None, seed=seed, time_scale=time_scale,
            time_epoch=time_epoch, retry_after_format=retry_after_format, generate_rate=generate_rate,
            initial_events=initial_events, other_integration_share=other_integration_share,
            batch_failure=batch_failure, state_file=state_file, autosave_seconds=autosave_seconds,
            store_timezone=store_timezone, token_ttl_seconds=token_ttl, soap_action_check=soap_action_check,
            unknown_ack=unknown_ack, update_response=update_response)
        options.gql_options()  # validate tier/limits/share now, with a readable message
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    serve(options, click.echo)


# ---------------------------------------------------------------- ERP import, plan, resync, sample

for _erp_command in ERP_COMMANDS:  # erpsync/erp/commands.py
    cli.add_command(_erp_command)


# ---------------------------------------------------------------- quota (erpsync/graphql/command.py)

cli.add_command(quota_cmd)


# ---------------------------------------------------------------- push (erpsync/sync/push_command.py)

cli.add_command(push_cmd)


# ---------------------------------------------------------------- pull, events, export, parked (inbound_commands)

for _inbound_command in INBOUND_COMMANDS:
    cli.add_command(_inbound_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        _config_exit(exc)
    except ErpsyncError as exc:
        _fail(exc)
