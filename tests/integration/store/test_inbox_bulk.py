"""The inbox's bulk writes (PostgreSQL: COPY for order lines, one INSERT … FROM unnest for the
claim and id_map) store exactly what a plain INSERT stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from erpsync.store.engine import transaction
from erpsync.store.inbox import (
    EventMeta,
    InboundItem,
    InboxRepository,
    ObjectChange,
    insert_rows,
    pg_bulk_insert,
    table_of,
)
from erpsync.store.models import CentraOrder, CentraOrderLine, IdMap, InboxEvent

NOW = datetime(2026, 10, 25, 0, 30, 15, 123456, tzinfo=UTC)


def _line(order_id: str, no: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": order_id, "line_no": no, "product_id": "P1", "variant_id": None, "sku": "SKU1",
        "size": "M", "size_sku": None, "order_item_id": f"{order_id}-{no}", "qty": Decimal("2"),
        "price": Decimal("10.43100"), "origprice": None, "discount": Decimal("0.00"),
        "subtotal": Decimal("20.86200"), "tax": Decimal("25.000"), "description": "Tab\tquote\" back\\slash åäö",
        "is_bundle_virtual": False, "payload": {"id": "P1", "comment": None, "sizes": {"size": [{"id": "M"}]},
                                                "note": "line\nbreak \\N"},
    }
    row.update(over)
    return row


def _order_item(eid: str, key: str, lines: list[dict[str, Any]]) -> InboundItem:
    meta = EventMeta(eid, int(eid), "order", key, "update", NOW if eid != "8" else None)
    change = ObjectChange("order", key, columns={"order_number": key, "order_total": Decimal("1.00"),
                                                 "payload": {"id": key}}, lines=lines, shipments=[])
    return InboundItem(meta, change, None, "")


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite: naive


def _lines(engine: Engine) -> list[dict[str, Any]]:
    t = table_of(CentraOrderLine)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.order_id, t.c.line_no))]


def test_order_lines_round_trip_exactly_and_claims_return_only_new_ids(engine: Engine) -> None:
    repo = InboxRepository()
    lines = [_line("1", 1), _line("1", 2, qty=Decimal("1"), payload=None, description=None)]
    with transaction(engine) as s:
        out = repo.store_batch(s, [_order_item("7", "1", lines)], now=NOW)
    assert out.applied == 1 and out.ack_ids == ["7"]
    stored = _lines(engine)
    assert [{k: v for k, v in r.items() if k != "id"} for r in stored] == lines
    # re-delivered with new ones: only the new events are claimed and applied (ids small and huge
    # in one batch: one array of BIGINT)
    big = str(2**63 - 2)
    with transaction(engine) as s:
        out = repo.store_batch(s, [_order_item("7", "1", lines), _order_item("8", "2", [_line("2", 1)]),
                                   _order_item(big, "3", [])], now=NOW)
    assert (out.applied, out.duplicates, out.ack_ids) == (2, 1, ["7", "8", big])
    with engine.connect() as conn:
        t, m = table_of(InboxEvent), table_of(IdMap)
        stored_dates = [(eid, _utc(date), _utc(received)) for eid, date, received in conn.execute(
            select(t.c.event_id, t.c.event_date, t.c.received_at).order_by(t.c.event_id))]
        assert stored_dates == [("7", NOW, NOW), ("8", None, NOW), (big, NOW, NOW)]
        assert conn.execute(select(t.c.event_seq).where(t.c.event_id == big)).scalar_one() == 2**63 - 2
        assert sorted(conn.execute(select(m.c.entity, m.c.centra_id, m.c.erp_id)).all()) == [
            ("order", "1", None), ("order", "2", None), ("order", "3", None)]
        o = table_of(CentraOrder)
        assert conn.execute(select(o.c.payload, o.c.order_total).where(o.c.centra_id == "2")).one() == (
            {"id": "2"}, Decimal("1.00"))


def test_a_value_too_long_for_its_column_fails_as_a_plain_insert_does(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        # SQLite does not enforce VARCHAR lengths, plain INSERT or not: the bulk path stores it whole too
        with transaction(engine) as s:
            InboxRepository().store_batch(s, [_order_item("7", "1", [])], now=NOW)
            insert_rows(s, table_of(CentraOrderLine), [_line("1", 1, sku="S" * 129)])
        assert [r["sku"] for r in _lines(engine)] == ["S" * 129]
        return
    with pytest.raises(DataError), transaction(engine) as s:  # never silently cut to the column's width
        insert_rows(s, table_of(CentraOrderLine), [_line("1", 1, sku="S" * 129)])
    rows = [{"entity": "order", "centra_id": "1", "erp_id": None, "updated_at": NOW},
            {"entity": "e" * 41, "centra_id": "2", "erp_id": None, "updated_at": NOW}]
    with pytest.raises(DataError), transaction(engine) as s:
        pg_bulk_insert(s, table_of(IdMap), rows, key=["entity", "centra_id"], update_cols=[])


def test_copy_respects_the_foreign_key_like_a_plain_insert(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # the same check the bulk path has to keep
            with pytest.raises(IntegrityError):
                conn.execute(insert(table_of(CentraOrderLine)), [_line("nope", 1)])
        return
    with pytest.raises(IntegrityError), transaction(engine) as s:
        insert_rows(s, table_of(CentraOrderLine), [_line("nope", 1)])


def test_lines_without_a_defaulted_column_get_its_default_as_a_plain_insert_does(engine: Engine) -> None:
    """A source that cannot say a column with a model default (GraphQL lines carry no bundle flag)
    stores the default, on PostgreSQL's COPY path too (COPY applies only server defaults)."""
    repo = InboxRepository()
    line = {k: v for k, v in _line("1", 1).items() if k != "is_bundle_virtual"}
    with transaction(engine) as s:
        out = repo.store_batch(s, [_order_item("7", "1", [line])], now=NOW)
    assert out.applied == 1
    assert [r["is_bundle_virtual"] for r in _lines(engine)] == [False]
