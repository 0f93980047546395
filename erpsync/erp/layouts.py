"""One documented layout per entity (docs/erp-import.md): column names, types, what is required.

The same layout serves CSV headers, JSON Lines keys and the column names of the SQL source's
queries. Unknown columns are ignored (ERPs add columns). Every entity also accepts an optional
``removed`` column (``true``/``1``/``yes``): an incremental feed's way to say "gone".

Conversion is pure: ``convert(layout, raw)`` returns the typed row or raises ``RowError`` with a
reason a person can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ENTITY_ORDER: tuple[str, ...] = ("sizechart", "product", "variant", "size", "pricelist", "price", "stock",
                                  # fulfilment: a delivery's lines before it (the job ships deliveries only)
                                  "delivery_line", "delivery", "cancellation")

#: names accepted for an entity in file names and ``--entity`` (``products.csv``, ``stock-2026.jsonl``)
ALIASES: dict[str, str] = {
    "sizechart": "sizechart", "sizecharts": "sizechart", "size_chart": "sizechart", "size_charts": "sizechart",
    "product": "product", "products": "product",
    "variant": "variant", "variants": "variant",
    "size": "size", "sizes": "size",
    "pricelist": "pricelist", "pricelists": "pricelist",
    "price": "price", "prices": "price",
    "stock": "stock", "stocks": "stock", "inventory": "stock",
    "delivery": "delivery", "deliveries": "delivery",
    "delivery_line": "delivery_line", "delivery_lines": "delivery_line", "deliverylines": "delivery_line",
    "cancellation": "cancellation", "cancellations": "cancellation", "line_cancellations": "cancellation",
}

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


class RowError(ValueError):
    """This row cannot be loaded; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"  # str | int | decimal | status | product_status | sizes | bool | datetime | gtin | upc
    required: bool = False
    default: Any = None
    max_length: int = 128


@dataclass(frozen=True)
class Layout:
    entity: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    doc: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


LAYOUTS: dict[str, Layout] = {
    "sizechart": Layout("sizechart", ("name",), (
        Column("name", required=True),
        Column("sizes", "sizes", required=True),
    ), "sizes in display order; CSV: separated by '|' (XS|S|M), JSON: a list or the same string"),
    "product": Layout("product", ("product_number",), (
        Column("product_number", required=True),
        Column("name", required=True, max_length=512),
        Column("status", "product_status", default="ACTIVE"),
    ), "status ACTIVE | INACTIVE | CANCELLED (default ACTIVE)"),
    "variant": Layout("variant", ("variant_number",), (
        Column("variant_number", required=True),
        Column("product_number", required=True),
        Column("name", required=True, max_length=512),
        Column("status", "status", default="ACTIVE"),
        Column("size_chart"),
    ), "variant numbers are unique across all products; size_chart names a size chart"),
    "size": Layout("size", ("variant_number", "size"), (
        Column("variant_number", required=True),
        Column("size", required=True, max_length=64),
        Column("ean", "gtin", required=True, max_length=64),
        Column("upc", "upc", max_length=64),
        Column("size_number", max_length=64),
    ), "one row per size of a variant; size must be in the variant's size chart; EAN unique "
       "(EAN-13, EAN-8 or UPC-A 12 digits, GS1 check digit); UPC 12 digits"),
    "pricelist": Layout("pricelist", ("code",), (
        Column("code", required=True),
        Column("name", required=True, max_length=256),
        Column("currency", required=True, max_length=8),
        Column("store", "int", default=1),
        Column("status", "status", default="ACTIVE"),
    ), "currency is an ISO 4217 code; store is Centra's store id (default 1)"),
    "price": Layout("price", ("pricelist", "product_number", "variant_number"), (
        Column("pricelist", required=True),
        Column("product_number", required=True),
        Column("variant_number", default=""),
        Column("price", "decimal", required=True),
        Column("rrp", "decimal"),
    ), "empty variant_number = a price for the whole product; decimals with '.' (199.00)"),
    "stock": Layout("stock", ("warehouse", "ean"), (
        Column("warehouse", required=True, max_length=64),
        Column("ean", required=True, max_length=64),
        Column("quantity", "int", required=True),
    ), "absolute physical quantity (integer >= 0) of one size (by EAN) in one warehouse"),
    # fulfilment (docs/erp-tables.md): what shipped, and what cannot be delivered
    "delivery": Layout("delivery", ("delivery_id",), (
        Column("delivery_id", required=True),
        Column("order_number", required=True, max_length=64),
        Column("carrier"),
        Column("service"),
        Column("tracking_number", max_length=256),
        Column("return_tracking_number", max_length=256),
        Column("packages", "int"),
        Column("shipped_at", "datetime"),
        Column("capture", "bool", default=False),
        Column("paid_outside", "bool", default=False),
        Column("send_email", "bool"),
    ), "one shipment of a Centra order; shipped_at ISO-8601 with offset; capture / paid_outside true|false"),
    "delivery_line": Layout("delivery_line", ("delivery_id", "line_no"), (
        Column("delivery_id", required=True),
        Column("line_no", "int", required=True),
        Column("order_line_id", "int"),
        Column("sku"),
        Column("ean", max_length=64),
        Column("quantity", "int", required=True),
    ), "a delivered quantity of one order line: Centra's order_line_id, or its sku / ean"),
    "cancellation": Layout("cancellation", ("cancellation_id",), (
        Column("cancellation_id", required=True),
        Column("order_number", required=True, max_length=64),
        Column("order_line_id", "int"),
        Column("sku"),
        Column("ean", max_length=64),
        Column("quantity", "int", required=True),
        Column("stock_policy", default="release", max_length=16),
        Column("warehouse"),
    ), "units of one order line to cancel (a delta); stock_policy release | remove | warehouse"),
}


def entity_for(name: str) -> str | None:
    """Entity named by ``name`` (an alias, or a file stem such as ``stock-2026-11-23``)."""
    low = name.lower()
    if low in ALIASES:
        return ALIASES[low]
    for alias in sorted((a for a in ALIASES if "_" in a), key=len, reverse=True):  # delivery_lines-2026.csv
        if low.startswith(alias) and low[len(alias):len(alias) + 1] in ("", "-", "_", ".", " "):
            return ALIASES[alias]
    for sep in ("-", "_", ".", " "):
        head = low.split(sep, 1)[0]
        if head in ALIASES:
            return ALIASES[head]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


#: A number written as text: plain ASCII decimal notation only (no exponent, no digit grouping, no
#: ``_``, no non-ASCII digits such as full-width ``１``, no NaN/Infinity), optional sign and fraction.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _plain(col: str, text: str) -> str:
    if not _PLAIN_NUMBER.fullmatch(text):
        raise RowError(f"bad number in {col}: {text!r}")  # plain decimal digits 0-9 only, e.g. 12 or 12.50
    return text


def _int(col: str, value: Any) -> int:
    if isinstance(value, bool):
        raise RowError(f"bad number in {col}: {value!r}")
    if isinstance(value, int):
        return value
    text = _text(value) if not isinstance(value, Decimal) else str(value)
    if not isinstance(value, Decimal):
        _plain(col, text)
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad number in {col}: {text!r}") from None
    if not dec.is_finite() or dec != dec.to_integral_value():
        raise RowError(f"bad number in {col}: {text!r} is not a whole number")
    return int(dec)


def _decimal(col: str, value: Any) -> Decimal:
    if isinstance(value, float):
        # JSON Lines are parsed with parse_float=Decimal; a float here came from a SQL driver
        value = Decimal(repr(value))
    if isinstance(value, bool):
        raise RowError(f"bad number in {col}: {value!r}")
    text = _plain(col, _text(value)) if not isinstance(value, Decimal) else value
    try:
        dec = text if isinstance(text, Decimal) else Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad number in {col}: {text!r}") from None
    if not dec.is_finite():
        raise RowError(f"bad number in {col}: {text!r}")
    return dec


#: digits a GTIN column may have: EAN-8, UPC-A, EAN-13
_GTIN_LENGTHS = {"gtin": (8, 12, 13), "upc": (12,)}


def gs1_check_digit(body: str) -> int:
    """The GS1 check digit for the digits before it (weights 3, 1, 3 … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _gtin(col: str, kind: str, value: Any) -> str:
    text = _text(value)
    lengths = _GTIN_LENGTHS[kind]
    label = "EAN" if kind == "gtin" else "UPC"
    if not (text.isascii() and text.isdigit()) or len(text) not in lengths:
        raise RowError(f"bad {label} in {col}: {text!r} (expected {' or '.join(map(str, lengths))} digits)")
    expected = gs1_check_digit(text[:-1])
    if int(text[-1]) != expected:
        raise RowError(f"bad {label} in {col}: {text!r} has a wrong check digit (expected {expected})")
    return text


def _sizes(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        items = [_text(v) for v in value]
    else:
        text = _text(value)
        if text.startswith("["):
            try:
                items = [_text(v) for v in json.loads(text)]
            except (ValueError, TypeError):
                raise RowError(f"bad size list: {text!r}") from None
        else:
            items = [s.strip() for s in text.split("|")]
    items = [s for s in items if s]
    if not items:
        raise RowError("missing sizes")
    if len(set(items)) != len(items):
        raise RowError(f"duplicate size in size chart: {'|'.join(items)}")
    return items


def _flag(col: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(f"bad flag in {col}: {text!r} (expected true/false)")


def _datetime(col: str, value: Any) -> datetime:
    """An aware time: ISO-8601 text with an offset (or Z); a SQL driver's naive datetime is UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = _text(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise RowError(f"bad time in {col}: {text!r} (expected ISO-8601 such as 2026-12-01T10:00:00+01:00)") from None
    if parsed.tzinfo is None:
        raise RowError(f"bad time in {col}: {text!r} has no UTC offset (add +00:00 or Z)")
    return parsed.astimezone(UTC)


def _check_fulfilment(entity: str, out: dict[str, Any]) -> None:
    if entity == "delivery":
        if out["capture"] and out["paid_outside"]:
            raise RowError("capture and paid_outside are both true (a shipment paid outside Centra is not captured)")
        if out["packages"] is not None and out["packages"] < 0:
            raise RowError(f"bad number in packages: {out['packages']} is negative")
        return
    if out["order_line_id"] is None and not out["sku"] and not out["ean"]:
        raise RowError("missing order_line_id, sku or ean (one identifies the order line)")
    if out["quantity"] <= 0:
        raise RowError(f"bad number in quantity: {out['quantity']} (must be > 0)")
    if entity == "cancellation":
        policy = (out["stock_policy"] or "release").lower()
        if policy not in ("release", "remove", "warehouse"):
            raise RowError(f"bad stock_policy {out['stock_policy']!r} (expected release | remove | warehouse)")
        if policy == "warehouse" and not out["warehouse"]:
            raise RowError("missing warehouse (stock_policy warehouse sends the units to that warehouse)")
        out["stock_policy"] = policy


def is_removed(raw: Mapping[str, Any]) -> bool:
    value = raw.get("removed")
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(f"bad flag in removed: {text!r} (expected true/false)")


def convert(layout: Layout, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The typed staging row for ``raw`` (column -> value), or ``RowError``."""
    out: dict[str, Any] = {}
    for col in layout.columns:
        value = raw.get(col.name)
        empty = value is None or (isinstance(value, str) and not value.strip())
        if empty:
            if col.required:
                raise RowError(f"missing {col.name}")
            out[col.name] = col.default
            continue
        if col.kind == "str":
            text = _text(value)
            if len(text) > col.max_length:
                raise RowError(f"{col.name} longer than {col.max_length} characters")
            out[col.name] = text
        elif col.kind == "int":
            out[col.name] = _int(col.name, value)
        elif col.kind == "decimal":
            out[col.name] = _decimal(col.name, value)
        elif col.kind in ("status", "product_status"):
            status = _text(value).upper()
            allowed = ("ACTIVE", "INACTIVE", "CANCELLED") if col.kind == "product_status" else ("ACTIVE", "INACTIVE")
            if status not in allowed:
                raise RowError(f"bad {col.name} {_text(value)!r} (expected {' | '.join(allowed)})")
            out[col.name] = status
        elif col.kind == "sizes":
            out[col.name] = _sizes(value)
        elif col.kind == "bool":
            out[col.name] = _flag(col.name, value)
        elif col.kind == "datetime":
            out[col.name] = _datetime(col.name, value)
        elif col.kind in ("gtin", "upc"):
            out[col.name] = _gtin(col.name, col.kind, value)
        else:  # pragma: no cover - layouts are declared above
            raise AssertionError(col.kind)
    if layout.entity == "stock" and out["quantity"] < 0:
        raise RowError(f"bad number in quantity: {out['quantity']} is negative")
    if layout.entity == "price":
        for name in ("price", "rrp"):
            if out[name] is not None and out[name] < 0:
                raise RowError(f"bad number in {name}: {out[name]} is negative")
    if layout.entity in ("delivery", "delivery_line", "cancellation"):
        _check_fulfilment(layout.entity, out)
    if layout.entity == "pricelist":
        cur = out["currency"].upper()
        if len(cur) != 3 or not cur.isalpha():
            raise RowError(f"bad currency {out['currency']!r} (expected an ISO 4217 code like SEK)")
        out["currency"] = cur
    return out


def raw_key(layout: Layout, raw: Mapping[str, Any]) -> str | None:
    """The row's key as text (``WH-MAIN|7350000000017``), or None when a key column is missing."""
    parts = []
    for name in layout.key:
        text = _text(raw.get(name))
        if not text and not (layout.entity == "price" and name == "variant_number"):
            return None
        parts.append(text)
    if layout.entity == "price" and not parts[-1]:
        parts.pop()
    return "|".join(parts)
