"""Price and stock rows that need a product Centra does not have yet: they wait without spending
attempts, are parked only when the product cannot come, and go out once it is accepted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col
from structlog.testing import capture_logs

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.outbound.changes import desired
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.store.models import OutboundItem, ParkedItem
from erpsync.store.staging import StagingProduct
from tests.unit.outbound.helpers import (
    InProcessCentra,
    assert_same,
    centra_state,
    expected_state,
    load_catalogue,
    sim_app,
)

SMALL = Catalogue(products=12, variants=3, sizes=5)
STOCK_ROWS = 12 * 3 * 5 * 3  # products × variants × sizes × warehouses
STOCK_PER_PRODUCT = 3 * 5 * 3


def _open_parked(engine: Engine) -> list[ParkedItem]:
    with Session(engine) as s:
        return [r[0] for r in s.exec(select(ParkedItem).where(col(ParkedItem.resolved_at).is_(None)))]  # type: ignore[call-overload]


def _parked_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "push.item_parked"]


def test_rows_waiting_for_an_in_flight_product_are_never_parked_for_it(engine: Engine) -> None:
    port = InProcessCentra(sim_app())
    load_catalogue(engine, SMALL)
    push = PushSettings(max_attempts=3)
    clock = FakeClock()
    # far more runs than max_attempts while the catalogue push has not happened yet
    for _ in range(3 * push.max_attempts):
        stock = PushStock(engine, port, push, clock=clock).run()
        prices = PushPrices(engine, port, push, clock=clock).run()
        assert stock.outcome == prices.outcome == "ok"
        assert stock.counts["waiting"] == STOCK_ROWS and stock.counts.get("parked", 0) == 0
        assert prices.counts["waiting"] > 0 and prices.counts.get("parked", 0) == 0
    assert _open_parked(engine) == []
    with Session(engine) as s:
        attempts = {r[0] for r in s.exec(select(OutboundItem.attempts).where(  # type: ignore[call-overload]
            col(OutboundItem.entity).in_(("stock", "price"))))}
    assert attempts == {0}
    # the products arrive: every waiting row goes out in the next stock / price run
    PushProducts(engine, port, push, clock=clock).run()
    assert PushPrices(engine, port, push, clock=clock).run().counts.get("waiting", 0) == 0
    assert PushStock(engine, port, push, clock=clock).run().counts["sent"] == STOCK_ROWS
    assert_same(expected_state(SMALL), centra_state(port.app.state))


def test_rows_parked_for_a_parked_product_are_requeued_when_it_is_accepted(engine: Engine) -> None:
    port = InProcessCentra(sim_app())
    load_catalogue(engine, SMALL)
    push = PushSettings(max_attempts=3)
    clock = FakeClock()
    with Session(engine) as s, s.begin():  # Centra refuses a product without a name
        s.exec(update(StagingProduct).where(col(StagingProduct.product_number) == "P000003").values(name=""))  # type: ignore[call-overload]
    assert PushProducts(engine, port, push, clock=clock).run().counts["parked"] == 1
    with capture_logs() as logs:
        first = PushStock(engine, port, push, clock=clock).run()
    assert first.counts["parked"] == STOCK_PER_PRODUCT
    assert first.counts["sent"] == STOCK_ROWS - STOCK_PER_PRODUCT
    # loud, but one aggregated line for the whole bulk park
    lines = _parked_lines(logs)
    assert len(lines) == 1 and lines[0]["log_level"] == "warning"
    assert lines[0]["items"] == STOCK_PER_PRODUCT and lines[0]["cause"] == "dependency_parked"
    assert len(lines[0]["sample_keys"]) == 5 and "product P000003 is parked" in lines[0]["reason"]
    parked = _open_parked(engine)
    assert len(parked) == STOCK_PER_PRODUCT + 1
    assert all("name must not be empty" in p.reason for p in parked)
    # a further run re-parks nothing and says nothing new
    with capture_logs() as logs:
        again = PushStock(engine, port, push, clock=clock).run()
    assert again.counts["still_parked"] == STOCK_PER_PRODUCT and _parked_lines(logs) == []
    # the ERP fixes the product; once Centra accepted it, its stock follows without an operator
    with Session(engine) as s, s.begin():
        s.exec(update(StagingProduct).where(col(StagingProduct.product_number) == "P000003").values(name="Fixed"))  # type: ignore[call-overload]
    assert PushProducts(engine, port, push, clock=clock).run().counts["sent"] == 1
    assert PushStock(engine, port, push, clock=clock).run().counts["sent"] == STOCK_PER_PRODUCT
    PushPrices(engine, port, push, clock=clock).run()
    assert _open_parked(engine) == []
    expected = expected_state(SMALL)
    expected["products"]["prd_P000003"]["name"] = "Fixed"
    assert_same(expected, centra_state(port.app.state))


def test_rows_whose_product_is_absent_from_the_erp_are_parked_with_that_reason(engine: Engine) -> None:
    port = InProcessCentra(sim_app())
    load_catalogue(engine, SMALL)
    with Session(engine) as s, s.begin():
        s.exec(update(StagingProduct).where(col(StagingProduct.product_number) == "P000005").values(  # type: ignore[call-overload]
            removed_at=FakeClock().now()))
    clock = FakeClock()
    PushProducts(engine, port, PushSettings(), clock=clock).run()
    result = PushStock(engine, port, PushSettings(), clock=clock).run()
    assert result.counts["parked"] == STOCK_PER_PRODUCT
    reasons = {p.reason for p in _open_parked(engine)}
    assert reasons and all("product P000005 is not in the ERP's products" in r for r in reasons)


def test_rows_parked_by_an_earlier_version_after_waiting_are_sent_once_their_product_is_accepted(
    engine: Engine,
) -> None:
    port = InProcessCentra(sim_app())
    load_catalogue(engine, SMALL)
    clock = FakeClock()
    PushStock(engine, port, PushSettings(), clock=clock).run()  # records every row as waiting
    with Session(engine) as s:
        hashes = {i.erp_key: i.hash for i in desired(s, "stock")}
    with Session(engine) as s, s.begin():  # what the previous version left behind after 5 runs
        rows = s.exec(select(OutboundItem).where(col(OutboundItem.entity) == "stock")).all()  # type: ignore[call-overload]
        for (row,) in rows:
            row.status, row.rejected_hash = "parked", hashes[row.erp_key]
            row.last_error = ("product size EAN x is not in Centra yet (product P not pushed) "
                              "(still missing after 5 runs)")
    PushProducts(engine, port, PushSettings(), clock=clock).run()
    assert PushStock(engine, port, PushSettings(), clock=clock).run().counts["sent"] == STOCK_ROWS
