"""``erpsync export``: new or changed orders as files, for ERPs that import files.

Writes ``orders-<stamp>.jsonl`` (one order per line: its columns, ``version``, ``deleted``, the
``source`` queue of that version, ``soap`` or ``graphql``, and the full Centra payload as that queue
shaped it) and ``order-lines-<stamp>.csv`` (one row per order line, money as exact
decimal strings). The cursor is per row: ``centra_order.exported_version`` records the version last
written, so each version of an order is exported once. Files are written under temporary names,
fsynced, renamed, and only then is the cursor committed: a crash in between exports those orders
again next time (at least once; the ``version`` field lets the ERP skip one it already has).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from erpsync.store.engine import transaction
from erpsync.store.inbox import InboxRepository, source_of

LINE_COLUMNS = ("order_id", "order_version", "line_no", "product_id", "variant_id", "sku", "size", "size_sku",
                "order_item_id", "qty", "price", "origprice", "discount", "subtotal", "tax", "description",
                "is_bundle_virtual")
ORDER_COLUMNS = ("centra_id", "version", "deleted", "deleted_at", "order_number", "status", "store", "currency",
                 "order_total", "customer_id", "market", "pricelist", "created", "last_event_id",
                 "last_event_date", "changed_at")


@dataclass(frozen=True)
class ExportResult:
    orders: int
    lines: int
    orders_file: Path | None
    lines_file: Path | None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fsync_write(path: Path, write: Any) -> None:
    """Write ``path`` whole or not at all: a ``.part`` file renamed when complete, removed on any
    error (a full disk leaves nothing behind)."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_orders(
    engine: Engine,
    out_dir: Path,
    *,
    now: datetime,
    since: datetime | None = None,
    statuses: tuple[str, ...] = (),
    include_deleted: bool = True,
    move_cursor: bool = True,
) -> ExportResult:
    """Export every order whose current version was not exported yet (filtered by ``since`` on
    ``changed_at`` and by ``statuses``). Returns what was written; nothing is written when nothing
    is new."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    repo = InboxRepository()
    with transaction(engine) as session:
        orders, lines = repo.orders_to_export(session, since=since, statuses=statuses,
                                              include_deleted=include_deleted)
        if not orders:
            return ExportResult(0, 0, None, None)
        versions = {o.centra_id: o.version for o in orders}
        orders_file = out_dir / f"orders-{stamp}.jsonl"
        lines_file = out_dir / f"order-lines-{stamp}.csv"

        def write_orders(fh: Any) -> None:
            for o in orders:
                row = {c: _plain(getattr(o, c)) for c in ORDER_COLUMNS}
                row["source"] = source_of(o.last_event_id)  # the queue that delivered this version
                row["payload"] = o.payload
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")

        def write_lines(fh: Any) -> None:
            writer = csv.writer(fh)
            writer.writerow(LINE_COLUMNS)
            for ln in lines:
                writer.writerow([versions[ln.order_id] if c == "order_version" else _plain(getattr(ln, c))
                                 for c in LINE_COLUMNS])

        _fsync_write(orders_file, write_orders)
        try:
            _fsync_write(lines_file, write_lines)
        except BaseException:
            orders_file.unlink(missing_ok=True)  # both files or neither; the cursor does not move
            raise
        if move_cursor:
            repo.mark_exported(session, versions, now)
    return ExportResult(len(orders), len(lines), orders_file, lines_file)
