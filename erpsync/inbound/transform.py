"""Pure transforms: a ``SoapEvent`` (plain dicts) into the rows of the ERP mapping tables.

No I/O. Money and quantities become ``Decimal`` (never float), dates aware UTC (offset-less dates
are in the Centra store's time zone). A value that cannot be understood raises ``ItemRejected``
with the reason; ``to_inbound_item`` turns that into an item to park (it is still acknowledged).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ItemRejected
from erpsync.soap.models import KNOWN_EVENT_TYPES, MISSIONS, SoapEvent, parse_centra_date
from erpsync.store.inbox import MAX_EVENT_ID, EventMeta, InboundItem, ObjectChange

DEDICATED_TABLES = {"order": "order", "customer": "customer", "account": "account", "invoice": "invoice"}
# <data> holds the object as the matching X_Update names its items: paymentterms_Update and
# shippingterms_Update repeat the plural name (PROTOCOL.md §1.2), so their events may too
DATA_TAG_ALIASES = {"paymentterm": frozenset({"paymentterm", "paymentterms"}),
                    "shippingterm": frozenset({"shippingterm", "shippingterms"})}
_INTEGER = re.compile(r"\s*-?[0-9]+\s*")


def to_inbound_item(event: SoapEvent, store_tz: tzinfo) -> InboundItem:
    """The event as the inbox repository takes it: a change to apply, or a reason to park."""
    meta = EventMeta(event.id, event.seq, event.type, event.entry, event.mission, event.date, event.date_ambiguous)
    try:
        change = event_change(event, store_tz)
    except ItemRejected as exc:
        return InboundItem(meta, None, exc.reason, event.raw_xml)
    return InboundItem(meta, change, None, "")  # the raw XML is kept only for what gets parked


def event_change(event: SoapEvent, store_tz: tzinfo) -> ObjectChange:
    """What ``event`` does to its object. Raises ``ItemRejected`` for anything not mappable."""
    if event.problem:
        raise ItemRejected(event.problem, item_key=event.id)
    if len(event.id) > MAX_EVENT_ID:
        raise ItemRejected(f"event id longer than {MAX_EVENT_ID} characters", item_key=event.id)
    if event.type not in KNOWN_EVENT_TYPES:
        raise ItemRejected(f"unknown event type {event.type!r}", item_key=event.id)
    if event.mission not in MISSIONS:
        raise ItemRejected(f"unknown mission {event.mission!r}", item_key=event.id)
    table = DEDICATED_TABLES.get(event.type, "generic")
    generic_type = event.type if table == "generic" else None
    key = event.entry
    if len(key) > 128:
        raise ItemRejected(f"entry id longer than 128 characters: {key[:40]!r}…", item_key=event.id)
    if event.mission == "delete":
        return ObjectChange(table, key, delete=True, generic_type=generic_type)
    data = event.data
    if data is None:
        # an update that carries no object (``<data/>``: paymentterm, shippingterm, …): it is what it
        # is, an update of (type, entry); recorded in the generic table without touching its payload
        return ObjectChange("generic", key, generic_type=event.type)
    if event.data_tag not in DATA_TAG_ALIASES.get(event.type, (event.type,)):
        raise ItemRejected(f"<data> holds <{event.data_tag}>, expected <{event.type}>", item_key=event.id)
    where = f"{event.type} {key}"
    if table == "order":
        return _order(key, data, store_tz, where)
    if table == "customer":
        return ObjectChange("customer", key, columns={
            "email": _text(data, "email", 256), "firstname": _text(data, "firstname", 128),
            "lastname": _text(data, "lastname", 128), "country": _text(data, "country", 8),
            "status": _text(data, "status", 32), "payload": data})
    if table == "account":
        name = _text(data, "name", 256) or _text(data, "company", 256) or _text(data, "description", 256)
        return ObjectChange("account", key, columns={
            "name": name, "status": _text(data, "status", 32), "payload": data})
    if table == "invoice":
        order = data.get("order")
        order_id = order.get("id") if isinstance(order, dict) else order
        if order_id is None:
            order_id = data.get("orderid") or data.get("order_id")
        total_key = next((k for k in ("total", "invoicetotal", "grandtotal", "amount") if k in data), "total")
        return ObjectChange("invoice", key, columns={
            "order_id": _clip(order_id, 128), "total": money(data.get(total_key), f"{where} {total_key}"),
            "currency": _text(data, "currency", 8), "payload": data})
    return ObjectChange("generic", key, generic_type=generic_type, columns={"payload": data})


def _order(key: str, data: dict[str, Any], store_tz: tzinfo, where: str) -> ObjectChange:
    columns = {
        "order_number": _text(data, "ordernumber", 64) or key[:64],
        "status": _text(data, "status", 32),
        "store": _int(data.get("store"), f"{where} store"),
        "currency": _text(data, "currency", 8),
        "order_total": money(data.get("ordertotal"), f"{where} ordertotal"),
        "customer_id": _clip(_ref_id(data.get("customer")), 128),
        "market": _clip(_ref_id(data.get("market")), 128),
        "pricelist": _clip(_ref_id(data.get("pricelist")), 128),
        "created": _date(data.get("created"), store_tz, f"{where} created"),
        "payload": data,
    }
    lines = []
    for no, product in enumerate(as_list(data.get("products"), "product"), start=1):
        if not isinstance(product, dict):
            raise ItemRejected(f"{where}: order line {no} is not an object")
        lw = f"{where} line {no}"
        sizes = [s for s in as_list(product.get("sizes"), "size") if isinstance(s, dict)]
        size = sizes[0] if len(sizes) == 1 else {}
        bundle = product.get("bundleinfo")
        lines.append({
            "order_id": key, "line_no": no,
            "product_id": _clip(product.get("id"), 128),
            "variant_id": _clip(_ref_id(product.get("variation")), 128),
            "sku": _clip(product.get("sku"), 128),
            "size": _clip(size.get("id") if size else None, 64),
            "size_sku": _clip(size.get("sku") if size else None, 128),
            "order_item_id": _clip(_ref_id(size.get("orderitem")) if size else None, 64),
            "qty": money(product.get("qty"), f"{lw} qty"),
            "price": money(product.get("price"), f"{lw} price"),
            "origprice": money(product.get("origprice"), f"{lw} origprice"),
            "discount": money(product.get("discount"), f"{lw} discount"),
            "subtotal": money(product.get("subtotal"), f"{lw} subtotal"),
            "tax": money(product.get("tax"), f"{lw} tax"),
            "description": product.get("description") if isinstance(product.get("description"), str) else None,
            "is_bundle_virtual": isinstance(bundle, dict) and yes(bundle.get("isbundle")),
            "payload": product,
        })
    shipments = []
    for no, shipment in enumerate(as_list(data.get("shipments"), "shipment"), start=1):
        if not isinstance(shipment, dict):
            raise ItemRejected(f"{where}: shipment {no} is not an object")
        sid = shipment.get("id") or shipment.get("shipment") or shipment.get("shipmentid")
        shipments.append({"order_id": key, "shipment_no": no, "shipment_id": _clip(sid, 128), "payload": shipment})
    return ObjectChange("order", key, columns=columns, lines=lines, shipments=shipments)


# ------------------------------------------------------------------ value helpers


def money(value: Any, where: str) -> Decimal | None:
    """A Centra decimal string (``1135.00``, ``25.000``) as an exact ``Decimal``; empty -> None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemRejected(f"{where}: expected a decimal string, got a nested element")
    try:
        dec = Decimal(value.strip().replace(" ", ""))
    except InvalidOperation:
        raise ItemRejected(f"{where}: {value[:40]!r} is not a decimal number") from None
    if not dec.is_finite():
        raise ItemRejected(f"{where}: {value[:40]!r} is not a finite number")
    # the columns hold NUMERIC(28,8): reject what would overflow or be rounded, never store it inexactly
    if dec.adjusted() >= 20:
        raise ItemRejected(f"{where}: {value[:40]!r} is too large (at most 20 integer digits)")
    exponent = dec.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8 and dec != dec.quantize(Decimal("1e-8")):
        raise ItemRejected(f"{where}: {value[:40]!r} has more than 8 decimal places")
    return dec


def yes(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("yes", "true", "1")


def as_list(container: Any, item: str) -> list[Any]:
    """``<products><product/>…</products>`` as a list, whatever shape the dict took."""
    if container is None or container == "":
        return []
    if isinstance(container, list):
        return container
    if isinstance(container, dict):
        inner = container.get(item)
        if inner is None:
            return []
        return inner if isinstance(inner, list) else [inner]
    return []


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id") if isinstance(value.get("id"), str) else None
    return value if isinstance(value, str) else None


def _text(data: dict[str, Any], key: str, limit: int) -> str | None:
    return _clip(data.get(key), limit)


def _clip(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or value == "":
        return None
    return value[:limit]


def _int(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _INTEGER.fullmatch(value):
        raise ItemRejected(f"{where}: {str(value)[:40]!r} is not an integer")
    number = int(value)
    if abs(number) > 2**31 - 1:
        raise ItemRejected(f"{where}: {value[:40]!r} is out of range")
    return number


def _date(value: Any, store_tz: tzinfo, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemRejected(f"{where}: expected a date string")
    try:
        return parse_centra_date(value, store_tz)
    except ValueError:
        raise ItemRejected(f"{where}: {value[:40]!r} is not a date") from None
