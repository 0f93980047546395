"""The ``erpsync`` command group: every command module's commands registered on one group, and
``main()``, the console script's entry point."""

from __future__ import annotations

import click

from erpsync.cli import check, config, db, demo, erp, inbound, push, quota, run, sim, status
from erpsync.cli.base import Ctx, ErpsyncGroup, report
from erpsync.errors import ConfigError, ErpsyncError


@click.group(cls=ErpsyncGroup)
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="config file (default: $ERPSYNC_CONFIG, else /etc/erpsync/erpsync.toml)")
@click.version_option(package_name="erpsync")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """erpsync: keeps an ERP and a Centra store in sync."""
    ctx.obj = Ctx(config)


for _command in (config.config_group, db.db_group, run.run_cmd, status.status_cmd, demo.demo_cmd, sim.sim_cmd,
                 *erp.COMMANDS, push.plan_cmd, push.resync_cmd, quota.quota_cmd, push.push_cmd,
                 *inbound.INBOUND_COMMANDS, check.check_cmd):
    cli.add_command(_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except (ConfigError, ErpsyncError, KeyboardInterrupt) as exc:  # raised outside a command
        report(exc)
