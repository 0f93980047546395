"""`export_orders`: each order version once, filters, dry run, decimals as strings (SQLite + PostgreSQL)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from erpsync.clock import FakeClock
from erpsync.inbound.export import export_orders
from erpsync.inbound.pull import PullJob
from erpsync.store.models import CentraOrder
from tests.integration.inbound.fakes import FakeQueue, order_event

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _pull(engine: Engine, queue: FakeQueue, clock: FakeClock) -> None:
    assert PullJob(engine, queue, store_tz=ZoneInfo("Europe/Stockholm"), clock=clock).run().outcome == "ok"


def _ids(path: Path | None) -> list[str]:
    assert path is not None
    return [json.loads(line)["centra_id"] for line in path.read_text().splitlines()]


def test_each_version_exported_once_with_filters_and_dry_run(engine: Engine, tmp_path: Path) -> None:
    clock = FakeClock(NOW.timestamp())
    queue = FakeQueue([order_event(1, "O1", "10.50", lines=2), order_event(2, "O2", "20.00", status="confirmed"),
                       order_event(3, "O3", "30.00", mission="delete")])
    _pull(engine, queue, clock)

    dry = export_orders(engine, tmp_path / "dry", now=NOW, move_cursor=False)
    assert dry.orders == 3
    first = export_orders(engine, tmp_path, now=NOW, statuses=("pending",))
    assert _ids(first.orders_file) == ["O1"] and first.lines == 2
    row = json.loads(first.orders_file.read_text())  # type: ignore[union-attr]
    assert row["order_total"] == "10.50" or row["order_total"].startswith("10.50")
    assert row["version"] == 1 and row["payload"]["ordernumber"] == "O1"
    with first.lines_file.open(newline="") as fh:  # type: ignore[union-attr]
        lines = list(csv.DictReader(fh))
    got = [(ln["order_id"], ln["order_version"], ln["line_no"]) for ln in lines]
    assert got == [("O1", "1", "1"), ("O1", "1", "2")]
    assert not list(tmp_path.glob("*.part"))

    rest = export_orders(engine, tmp_path, now=NOW + timedelta(seconds=1), include_deleted=False)
    assert _ids(rest.orders_file) == ["O2"]  # O1 already exported; O3 deleted and left out
    assert export_orders(engine, tmp_path, now=NOW + timedelta(seconds=2), include_deleted=False).orders == 0

    clock.advance(3600)
    queue.pending = [order_event(4, "O1", "11.00")]
    _pull(engine, queue, clock)
    later = export_orders(engine, tmp_path, now=NOW + timedelta(hours=2),
                          since=NOW + timedelta(minutes=30))
    assert _ids(later.orders_file) == ["O1"]  # the new version; O3 changed before --since
    with Session(engine) as s:
        o1, o3 = s.get(CentraOrder, "O1"), s.get(CentraOrder, "O3")
        assert o1 is not None and o1.exported_version == 2 == o1.version
        assert o3 is not None and o3.exported_version is None


def test_exported_times_carry_their_utc_offset_on_every_database(engine: Engine, tmp_path: Path) -> None:
    # "times ISO-8601 UTC": a time without an offset would be read as the ERP's local time
    clock = FakeClock(NOW.timestamp())
    event = order_event(1, "O1", "10.50")
    event = type(event)(**{**event.__dict__, "data": {**(event.data or {}), "created": "2026-11-20 09:13:58"}})
    _pull(engine, FakeQueue([event, order_event(2, "O2", "1.00", mission="delete")]), clock)
    result = export_orders(engine, tmp_path, now=NOW)
    rows = {r["centra_id"]: r for r in map(json.loads, result.orders_file.read_text().splitlines())}  # type: ignore[union-attr]
    assert rows["O1"]["created"] == "2026-11-20T08:13:58+00:00"
    for row in rows.values():
        for key in ("created", "deleted_at", "last_event_date", "changed_at"):
            value = row[key]
            if value is not None:
                assert datetime.fromisoformat(value).utcoffset() == timedelta(0), (key, value)
