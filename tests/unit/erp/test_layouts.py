from __future__ import annotations

import re
from decimal import Decimal

import pytest

from erpsync.erp.layouts import LAYOUTS, RowError, convert, entity_for, is_removed, raw_key


def test_entity_from_names_and_file_stems() -> None:
    assert entity_for("products") == "product"
    assert entity_for("stock-2026-11-23.csv") == "stock"
    assert entity_for("size_charts") == "sizechart"
    assert entity_for("Prices.JSONL") == "price"
    assert entity_for("inventory_main") == "stock"
    assert entity_for("orders.csv") is None


def test_stock_row_is_typed() -> None:
    row = convert(LAYOUTS["stock"], {"warehouse": " WH-MAIN ", "ean": "7300000000011", "quantity": "12"})
    assert row == {"warehouse": "WH-MAIN", "ean": "7300000000011", "quantity": 12}
    assert convert(LAYOUTS["stock"], {"warehouse": "W", "ean": "1", "quantity": "4.000"})["quantity"] == 4
    assert convert(LAYOUTS["stock"], {"warehouse": "W", "ean": "1", "quantity": 7})["quantity"] == 7


@pytest.mark.parametrize(("raw", "reason"), [
    ({"ean": "1", "quantity": "1"}, "missing warehouse"),
    ({"warehouse": "W", "ean": "  ", "quantity": "1"}, "missing ean"),
    ({"warehouse": "W", "ean": "1", "quantity": "abc"}, "bad number in quantity: 'abc'"),
    ({"warehouse": "W", "ean": "1", "quantity": "1.5"}, "not a whole number"),
    ({"warehouse": "W", "ean": "1", "quantity": "-2"}, "negative"),
    ({"warehouse": "W", "ean": "1", "quantity": True}, "bad number"),
    ({"warehouse": "W", "ean": "1", "quantity": "NaN"}, "bad number"),
])
def test_bad_stock_rows_say_why(raw: dict[str, object], reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        convert(LAYOUTS["stock"], raw)


def test_price_is_decimal_never_float() -> None:
    row = convert(LAYOUTS["price"], {"pricelist": "PL-SEK", "product_number": "P1", "price": "199.90"})
    assert row["price"] == Decimal("199.90") and isinstance(row["price"], Decimal)
    assert row["variant_number"] == "" and row["rrp"] is None
    # a float from a SQL driver goes through its repr, not binary expansion
    assert convert(LAYOUTS["price"], {"pricelist": "A", "product_number": "P", "price": 0.1})["price"] == Decimal("0.1")
    with pytest.raises(RowError, match="bad number in price: '12,50'"):
        convert(LAYOUTS["price"], {"pricelist": "A", "product_number": "P", "price": "12,50"})
    with pytest.raises(RowError, match="negative"):
        convert(LAYOUTS["price"], {"pricelist": "A", "product_number": "P", "price": "-1"})


def test_status_and_currency_are_checked_and_normalised() -> None:
    p = convert(LAYOUTS["product"], {"product_number": "P1", "name": "Shirt", "status": "cancelled"})
    assert p["status"] == "CANCELLED"
    assert convert(LAYOUTS["product"], {"product_number": "P1", "name": "Shirt"})["status"] == "ACTIVE"
    with pytest.raises(RowError, match="bad status 'CANCELLED'"):
        convert(LAYOUTS["variant"], {"variant_number": "V", "product_number": "P", "name": "n", "status": "CANCELLED"})
    pl = convert(LAYOUTS["pricelist"], {"code": "PL", "name": "n", "currency": "sek", "store": "2"})
    assert pl == {"code": "PL", "name": "n", "currency": "SEK", "store": 2, "status": "ACTIVE"}
    with pytest.raises(RowError, match="bad currency"):
        convert(LAYOUTS["pricelist"], {"code": "PL", "name": "n", "currency": "kronor"})


def test_size_chart_sizes_from_text_or_list() -> None:
    lay = LAYOUTS["sizechart"]
    assert convert(lay, {"name": "A", "sizes": "XS| S |M"})["sizes"] == ["XS", "S", "M"]
    assert convert(lay, {"name": "A", "sizes": ["38", "39"]})["sizes"] == ["38", "39"]
    assert convert(lay, {"name": "A", "sizes": '["1", "2"]'})["sizes"] == ["1", "2"]
    with pytest.raises(RowError, match="duplicate size"):
        convert(lay, {"name": "A", "sizes": "S|S"})
    with pytest.raises(RowError, match="missing sizes"):
        convert(lay, {"name": "A", "sizes": "|"})


def test_too_long_values_are_rejected_not_truncated() -> None:
    with pytest.raises(RowError, match="longer than 64"):
        convert(LAYOUTS["stock"], {"warehouse": "W" * 65, "ean": "1", "quantity": "1"})


def test_keys_and_removed_flag() -> None:
    assert raw_key(LAYOUTS["stock"], {"warehouse": "WH", "ean": "123"}) == "WH|123"
    assert raw_key(LAYOUTS["stock"], {"warehouse": "WH"}) is None
    assert raw_key(LAYOUTS["price"], {"pricelist": "PL", "product_number": "P1"}) == "PL|P1"
    assert raw_key(LAYOUTS["price"], {"pricelist": "PL", "product_number": "P1", "variant_number": "V"}) == "PL|P1|V"
    assert raw_key(LAYOUTS["size"], {"size": "M", "ean": "1"}) is None
    assert is_removed({"removed": "yes"}) and is_removed({"removed": True})
    assert not is_removed({}) and not is_removed({"removed": "0"})
    with pytest.raises(RowError, match="bad flag"):
        is_removed({"removed": "maybe"})


@pytest.mark.parametrize("ean", ["7300000000011", "4006381333931", "73513537", "036000291452"])
def test_valid_eans_load(ean: str) -> None:
    row = convert(LAYOUTS["size"], {"variant_number": "V", "size": "S", "ean": f" {ean} "})
    assert row["ean"] == ean


@pytest.mark.parametrize(("ean", "reason"), [
    ("73ABC0000000X", "bad EAN in ean: '73ABC0000000X' (expected 8 or 12 or 13 digits)"),
    ("7300000000012", "bad EAN in ean: '7300000000012' has a wrong check digit (expected 1)"),
    ("123", "bad EAN in ean: '123' (expected 8 or 12 or 13 digits)"),
    ("73513538", "wrong check digit (expected 7)"),
    ("036000291453", "wrong check digit (expected 2)"),
    ("７３００００００００００１１", "expected 8 or 12 or 13 digits"),  # full-width digits
])
def test_malformed_eans_are_rejected_with_the_reason(ean: str, reason: str) -> None:
    with pytest.raises(RowError, match=re.escape(reason)):
        convert(LAYOUTS["size"], {"variant_number": "V", "size": "S", "ean": ean})


def test_upc_must_be_twelve_digits_with_its_check_digit() -> None:
    assert convert(LAYOUTS["size"], {"variant_number": "V", "size": "S", "ean": "7300000000011",
                                     "upc": "036000291452"})["upc"] == "036000291452"
    with pytest.raises(RowError, match="bad UPC in upc"):
        convert(LAYOUTS["size"], {"variant_number": "V", "size": "S", "ean": "7300000000011", "upc": "7300000000011"})
