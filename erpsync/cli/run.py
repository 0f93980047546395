"""``erpsync run``: the daemon, until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

import click

from erpsync.cli.base import Ctx


@click.command("run")
@click.option("--only", "only", multiple=True, metavar="JOB",
              help="run only this job (repeatable): pull, push_stock, push_prices, push_products, "
                   "quota_refresh, housekeeping, import_sql")
@click.option("--upgrade-schema", is_flag=True,
              help="create or migrate the database schema first (what `erpsync db upgrade` does); the "
                   "systemd unit uses it so that a permanent error exits 2/78 and is not restarted")
@click.pass_obj
def run_cmd(obj: Ctx, only: tuple[str, ...], upgrade_schema: bool) -> None:
    """Run the daemon until SIGTERM/SIGINT (systemd: Type=notify). SIGHUP reloads the config.

    On SQLite one instance per database; on PostgreSQL any number, one active (leader), the
    others standing by.
    """
    from erpsync.app import run_daemon

    settings = obj.settings()
    sys.exit(run_daemon(settings, obj.config_path, list(only) or None, upgrade_schema=upgrade_schema))
