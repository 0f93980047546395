"""``[push.warehouses]`` / ``[push.pricelists]`` checked against Centra before the first push: each
unknown entry is logged once (``push.mapping_unknown``), shown by ``erpsync status`` and exported as
``erpsync_unknown_mapping``; its items are parked at once with the mapping key in the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from structlog.testing import capture_logs

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.daemon.metrics import StoreCollector
from erpsync.daemon.status import collect_status, render_status
from erpsync.outbound.mappings import check_mappings, recorded
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.store.models import OutboundItem, ParkedItem
from tests.unit.outbound.helpers import InProcessCentra, load_catalogue, sim_app

SMALL = Catalogue(products=4, variants=2, sizes=2)


@pytest.fixture
def port() -> InProcessCentra:
    return InProcessCentra(sim_app())


def _wh_id(port: InProcessCentra, external_id: str) -> int:
    return next(w.id for w in port.app.state.warehouses.values() if w.external_id == external_id)


def test_check_reports_exactly_the_entries_centra_lacks_with_one_query_per_form(port: InProcessCentra) -> None:
    push = PushSettings(warehouses={"WH-EU": "WH-NOPE", "WH-US": f"id:{_wh_id(port, 'WH-US')}", "WH-X": "id:99999",
                                    "WH-MAIN": "WH-MAIN"},
                        pricelists={"PL-SEK": "PL-SEK", "PL-EUR": "retail-eur-typo"})
    report = check_mappings(lambda d, v: port.query(d, v, lane="catalogue"), push)
    assert not report.ok
    assert {(m.kind, m.code) for m in report.unknown} == {("warehouse", "WH-EU"), ("warehouse", "WH-X"),
                                                          ("pricelist", "PL-EUR")}
    assert report.lines() == [
        "push.warehouses.WH-EU: warehouse externalId:WH-NOPE not found in Centra "
        "(push.warehouses.WH-EU maps ERP code WH-EU to it)",
        "push.warehouses.WH-X: warehouse id:99999 not found in Centra (push.warehouses.WH-X maps ERP code WH-X to it)",
        "push.pricelists.PL-EUR: pricelist externalId:retail-eur-typo not found in Centra "
        "(push.pricelists.PL-EUR maps ERP code PL-EUR to it)",
    ]
    assert [op for op, _ in port.calls] == ["LookupWarehouses", "LookupWarehousesById", "LookupPricelists"]


def test_unknown_warehouse_is_reported_once_at_start_in_status_and_metrics(engine: Engine,
                                                                           port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    # WH-GHOST has no stock at all: only the start-up check can find it
    push = PushSettings(warehouses={"WH-EU": "WH-NOPE", "WH-GHOST": "id:424242"})
    PushProducts(engine, port, push, clock=FakeClock()).run()
    job = PushStock(engine, port, push, clock=FakeClock())
    with capture_logs() as logs:
        first = job.run()
        job.run()
    assert first.outcome == "ok" and first.counts.get("waiting", 0) == 0
    unknown = [e for e in logs if e["event"] == "push.mapping_unknown"]
    assert sorted(e["key"] for e in unknown) == ["push.warehouses.WH-EU", "push.warehouses.WH-GHOST"]
    assert all(e["log_level"] == "error" for e in unknown)

    assert {(m.code, m.known) for m in recorded(engine)} == {("WH-EU", False), ("WH-GHOST", False),
                                                             ("WH-MAIN", True), ("WH-US", True)}
    st = collect_status(engine, datetime.now(UTC), ["push_stock"])
    assert [m["key"] for m in st["unknown_mappings"]] == ["push.warehouses.WH-EU", "push.warehouses.WH-GHOST"]
    assert "! unknown warehouse: push.warehouses.WH-GHOST -> id:424242 not found in Centra" in render_status(st)

    registry = CollectorRegistry()
    registry.register(StoreCollector(engine))
    text = generate_latest(registry).decode()
    assert 'erpsync_unknown_mapping{code="WH-GHOST",kind="warehouse"} 1.0' in text
    assert 'erpsync_unknown_mapping{code="WH-MAIN",kind="warehouse"} 0.0' in text

    # a new process re-checks (and re-announces); fixing the mapping clears it
    fixed = PushSettings(warehouses={"WH-EU": "WH-EU"})
    with capture_logs() as logs:
        assert PushStock(engine, port, fixed, clock=FakeClock()).run().outcome == "ok"
    assert not [e for e in logs if e["event"] == "push.mapping_unknown"]
    assert all(m.known for m in recorded(engine))


def test_unknown_pricelist_mapping_is_not_created_and_its_prices_are_parked_at_once(
        engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push = PushSettings(pricelists={"PL-EUR": "retail-eur-typo"})
    PushProducts(engine, port, push, clock=FakeClock()).run()
    with capture_logs() as logs:
        result = PushPrices(engine, port, push, clock=FakeClock()).run()
    assert result.outcome == "ok"
    assert [e["key"] for e in logs if e["event"] == "push.mapping_unknown"] == ["push.pricelists.PL-EUR"]
    assert "retail-eur-typo" not in {p.external_id for p in port.app.state.pricelists.values()}
    assert result.counts.get("waiting", 0) == 0
    with Session(engine) as s:
        parked = s.exec(select(OutboundItem.entity, OutboundItem.erp_key).where(  # type: ignore[call-overload]
            col(OutboundItem.status) == "parked")).all()
        reasons = {r for (r,) in s.exec(select(ParkedItem.reason)).all()}  # type: ignore[call-overload]
    assert parked and all(k.startswith("PL-EUR") for _, k in parked)
    assert {e for e, _ in parked} == {"pricelist", "price"}
    assert reasons == {"pricelist externalId:retail-eur-typo not found in Centra "
                       "(push.pricelists.PL-EUR maps ERP code PL-EUR to it)"}
    assert result.counts["sent"] > 0  # PL-SEK and PL-USD prices went through
