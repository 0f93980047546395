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
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ItemRejected
from erpsync.store.inbox import EventMeta, InboundItem, ObjectChange

SOURCE_PREFIX = "gql:"
MAX_INT64 = 2**63 - 1
#: GraphQL OrderStatus → the SOAP status the order rows carry
STATUS_TO_SOAP = {"PENDING": "pending", "CONFIRMED": "confirmed", "PROCESSING": "processing",
                  "SHIPPED": "completed", "CANCELLED": "cancelled", "ARCHIVED": "archived"}
DEDICATED = {"Order": "order", "Customer": "customer", "Account": "account"}
CENT = Decimal("0.01")
#: what the contract's GraphQL shape does not carry (PROTOCOL.md §2.4, integration-subset.graphql):
#: table -> columns the GraphQL source leaves as the SOAP source stored them (docs/operations.md)
GAPS = {
    # Order.market is Market {id name}: Centra's Int id and the name, never SOAP's market id string
    # (the ERP's own id for markets it created: Market has no externalId); WholesaleOrder has
    # account {id name} only: SOAP's buyer (customer_id of a wholesale order) is nowhere
    "order": ("market", "customer_id (wholesale orders)"),
    # Customer is {id email firstName lastName}; the subset has no customers query and no address on it
    "customer": ("country", "status"),
    "account": ("status",),  # Account is {id name}
    # OrderLine models no bundle types ([open]): a bundle's virtual line cannot be told apart
    "order_line": ("is_bundle_virtual",),
}


def event_id(raw: Any) -> int:
    """An event id as sent (JSON number or string), checked to fit 64 bits. ``ItemRejected`` else."""
    if isinstance(raw, bool):
        raise ItemRejected("event.id: not an integer")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and is_digits(raw.strip()):
        value = int(raw.strip())
    else:
        raise ItemRejected(f"event.id: {str(raw)[:40]!r} is not an integer")
    if not 0 <= value <= MAX_INT64:
        raise ItemRejected(f"event.id: {value} does not fit 64 bits")
    return value


def is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``²`` (which ``int`` refuses: a crash, the page
    never stored) and other scripts' digits (which ``int`` reads: another event's id)."""
    return text.isascii() and text.isdigit()


def inbox_id(raw: Any) -> str:
    return f"{SOURCE_PREFIX}{event_id(raw)}"


def to_inbound_item(event: dict[str, Any], order: dict[str, Any] | None = None,
                    object_time: datetime | None = None) -> InboundItem:
    """One fetched event as the inbox takes it. ``order``: the current order read for an ``Order``
    event (references strategy); else ``event["object"]`` is used.

    The version time (``EventMeta.date``, what ``source = "both"`` compares with SOAP's event dates):
    an order's ``updatedAt`` (the time of the state shown); for a deletion the event's ``createdAt``;
    for the other types, whose GraphQL object has no time of its own (``Customer``, ``Account``),
    ``object_time``: the newest ``createdAt`` of that object's events in the fetched page (the object
    shown is the current state, at least that new), else the event's ``createdAt``."""
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
    created = safe_date(event.get("createdAt"))
    obj = order if order is not None else event.get("object")
    if mission == "delete":
        version_date = created
    elif otype == "Order":
        version_date = (safe_date(obj.get("updatedAt")) if isinstance(obj, dict) else None) or created
    else:
        version_date = object_time or created
    meta = EventMeta(eid, None, otype.lower()[:40] or "unknown", entry, mission, version_date)
    try:
        change = event_change(otype, change_type, entry, obj, event)
    except ItemRejected as exc:
        return InboundItem(meta, None, exc.reason, _raw(event, obj))
    return InboundItem(meta, change, None, "")


def event_change(otype: str, change_type: str, entry: str, obj: Any, event: dict[str, Any]) -> ObjectChange:
    """What the event does to its object; ``ItemRejected`` (a reason naming the path) if unusable.

    The rows are those the SOAP source writes for the same object; a column whose value the
    contract's GraphQL shape does not carry (``GAPS``) is left out, so an upsert keeps what the SOAP
    queue stored there (NULL when only GraphQL ever delivered the object)."""
    if not otype:
        raise ItemRejected("event.objectType missing")
    if not entry or not is_digits(entry):
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
            "lastname": _clip(obj.get("lastName"), 128), "payload": jsonable(obj)})
    _same_id(obj.get("accountId", obj.get("id")), entry, f"{where}: object.id")
    return ObjectChange("account", entry, columns={"name": _clip(obj.get("name"), 256), "payload": jsonable(obj)})


def order_change(entry: str, order: dict[str, Any], where: str) -> ObjectChange:
    """An order (``Order`` interface fields, PROTOCOL.md §2.4) as the SOAP source's rows: one line
    row per SOAP ``products > product`` (``_product_lines``), money with SOAP's scale."""
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
    pricelist = order.get("pricelist")
    columns = {
        "order_number": str(number)[:64],
        "status": STATUS_TO_SOAP.get(status, status.lower())[:32],
        "store": store_id,
        "currency": _clip(_path(total, "currency", "code"), 8),
        "order_total": _scaled(money(total.get("value"), f"{where}: object.grandTotal.value"), 2),
        "pricelist": _clip((pricelist.get("externalId") or _str_id(pricelist.get("id")))
                           if isinstance(pricelist, dict) else None, 128),
        "created": date(order.get("createdAt"), f"{where}: object.createdAt"),
        "payload": jsonable(order),
    }
    if order.get("__typename") != "WholesaleOrder":
        # SOAP's customer_id is the retail customer; a wholesale order's buyer is not in the GraphQL
        # shape (WholesaleOrder has only account): left out, see GAPS
        customer = order.get("customer")
        columns["customer_id"] = _clip(_str_id(customer.get("id")) if isinstance(customer, dict) else None, 128)
    raw_lines = order.get("lines")
    if not isinstance(raw_lines, list):
        raise ItemRejected(f"{where}: object.lines missing")
    lines = _product_lines(entry, raw_lines, where)
    shipments = []
    for no, ship in enumerate(order.get("shipments") or [], start=1):
        if not isinstance(ship, dict):
            raise ItemRejected(f"{where}: object.shipments[{no - 1}] is not an object")
        shipments.append({"order_id": entry, "shipment_no": no, "shipment_id": _clip(_str_id(ship.get("id")), 128),
                          "payload": jsonable(ship)})
    return ObjectChange("order", entry, columns=columns, lines=lines, shipments=shipments)


def _ref(obj: Any) -> str | None:
    """A product's / variant's id as SOAP shows it: the ERP's id (``externalId``) for objects the ERP
    created, else Centra's id (PROTOCOL.md §1.3 ID conversion, §2.4)."""
    if not isinstance(obj, dict):
        return None
    return _clip(obj.get("externalId"), 128) or _clip(_str_id(obj.get("id")), 128)


def _product_lines(entry: str, raw_lines: list[Any], where: str) -> list[dict[str, Any]]:
    """GraphQL ``OrderLine``s (one per size: SOAP's ``orderitem``) grouped into SOAP's line rows (one
    per ``products > product``: a variant with its sizes, one price). Consecutive lines of the same
    product, variant, product number, prices, tax and discount form one row; a row with one size
    carries that size's ``size``, ``size_sku`` and ``order_item_id``. ``qty`` is ordered units
    (``quantity + cancelledQuantity``), ``discount`` the amount (``price × qty × discountPercent``,
    to the cent, half up), ``subtotal`` = ``price × qty − discount``, as the SOAP line carries them."""
    groups: list[tuple[tuple[Any, ...], list[tuple[int, dict[str, Any]]]]] = []
    for index, line in enumerate(raw_lines):
        lw = f"{where}: object.lines[{index}]"
        if not isinstance(line, dict):
            raise ItemRejected(f"{lw} is not an object")
        key = (_ref(line.get("product")), _ref(line.get("productVariant")), line.get("productNumber"),
               money(_path(line, "unitPrice", "value"), f"{lw}.unitPrice.value"),
               money(_path(line, "unitOriginalPrice", "value"), f"{lw}.unitOriginalPrice.value"),
               money(line.get("taxPercent"), f"{lw}.taxPercent"),
               money(line.get("discountPercent"), f"{lw}.discountPercent"))
        if groups and groups[-1][0] == key:
            groups[-1][1].append((index, line))
        else:
            groups.append((key, [(index, line)]))
    rows = []
    for no, (key, members) in enumerate(groups, start=1):
        product_id, variant_id, number, unit, orig, tax, pct = key
        ordered = 0
        for index, line in members:
            lw = f"{where}: object.lines[{index}]"
            ordered += _count(line.get("quantity"), f"{lw}.quantity") + _count(
                line.get("cancelledQuantity") or 0, f"{lw}.cancelledQuantity")
        if unit is None:
            raise ItemRejected(f"{where}: object.lines[{members[0][0]}].unitPrice.value missing")
        qty = Decimal(ordered)
        scaled = _scaled(unit, 2)
        price = unit if scaled is None else scaled
        gross = price * qty
        discount = (gross * (pct or 0) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        single = members[0][1] if len(members) == 1 else None
        rows.append({
            "order_id": entry, "line_no": no, "product_id": product_id, "variant_id": variant_id,
            "sku": _clip(number, 128),
            "size": _clip(single.get("size"), 64) if single else None,
            "size_sku": _clip(_path(single, "productSize", "SKU"), 128) if single else None,
            "order_item_id": _clip(_str_id(single.get("id")), 64) if single else None,
            "qty": qty, "price": price, "origprice": _scaled(orig, 2), "discount": discount,
            "subtotal": _scaled(gross - discount, 2), "tax": _scaled(tax, 3),
            "description": _clip(members[0][1].get("productName"), 10_000),
            # no is_bundle_virtual: bundle line types are not in the contract's GraphQL shape (GAPS); the
            # inbox keeps what SOAP said of the same line (else the column's default, false)
            "payload": jsonable({"lines": [line for _i, line in members]}),
        })
    return rows


def _scaled(value: Decimal | None, places: int) -> Decimal | None:
    """``value`` with at least ``places`` decimals, as SOAP writes money (``1135.00``) and tax rates
    (``25.000``): a JSON number has no scale (``1135``, ``1135.0``), the ERP's text columns do."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        return value.quantize(Decimal(1).scaleb(-places))
    return value


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


def safe_date(value: Any) -> datetime | None:
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
