"""``erpsync status``: what the database says about the daemon, its jobs and the sync state."""

from __future__ import annotations

import sys

import click

from erpsync.cli.base import Ctx, echo, print_json


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def status_cmd(obj: Ctx, as_json: bool) -> None:
    """Per job last run, outcome and next run; leader/standbys; backlog, parked items, quota.

    Exit status: 0 a live daemon with every job enabled, 1 a job is disabled (fatal error),
    3 no live daemon, 75 the database cannot be read.
    """
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from erpsync.app import default_jobs
    from erpsync.daemon.status import collect_status, render_status
    from erpsync.errors import DatabaseUnavailable
    from erpsync.store.engine import make_read_engine

    s = obj.settings(require_secrets=False)
    engine = make_read_engine(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)
    try:
        st = collect_status(engine, datetime.now(UTC), default_jobs(s), quota_share=s.quota.share)
    except SQLAlchemyError as exc:  # down, or not created yet: one line, exit 75
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnavailable(f"cannot read the database {engine.url.render_as_string(hide_password=True)}: "
                                  f"{reason[0] if reason else type(exc).__name__}") from exc
    finally:
        engine.dispose()
    if as_json:
        print_json(st)
    else:
        echo(render_status(st))
    if not st["daemon"]["running"]:
        sys.exit(3)
    if any(j.get("enabled") is False for j in st["jobs"].values()):
        sys.exit(1)
