"""The push jobs against the simulator's GraphQL app in-process (real SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.errors import SourceUnavailable
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.push import DryRunSink
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.store.models import OutboundItem, ParkedItem
from erpsync.store.staging import StagingPrice, StagingProduct, StagingStock, StagingVariant
from tests.unit.outbound.helpers import (
    InProcessCentra,
    assert_same,
    centra_state,
    expected_state,
    load_catalogue,
    sim_app,
)

SMALL = Catalogue(products=12, variants=3, sizes=5)


def push_all(engine: Engine, port: InProcessCentra, push: PushSettings | None = None,
             clock: FakeClock | None = None) -> dict[str, dict[str, int]]:
    push = push or PushSettings()
    clock = clock or FakeClock()
    out = {}
    for job_cls in (PushProducts, PushPrices, PushStock):
        result = job_cls(engine, port, push, clock=clock).run()
        assert result.outcome == "ok", result
        out[job_cls.name] = result.counts
    return out


@pytest.fixture
def port() -> InProcessCentra:
    return InProcessCentra(sim_app())


def test_full_push_equals_erp_and_second_push_sends_nothing(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    counts = push_all(engine, port, PushSettings(stock_batch_size=1000, prices_batch_size=100))
    assert_same(expected_state(SMALL), centra_state(port.app.state))
    assert port.app.state.duplicates() == {k: {} for k in port.app.state.creates}
    # one createProduct per product (variants and sizes inline), one setStock per warehouse,
    # one setPricesBatch for every pricelist
    fields = Counter(port.mutation_fields)
    assert fields == {"createSizeChart": 2, "createProduct": 12, "setPricesBatch": 1, "setStock": 3}
    assert counts["push_stock"]["sent"] == 12 * 3 * 5 * 3

    port.calls.clear()
    port.mutation_fields.clear()
    again = push_all(engine, port)
    assert port.mutation_fields == []
    assert again["push_stock"].get("mutations", 0) == 0


def test_ten_stock_changes_send_one_set_stock_per_affected_warehouse(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push_all(engine, port)
    with Session(engine) as s, s.begin():
        rows = s.exec(select(StagingStock).order_by(col(StagingStock.ean))).all()  # type: ignore[call-overload]
        picked = [r[0] for r in rows if r[0].warehouse in ("WH-MAIN", "WH-US")][:10]
        for r in picked:
            r.quantity += 7
        changed = [(r.warehouse, r.ean, r.quantity) for r in picked]
    port.mutation_fields.clear()
    port.calls.clear()
    push_all(engine, port)
    assert Counter(port.mutation_fields) == {"setStock": len({wh for wh, _, _ in changed})}
    lines = sum(len(v["input"]["productSizes"]) for v in port.mutations("SetStock"))
    assert lines == 10
    assert_same(expected_state_with(changed), centra_state(port.app.state))


def expected_state_with(changed: list[tuple[str, str, int]]) -> dict:
    exp = expected_state(SMALL)
    for wh, ean, qty in changed:
        exp["stock"][(wh, ean)] = qty
    return exp


def test_bad_stock_line_is_found_and_parked_the_rest_lands(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push = PushSettings(stock_batch_size=64, stock_batch_max=64)  # a fixed size
    PushProducts(engine, port, push, clock=FakeClock()).run()
    with Session(engine) as s, s.begin():
        bad = s.exec(select(StagingStock).where(col(StagingStock.warehouse) == "WH-EU")).first()[0]  # type: ignore[call-overload,index]
        bad.quantity = -3  # Centra refuses negative physical stock
        bad_key = f"{bad.warehouse}|{bad.ean}"
    result = PushStock(engine, port, push, clock=FakeClock()).run()
    assert result.outcome == "ok"
    assert result.counts["parked"] == 1
    total = 12 * 5 * 3 * 3
    assert result.counts["sent"] == total - 1
    # 3 warehouses × 3 batches, plus: the rest of the failed batch, and the bad line alone
    assert result.counts["mutations"] == 9 + 2
    with Session(engine) as s:
        parked = s.exec(select(ParkedItem)).all()  # type: ignore[call-overload]
        assert [(p[0].kind, p[0].key) for p in parked] == [("stock", f"stock:{bad_key}")]
        assert "quantity must be ≥ 0" in parked[0][0].reason
    state = centra_state(port.app.state)
    assert len(state["stock"]) == total - 1
    # unchanged bad row is not sent again
    port.mutation_fields.clear()
    again = PushStock(engine, port, push, clock=FakeClock()).run()
    assert port.mutation_fields == [] and again.outcome == "ok" and again.counts.get("sent", 0) == 0


def test_prices_wait_for_products_and_pricelists_are_created(engine: Engine) -> None:
    port = InProcessCentra(sim_app(pricelists=(("PL-SEK", "SEK"),)))  # PL-EUR, PL-USD are created
    load_catalogue(engine, SMALL)
    first = PushPrices(engine, port, PushSettings(), clock=FakeClock()).run()
    assert first.counts["waiting"] > 0 and first.counts.get("sent", 0) == 0
    assert first.counts["pricelists_created"] == 2
    push_all(engine, port)
    assert_same(expected_state(SMALL), centra_state(port.app.state))
    assert Counter(port.mutation_fields)["createPricelist"] == 2


def test_price_batch_with_bad_product_is_bisected(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push = PushSettings(prices_batch_size=5)
    PushProducts(engine, port, push, clock=FakeClock()).run()
    # Centra loses one product's externalId mapping: its prices are rejected
    prod = next(p for p in port.app.state.products.values() if p.external_id == "prd_P000003")
    port.app.state.external["product"].pop("prd_P000003")
    prod.external_id = None
    result = PushPrices(engine, port, push, clock=FakeClock()).run()
    assert result.outcome == "ok"
    parked_keys = {k for k in _parked(engine) if k.startswith("price:")}
    assert parked_keys == {f"price:{pl}|P000003" for pl in ("PL-SEK", "PL-EUR", "PL-USD")}
    prices = centra_state(port.app.state)["prices"]
    exp = {k: v for k, v in expected_state(SMALL)["prices"].items() if k[1] != "prd_P000003"}
    assert {k: v for k, v in prices.items() if k[1] is not None} == exp


def _parked(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return {p[0].key for p in s.exec(select(ParkedItem).where(col(ParkedItem.resolved_at).is_(None)))}  # type: ignore[call-overload]


def test_product_update_sends_only_what_changed(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push_all(engine, port)
    with Session(engine) as s, s.begin():
        s.exec(update(StagingProduct).where(col(StagingProduct.product_number) == "P000002").values(  # type: ignore[call-overload]
            name="Renamed"))
        s.exec(update(StagingVariant).where(col(StagingVariant.variant_number) == "P000004-02").values(  # type: ignore[call-overload]
            name="Magenta"))
        s.exec(update(StagingPrice).where(col(StagingPrice.product_number) == "P000005").values(  # type: ignore[call-overload]
            price=Decimal("12.34")))
    port.mutation_fields.clear()
    push_all(engine, port)
    assert Counter(port.mutation_fields) == {"updateProduct": 1, "updateProductVariant": 1, "setPricesBatch": 1}
    state = centra_state(port.app.state)
    assert state["products"]["prd_P000002"]["name"] == "Renamed"
    assert state["products"]["prd_P000004"]["variants"]["var_P000004-02"]["name"] == "Magenta"
    assert state["prices"][("PL-EUR", "prd_P000005")][0] == Decimal("12.34")


@pytest.mark.parametrize("fault", ["lost", "down", "limited"])
def test_faults_on_every_mutation_kind_converge_without_duplicates(
    engine: Engine, port: InProcessCentra, fault: str,
) -> None:
    load_catalogue(engine, SMALL)
    # every other mutation request fails (creates, setPricesBatch, setStock alike)
    port.faults = [fault, None] * 200  # type: ignore[list-item]
    push_all(engine, port, PushSettings(stock_batch_size=40, prices_batch_size=4, products_batch_size=4,
                                        max_attempts=6))
    assert_same(expected_state(SMALL), centra_state(port.app.state))
    assert port.app.state.duplicates() == {k: {} for k in port.app.state.creates}
    fields = Counter(port.mutation_fields)
    if fault == "lost":  # applied each time: the read-back saw it, nothing was created twice
        assert fields["createProduct"] == 12


def test_attempts_exhausted_ends_the_run_as_retry_and_records_nothing(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    push_all(engine, port)
    with Session(engine) as s, s.begin():
        s.exec(update(StagingStock).values(quantity=StagingStock.quantity + 1))  # type: ignore[call-overload,operator]
    port.faults = ["down"] * 3
    clock = FakeClock()
    result = PushStock(engine, port, PushSettings(max_attempts=3), clock=clock).run()
    assert result.outcome == "retry" and result.error_class == SourceUnavailable.__name__
    assert clock.sleeps == [1.0, 2.0]  # backoff between the attempts, on the injected clock
    with Session(engine) as s:
        pending = s.exec(select(OutboundItem).where(col(OutboundItem.entity) == "stock")).all()  # type: ignore[call-overload]
    assert pending  # hashes of the old levels only: the next run sends the new ones
    port.mutation_fields.clear()
    PushStock(engine, port, PushSettings(), clock=clock).run()
    assert Counter(port.mutation_fields) == {"setStock": 3}


def test_dry_run_sends_nothing_and_records_nothing(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    sink = DryRunSink()
    for job_cls in (PushProducts, PushPrices, PushStock):
        result = job_cls(engine, None, PushSettings(), clock=FakeClock(), dry_run=sink).run()
        assert result.outcome == "ok"
    ops = Counter(c.operation for c in sink.calls)
    assert ops["createProduct"] == 12 and ops["createSizeChart"] == 2 and ops["setStock"] == 3
    assert ops["setPricesBatch"] == 1
    assert port.calls == []
    with Session(engine) as s:
        assert s.exec(select(OutboundItem).where(col(OutboundItem.accepted_hash).is_not(None))).first() is None  # type: ignore[call-overload]


def test_warehouse_mapping_and_unknown_warehouse_is_parked_at_once(engine: Engine, port: InProcessCentra) -> None:
    load_catalogue(engine, SMALL)
    wh_id = next(w.id for w in port.app.state.warehouses.values() if w.external_id == "WH-US")
    push = PushSettings(warehouses={"WH-EU": "WH-NOPE", "WH-US": f"id:{wh_id}"})
    PushProducts(engine, port, push, clock=FakeClock()).run()
    result = PushStock(engine, port, push, clock=FakeClock()).run()
    assert result.outcome == "ok"
    # parked in the first run (not after push.max_attempts runs of waiting), the rest sent
    assert result.counts.get("waiting", 0) == 0
    assert result.counts["parked"] == 12 * 3 * 5 and result.counts["sent"] == 2 * 12 * 3 * 5
    stock = centra_state(port.app.state)["stock"]
    assert {wh for wh, _ in stock} == {"WH-MAIN", "WH-US"}
    expected = {k: v for k, v in expected_state(SMALL)["stock"].items() if k[0] != "WH-EU"}
    assert stock == expected
    with Session(engine) as s:
        rows = s.exec(select(OutboundItem).where(col(OutboundItem.entity) == "stock",  # type: ignore[call-overload]
                                                 col(OutboundItem.status) == "parked")).scalars().all()
        reasons = {p.reason for p in s.exec(select(ParkedItem)).scalars()}  # type: ignore[call-overload]
    assert len(rows) == 12 * 3 * 5 and all(r.erp_key.startswith("WH-EU|") for r in rows)
    assert reasons == {"warehouse externalId:WH-NOPE not found in Centra "
                       "(push.warehouses.WH-EU maps ERP code WH-EU to it)"}
    again = PushStock(engine, port, push, clock=FakeClock()).run()
    assert again.outcome == "ok" and again.counts.get("parked", 0) == 0 and again.counts.get("sent", 0) == 0


def test_skip_with_warning_policy_parks_only_the_skipped_lines(engine: Engine) -> None:
    port = InProcessCentra(sim_app(batch_failure="skip"))
    load_catalogue(engine, SMALL)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    with Session(engine) as s, s.begin():
        s.exec(update(StagingStock).where(col(StagingStock.ean) == "7300000000011").values(quantity=-1))  # type: ignore[call-overload]
    result = PushStock(engine, port, PushSettings(), clock=FakeClock()).run()
    assert result.counts["parked"] == 3 and result.counts["mutations"] == 3  # no bisection needed
    assert _parked(engine) == {f"stock:{wh}|7300000000011" for wh in ("WH-MAIN", "WH-EU", "WH-US")}
    assert len(centra_state(port.app.state)["stock"]) == 12 * 3 * 5 * 3 - 3


def test_parked_item_retried_by_the_operator_is_sent_again(engine: Engine, port: InProcessCentra) -> None:
    from erpsync.store.engine import transaction
    from erpsync.store.inbox import InboxRepository

    load_catalogue(engine, SMALL)
    clock = FakeClock()
    PushProducts(engine, port, PushSettings(), clock=clock).run()
    prod = next(p for p in port.app.state.products.values() if p.external_id == "prd_P000003")
    port.app.state.external["product"].pop("prd_P000003")  # Centra loses the mapping: its prices fail
    prod.external_id = None
    PushPrices(engine, port, PushSettings(), clock=clock).run()
    assert _parked(engine) == {f"price:{pl}|P000003" for pl in ("PL-SEK", "PL-EUR", "PL-USD")}
    # unchanged: not sent again
    port.mutation_fields.clear()
    PushPrices(engine, port, PushSettings(), clock=clock).run()
    assert port.mutation_fields == []
    # the operator fixes Centra, then `erpsync parked retry --kind price --all`
    port.app.state.map_external("product", "prd_P000003", prod.id, port.app.state.products)
    clock.advance(5)
    with transaction(engine) as session:
        repo = InboxRepository()
        for item in repo.parked(session, kind="price"):
            repo.resolve_parked(session, item, "retried", clock.now())
    clock.advance(5)
    result = PushPrices(engine, port, PushSettings(), clock=clock).run()
    assert result.counts["requeued"] == 3 and result.counts["sent"] == 3
    assert_same(expected_state(SMALL) | {"stock": {}}, centra_state(port.app.state) | {"stock": {}})
    assert _parked(engine) == set()
    # and nothing is re-queued twice
    port.mutation_fields.clear()
    again = PushPrices(engine, port, PushSettings(), clock=clock).run()
    assert port.mutation_fields == [] and "requeued" not in again.counts


def test_postgres_statistics_are_refreshed_after_a_large_run(engine: Engine) -> None:
    from erpsync.outbound.state import Accepted, OutboundLedger

    ledger = OutboundLedger(engine, FakeClock())
    ledger.ANALYZE_AFTER_ROWS = 100
    ledger.accept("stock", [Accepted(f"WH|{i}", "h") for i in range(99)])
    assert ledger.analyze_if_grown() is False
    ledger.accept("stock", [Accepted("WH|x", "h")])
    analyzed = ledger.analyze_if_grown()
    assert analyzed is (engine.dialect.name == "postgresql")
    if analyzed:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'outbound_item' "
                "AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())").scalar()
        assert rows == 100
        assert ledger.analyze_if_grown() is False  # counted from zero again


def test_rows_held_for_their_products_count_towards_the_statistics_refresh(engine: Engine) -> None:
    """A first stock run during a catalogue push writes every level as ``waiting`` (45,000 rows for
    1,000 products): without fresh statistics the next run's diff on PostgreSQL took minutes."""
    from erpsync.outbound.state import OutboundLedger, Rejected

    ledger = OutboundLedger(engine, FakeClock())
    ledger.ANALYZE_AFTER_ROWS = 100
    ledger.hold("stock", [Rejected(f"WH|{i}", "h", "product not in Centra yet", {}) for i in range(60)])
    ledger.wait("stock", [Rejected(f"WH|w{i}", "h", "product not in Centra yet", {}) for i in range(40)], 5)
    assert ledger.analyze_if_grown() is (engine.dialect.name == "postgresql")


def test_stock_runs_are_paced_by_the_quota_derived_window(engine: Engine, port: InProcessCentra) -> None:
    """After a run that sent m setStock, push_stock asks to run again m windows later (Growth at
    share 0.8, stock's 25 %: a 10 s window); one that sent nothing, one window later."""
    load_catalogue(engine, SMALL)
    push_all(engine, port)
    port.allowance = 1800 * 0.8 / 3600
    clock = FakeClock()
    job = PushStock(engine, port, PushSettings(), clock=clock)
    with Session(engine) as s, s.begin():
        rows = s.exec(select(StagingStock).order_by(col(StagingStock.ean))).all()  # type: ignore[call-overload]
        for r in [r[0] for r in rows if r[0].warehouse in ("WH-MAIN", "WH-US")][:10]:
            r.quantity += 3
    assert job.run().counts["mutations"] == 2
    assert job.next_run_in() == pytest.approx(20.0)
    clock.advance(20)
    assert job.run().counts.get("mutations", 0) == 0
    assert job.next_run_in() == pytest.approx(10.0)
    # pacing off: the daemon keeps the fixed push.stock_interval_seconds
    off = PushStock(engine, port, PushSettings(stock_mutation_share=0), clock=clock)
    off.run()
    assert off.next_run_in() is None


def test_the_ports_mutation_allowance_is_the_governors_hourly_refill() -> None:
    from types import SimpleNamespace

    from erpsync.graphql.quota import QuotaGovernor, tier_limits
    from erpsync.outbound.port import GraphqlPort

    gov = QuotaGovernor(tier_limits("growth"), clock=FakeClock(), share=0.8)
    port = GraphqlPort(SimpleNamespace(governor=gov))  # type: ignore[arg-type]
    assert port.mutation_allowance() == pytest.approx(1800 * 0.8 / 3600)
    assert GraphqlPort(SimpleNamespace(governor=None)).mutation_allowance() is None  # type: ignore[arg-type]


def test_while_products_are_coming_first_levels_go_in_full_batches(engine: Engine, port: InProcessCentra) -> None:
    """A catalogue push under way (a product's levels wait for it): the first levels of sizes already
    created go in whole batches only, apart from the live changes (levels Centra has), which go at once
    and alone are charged to stock's paced budget; once nothing waits, the rest goes."""
    load_catalogue(engine, SMALL)
    push = PushSettings(stock_batch_size=100, stock_batch_max=100)
    assert PushProducts(engine, port, push, clock=FakeClock()).run().outcome == "ok"
    with Session(engine) as s, s.begin():  # one level Centra will already have
        row = s.exec(select(StagingStock).order_by(col(StagingStock.ean))).first()[0]  # type: ignore[call-overload,index]
        live = (row.warehouse, row.ean)
    first = PushStock(engine, port, push, clock=FakeClock()).run().counts
    assert first["mutations"] == 6 and first.get("held_for_full_batch", 0) == 0  # nothing coming: all goes
    bigger = Catalogue(products=13, variants=3, sizes=5)
    load_catalogue(engine, bigger)  # a 13th product, not in Centra yet

    def forget_first_levels() -> None:  # the 12 products' stock as never sent, the live one accepted
        with Session(engine) as s, s.begin():
            s.exec(update(OutboundItem).where(col(OutboundItem.entity) == "stock",  # type: ignore[call-overload]
                                             col(OutboundItem.erp_key) != f"{live[0]}|{live[1]}")
                   .values(accepted_hash=None))

    forget_first_levels()
    quiet = PushStock(engine, port, push, clock=FakeClock()).run().counts
    assert quiet["waiting"] == 15 * 3  # the 13th product's 15 sizes × 3 warehouses
    # no live change: whole batches of 100 first levels go, per warehouse 180 (179 in the live one's)
    assert quiet["held_for_full_batch"] == 80 + 80 + 79 and quiet["mutations"] == 3
    forget_first_levels()
    with Session(engine) as s, s.begin():
        s.exec(update(StagingStock).where(col(StagingStock.warehouse) == live[0],  # type: ignore[call-overload]
                                         col(StagingStock.ean) == live[1]).values(quantity=StagingStock.quantity + 5))
    port.allowance = 1800 * 0.8 / 3600
    job = PushStock(engine, port, push, clock=FakeClock())
    busy = job.run().counts
    # the live change in a batch of its own, and the whole batches of first levels
    assert busy["mutations"] == 4 and busy["first_level_mutations"] == 3 and busy["sent"] == 301
    assert busy["held_for_full_batch"] == 80 + 80 + 79
    assert job.next_run_in() == pytest.approx(10.0)  # one live mutation: one window
    assert PushProducts(engine, port, push, clock=FakeClock()).run().outcome == "ok"
    after = PushStock(engine, port, push, clock=FakeClock()).run().counts
    assert after.get("held_for_full_batch", 0) == 0 and after.get("waiting", 0) == 0
    want = expected_state(bigger)["stock"]
    assert centra_state(port.app.state)["stock"] == {**want, live: want[live] + 5}
