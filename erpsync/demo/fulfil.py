"""The demo's sample ERP warehouse: it ships part of the orders erpsync pulled.

For every other confirmed (or processing) order without shipments, it writes what a warehouse
system writes into erpsync's fulfilment tables (docs/erp-tables.md): one delivery, or two (a
partial shipment) when the order has several items; lines by Centra's order line id on even order
numbers and by SKU on odd ones; retail deliveries ask for a capture, wholesale ones are paid
outside Centra (invoice). Bundles' virtual lines are never picked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlmodel import Session, col

from erpsync.store.fulfilment import ErpDelivery, ErpDeliveryLine
from erpsync.store.models import CentraOrder


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _items(payload: Mapping[str, Any]) -> list[tuple[int, str, int]]:
    """(orderitem id, SKU, quantity) of every picked item."""
    out: list[tuple[int, str, int]] = []
    for product in _as_list((payload.get("products") or {}).get("product")):
        if not isinstance(product, dict) or (product.get("bundleinfo") or {}).get("isbundle") == "yes":
            continue
        for size in _as_list((product.get("sizes") or {}).get("size")):
            if isinstance(size, dict) and (size.get("orderitem") or {}).get("id"):
                out.append((int(size["orderitem"]["id"]), str(size.get("sku")), int(float(size.get("qty") or 0))))
    return [x for x in out if x[2] > 0]


def write_sample_deliveries(engine: Engine, *, every: int = 2) -> int:
    """Write deliveries for every ``every``-th shippable pulled order not delivered yet; returns how many."""
    with Session(engine) as s:
        orders = s.exec(select(CentraOrder.order_number, CentraOrder.payload).where(  # type: ignore[call-overload]
            col(CentraOrder.status).in_(("confirmed", "processing")), col(CentraOrder.deleted).is_(False))
            .order_by(col(CentraOrder.order_number))).all()
        done = {n for (n,) in s.exec(select(ErpDelivery.order_number)).all()}  # type: ignore[call-overload]
    written = 0
    with engine.begin() as conn:
        for n, (number, payload) in enumerate(orders):
            if number in done or n % every or not isinstance(payload, dict) or payload.get("shipments"):
                continue
            items = _items(payload)
            if not items:
                continue
            retail = payload.get("type") != "wholesale"
            parts = [items[: len(items) // 2], items[len(items) // 2:]] if len(items) > 1 else [items]
            for p, part in enumerate(parts, start=1):
                delivery_id = f"WMS-{number}-{p}"
                by_sku = int(number) % 2 == 1
                conn.execute(insert(ErpDeliveryLine), [
                    {"delivery_id": delivery_id, "line_no": i, "quantity": qty,
                     "order_line_id": None if by_sku else line_id, "sku": sku if by_sku else None}
                    for i, (line_id, sku, qty) in enumerate(part, start=1)])
                conn.execute(insert(ErpDelivery).values(
                    delivery_id=delivery_id, order_number=number, carrier="PostNord", service="MyPack Home",
                    tracking_number=f"PN{int(number) * 10 + p:09d}SE", packages=1, capture=retail,
                    paid_outside=not retail))
                written += 1
    return written
