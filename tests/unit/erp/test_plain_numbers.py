"""Numeric fields take plain ASCII decimals only: no exponent (``1e3``, also as a JSON number), no
full-width or other non-ASCII digits, no ``_`` grouping, no NaN/Infinity."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from erpsync.erp.layouts import LAYOUTS, RowError, convert
from erpsync.erp.readers import json_number


def _stock(quantity: object) -> dict[str, object]:
    return convert(LAYOUTS["stock"], {"warehouse": "WH", "ean": "7300000000011", "quantity": quantity})


def _price(price: object) -> dict[str, object]:
    return convert(LAYOUTS["price"], {"pricelist": "PL", "product_number": "P1", "price": price})


@pytest.mark.parametrize("text", ["1e3", "1E3", "１２", "١٢", "1_000", "NaN", "Infinity", "0x10", "1,000", "+-1"])
def test_quantity_rejects_anything_but_plain_ascii_digits(text: str) -> None:
    with pytest.raises(RowError, match=r"bad number in quantity: "):
        _stock(text)


@pytest.mark.parametrize("text", ["1.5e1", "１２.50", "12_5", "-Infinity", "٣"])
def test_price_rejects_anything_but_plain_ascii_decimals(text: str) -> None:
    with pytest.raises(RowError, match=r"bad number in price: "):
        _price(text)


def test_plain_decimals_still_pass() -> None:
    assert _stock(" 12 ")["quantity"] == 12
    assert _stock("7.000")["quantity"] == 7
    assert _stock(5)["quantity"] == 5
    assert _price("12.50")["price"] == Decimal("12.50")
    assert _price("+.5")["price"] == Decimal("0.5")
    assert _price(Decimal("9.99"))["price"] == Decimal("9.99")
    assert _price(0.1)["price"] == Decimal("0.1")  # a float from a SQL driver


def test_json_numbers_in_exponent_notation_are_rejected_like_the_text() -> None:
    row = json.loads('{"quantity": 1e3, "price": 12.50}', parse_float=json_number)
    assert row == {"quantity": "1e3", "price": Decimal("12.50")}
    with pytest.raises(RowError, match="bad number in quantity: '1e3'"):
        _stock(row["quantity"])
