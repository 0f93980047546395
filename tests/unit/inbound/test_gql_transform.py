"""The GraphQL event → inbox rows transform (pure)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import ItemRejected
from erpsync.inbound.gql_transform import event_id, to_inbound_item

ORDER_JSON = """{"__typename": "DirectToConsumerOrder", "id": "a0e2", "number": 1201, "status": "SHIPPED",
 "createdAt": "2026-12-01T20:38:35+01:00", "updatedAt": "2026-12-01T21:00:00+01:00",
 "grandTotal": {"value": 2453.20, "currency": {"code": "SEK"}}, "isLocked": false, "isOnHold": false,
 "store": {"id": 1}, "market": {"id": 1, "name": "Retail Sweden"}, "pricelist": {"id": 1, "externalId": "PL-SEK"},
 "lines": [{"id": 5501, "productNumber": "TS01", "size": "XL", "productName": "Organic tee", "quantity": 1,
            "cancelledQuantity": 1, "unitPrice": {"value": 0.1}, "unitOriginalPrice": {"value": 0.3},
            "lineValue": {"value": 0.1}, "taxPercent": 25.0, "discountPercent": 0.0,
            "productSize": {"SKU": "TS01BLKXL", "EAN": "734"}}],
 "shipments": [{"id": 7, "number": "1201-1"}],
 "customer": {"id": 81, "email": "e@example.com", "firstName": "E", "lastName": "L"}}"""


def order() -> dict[str, Any]:
    return dict(json.loads(ORDER_JSON, parse_float=Decimal))


def ev(**kw: Any) -> dict[str, Any]:
    base = {"id": 41, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1201,
            "createdAt": "2026-12-01T20:00:00+00:00", "object": {"__typename": "DirectToConsumerOrder"}}
    base.update(kw)
    return base


def test_order_maps_to_the_soap_rows_money_exact() -> None:
    item = to_inbound_item(ev(), order())
    assert item.park_reason is None and item.change is not None
    m, ch = item.meta, item.change
    assert (m.event_id, m.type, m.entry, m.mission, m.seq) == ("gql:41", "order", "1201", "update", None)
    assert m.date is not None and m.date.isoformat() == "2026-12-01T20:00:00+00:00"  # updatedAt: the version
    c = ch.columns
    assert c["status"] == "completed" and c["order_total"] == Decimal("2453.20") and c["currency"] == "SEK"
    assert (c["customer_id"], c["pricelist"], c["store"], c["order_number"]) == ("81", "PL-SEK", 1, "1201")
    assert "market" not in c  # GraphQL's Market is {id name}: not SOAP's market id (a gap, kept as stored)
    line = ch.lines[0] if ch.lines else {}
    # ordered = quantity + cancelledQuantity; money with SOAP's scale (text columns on SQLite show it)
    assert (str(line["qty"]), str(line["price"]), str(line["origprice"])) == ("2", "0.10", "0.30")
    assert (str(line["discount"]), str(line["subtotal"]), str(line["tax"])) == ("0.00", "0.20", "25.000")
    assert (line["order_item_id"], line["size_sku"], line["sku"]) == ("5501", "TS01BLKXL", "TS01")
    assert "is_bundle_virtual" not in line  # not in the GraphQL shape: the stored flag stays
    assert ch.shipments == [{"order_id": "1201", "shipment_no": 1, "shipment_id": "7",
                             "payload": {"id": 7, "number": "1201-1"}}]
    json.dumps(c["payload"])  # storable: no Decimal left in the JSON column


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda o: o.pop("number"), "order 1201: object.number missing"),
    (lambda o: o.update(number=1202), "order 1201: object.number: '1202' is not the event's objectReference"),
    (lambda o: o["grandTotal"].update(value="x"), "order 1201: object.grandTotal.value: 'x' is not a number"),
    (lambda o: o["lines"][0].update(quantity=-1), "order 1201: object.lines[0].quantity"),
    (lambda o: o.update(createdAt="yesterday"), "order 1201: object.createdAt"),
])
def test_bad_orders_are_parked_naming_the_path(mutate: Any, reason: str) -> None:
    o = order()
    mutate(o)
    item = to_inbound_item(ev(), o)
    assert item.change is None and item.park_reason is not None and reason in item.park_reason
    assert item.meta.event_id == "gql:41"  # still confirmed


def test_ids_are_64_bit_number_or_string() -> None:
    assert event_id(2**40) == 2**40 and event_id(str(2**62)) == 2**62
    for bad in (True, "12a", -1, 2**64, None, 1.5):
        with pytest.raises(ItemRejected):
            event_id(bad)
    assert to_inbound_item(ev(id=str(2**35)), order()).meta.event_id == f"gql:{2**35}"


def test_delete_null_object_unknown_type_customer() -> None:
    d = to_inbound_item(ev(changeType="DELETED", object=None))
    assert d.change is not None and d.change.delete and d.meta.mission == "delete"
    gone = to_inbound_item(ev(object=None))
    assert gone.change is None and gone.park_reason and "object is null" in gone.park_reason
    inv = to_inbound_item(ev(objectType="Invoice", objectReference=9001, object=None))
    assert inv.change is not None and inv.change.table == "generic" and inv.change.generic_type == "invoice"
    odd = to_inbound_item(ev(objectType="Brand", objectReference=3, object=None))
    assert odd.change is not None and odd.change.generic_type == "brand"
    cust = to_inbound_item(ev(objectType="Customer", objectReference=81,
                              object={"__typename": "Customer", "customerId": 81, "email": "a@b"}))
    assert cust.change is not None and cust.change.table == "customer" and cust.change.columns["email"] == "a@b"


def test_sizes_of_one_product_are_one_soap_line() -> None:
    """One GraphQL OrderLine per size; SOAP (and the ERP tables) have one row per product element."""
    o = order()
    size = {"productNumber": "TS01", "productName": "Organic tee", "cancelledQuantity": 0,
            "unitPrice": {"value": Decimal("49.95")}, "unitOriginalPrice": {"value": Decimal("49.95")},
            "lineValue": {"value": Decimal("0")}, "taxPercent": Decimal("19.0"), "discountPercent": Decimal("10.0"),
            "product": {"id": 7, "externalId": "TSHIRT-01"}, "productVariant": {"id": 9, "externalId": "TSHIRT-01-BLK"}}
    o["lines"] = [{**size, "id": 1, "size": "S", "quantity": 1, "productSize": {"SKU": "TS01BLKS"}},
                  {**size, "id": 2, "size": "M", "quantity": 2, "productSize": {"SKU": "TS01BLKM"}},
                  {**size, "id": 3, "productNumber": "CP05", "size": "ONE", "quantity": 1, "discountPercent": 0,
                   "product": {"id": 8, "externalId": None}, "productVariant": None,
                   "productSize": {"SKU": "CP05BEIONE"}}]
    ch = to_inbound_item(ev(), o).change
    assert ch is not None and ch.lines is not None and len(ch.lines) == 2
    first, second = ch.lines
    assert (first["line_no"], first["product_id"], first["variant_id"], first["sku"]) == (
        1, "TSHIRT-01", "TSHIRT-01-BLK", "TS01")
    assert (first["size"], first["size_sku"], first["order_item_id"]) == (None, None, None)  # several sizes
    # 3 × 49.95 = 149.85; 10 % = 14.985 → 14.99 (half up, as SOAP's discount amount); 149.85 − 14.99
    assert (str(first["qty"]), str(first["discount"]), str(first["subtotal"])) == ("3", "14.99", "134.86")
    assert len(first["payload"]["lines"]) == 2
    assert (second["product_id"], second["variant_id"], second["size"], second["order_item_id"]) == (
        "8", None, "ONE", "3")  # Centra's id where the ERP gave none; the only size named


def test_wholesale_buyer_is_not_in_the_graphql_shape() -> None:
    o = order()
    o["__typename"] = "WholesaleOrder"
    o.pop("customer")
    o["account"] = {"id": 501, "name": "Butik Nord AB"}
    ch = to_inbound_item(ev(), o).change
    assert ch is not None and "customer_id" not in ch.columns  # left as SOAP stored it (docs/operations.md)


def test_customer_and_account_version_time_is_the_newest_event_of_the_page() -> None:
    from datetime import UTC, datetime

    newest = datetime(2026, 12, 1, 20, 5, tzinfo=UTC)
    cust = to_inbound_item(ev(objectType="Customer", objectReference=81,
                              object={"__typename": "Customer", "customerId": 81, "email": "a@b"}), None, newest)
    assert cust.meta.date == newest and cust.change is not None
    assert "country" not in cust.change.columns and "status" not in cust.change.columns
    gone = to_inbound_item(ev(objectType="Customer", objectReference=81, changeType="DELETED", object=None),
                           None, newest)
    assert gone.meta.date is not None and gone.meta.date.isoformat() == "2026-12-01T20:00:00+00:00"


@pytest.mark.parametrize("raw", ["²", "١٢", "12²"])
def test_ids_and_references_in_other_digits_are_parked_not_a_crash_or_another_id(raw: str) -> None:
    """``str.isdigit`` takes '²' (``int`` then raises: the whole page failed, every run) and Arabic-Indic
    digits (``int`` reads them: another event's id). Both are parked naming the field."""
    item = to_inbound_item(ev(id=raw))
    assert item.change is None and "event.id" in (item.park_reason or "")
    item = to_inbound_item(ev(objectType="Customer", objectReference=raw, object={"customerId": 81}))
    assert item.change is None and "objectReference" in (item.park_reason or "")
