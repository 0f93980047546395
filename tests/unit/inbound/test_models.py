"""The object models: required fields, types, lists, path-naming reasons (plain dicts in, rows out)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from erpsync.errors import ItemRejected
from erpsync.inbound.models import MODELS, object_change

TZ = ZoneInfo("Europe/Stockholm")


def line(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "P1", "sku": "S1", "qty": "2", "price": "10.00", "subtotal": "20.00",
                            "sizes": {"size": [{"id": "M", "sku": "S1M", "orderitem": {"id": "OI-1"}}]}}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def order(*lines: dict[str, Any], **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "1311", "ordernumber": "1311", "ordertotal": "20.00", "currency": "SEK",
                            "store": "1", "created": "2026-10-25 02:30:00", "customer": {"id": "88"},
                            "products": {"product": list(lines)}}
    data.update(kw)
    return data


def reason(etype: str, key: str, data: dict[str, Any]) -> str:
    with pytest.raises(ItemRejected) as err:
        object_change(etype, key, data, store_tz=TZ)
    return err.value.reason


def test_a_complete_order_becomes_its_rows() -> None:
    ch = object_change("order", "1311", order(line(), line(id="P2", qty="1", price="0.00", subtotal="0.00",
                                                           bundleinfo={"isbundle": "yes"}, sizes=None)),
                       store_tz=TZ)
    assert ch.table == "order" and ch.columns["order_total"] == Decimal("20.00") and ch.columns["store"] == 1
    assert ch.columns["customer_id"] == "88" and ch.columns["created"].utcoffset().total_seconds() == 0
    assert ch.lines is not None
    first, second = ch.lines
    assert (first["line_no"], first["qty"], first["price"], first["size"], first["order_item_id"]) == (
        1, Decimal("2"), Decimal("10.00"), "M", "OI-1")
    assert second["is_bundle_virtual"] is True and second["size"] is None
    assert first["payload"]["sku"] == "S1"


@pytest.mark.parametrize(("data", "expected"), [
    (order(line(qty=...)), "order 1311: products/product[0]/qty: missing"),
    (order(line(), line(price="")), "order 1311: products/product[1]/price: missing"),
    (order(line(subtotal=None)), "order 1311: products/product[0]/subtotal: missing"),
    (order(line(qty="two")), "order 1311: products/product[0]/qty: 'two' is not a decimal number"),
    (order(line(), ordertotal=...), "order 1311: ordertotal: missing"),
    (order(line(), store="one"), "order 1311: store: 'one' is not an integer"),
    (order(line(), created="soon"), "order 1311: created: 'soon' is not a date"),
    (order("not a line"), "order 1311: products/product[0]: not an object"),  # type: ignore[arg-type]
])
def test_an_incomplete_order_is_rejected_naming_the_path(data: dict[str, Any], expected: str) -> None:
    data = {k: v for k, v in data.items() if v is not ...}
    assert reason("order", "1311", data) == expected


def test_every_problem_is_named_at_once() -> None:
    got = reason("order", "9", order(line(qty=..., price="x"), line(subtotal=...)))
    assert got == ("order 9: products/product[0]/qty: missing; products/product[0]/price: 'x' is not a "
                   "decimal number; products/product[1]/subtotal: missing")


def test_customer_store_must_be_an_integer_and_unknown_fields_are_ignored() -> None:
    assert reason("customer", "88", {"id": "88", "store": "Retail"}) == "customer 88: store: 'Retail' is not an integer"
    ch = object_change("customer", "88", {"id": "88", "store": "1", "email": "a@b.se", "newthing": {"x": "1"}},
                       store_tz=TZ)
    assert ch.columns["email"] == "a@b.se" and ch.columns["payload"]["newthing"] == {"x": "1"}


def test_account_invoice_and_generic() -> None:
    acc = object_change("account", "A1", {"company": "Acme", "status": "active"}, store_tz=TZ)
    assert acc.columns["name"] == "Acme"
    inv = object_change("invoice", "I1", {"orderid": "1311", "invoicetotal": "99.50", "currency": "SEK"},
                        store_tz=TZ)
    assert (inv.columns["order_id"], inv.columns["total"]) == ("1311", Decimal("99.50"))
    assert reason("invoice", "I2", {"total": "1,00"}) == "invoice I2: total: '1,00' is not a decimal number"
    gen = object_change("warehouse", "W1", {"id": "W1", "anything": ["goes"]}, store_tz=TZ)
    assert (gen.table, gen.generic_type, gen.columns["payload"]) == ("generic", "warehouse", {"id": "W1",
                                                                                              "anything": ["goes"]})


def test_one_item_bare_objects_bare_lists_and_empty_containers_read_the_same() -> None:
    one = order(line())
    one["products"] = {"product": line()}  # a single item that some reader left unlisted
    bare = order(line())
    bare["products"] = [line()]  # a source without the container level (GraphQL mapped by hand)
    rows = [object_change("order", "1", d, store_tz=TZ).lines for d in (one, bare, order(line()))]
    assert rows[0] == rows[1] == rows[2]
    empty = order()
    empty["products"] = None  # <products/>
    assert object_change("order", "1", empty, store_tz=TZ).lines == []


def test_models_are_declared_per_dedicated_type() -> None:
    assert set(MODELS) == {"order", "customer", "account", "invoice"}
