"""Pure transforms: a GraphQL ``Event`` (and the order it refers to) into the SAME rows the SOAP
source writes (``erpsync.inbound.transform``), so the ERP cannot tell which queue delivered it.

No I/O. Into the SOAP-shaped inbox (PROTOCOL.md §2.4): type = ``objectType`` lower-cased, entry =
``objectReference`` (the order number for orders), mission = ``delete`` for ``DELETED`` else
``update``. The inbox key is ``gql:<id>``: GraphQL event ids are their own sequence, never mixed
with SOAP's (accepted as JSON number or string, up to 64 bits). The version of an object is its
``updatedAt`` (orders) or the event's ``createdAt``: with ``source = "both"`` a version one queue
already delivered is ``superseded`` when the other delivers it.

A value that cannot be understood parks the event with a reason naming its path
(``order 1201: object.grandTotal.value: …``); it is still confirmed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ItemRejected
from erpsync.store.inbox import EventMeta, InboundItem, ObjectChange

SOURCE_PREFIX = "gql:"
MAX_INT64 = 2**63 - 1
#: GraphQL OrderStatus → the SOAP status the order rows carry
STATUS_TO_SOAP = {"PENDING": "pending", "CONFIRMED": "confirmed", "PROCESSING": "processing",
                  "SHIPPED": "completed", "CANCELLED": "cancelled", "ARCHIVED": "archived"}
DEDICATED = {"Order": "order", "Customer": "customer", "Account": "account"}


def event_id(raw: Any) -> int:
    """An event id as sent (JSON number or string), checked to fit 64 bits. ``ItemRejected`` else."""
    if isinstance(raw, bool):
        raise ItemRejected("event.id: not an integer")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        value = int(raw.strip())
    else:
        raise ItemRejected(f"event.id: {str(raw)[:40]!r} is not an integer")
    if not 0 <= value <= MAX_INT64:
        raise ItemRejected(f"event.id: {value} does not fit 64 bits")
    return value


def inbox_id(raw: Any) -> str:
    return f"{SOURCE_PREFIX}{event_id(raw)}"


def to_inbound_item(event: dict[str, Any], order: dict[str, Any] | None = None) -> InboundItem:
    """One fetched event as the inbox takes it. ``order``: the current order read for an ``Order``
    event (references strategy); else ``event["object"]`` is used."""
    otype = str(event.get("objectType") or "")
    change_type = str(event.get("changeType") or "")
    ref = event.get("objectReference")
    entry = str(ref) if ref is not None else ""
    mission = "delete" if change_type == "DELETED" else "update"
    try:
        eid = inbox_id(event.get("id"))
    except ItemRejected as exc:
        meta = EventMeta("", None, otype.lower()[:40] or "unknown", entry, mission, None)
        return InboundItem(meta, None, exc.reason, _raw(event))
    created = _safe_date(event.get("createdAt"))
    obj = order if order is not None else event.get("object")
    version_date = _safe_date(obj.get("updatedAt")) if isinstance(obj, dict) else None
    meta = EventMeta(eid, None, otype.lower()[:40] or "unknown", entry, mission, version_date or created)
    try:
        change = event_change(otype, change_type, entry, obj, event)
    except ItemRejected as exc:
        return InboundItem(meta, None, exc.reason, _raw(event, obj))
    return InboundItem(meta, change, None, "")


def event_change(otype: str, change_type: str, entry: str, obj: Any, event: dict[str, Any]) -> ObjectChange:
    """What the event does to its object; ``ItemRejected`` (a reason naming the path) if unusable."""
    if not otype:
        raise ItemRejected("event.objectType missing")
    if not entry or not entry.isdigit():
        raise ItemRejected(f"{otype}: event.objectReference {entry!r} is not an integer")
    table = DEDICATED.get(otype, "generic")
    generic_type = otype.lower()[:40] if table == "generic" else None
    where = f"{otype.lower()} {entry}"
    if change_type == "DELETED":
        return ObjectChange(table, entry, delete=True, generic_type=generic_type)
    if table == "generic":
        # types erpsync does not map (and those Centra sends without content): recorded as they came
        return ObjectChange("generic", entry, generic_type=generic_type,
                            columns={"payload": jsonable({"objectType": otype, "changeType": change_type,
                                                          "object": obj})})
    if not isinstance(obj, dict):
        # [open] null on another change type: deleted since, or unreadable. The stored copy stays.
        raise ItemRejected(f"{where}: event.object is null for {change_type} (deleted since or not readable); "
                           "the stored copy is kept")
    if table == "order":
        return order_change(entry, obj, where)
    if table == "customer":
        _same_id(obj.get("customerId", obj.get("id")), entry, f"{where}: object.id")
        return ObjectChange("customer", entry, columns={
            "email": _clip(obj.get("email"), 256), "firstname": _clip(obj.get("firstName"), 128),
            "lastname": _clip(obj.get("lastName"), 128), "country": None, "status": None,
            "payload": jsonable(obj)})
    _same_id(obj.get("accountId", obj.get("id")), entry, f"{where}: object.id")
    return ObjectChange("account", entry, columns={"name": _clip(obj.get("name"), 256), "status": None,
                                                   "payload": jsonable(obj)})


def order_change(entry: str, order: dict[str, Any], where: str) -> ObjectChange:
    """An order (``Order`` interface fields, PROTOCOL.md §2.4) as the SOAP source's rows."""
    number = order.get("number")
    if number is None:
        raise ItemRejected(f"{where}: object.number missing")
    _same_id(number, entry, f"{where}: object.number")
    total = order.get("grandTotal")
    if not isinstance(total, dict):
        raise ItemRejected(f"{where}: object.grandTotal missing")
    status = order.get("status")
    if not isinstance(status, str):
        raise ItemRejected(f"{where}: object.status missing")
    store = order.get("store")
    store_id = store.get("id") if isinstance(store, dict) else None
    if store_id is not None and (not isinstance(store_id, int) or isinstance(store_id, bool)):
        raise ItemRejected(f"{where}: object.store.id: {str(store_id)[:40]!r} is not an integer")
    customer = order.get("customer")
    pricelist = order.get("pricelist")
    market = order.get("market")
    columns = {
        "order_number": str(number)[:64],
        "status": STATUS_TO_SOAP.get(status, status.lower())[:32],
        "store": store_id,
        "currency": _clip(_path(total, "currency", "code"), 8),
        "order_total": money(total.get("value"), f"{where}: object.grandTotal.value"),
        "customer_id": _clip(_str_id(customer.get("id")) if isinstance(customer, dict) else None, 128),
        "market": _clip(_str_id(market.get("id")) if isinstance(market, dict) else None, 128),
        "pricelist": _clip((pricelist.get("externalId") or _str_id(pricelist.get("id")))
                           if isinstance(pricelist, dict) else None, 128),
        "created": date(order.get("createdAt"), f"{where}: object.createdAt"),
        "payload": jsonable(order),
    }
    raw_lines = order.get("lines")
    if not isinstance(raw_lines, list):
        raise ItemRejected(f"{where}: object.lines missing")
    lines = []
    for no, line in enumerate(raw_lines, start=1):
        lw = f"{where}: object.lines[{no - 1}]"
        if not isinstance(line, dict):
            raise ItemRejected(f"{lw} is not an object")
        qty, cancelled = _count(line.get("quantity"), f"{lw}.quantity"), _count(line.get("cancelledQuantity") or 0,
                                                                                  f"{lw}.cancelledQuantity")
        unit = money(_path(line, "unitPrice", "value"), f"{lw}.unitPrice.value")
        orig = money(_path(line, "unitOriginalPrice", "value"), f"{lw}.unitOriginalPrice.value")
        value = money(_path(line, "lineValue", "value"), f"{lw}.lineValue.value")
        ordered = Decimal(qty + cancelled)
        discount = (orig * qty - value) if orig is not None and value is not None else None
        lines.append({
            "order_id": entry, "line_no": no,
            "product_id": None, "variant_id": None,
            "sku": _clip(line.get("productNumber"), 128),
            "size": _clip(line.get("size"), 64),
            "size_sku": _clip(_path(line, "productSize", "SKU"), 128),
            "order_item_id": _clip(_str_id(line.get("id")), 64),
            "qty": ordered, "price": unit, "origprice": orig, "discount": discount, "subtotal": value,
            "tax": money(line.get("taxPercent"), f"{lw}.taxPercent"),
            "description": _clip(line.get("productName"), 10_000),
            "is_bundle_virtual": False,
            "payload": jsonable(line),
        })
    shipments = []
    for no, ship in enumerate(order.get("shipments") or [], start=1):
        if not isinstance(ship, dict):
            raise ItemRejected(f"{where}: object.shipments[{no - 1}] is not an object")
        shipments.append({"order_id": entry, "shipment_no": no, "shipment_id": _clip(_str_id(ship.get("id")), 128),
                          "payload": jsonable(ship)})
    return ObjectChange("order", entry, columns=columns, lines=lines, shipments=shipments)


# ------------------------------------------------------------------ value helpers


def jsonable(value: Any) -> Any:
    """The object for a JSON column: Decimals (money decoded exactly) as their exact strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def money(value: Any, where: str) -> Decimal | None:
    """A JSON number (decoded as ``Decimal`` by the client, never float) or decimal string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ItemRejected(f"{where}: not a number")
    if isinstance(value, float):
        value = repr(value)  # only when a caller decoded floats: the shortest repr, never the binary expansion
    try:
        dec = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise ItemRejected(f"{where}: {str(value)[:40]!r} is not a number") from None
    if not dec.is_finite() or dec.adjusted() >= 20:
        raise ItemRejected(f"{where}: {str(value)[:40]!r} is out of range")
    return dec


def date(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemRejected(f"{where}: expected a date string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ItemRejected(f"{where}: {value[:40]!r} is not an ISO-8601 date") from None
    if parsed.tzinfo is None:
        raise ItemRejected(f"{where}: {value[:40]!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _safe_date(value: Any) -> datetime | None:
    try:
        return date(value, "")
    except ItemRejected:
        return None


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ItemRejected(f"{where}: {str(value)[:40]!r} is not a count")
    return value


def _same_id(value: Any, entry: str, where: str) -> None:
    if value is not None and _str_id(value) != entry:
        raise ItemRejected(f"{where}: {str(value)[:40]!r} is not the event's objectReference {entry}")


def _str_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


def _path(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _clip(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or value == "":
        return None
    return value[:limit]


def _raw(event: dict[str, Any], obj: Any = None) -> str:
    import json

    body = dict(event)
    if obj is not None:
        body["object"] = obj
    return json.dumps(body, default=str, ensure_ascii=False)[:100_000]
