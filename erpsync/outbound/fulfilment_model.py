"""Pure parts of the fulfilment job: Centra's order as read, line resolution, mutation inputs.

No I/O here: every function takes what was read and returns what to send or why not
(``ItemRejected`` with a reason naming the field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from erpsync.errors import ItemRejected

SHIPPABLE_STATUSES = ("CONFIRMED", "PROCESSING")
WAIT_STATUSES = ("PENDING",)


@dataclass(frozen=True)
class ShipmentView:
    id: int
    number: str
    is_good_to_go: bool
    is_paid: bool
    is_captured: bool
    is_shipped: bool
    lines: tuple[tuple[int, int], ...]  # (order line id, quantity), sorted

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ShipmentView:
        lines: dict[int, int] = {}
        for line in raw.get("lines") or []:
            lid = int((line.get("orderLine") or {}).get("id") or 0)
            lines[lid] = lines.get(lid, 0) + int(line.get("quantity") or 0)
        return cls(
            id=int(raw["id"]),
            number=str(raw.get("number") or ""),
            is_good_to_go=bool(raw.get("isGoodToGo")),
            is_paid=bool(raw.get("isPaid")),
            is_captured=bool(raw.get("isCaptured")),
            is_shipped=bool(raw.get("isShipped")),
            lines=tuple(sorted(lines.items())),
        )


@dataclass(frozen=True)
class OrderLineView:
    id: int
    quantity: int  # excludes cancelled units
    cancelled: int
    sku: str | None
    ean: str | None


@dataclass
class OrderView:
    number: str
    wholesale: bool
    status: str
    on_hold: bool
    lines: list[OrderLineView]
    shipments: list[ShipmentView] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> OrderView:
        lines = []
        for line in raw.get("lines") or []:
            size = line.get("productSize") or {}
            lines.append(OrderLineView(int(line["id"]), int(line.get("quantity") or 0),
                                       int(line.get("cancelledQuantity") or 0), size.get("SKU"), size.get("EAN")))
        return cls(
            number=str(raw["number"]),
            wholesale=raw.get("__typename") == "WholesaleOrder",
            status=str(raw.get("status") or ""),
            on_hold=bool(raw.get("isOnHold")),
            lines=lines,
            shipments=[ShipmentView.parse(s) for s in raw.get("shipments") or []],
        )

    def line(self, line_id: int) -> OrderLineView | None:
        return next((x for x in self.lines if x.id == line_id), None)

    def in_shipments(self, exclude: set[int] | None = None) -> dict[int, int]:
        """Order line id → units in this order's shipments (minus the ``exclude``d shipments)."""
        out: dict[int, int] = {}
        for s in self.shipments:
            if exclude and s.id in exclude:
                continue
            for lid, qty in s.lines:
                out[lid] = out.get(lid, 0) + qty
        return out


@dataclass(frozen=True)
class WantedLine:
    """One ERP delivery line: a Centra order line id, or a SKU / EAN to find on the order."""

    line_no: int
    quantity: int
    order_line_id: int | None = None
    sku: str | None = None
    ean: str | None = None

    def describe(self) -> str:
        if self.order_line_id is not None:
            return f"order line {self.order_line_id}"
        return f"SKU {self.sku}" if self.sku else f"EAN {self.ean}"


def resolve_lines(order: OrderView, wanted: Sequence[WantedLine], *, exclude: set[int] | None = None,
                  ) -> list[tuple[int, int]]:
    """(order line id, quantity) per order line, or ``ItemRejected`` naming the line.

    Lines given by SKU (then EAN) take the order's matching lines in order, as many units as each
    still has unshipped (one SKU can sit on two lines). Over-shipping, counting the units already
    in the order's shipments (but not those of ``exclude``), is refused with the figures.
    """
    shipped = order.in_shipments(exclude)
    free = {x.id: x.quantity - shipped.get(x.id, 0) for x in order.lines}
    out: dict[int, int] = {}
    for w in wanted:
        if w.quantity <= 0:
            raise ItemRejected(f"line {w.line_no}: quantity {w.quantity} must be > 0")
        if w.order_line_id is not None:
            line = order.line(w.order_line_id)
            if line is None:
                raise ItemRejected(f"line {w.line_no}: order_line_id {w.order_line_id} is not a line of order "
                                   f"{order.number}")
            candidates = [line]
        else:
            key, value = ("SKU", w.sku) if w.sku else ("EAN", w.ean)
            candidates = [x for x in order.lines if (x.sku if key == "SKU" else x.ean) == value]
            if not candidates:
                raise ItemRejected(f"line {w.line_no}: {key.lower()} {value} is on no line of order {order.number}")
        need = w.quantity
        for line in candidates:
            take = min(need, max(0, free[line.id] - out.get(line.id, 0)))
            if take:
                out[line.id] = out.get(line.id, 0) + take
                need -= take
            if not need:
                break
        if need:
            have = sum(max(0, free[x.id]) for x in candidates)
            detail = ", ".join(f"line {x.id}: quantity {x.quantity} (cancelled {x.cancelled}), "
                               f"in shipments {shipped.get(x.id, 0)}" for x in candidates)
            raise ItemRejected(f"line {w.line_no}: over-shipping: {w.describe()} asks {w.quantity}, only {have} "
                               f"left unshipped on order {order.number} ({detail})")
    return sorted(out.items())


def check_order(order: OrderView) -> str | None:
    """None when shipments may be made now; ``"wait"`` while the order is PENDING; else
    ``ItemRejected`` (cancelled, already shipped, on hold is a wait too)."""
    if order.status in WAIT_STATUSES or order.on_hold:
        return "wait"
    if order.status not in SHIPPABLE_STATUSES:
        raise ItemRejected(f"order {order.number} is {order.status}: only CONFIRMED or PROCESSING orders ship")
    return None


def shipped_at_value(shipped_at: datetime | None, now: datetime, margin_s: float) -> str | None:
    """``shippedAt`` to send (ISO-8601 with offset) or None for "now". A time at or after now is
    sent ``margin_s`` in the past: Centra refuses a shippedAt in the future (clock skew)."""
    if shipped_at is None:
        return None
    limit = now - timedelta(seconds=margin_s)
    return min(shipped_at, limit).isoformat(timespec="seconds")


def shipment_info(carrier: str | None, service: str | None, packages: int | None, tracking: str | None,
                  return_tracking: str | None) -> dict[str, Any] | None:
    info = {"carrier": carrier, "service": service, "packagesNumber": packages, "trackingNumber": tracking,
            "returnTrackingNumber": return_tracking}
    info = {k: v for k, v in info.items() if v not in (None, "")}
    return info or None


def create_input(number: str, lines: Sequence[tuple[int, int]], *, send_email: bool, external_id: str | None,
                 paid_outside: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "order": {"number": int(number)},
        "lines": [{"orderLine": {"id": lid}, "quantity": qty} for lid, qty in lines],
        "isGoodToGo": True,
        "sendEmail": send_email,
    }
    if paid_outside:
        out["isPaid"] = True
    if external_id is not None:
        out["externalId"] = external_id
    return out


def stock_policy(policy: str, warehouse: str | None) -> dict[str, Any]:
    if policy == "remove":
        return {"removeItemsFromStock": True}
    if policy == "warehouse":
        ref: dict[str, Any] = {"id": int(warehouse[3:])} if warehouse and warehouse.startswith("id:") \
            else {"externalId": warehouse}
        return {"sendItemsToDifferentWarehouse": ref}
    return {"releaseItemsBackToWarehouse": True}
