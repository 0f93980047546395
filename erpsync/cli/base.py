"""What every command shares: the context object (config path, settings loaded once), the exit
codes, and the one place that turns an error into a line on stderr and an exit status."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any, NoReturn

import click

from erpsync.config import Settings, load_settings, resolve_config_path
from erpsync.errors import ConfigError, ErpsyncError, JobFailed

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
                config_exit(exc)
            from erpsync.logs import configure_logging

            s = self._settings
            configure_logging(
                s.logging.level, s.logging.format, stream=sys.stderr,
                secrets=[v.get_secret_value() for v in (s.centra.soap.password, s.centra.graphql.token,
                                                         s.centra.webhook.secret) if v],
            )
        return self._settings


def config_exit(exc: ConfigError) -> NoReturn:
    click.echo(f"erpsync: invalid configuration ({len(exc.problems)} problem(s)):", err=True)
    for p in exc.problems:
        click.echo(f"  - {p}", err=True)
    sys.exit(EXIT_CONFIG)


def fail(exc: ErpsyncError) -> NoReturn:
    click.echo(f"erpsync: {type(exc).__name__}: {exc}", err=True)
    sys.exit(EXIT_FATAL if isinstance(exc, JobFailed) else EXIT_RETRY)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_object(Ctx).config_arg = value  # type: ignore[union-attr]


class ErpsyncGroup(click.Group):
    """Every command, also inside a subgroup, accepts ``--config`` after its name
    (``erpsync config check --config F``)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _accept_late_config(cmd)
        super().add_command(cmd, name)


def _accept_late_config(cmd: click.Command) -> None:
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _accept_late_config(sub)
        return
    if not any(p.name == "config_late" for p in cmd.params):
        cmd.params.append(click.Option(
            ["--config", "config_late"], type=click.Path(dir_okay=False), expose_value=False,
            callback=_set_config, help="config file (same as erpsync --config)"))


def open_engine(obj: Any) -> Any:
    from erpsync.store.engine import make_engine

    s = obj.settings(require_secrets=False)
    return make_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms, echo=s.database.echo)


def open_read_engine(obj: Any) -> Any:
    """An engine for read-only commands. On SQLite it does not use ``make_engine``'s ``BEGIN
    IMMEDIATE``: a plan over a million rows must not hold the write lock the daemon needs (WAL
    readers need no lock; each streaming SELECT reads one consistent snapshot)."""
    from erpsync.store.engine import make_read_engine

    s = obj.settings(require_secrets=False)
    return make_read_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
