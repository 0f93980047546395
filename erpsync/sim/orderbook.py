"""The simulated Centra's ONE order book, shared by the SOAP event queue and the GraphQL API.

Orders live where the generator made them (``EventGenerator.orders``, SOAP-shaped payloads); the
book reads them and adds what only the GraphQL side has: the order's hash ``id``, shipments with
their four flags and ``externalId``, cancelled quantities per line, capture outcomes. So an order
generated for the SOAP queue is read and shipped over GraphQL with the same number, and its lines
carry SOAP's ``orderitem`` ids (the contract's [open] default). Every change the book makes to an
order is written back into the SOAP payload (``shipments``, ``cancelled``, ``status``, payments)
and emits the order's event with its full current object, as Centra does; listeners registered
with :meth:`OrderBook.on_change` hear ``(order number, change)`` too (for a GraphQL events queue).

Shipments the generator made itself (an order advanced to ``completed``) are Centra's own
"Direct to Shipment" shipments: the book adopts them (an Int id, lines by SKU) when it first reads
the order. Methods validating input return ``userErrors``-style messages and change nothing when
there are any. Thread-safe: one re-entrant lock; the generator's own lock guards the payloads.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from erpsync.clock import Clock
from erpsync.sim.events import Payload
from erpsync.sim.generator import EventGenerator

Msg = dict[str, Any]
CAPTURE_OUTCOMES = ("success", "pending", "failed")
#: SOAP order status → GraphQL OrderStatus
STATUS_TO_GQL = {
    "pending": "PENDING",
    "confirmed": "CONFIRMED",
    "processing": "PROCESSING",
    "completed": "SHIPPED",
    "refunded": "SHIPPED",
    "cancelled": "CANCELLED",
    "archived": "ARCHIVED",
}
SHIPPABLE = ("confirmed", "processing")


def _msg(message: str, path: list[str]) -> Msg:
    return {"message": message, "path": [str(p) for p in path]}


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@dataclass(frozen=True)
class Line:
    """One order line = one SOAP ``products/product/sizes/size`` entry (its ``orderitem``)."""

    id: int
    position: int
    product_number: str
    sku: str
    size: str
    name: str
    ordered: int
    cancelled: int
    unit_price: Decimal
    unit_original_price: Decimal
    tax_percent: Decimal
    discount_percent: Decimal
    virtual: bool  # a bundle's virtual line: carries the price, never picked
    product_id: str = ""  # SOAP product id (the ERP's: GraphQL shows it as the product's externalId)
    variant_id: str = ""  # SOAP variation id
    variant_name: str = ""

    @property
    def quantity(self) -> int:
        """Ordered minus cancelled (GraphQL ``OrderLine.quantity``)."""
        return self.ordered - self.cancelled


@dataclass
class Shipment:
    id: int
    number: str
    order: str
    soap_id: str
    created_at: str
    lines: list[list[int]]  # [shipment line id, order line id, quantity]
    is_good_to_go: bool = True
    is_paid: bool = False
    paid_value: str | None = None
    is_captured: bool = False
    captured_at: str | None = None
    capture_status: str | None = None  # SUCCESS | PENDING | FAILED of the last capture attempt
    capture_ready_at: float | None = None  # a PENDING capture settles at this clock time
    captures: int = 0  # successful captures (more than one = a double capture)
    is_shipped: bool = False
    shipped_at: str | None = None
    completions: int = 0
    carrier: str | None = None
    service: str | None = None
    packages: int | None = None
    tracking: str | None = None
    return_tracking: str | None = None
    external_id: str | None = None
    by_centra: bool = False
    send_email: bool = False


@dataclass
class CaptureSettings:
    """How captures end: ``default`` outcome, per-order overrides, or by probability (seeded)."""

    default: str = "success"
    failed_probability: float = 0.0
    pending_probability: float = 0.0
    pending_seconds: float = 5.0  # a PENDING capture becomes captured this long after (sim clock)
    per_order: dict[str, str] = field(default_factory=dict)


class OrderBook:
    """Orders for SOAP and GraphQL alike (see the module docstring)."""

    def __init__(self, generator: EventGenerator, clock: Clock, capture: CaptureSettings | None = None) -> None:
        self.generator = generator
        self.clock = clock
        self.capture = capture or CaptureSettings()
        self._lock = threading.RLock()
        self._rng = random.Random(generator.seed)
        self.shipments: dict[int, Shipment] = {}
        self.by_order: dict[str, list[int]] = {}
        self.external: dict[str, int] = {}  # shipment externalId -> id
        self.external_sets: dict[str, list[int]] = {}  # externalId -> the distinct shipments given it
        self.cancelled: dict[int, int] = {}  # order line id -> cancelled units
        self.updated_at: dict[str, str] = {}
        self._next_shipment_id = 1
        self._listeners: list[Callable[[str, str], None]] = []

    # --- listeners ------------------------------------------------------------------------------

    def on_change(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(order number, change)`` after every change the book makes to an order;
        ``change`` is ``SHIPMENT_CREATED``, ``SHIPMENT_UPDATED``, ``SHIPMENT_COMPLETED`` or
        ``LINES_CANCELLED``."""
        self._listeners.append(listener)

    # --- reading --------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def numbers(self) -> list[str]:
        return self.generator.order_numbers()

    def order(self, number: str) -> Payload | None:
        """The SOAP-shaped order (a copy), with Centra-made shipments adopted into the book."""
        payload = self.generator.order_copy(number)
        if payload is not None:
            with self._lock:
                self._adopt_centra_shipments(number, payload)
        return payload

    @staticmethod
    def hash_id(number: str) -> str:
        """``Order.id``: a hash, GraphQL only (stable per order number)."""
        return hashlib.sha1(f"order:{number}".encode()).hexdigest()[:32]  # noqa: S324 - an id, not security

    def lines(self, payload: Payload) -> list[Line]:
        out: list[Line] = []
        position = 0
        for product in _as_list(_get(payload, "products", "product")):
            if not isinstance(product, dict):
                continue
            price = Decimal(str(product.get("price") or "0"))
            orig = Decimal(str(product.get("origprice") or price))
            qty_total = int(Decimal(str(product.get("qty") or "0")))
            discount = Decimal(str(product.get("discount") or "0"))
            gross = price * qty_total
            pct = (discount / gross * 100).quantize(Decimal("0.01")) if gross else Decimal(0)
            virtual = _get(product, "bundleinfo", "isbundle") == "yes"
            for size in _as_list(_get(product, "sizes", "size")):
                if not isinstance(size, dict):
                    continue
                line_id = int(str(_get(size, "orderitem", "id")))
                position += 1
                out.append(
                    Line(
                        id=line_id,
                        position=position,
                        product_number=str(product.get("sku") or product.get("id") or ""),
                        sku=str(size.get("sku") or ""),
                        size=str(size.get("description") or size.get("id") or ""),
                        name=str(product.get("description") or ""),
                        ordered=int(Decimal(str(size.get("qty") or "0"))),
                        cancelled=self.cancelled.get(line_id, 0),
                        unit_price=price,
                        unit_original_price=orig,
                        tax_percent=Decimal(str(product.get("tax") or "0")),
                        discount_percent=pct,
                        virtual=virtual,
                        product_id=str(product.get("id") or ""),
                        variant_id=str(_get(product, "variation", "id") or ""),
                        variant_name=str(_get(product, "variation", "description") or ""),
                    )
                )
        return out

    def order_shipments(self, number: str) -> list[Shipment]:
        with self._lock:
            return [self.shipments[i] for i in self.by_order.get(number, [])]

    def shipment(self, shipment_id: int | None = None, external_id: str | None = None) -> Shipment | None:
        with self._lock:
            if external_id is not None:
                found = self.external.get(external_id)
                shipment_id = found if found is not None else -1
            ship = self.shipments.get(shipment_id) if shipment_id is not None else None
            if ship is not None:
                self._settle_pending(ship)
            return ship

    def all_shipments(self) -> list[Shipment]:
        with self._lock:
            for ship in self.shipments.values():
                self._settle_pending(ship)
            return list(self.shipments.values())

    def shipped_quantity(self, number: str) -> dict[int, int]:
        """Order line id → units in this order's shipments (shipped or not yet)."""
        out: dict[int, int] = {}
        for ship in self.order_shipments(number):
            for _sl, line_id, qty in ship.lines:
                out[line_id] = out.get(line_id, 0) + qty
        return out

    # --- fulfilment -----------------------------------------------------------------------------

    def _order_for_change(self, number: str, path: list[str], errors: list[Msg]) -> Payload | None:
        payload = self.order(number)
        if payload is None:
            errors.append(_msg(f"Order {number} not found", path))
            return None
        status = str(payload.get("status"))
        if status not in SHIPPABLE:
            errors.append(
                _msg(f"Order {number} is {STATUS_TO_GQL.get(status, status)}; it must be CONFIRMED or PROCESSING", path)
            )
            return None
        if _get(payload, "onhold") == "yes":
            errors.append(_msg(f"Order {number} is on hold", path))
            return None
        return payload

    def create_shipment(
        self,
        number: str,
        lines: list[tuple[int, int]] | None,
        *,
        good_to_go: bool,
        paid: bool,
        send_email: bool,
        external_id: str | None,
        shipped_at: str | None,
        info: dict[str, Any] | None,
    ) -> tuple[Shipment | None, list[Msg]]:
        """A new shipment of ``lines`` ((order line id, quantity); None = everything unshipped)."""
        errors: list[Msg] = []
        with self._lock:
            payload = self._order_for_change(number, ["input", "order"], errors)
            if payload is None:
                return None, errors
            by_id = {line.id: line for line in self.lines(payload)}
            in_shipments = self.shipped_quantity(number)
            if lines is None:
                lines = [
                    (lid, line.quantity - in_shipments.get(lid, 0))
                    for lid, line in by_id.items()
                    if not line.virtual and line.quantity - in_shipments.get(lid, 0) > 0
                ]
            if not lines:
                errors.append(_msg("The shipment has no lines (nothing left to ship)", ["input", "lines"]))
            wanted: dict[int, int] = {}
            for i, (lid, qty) in enumerate(lines):
                path = ["input", "lines", str(i)]
                line = by_id.get(lid)
                if line is None:
                    errors.append(_msg(f"Order line {lid} not found in order {number}", [*path, "orderLine", "id"]))
                    continue
                if qty <= 0:
                    errors.append(_msg(f"quantity must be positive, got {qty}", [*path, "quantity"]))
                    continue
                wanted[lid] = wanted.get(lid, 0) + qty
                left = line.quantity - in_shipments.get(lid, 0)
                if wanted[lid] > left:
                    errors.append(
                        _msg(
                            f"Quantity {wanted[lid]} of order line {lid} exceeds the unshipped quantity {left}",
                            [*path, "quantity"],
                        )
                    )
            if errors:
                return None, errors
            ship = self._new_shipment(number, list(wanted.items()), by_centra=False)
            ship.is_good_to_go = good_to_go
            ship.is_paid = paid
            ship.send_email = send_email
            if info:
                self._set_info(ship, info)
            if external_id is not None:
                self._set_external(ship, external_id)
            if shipped_at is not None:
                ship.is_shipped = True
                ship.shipped_at = shipped_at
                ship.completions += 1
            self._write_back(number, "SHIPMENT_CREATED")
            return ship, []

    def _new_shipment(
        self, number: str, lines: list[tuple[int, int]], *, by_centra: bool, soap_id: str | None = None
    ) -> Shipment:
        sid = self._next_shipment_id
        self._next_shipment_id += 1
        existing = self.by_order.setdefault(number, [])
        ship = Shipment(
            id=sid,
            number=f"{number}-{len(existing) + 1}",
            order=number,
            soap_id=soap_id or self.generator.next_id("shipment"),
            created_at=self._now(),
            lines=[[sid * 100 + n, lid, qty] for n, (lid, qty) in enumerate(lines, start=1)],
            by_centra=by_centra,
        )
        self.shipments[sid] = ship
        existing.append(sid)
        return ship

    def _set_external(self, ship: Shipment, external_id: str) -> None:
        """Point ``external_id`` at ``ship``; a shipment that had it loses it (as Centra's mapping moves)."""
        previous = self.external.get(external_id)
        if previous is not None and previous != ship.id:
            self.shipments[previous].external_id = None
        if ship.external_id is not None and self.external.get(ship.external_id) == ship.id:
            del self.external[ship.external_id]
        self.external[external_id] = ship.id
        ship.external_id = external_id
        given = self.external_sets.setdefault(external_id, [])
        if ship.id not in given:
            given.append(ship.id)

    @staticmethod
    def _set_info(ship: Shipment, info: dict[str, Any]) -> None:
        for key, attr in (
            ("carrier", "carrier"),
            ("service", "service"),
            ("packagesNumber", "packages"),
            ("trackingNumber", "tracking"),
            ("returnTrackingNumber", "return_tracking"),
        ):
            if info.get(key) is not None:
                setattr(ship, attr, info[key])

    def update_shipment(self, ship: Shipment, fields: dict[str, Any]) -> list[Msg]:
        with self._lock:
            errors: list[Msg] = []
            if fields.get("shipmentInfo") is not None and ship.is_shipped:
                errors.append(
                    _msg("shipmentInfo can only change before the shipment is shipped", ["input", "shipmentInfo"])
                )
            if errors:
                return errors
            if fields.get("shipmentInfo") is not None:
                self._set_info(ship, fields["shipmentInfo"])
            if fields.get("isGoodToGo") is not None:
                ship.is_good_to_go = bool(fields["isGoodToGo"])
            if fields.get("isPaid") is not None:
                ship.is_paid = bool(fields["isPaid"])
            if fields.get("paidValue") is not None:
                ship.paid_value = str(fields["paidValue"].get("value"))
            if fields.get("externalId") is not None:
                self._set_external(ship, str(fields["externalId"]))
            self._write_back(ship.order, "SHIPMENT_UPDATED")
            return []

    def capture_shipment(self, ship: Shipment) -> tuple[str | None, list[Msg], list[Msg]]:
        """(payment history status SUCCESS|PENDING|FAILED, userErrors, userWarnings)."""
        with self._lock:
            self._settle_pending(ship)
            if ship.is_captured:
                return None, [_msg(f"Shipment {ship.number} is already captured", ["id"])], []
            if ship.capture_status == "PENDING":
                return "PENDING", [], [_msg(f"A capture of shipment {ship.number} is already pending", ["id"])]
            outcome = self._capture_outcome(ship.order)
            now = self._now()
            if outcome == "failed":
                ship.capture_status = "FAILED"
                self._write_back(ship.order, "SHIPMENT_UPDATED", payment=("capture", "no"))
                return "FAILED", [_msg("Capture failed: the payment provider declined the capture", ["id"])], []
            if outcome == "pending":
                ship.capture_status = "PENDING"
                ship.capture_ready_at = self.clock.time() + self.capture.pending_seconds
                self._write_back(ship.order, "SHIPMENT_UPDATED")
                return "PENDING", [], [_msg("The capture request was sent to the payment provider", ["id"])]
            ship.capture_status = "SUCCESS"
            ship.is_captured = True
            ship.is_paid = True
            ship.captured_at = now
            ship.captures += 1
            self._write_back(ship.order, "SHIPMENT_UPDATED", payment=("capture", "yes"))
            return "SUCCESS", [], []

    def _capture_outcome(self, number: str) -> str:
        per = self.capture.per_order.get(number)
        if per is not None:
            return per
        roll = self._rng.random()
        if roll < self.capture.failed_probability:
            return "failed"
        if roll < self.capture.failed_probability + self.capture.pending_probability:
            return "pending"
        return self.capture.default

    def _settle_pending(self, ship: Shipment) -> None:
        if (
            ship.capture_status == "PENDING"
            and ship.capture_ready_at is not None
            and self.clock.time() >= ship.capture_ready_at
        ):
            ship.capture_status = "SUCCESS"
            ship.is_captured = True
            ship.is_paid = True
            ship.captured_at = self._now()
            ship.captures += 1
            ship.capture_ready_at = None
            self._write_back(ship.order, "SHIPMENT_UPDATED", payment=("capture", "yes"))

    def complete_shipment(
        self, ship: Shipment, shipped_at: str | None, info: dict[str, Any] | None, send_email: bool | None
    ) -> list[Msg]:
        with self._lock:
            if ship.is_shipped:
                return [_msg(f"Shipment {ship.number} is already shipped", ["id"])]
            if not ship.is_good_to_go:
                return [_msg(f"Shipment {ship.number} is not good to go", ["id"])]
            ship.is_shipped = True
            ship.shipped_at = shipped_at or self._now()
            ship.completions += 1
            if info:
                self._set_info(ship, info)
            if send_email is not None:
                ship.send_email = send_email
            self._write_back(ship.order, "SHIPMENT_COMPLETED")
            return []

    def cancel_lines(self, number: str, cancels: list[tuple[int, int]], path: list[str]) -> list[Msg]:
        """Cancel ``quantity`` more units (a delta) of each (order line id, quantity)."""
        errors: list[Msg] = []
        with self._lock:
            payload = self._order_for_change(number, ["order"], errors)
            if payload is None:
                return errors
            by_id = {line.id: line for line in self.lines(payload)}
            in_shipments = self.shipped_quantity(number)
            delta: dict[int, int] = {}
            for i, (lid, qty) in enumerate(cancels):
                lpath = [*path, str(i)]
                line = by_id.get(lid)
                if line is None:
                    errors.append(_msg(f"Order line {lid} not found in order {number}", [*lpath, "line", "id"]))
                    continue
                if qty <= 0:
                    errors.append(_msg(f"quantity must be positive, got {qty}", [*lpath, "quantity"]))
                    continue
                delta[lid] = delta.get(lid, 0) + qty
                left = line.quantity - in_shipments.get(lid, 0)
                if delta[lid] > left:
                    errors.append(
                        _msg(
                            f"Cannot cancel {delta[lid]} of order line {lid}: only {left} are "
                            "neither shipped nor cancelled",
                            [*lpath, "quantity"],
                        )
                    )
            if errors:
                return errors
            for lid, qty in delta.items():
                self.cancelled[lid] = self.cancelled.get(lid, 0) + qty
            self._write_back(number, "LINES_CANCELLED")
            return []

    # --- SOAP side and events -------------------------------------------------------------------

    def _adopt_centra_shipments(self, number: str, payload: Payload) -> None:
        """Shipments the generator wrote into the SOAP order become shipments of the book."""
        known = {self.shipments[i].soap_id for i in self.by_order.get(number, [])}
        soap_ships = [s for s in _as_list(_get(payload, "shipments", "shipment")) if isinstance(s, dict)]
        fresh = [s for s in soap_ships if str(s.get("id")) not in known]
        if not fresh:
            return
        by_sku: dict[str, list[Line]] = {}
        for line in self.lines(payload):
            by_sku.setdefault(line.sku, []).append(line)
        for s in fresh:
            lines: list[tuple[int, int]] = []
            for item in _as_list(_get(s, "products", "product")):
                candidates = by_sku.get(str(_get(item, "sku")), [])
                if candidates:
                    lines.append((candidates[0].id, int(Decimal(str(_get(item, "qty") or "0")))))
            ship = self._new_shipment(number, lines, by_centra=True, soap_id=str(s.get("id")))
            ship.created_at = str(s.get("created") or ship.created_at)
            ship.is_shipped = s.get("shipped") == "yes"
            ship.shipped_at = ship.created_at if ship.is_shipped else None
            ship.is_paid = ship.is_captured = ship.is_shipped
            ship.captures = 1 if ship.is_captured else 0
            ship.carrier = s.get("carrier")
            ship.tracking = s.get("tracking")

    def _write_back(self, number: str, change: str, payment: tuple[str, str] | None = None) -> None:
        """Render the book's view of ``number`` into its SOAP payload and emit the order event."""
        ships = [self.shipments[i] for i in self.by_order.get(number, [])]
        now = self._now()
        transaction = f"tx-{self.generator.next_id('transaction')}" if payment is not None else ""
        self.updated_at[number] = now

        def apply(order: Payload) -> None:
            lines = self.lines(order)
            sku_of = {line.id: line.sku for line in lines}
            order["shipments"] = {
                "shipment": [
                    {
                        "id": s.soap_id,
                        "created": s.created_at,
                        "shipped": "yes" if s.is_shipped else "no",
                        "carrier": s.carrier or "",
                        "tracking": s.tracking or "",
                        "products": {
                            "product": [{"sku": sku_of.get(lid, ""), "qty": str(qty)} for _sl, lid, qty in s.lines]
                        },
                    }
                    for s in ships
                ]
            }
            cancelled = [{"sku": line.sku, "qty": str(line.cancelled)} for line in lines if line.cancelled]
            if cancelled:
                order["cancelled"] = {"product": cancelled}
            shipped = {line.id: 0 for line in lines}
            for s in ships:
                if s.is_shipped:
                    for _sl, lid, qty in s.lines:
                        shipped[lid] = shipped.get(lid, 0) + qty
            real = [line for line in lines if not line.virtual]
            if real and all(line.quantity == 0 for line in real):
                order["status"] = "cancelled"
            elif real and all(shipped.get(line.id, 0) >= line.quantity for line in real):
                order["status"] = "completed"
            elif order.get("status") == "confirmed" and ships:
                order["status"] = "processing"
            if payment is not None:
                payments = order.setdefault("payments", {})
                if isinstance(payments, dict):
                    entries = _as_list(payments.get("payment"))
                    entries.append(
                        {
                            "type": payment[0],
                            "paid": payment[1],
                            "value": str(order.get("ordertotal")),
                            "created": now,
                            "transaction": transaction,
                        }
                    )
                    payments["payment"] = entries

        self.generator.change_order(number, apply)
        for listener in list(self._listeners):
            listener(number, change)

    # --- inspection and persistence -------------------------------------------------------------

    def inspect(self) -> dict[str, Any]:
        """Shipments per order, duplicate shipments and double captures (for /_sim/state)."""
        with self._lock:
            per_order: dict[str, list[dict[str, Any]]] = {}
            for number, ids in self.by_order.items():
                per_order[number] = [
                    {
                        "id": s.id,
                        "number": s.number,
                        "externalId": s.external_id,
                        "lines": [{"orderLine": lid, "quantity": q} for _sl, lid, q in s.lines],
                        "isGoodToGo": s.is_good_to_go,
                        "isPaid": s.is_paid,
                        "isCaptured": s.is_captured,
                        "captureStatus": s.capture_status,
                        "isShipped": s.is_shipped,
                        "byCentra": s.by_centra,
                        "captures": s.captures,
                        "completions": s.completions,
                        "trackingNumber": s.tracking,
                    }
                    for s in (self.shipments[i] for i in ids)
                ]
            return {
                "shipments": len(self.shipments),
                "shipmentsByOrder": per_order,
                "duplicateShipments": self.duplicates(),
                "doubleCaptures": sorted(s.id for s in self.shipments.values() if s.captures > 1),
                "doubleCompletions": sorted(s.id for s in self.shipments.values() if s.completions > 1),
                # made through the API but never given an externalId: a client's lost create shows here
                "shipmentsWithoutExternalId": sorted(
                    s.id for s in self.shipments.values() if not s.by_centra and s.external_id is None
                ),
                "cancelledLines": {str(k): v for k, v in sorted(self.cancelled.items())},
                "capture": asdict(self.capture),
            }

    def duplicates(self) -> dict[str, int]:
        """externalId → extra shipments given it (a retried create that made a second shipment shows
        here once its externalId is set on both), plus over-shipped lines per order."""
        dups = {ext: len(ids) - 1 for ext, ids in sorted(self.external_sets.items()) if len(ids) > 1}
        for number in self.by_order:
            payload = self.generator.order_copy(number)
            if payload is None:
                continue
            ordered = {line.id: line.ordered for line in self.lines(payload)}
            for lid, qty in self.shipped_quantity(number).items():
                if qty > ordered.get(lid, 0):
                    dups[f"order {number} line {lid}"] = qty - ordered.get(lid, 0)
        return dups

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "shipments": [asdict(s) for s in self.shipments.values()],
                "external_sets": dict(self.external_sets),
                "cancelled": [[k, v] for k, v in self.cancelled.items()],
                "updated_at": dict(self.updated_at),
                "next_shipment_id": self._next_shipment_id,
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.reset()
            for d in data.get("shipments", []):
                ship = Shipment(**d)
                self.shipments[ship.id] = ship
                self.by_order.setdefault(ship.order, []).append(ship.id)
                if ship.external_id is not None:
                    self.external[ship.external_id] = ship.id
            self.external_sets = {k: list(v) for k, v in dict(data.get("external_sets", {})).items()}
            self.cancelled = {int(k): int(v) for k, v in data.get("cancelled", [])}
            self.updated_at = dict(data.get("updated_at", {}))
            self._next_shipment_id = int(data.get("next_shipment_id", len(self.shipments) + 1))

    def reset(self) -> None:
        with self._lock:
            self.shipments, self.by_order, self.external = {}, {}, {}
            self.external_sets, self.cancelled, self.updated_at = {}, {}, {}
            self._next_shipment_id = 1
            self._rng = random.Random(self.generator.seed)

    def _now(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")
