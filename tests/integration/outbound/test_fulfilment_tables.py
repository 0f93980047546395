"""The ERP's fulfilment tables on SQLite and PostgreSQL: `erpsync import` files (bad rows rejected with
the reason naming the field, the rest loaded), an import never touching erpsync's status columns, the
ERP inserting only its own columns, and the delivery metrics."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, insert, select, update
from sqlmodel import Session, col

from erpsync.daemon.metrics import DaemonMetrics, StoreCollector
from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.outbound.fulfilment import fulfilment_plan
from erpsync.store.fulfilment import ErpDelivery, ErpDeliveryLine, ErpLineCancellation
from erpsync.store.models import ParkedItem

DELIVERIES = """delivery_id,order_number,carrier,service,tracking_number,packages,shipped_at,capture,paid_outside
D-1,1201,PostNord,MyPack,PN1,1,2026-12-01T10:00:00+01:00,true,false
D-2,1202,DHL,,DHL2,2,,false,yes
D-3,1203,DHL,,DHL3,1,2026-12-01 10:00:00,false,false
D-4,,DHL,,DHL4,1,,false,false
D-5,1205,DHL,,DHL5,1,,true,true
"""
LINES = """delivery_id,line_no,order_line_id,sku,ean,quantity
D-1,1,5501,,,2
D-1,2,,TS01BLKS,,1
D-2,1,,,7300000000011,1
D-2,2,,,,1
D-2,3,5509,,,0
"""
CANCELLATIONS = """cancellation_id,order_number,order_line_id,sku,quantity,stock_policy,warehouse
C-1,1201,5503,,1,release,
C-2,1201,5504,,1,warehouse,
C-3,1201,,SK04,2,REMOVE,
"""


def test_import_files_rejects_bad_rows_with_the_field_and_loads_the_rest(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "deliveries.csv").write_text(DELIVERIES)
    (tmp_path / "delivery_lines.csv").write_text(LINES)
    (tmp_path / "cancellations.csv").write_text(CANCELLATIONS)
    report = import_files(StagingLoader(engine), [tmp_path])
    by_entity = {e.entity: e for e in report.entities}
    assert [e.entity for e in report.entities] == ["delivery_line", "delivery", "cancellation"]
    assert (by_entity["delivery"].loaded, by_entity["delivery"].rejected) == (2, 3)
    problems = " | ".join(str(p) for p in by_entity["delivery"].problems)
    assert "no UTC offset" in problems and "missing order_number" in problems and "paid_outside" in problems
    assert (by_entity["delivery_line"].loaded, by_entity["delivery_line"].rejected) == (3, 2)
    line_problems = " | ".join(str(p) for p in by_entity["delivery_line"].problems)
    assert "missing order_line_id, sku or ean" in line_problems and "quantity: 0" in line_problems
    assert (by_entity["cancellation"].loaded, by_entity["cancellation"].rejected) == (2, 1)
    assert "missing warehouse" in str(by_entity["cancellation"].problems[0])
    with Session(engine) as s:
        d1 = s.get(ErpDelivery, "D-1")
        assert d1 is not None and d1.capture and d1.state == "new" and d1.shipped_at is not None
        assert d1.shipped_at.hour == 9  # 10:00+01:00 stored as UTC
        c3 = s.get(ErpLineCancellation, "C-3")
        assert c3 is not None and c3.stock_policy == "remove"
        parked = s.exec(select(ParkedItem.key).where(col(ParkedItem.kind) == "import")).all()  # type: ignore[call-overload]
        assert len(parked) == 6

    # erpsync's status columns survive a re-import of the same rows
    with engine.begin() as conn:
        conn.execute(update(ErpDelivery).where(col(ErpDelivery.delivery_id) == "D-1").values(
            state="shipped", shipment_id=7, is_shipped=True))
    import_files(StagingLoader(engine), [tmp_path / "deliveries.csv"])
    with Session(engine) as s:
        d1 = s.get(ErpDelivery, "D-1")
        assert d1 is not None and (d1.state, d1.shipment_id, d1.is_shipped) == ("shipped", 7, True)


def test_the_erp_inserts_its_own_columns_and_metrics_count_deliveries_by_state(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(ErpDeliveryLine).values(delivery_id="X", line_no=1, sku="S", quantity=1))
        conn.execute(insert(ErpDelivery).values(delivery_id="X", order_number="1"))
        conn.execute(insert(ErpDelivery).values(delivery_id="Y", order_number="2"))
        conn.execute(update(ErpDelivery).where(col(ErpDelivery.delivery_id) == "Y").values(state="parked"))
    with Session(engine) as s:
        x = s.get(ErpDelivery, "X")
        assert x is not None and (x.state, x.capture, x.paid_outside, x.attempts, x.is_shipped) == \
            ("new", False, False, 0, False)
    # plan: X still needs create + externalId + complete (2 when externalId goes with the create)
    assert fulfilment_plan(engine, False) == {"deliveries": 1, "mutations": 3, "by_state": {"new": 1},
                                              "cancellations": 0}
    assert fulfilment_plan(engine, True)["mutations"] == 2
    registry = CollectorRegistry()
    registry.register(StoreCollector(engine))
    metrics = DaemonMetrics(registry)
    metrics.record_run("push_fulfilment", "ok", {"capture_failed": 2}, 1.0, 0.0, None)
    text = generate_latest(registry).decode()
    assert 'erpsync_deliveries{state="parked"} 1.0' in text
    assert 'erpsync_deliveries{state="new"} 1.0' in text
    assert 'erpsync_deliveries{state="shipped"} 0.0' in text
    assert "erpsync_fulfilment_capture_failures_total 2.0" in text
