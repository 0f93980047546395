"""``erpsync run``: check the schema, build the app, serve until a signal; SIGHUP reloads."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy.exc import InterfaceError, OperationalError

from erpsync.config import Settings, load_settings, redacted_dump
from erpsync.errors import RetryLater
from erpsync.logs import configure_logging, get_logger
from erpsync.store import migrate
from erpsync.store.engine import make_engine

log = get_logger("erpsync.daemon")


class DatabaseUnavailable(RetryLater):
    """The database could not be reached at start: try again later (exit 75, systemd restarts)."""


#: settings a SIGHUP applies live; anything else changed needs a restart (clients, database, paths)
LIVE_KEYS = ("pull.interval_seconds", "push.stock_interval_seconds", "push.prices_interval_seconds",
             "push.products_interval_seconds", "daemon.quota_refresh_seconds", "daemon.housekeeping_cron",
             "logging.level")


def run_daemon(settings: Settings, config_path: Path | None, jobs: Sequence[str] | None = None) -> int:
    from erpsync.bootstrap import build_app, triggers

    engine = make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms,
                         echo=settings.database.echo)
    try:
        migrate.ensure_current(engine)  # SchemaMismatch: an operator must run `erpsync db upgrade`
    except (OperationalError, InterfaceError) as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
        log.error("daemon.database_unavailable", database=where, error_class=type(exc).__name__,
                  hint="transient: erpsync exits 75 and systemd starts it again")
        raise DatabaseUnavailable(f"cannot reach the database {where}: "
                                  f"{reason[0] if reason else type(exc).__name__}") from exc
    except BaseException:
        engine.dispose()
        raise
    current = {"settings": settings}

    def reload() -> Mapping[str, BaseTrigger]:
        new = load_settings(config_path)
        old = current["settings"]
        changed = _changed_keys(redacted_dump(old), redacted_dump(new))
        needs_restart = sorted(k for k in changed if k not in LIVE_KEYS)
        if needs_restart:
            log.warning("daemon.reload_needs_restart", keys=needs_restart,
                        hint="these settings apply at the next restart; the rest is live now")
        if new.logging.level != old.logging.level:
            configure_logging(new.logging.level, new.logging.format, stream=sys.stderr)
        current["settings"] = new
        return triggers(new)

    app = build_app(settings, jobs=jobs, engine=engine, reload=reload)
    try:
        return app.daemon.serve()
    finally:
        app.close()


def _changed_keys(a: Mapping[str, object], b: Mapping[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out.extend(_changed_keys(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
