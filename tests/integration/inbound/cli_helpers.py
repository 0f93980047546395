"""Helpers for the pull CLI tests: a config for the sim, a schema, the CLI as a subprocess, and a
comparable dump of everything the pull writes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlmodel import Session, SQLModel

import erpsync.store.tables  # noqa: F401
from erpsync.sim.server import SimServer
from erpsync.store import migrate
from erpsync.store.engine import make_engine
from erpsync.store.inbox import table_of
from erpsync.store.models import (
    CentraAccount,
    CentraCustomer,
    CentraGeneric,
    CentraInvoice,
    CentraOrder,
    CentraOrderLine,
    CentraOrderShipment,
    IdMap,
    InboxEvent,
    ParkedItem,
)

REPO = Path(__file__).resolve().parents[3]


def write_config(tmp_path: Path, sim: SimServer, db_url: str, *, read_timeout: float = 5.0,
                 interval: float = 60.0) -> Path:
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra]
store_timezone = "Europe/Stockholm"

[centra.soap]
url = "{sim.soap_url}"
username = "{sim.soap_user}"
connect_timeout = 2.0
read_timeout = {read_timeout}
operation_timeout = 30.0

[centra.graphql]
url = "{sim.graphql_url}"

[database]
url = "{db_url}"

[pull]
interval_seconds = {interval}

[logging]
level = "INFO"
format = "json"
""", encoding="utf-8")
    return cfg


def create_schema(db_url: str) -> None:
    """create_all from the models + stamp the head revision (what `erpsync db upgrade` leaves)."""
    engine = make_engine(db_url)
    try:
        SQLModel.metadata.create_all(engine)
        cfg = migrate._config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.stamp(cfg, "head")
    finally:
        engine.dispose()


def cli_env(password: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    env.update({"ERPSYNC_CENTRA_SOAP_PASSWORD": password, "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "sim-token",
                "PYTHONPATH": str(REPO)})
    env.update(extra_env or {})
    return env


def run_cli(cfg: Path, *args: str, password: str, extra_env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = cli_env(password, extra_env)
    return subprocess.run([sys.executable, "-m", "erpsync", "--config", str(cfg), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


_VOLATILE = {"id", "received_at", "processed_at", "acked_at", "changed_at", "updated_at", "created_at",
             "exported_at", "deleted_at"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the pull writes, without run-dependent timestamps and surrogate ids, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    models = (InboxEvent, IdMap, CentraOrder, CentraOrderLine, CentraOrderShipment, CentraCustomer,
              CentraAccount, CentraInvoice, CentraGeneric, ParkedItem)
    with Session(engine) as s:
        for model in models:
            t = table_of(model)
            cols = [c for c in t.c if c.name not in _VOLATILE]
            rows = [tuple(repr(_plain(v)) for v in row) for row in s.connection().execute(select(*cols))]
            out[t.name] = sorted(rows)
    assert inspect(engine).has_table("centra_order")
    return out
