"""The fulfilment job's pure parts: line resolution (ids, SKU over two lines, EAN, over-shipping),
order checks, shippedAt, mutation inputs and the mutations a delivery still needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from erpsync.errors import ItemRejected
from erpsync.outbound.fulfilment import remaining_mutations
from erpsync.outbound.fulfilment_model import (
    OrderView,
    WantedLine,
    check_order,
    create_input,
    resolve_lines,
    shipped_at_value,
    stock_policy,
)
from erpsync.store.fulfilment import ErpDelivery


def order(status: str = "CONFIRMED", shipments: list[dict[str, object]] | None = None) -> OrderView:
    return OrderView.parse({
        "__typename": "DirectToConsumerOrder", "number": 1201, "status": status, "isOnHold": False,
        "lines": [
            {"id": 1, "quantity": 2, "cancelledQuantity": 0, "productSize": {"SKU": "A", "EAN": "111"}},
            {"id": 2, "quantity": 1, "cancelledQuantity": 1, "productSize": {"SKU": "A", "EAN": "111"}},
            {"id": 3, "quantity": 4, "cancelledQuantity": 0, "productSize": {"SKU": "B", "EAN": "222"}},
        ],
        "shipments": shipments or [],
    })


def test_lines_by_id_sku_over_two_lines_and_ean() -> None:
    got = resolve_lines(order(), [WantedLine(1, 3, sku="A"), WantedLine(2, 2, ean="222"),
                                  WantedLine(3, 1, order_line_id=3)])
    assert got == [(1, 2), (2, 1), (3, 3)]


def test_units_in_existing_shipments_count_and_over_shipping_names_the_figures() -> None:
    shipped = order(shipments=[{"id": 9, "number": "1201-1", "isShipped": True,
                                "lines": [{"quantity": 3, "orderLine": {"id": 3}}]}])
    assert resolve_lines(shipped, [WantedLine(1, 1, order_line_id=3)]) == [(3, 1)]
    with pytest.raises(ItemRejected, match=r"line 1: over-shipping: order line 3 asks 2, only 1 left .*in shipments 3"):
        resolve_lines(shipped, [WantedLine(1, 2, order_line_id=3)])
    assert resolve_lines(shipped, [WantedLine(1, 4, order_line_id=3)], exclude={9}) == [(3, 4)]
    with pytest.raises(ItemRejected, match="sku C is on no line"):
        resolve_lines(order(), [WantedLine(1, 1, sku="C")])
    with pytest.raises(ItemRejected, match="order_line_id 77 is not a line"):
        resolve_lines(order(), [WantedLine(1, 1, order_line_id=77)])


def test_order_status_rules() -> None:
    assert check_order(order("CONFIRMED")) is None and check_order(order("PROCESSING")) is None
    assert check_order(order("PENDING")) == "wait"
    with pytest.raises(ItemRejected, match="SHIPPED"):
        check_order(order("SHIPPED"))


def test_shipped_at_never_in_the_future_and_inputs() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert shipped_at_value(None, now, 5) is None
    assert shipped_at_value(now + timedelta(hours=1), now, 5) == "2026-12-01T11:59:55+00:00"
    assert shipped_at_value(now - timedelta(hours=1), now, 5) == "2026-12-01T11:00:00+00:00"
    assert create_input("1201", [(1, 2)], send_email=False, external_id="D-1", paid_outside=True) == {
        "order": {"number": 1201}, "lines": [{"orderLine": {"id": 1}, "quantity": 2}], "isGoodToGo": True,
        "sendEmail": False, "isPaid": True, "externalId": "D-1"}
    assert stock_policy("warehouse", "id:4") == {"sendItemsToDifferentWarehouse": {"id": 4}}
    assert stock_policy("remove", None) == {"removeItemsFromStock": True}


def test_remaining_mutations_per_state() -> None:
    d = ErpDelivery(delivery_id="D", order_number="1", capture=True)
    assert remaining_mutations(d, False) == ["createShipment", "updateShipment", "captureShipment",
                                             "completeShipment"]
    assert remaining_mutations(d, True) == ["createShipment", "captureShipment", "completeShipment"]
    d.state = "captured"
    assert remaining_mutations(d, False) == ["completeShipment"]
    d.state = "shipped"
    assert remaining_mutations(d, False) == []
