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
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BUG = 70  # EX_SOFTWARE: an error erpsync did not expect (the traceback is logged at DEBUG)


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
            # every secret value (credentials, URL passwords) is unprintable from here on, on every channel
            configure_logging(s.logging.level, s.logging.format, stream=sys.stderr, secrets=s.secret_values())
        return self._settings


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` with every secret scrubbed (``erpsync.logs.scrub``): the CLI's one way out."""
    from erpsync.logs import scrub

    click.echo(scrub(text), err=err, nl=nl)


def config_exit(exc: ConfigError) -> NoReturn:
    echo(f"erpsync: invalid configuration ({len(exc.problems)} problem(s)):", err=True)
    for p in exc.problems:
        echo(f"  - {p}", err=True)
    sys.exit(EXIT_CONFIG)


def fail(exc: ErpsyncError) -> NoReturn:
    echo(f"erpsync: {type(exc).__name__}: {exc}", err=True)
    sys.exit(EXIT_FATAL if isinstance(exc, JobFailed) else EXIT_RETRY)


def print_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str))


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_object(Ctx).config_arg = value  # type: ignore[union-attr]


def translate(exc: BaseException, settings: Settings | None = None) -> tuple[int, list[str]]:
    """The one error translator of the CLI: any exception a command lets out becomes an exit code
    (75 transient, 78 config, 2 fatal, 130 interrupted) and the line(s) that say why, secrets
    scrubbed. ``settings`` (when loaded) names the database in database errors."""
    from erpsync.errors import describe_os_error

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, ["erpsync: interrupted"]
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG, [f"erpsync: invalid configuration ({len(exc.problems)} problem(s)):",
                             *(f"  - {p}" for p in exc.problems)]
    if isinstance(exc, ErpsyncError):
        return (EXIT_FATAL if isinstance(exc, JobFailed) else EXIT_RETRY), [f"erpsync: {type(exc).__name__}: {exc}"]
    db = _database_error(exc, settings)
    if db is not None:
        return db
    if isinstance(exc, OSError):
        return EXIT_RETRY, [f"erpsync: {describe_os_error(exc)}"]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return EXIT_BUG, [f"erpsync: unexpected error: {type(exc).__name__}: {first}"
                      " (a bug: please report it with the DEBUG log)"]


def _database_error(exc: BaseException, settings: Settings | None) -> tuple[int, list[str]] | None:
    """SQLAlchemy's errors by what they mean for the operator: down (75), schema missing (2)."""
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if not isinstance(exc, DBAPIError):
        return None
    where = ""
    if settings is not None:
        from sqlalchemy.engine import make_url

        try:
            where = " " + make_url(settings.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - a URL that does not parse is named by `config check`
            where = ""
    orig = exc.orig if exc.orig is not None else exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if _is_missing_table(exc):
        return EXIT_FATAL, [f"erpsync: SchemaMismatch: the database{where} has no erpsync schema (or an old one): "
                            f"{first}; run `erpsync db upgrade`"]
    if isinstance(exc, OperationalError | InterfaceError) or not isinstance(exc, ProgrammingError):
        return EXIT_RETRY, [f"erpsync: DatabaseUnavailable: cannot use the database{where}: {first}"]
    return EXIT_FATAL, [f"erpsync: {type(orig).__name__}: {first}"]


def _is_missing_table(exc: BaseException) -> bool:
    text_ = str(getattr(exc, "orig", None) or exc).lower()
    return ("no such table" in text_ or "undefinedtable" in type(getattr(exc, "orig", None)).__name__.lower()
            or ("relation" in text_ and "does not exist" in text_))


def report(exc: BaseException, settings: Settings | None = None) -> NoReturn:
    """Print ``exc`` as ``translate`` says and exit with its code; the traceback only at DEBUG."""
    code, lines = translate(exc, settings)
    if code == EXIT_BUG:
        import logging

        logging.getLogger("erpsync.cli").debug("unexpected error", exc_info=exc)
    for line in lines:
        echo(line, err=True)
    sys.exit(code)


class ErpsyncGroup(click.Group):
    """Every command, also inside a subgroup, accepts ``--config`` after its name
    (``erpsync config check --config F``). Whatever a command lets out goes through ``translate``:
    one line and a meaningful exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
            obj = ctx.find_object(Ctx)
            report(exc, obj._settings if obj is not None else None)

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
