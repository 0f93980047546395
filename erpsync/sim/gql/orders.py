"""Orders and fulfilment over GraphQL (PROTOCOL.md §2.4 orders, §2.5 shipments), read from and
written to the simulator's one order book (``erpsync.sim.orderbook``).

Views are dicts for graphql-core's default resolver; interface types carry ``__typename``. Money is
``MonetaryValue {value currency {code}}`` with ``value`` a Decimal (serialised as a JSON number).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from graphql import GraphQLError

from erpsync.clock import Clock
from erpsync.sim.gql.state import STORES, State
from erpsync.sim.gql.views import page_of, pricelist_view, product_size_view
from erpsync.sim.orderbook import STATUS_TO_GQL, Line, OrderBook, Shipment, _get, _msg

#: Permission needed by each root field this module serves.
ORDER_QUERY_PERMISSIONS: dict[str, str | None] = {
    "orders": "Order:read",
    "shipment": "Shipment:read",
    "shipments": "Shipment:read",
}
FULFILMENT_MUTATION_PERMISSIONS: dict[str, str | None] = {
    "createShipment": "Shipment:write",
    "updateShipment": "Shipment:write",
    "completeShipment": "Shipment:write",
    "captureShipment": "Payment.capture:write",
    "updateDirectToConsumerOrder": "Order:write",
    "updateWholesaleOrder": "Order:write",
}
FULFILMENT_PERMISSIONS = frozenset(
    {"Order:read", "Order:write", "Order.isLocked:write", "Shipment:read", "Shipment:write", "Payment.capture:write"}
)
MARKET_IDS = {"Retail-SE": 1, "Retail-DE": 2, "Retail-US": 3}
CURRENCY_IDS = {"SEK": 1, "EUR": 2, "USD": 3}
SHIPPED_AT_SKEW = timedelta(seconds=1)  # [open] clock skew allowed for shippedAt in the future


def _locked_error(number: str) -> GraphQLError:
    """[open] acting on a locked order without Order.isLocked:write: an authorization error."""
    return GraphQLError(
        f"You need Order.isLocked:write permission to act on locked order {number}",
        extensions={"category": "authorization"},
    )


def ean_for_sku(sku: str) -> str:
    """A stable EAN-13 for a generated order's SKU (when the catalogue does not hold the size)."""
    body = f"73{zlib.crc32(sku.encode()) % 10**10:010d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _money(value: Decimal, currency: str) -> dict[str, Any]:
    return {
        "value": value,
        "currency": {"id": CURRENCY_IDS.get(currency, 0), "code": currency},
        "formattedValue": f"{value:.2f} {currency}",
        "conversionRate": 1.0,
    }


def _net(value: Decimal, tax: Decimal, including_tax: bool) -> Decimal:
    return value if including_tax else (value / (1 + tax / 100)).quantize(Decimal("0.01"))


class OrderViews:
    """Builds the GraphQL objects of orders and shipments for one request."""

    def __init__(self, book: OrderBook, state: State) -> None:
        self.book = book
        self.state = state

    def line(self, line: Line, currency: str) -> dict[str, Any]:
        def price(value: Decimal) -> Callable[..., Any]:
            return lambda _info, includingTax=True: _money(_net(value, line.tax_percent, includingTax), currency)

        total = line.unit_price * line.quantity * (1 - line.discount_percent / 100)
        return {
            "__typename": "ProductOrderLine",
            "id": line.id,
            "productNumber": line.product_number,
            "size": line.size,
            "productName": line.name,
            "quantity": line.quantity,
            "cancelledQuantity": line.cancelled,
            "unitPrice": price(line.unit_price),
            "unitOriginalPrice": price(line.unit_original_price),
            "lineValue": price(total.quantize(Decimal("0.01"))),
            "taxPercent": float(line.tax_percent),
            "discountPercent": float(line.discount_percent),
            "product": self._product(line),
            "productVariant": self._variant(line),
            "productSize": self._product_size(line.sku, line.size),
        }

    def _product(self, line: Line) -> dict[str, Any] | None:
        """The line's product: Centra's id, the ERP's id (SOAP's product id) as ``externalId``."""
        if not line.product_id:
            return None
        pid = self.state.external.get("product", {}).get(line.product_id)
        return {"id": pid if pid is not None else zlib.crc32(f"p:{line.product_id}".encode()) & 0x7FFFFFFF,
                "name": line.name, "status": "ACTIVE", "productNumber": line.product_number,
                "externalId": line.product_id, "updatedAt": lambda _info, format=None: None,
                "variants": lambda _info, limit=20, page=1: []}

    def _variant(self, line: Line) -> dict[str, Any] | None:
        """The line's variant: Centra's id, SOAP's variation id as ``externalId``."""
        if not line.variant_id:
            return None
        vid = self.state.external.get("variant", {}).get(line.variant_id)
        return {"id": vid if vid is not None else zlib.crc32(f"v:{line.variant_id}".encode()) & 0x7FFFFFFF,
                "name": line.variant_name or line.variant_id, "status": "ACTIVE", "variantNumber": None,
                "externalId": line.variant_id, "product": self._product(line),
                "productSizes": []}

    def _product_size(self, sku: str, size: str) -> dict[str, Any]:
        for ps in self.state.product_sizes.values():
            if self.state.sku(ps) == sku:
                return product_size_view(self.state, ps)
        return {
            "id": zlib.crc32(sku.encode()) & 0x7FFFFFFF,
            "size": {"id": zlib.crc32(size.encode()) & 0xFFFF, "name": size},
            "EAN": ean_for_sku(sku),
            "UPC": None,
            "sizeNumber": size,
            "SKU": sku,
            "isActive": True,
        }

    def order(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        number = str(payload["ordernumber"])
        currency = str(payload.get("currency") or "SEK")
        lines = self.book.lines(dict(payload))
        wholesale = payload.get("type") == "wholesale"
        created = str(payload.get("created") or "")

        def lines_field(_info: Any, includeFullyCancelled: bool = False) -> list[dict[str, Any]]:
            return [self.line(x, currency) for x in lines if includeFullyCancelled or x.quantity > 0]

        def total(_info: Any, includingTax: bool = True) -> dict[str, Any]:
            value = Decimal(str(payload.get("ordertotal") or "0"))
            tax = lines[0].tax_percent if lines else Decimal(0)
            return _money(_net(value, tax, includingTax), currency)

        store_id = int(str(payload.get("store") or "1"))
        market = _get(payload, "market", "id")
        pricelist_ext = _get(payload, "pricelist", "id")
        pl_id = self.state.external["pricelist"].get(str(pricelist_ext))
        view: dict[str, Any] = {
            "__typename": "WholesaleOrder" if wholesale else "DirectToConsumerOrder",
            "id": OrderBook.hash_id(number),
            "number": int(number),
            "status": STATUS_TO_GQL.get(str(payload.get("status")), "PENDING"),
            "createdAt": lambda _info, format=None: created,
            "updatedAt": lambda _info, format=None: self.book.updated_at.get(number, created),
            "grandTotal": total,
            "isLocked": payload.get("locked") == "yes",
            "isOnHold": payload.get("onhold") == "yes",
            "store": {"id": store_id, "name": dict(STORES).get(store_id, "Retail")},
            "market": None
            if market is None
            else {"id": MARKET_IDS.get(str(market), 0), "name": str(_get(payload, "market", "description") or market)},
            "pricelist": None if pl_id is None else pricelist_view(self.state.pricelists[pl_id]),
            "billingAddress": _address(payload.get("billingaddress")),
            "shippingAddress": _address(payload.get("shippingaddress")),
            "lines": lines_field,
            "shipments": lambda _info: [self.shipment(s) for s in self.book.order_shipments(number)],
        }
        if wholesale:
            account = payload.get("account") or {}
            view["account"] = {"id": int(str(account.get("id") or 0)), "name": str(account.get("description") or "")}
        else:
            cid = str(_get(payload, "customer", "id") or "")
            customer = self.book.generator.customers.get(cid, {})
            view["customer"] = (
                None
                if not cid
                else {
                    "id": int(cid),
                    "email": customer.get("email"),
                    "firstName": customer.get("firstname"),
                    "lastName": customer.get("lastname"),
                }
            )
        return view

    def shipment(self, ship: Shipment) -> dict[str, Any]:
        def order(_info: Any) -> dict[str, Any] | None:
            payload = self.book.order(ship.order)
            return None if payload is None else self.order(payload)

        def lines(_info: Any) -> list[dict[str, Any]]:
            payload = self.book.order(ship.order) or {}
            currency = str(payload.get("currency") or "SEK")
            by_id = {x.id: x for x in self.book.lines(payload)}
            return [
                {"id": sl, "quantity": qty, "orderLine": self.line(by_id[lid], currency)}
                for sl, lid, qty in ship.lines
                if lid in by_id
            ]

        wholesale = (self.book.generator.orders.get(ship.order) or {}).get("type") == "wholesale"
        return {
            "__typename": "WholesaleShipment" if wholesale else "DirectToConsumerShipment",
            "id": ship.id,
            "number": ship.number,
            "createdAt": lambda _info, format=None: ship.created_at,
            "isGoodToGo": ship.is_good_to_go,
            "isPaid": ship.is_paid,
            "isCaptured": ship.is_captured,
            "capturedAt": lambda _info, format=None: ship.captured_at,
            "isShipped": ship.is_shipped,
            "shippedAt": lambda _info, format=None: ship.shipped_at,
            "trackingNumber": ship.tracking,
            "lines": lines,
            "order": order,
        }


def _address(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    country = value.get("country")
    return {
        "firstName": value.get("firstname"),
        "lastName": value.get("lastname"),
        "companyName": value.get("company"),
        "attention": value.get("attn"),
        "address1": value.get("address1"),
        "address2": value.get("address2"),
        "city": value.get("city"),
        "zipCode": value.get("zipcode"),
        "stateOrProvince": value.get("state"),
        "country": None
        if not country
        else {"id": zlib.crc32(str(country).encode()) & 0xFFFF, "name": str(country), "code": str(country)},
        "email": value.get("email"),
        "phoneNumber": value.get("telephone"),
        "cellPhoneNumber": None,
        "faxNumber": value.get("fax"),
        "vatNumber": value.get("vat"),
    }


def order_query_root(book: OrderBook, state: State) -> dict[str, Callable[..., Any]]:
    """``orders``, ``shipment`` and ``shipments`` of the query root."""
    views = OrderViews(book, state)

    def orders(
        _info: Any, where: dict[str, Any] | None = None, sort: list[str] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        where = where or {}
        numbers = sorted((int(n) for n in book.numbers()), reverse=(sort or ["number_DESC"])[0] == "number_DESC")
        if where.get("number") is not None:
            wanted = set(where["number"])
            numbers = [n for n in numbers if n in wanted]
        out: list[dict[str, Any]] = []
        for n in numbers:
            payload = book.order(str(n))
            if payload is None:
                continue
            if where.get("id") is not None and OrderBook.hash_id(str(n)) not in where["id"]:
                continue
            status = STATUS_TO_GQL.get(str(payload.get("status")), "PENDING")
            if where.get("status") is not None and status not in where["status"]:
                continue
            if where.get("storeId") is not None and int(str(payload.get("store") or 1)) not in where["storeId"]:
                continue
            market = MARKET_IDS.get(str(_get(payload, "market", "id")), 0)
            if where.get("marketId") is not None and market not in where["marketId"]:
                continue
            if where.get("externalId") is not None:
                continue  # generated orders have no externalId
            out.append(payload)
        return [views.order(p) for p in page_of(out, min(max(limit, 1), 100), page)]

    def shipment(_info: Any, id: int | None = None, externalId: str | None = None) -> dict[str, Any] | None:
        if (id is None) == (externalId is None):
            raise ValueError("Exactly one of id and externalId must be given")
        ship = book.shipment(id, externalId)
        return None if ship is None else views.shipment(ship)

    def shipments(_info: Any, limit: int = 20, page: int = 1) -> list[dict[str, Any]]:
        ships = sorted(book.all_shipments(), key=lambda s: s.id, reverse=True)
        return [views.shipment(s) for s in page_of(ships, min(max(limit, 1), 200), page)]

    return {"orders": orders, "shipment": shipment, "shipments": shipments}


class Fulfilment:
    """Mutation resolvers of §2.5; a failed mutation (``userErrors``) changes nothing."""

    def __init__(self, book: OrderBook, state: State, clock: Clock, permissions: frozenset[str]) -> None:
        self.book = book
        self.state = state
        self.views = OrderViews(book, state)
        self.clock = clock
        self.permissions = permissions

    def root(self) -> dict[str, Callable[..., Any]]:
        return {
            "createShipment": self.create_shipment,
            "updateShipment": self.update_shipment,
            "completeShipment": self.complete_shipment,
            "captureShipment": self.capture_shipment,
            "updateDirectToConsumerOrder": self.update_order,
            "updateWholesaleOrder": self.update_order,
        }

    def _payload(
        self, errors: list[dict[str, Any]], warnings: list[dict[str, Any]] | None = None, **fields: Any
    ) -> dict[str, Any]:
        if not errors:
            self.state.mutations_applied += 1
        return {**fields, "userErrors": errors, "userWarnings": warnings or []}

    def _locked(self, number: str) -> bool:
        order = self.book.generator.orders.get(number) or {}
        return order.get("locked") == "yes" and "Order.isLocked:write" not in self.permissions

    def _order_number(self, ref: Mapping[str, Any], errors: list[dict[str, Any]], path: list[str]) -> str | None:
        present = {k: v for k, v in ref.items() if v is not None}
        if len(present) != 1:
            errors.append(_msg("Exactly one of id, number, externalId must be set", path))
            return None
        if "number" in present:
            return str(present["number"])
        if "id" in present:
            for n in self.book.numbers():
                if OrderBook.hash_id(n) == present["id"]:
                    return n
        errors.append(_msg(f"Order {next(iter(present.values()))!r} not found", path))
        return None

    def _shipped_at(self, value: str | None, errors: list[dict[str, Any]], path: list[str]) -> str | None:
        if value is None:
            return None
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            errors.append(_msg(f"shippedAt {value!r} is not an ISO-8601 time", path))
            return None
        if at.tzinfo is None:
            errors.append(_msg("shippedAt needs an offset", path))
            return None
        if at > self.clock.now() + SHIPPED_AT_SKEW:
            errors.append(_msg("shippedAt may not lie in the future", path))
            return None
        return at.isoformat(timespec="seconds")

    def create_shipment(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        number = self._order_number(input["order"], errors, ["input", "order"])
        shipped_at = self._shipped_at(input.get("shippedAt"), errors, ["input", "shippedAt"])
        if input.get("capture") and input.get("shippedAt") is not None:
            errors.append(_msg("capture cannot be combined with shippedAt", ["input", "capture"]))
        if number is not None and self._locked(number):
            raise _locked_error(number)
        lines = None
        if input.get("lines") is not None:
            lines = []
            for i, line in enumerate(input["lines"]):
                lid = (line.get("orderLine") or {}).get("id")
                if lid is None:
                    errors.append(_msg("orderLine.id is required", ["input", "lines", str(i), "orderLine"]))
                    continue
                lines.append((int(lid), int(line["quantity"])))
        if errors or number is None:
            return self._payload(errors, shipment=None)
        ship, errors = self.book.create_shipment(
            number,
            lines,
            good_to_go=input.get("isGoodToGo", True) is not False,
            paid=bool(input.get("isPaid")) and not input.get("capture"),
            send_email=bool(input.get("sendEmail")),
            external_id=input.get("externalId"),
            shipped_at=shipped_at,
            info=input.get("shipmentInfo"),
        )
        if ship is None:
            return self._payload(errors, shipment=None)
        warnings: list[dict[str, Any]] = []
        if input.get("capture"):
            _status, cap_errors, cap_warnings = self.book.capture_shipment(ship)
            warnings.extend(cap_warnings)
            warnings.extend({**e, "message": f"Shipment created; {e['message']}"} for e in cap_errors)
        return self._payload([], warnings, shipment=self.views.shipment(ship))

    def _shipment(self, id: int | None, external_id: str | None, errors: list[dict[str, Any]]) -> Shipment | None:
        if (id is None) == (external_id is None):
            errors.append(_msg("Exactly one of id and externalId must be set", ["id"]))
            return None
        ship = self.book.shipment(id, external_id)
        if ship is None:
            errors.append(
                _msg(
                    f"Shipment {id if id is not None else external_id!r} not found",
                    ["id" if id is not None else "externalId"],
                )
            )
            return None
        if self._locked(ship.order):
            raise _locked_error(ship.order)
        return ship

    def update_shipment(
        self, _info: Any, input: dict[str, Any], id: int | None = None, externalId: str | None = None
    ) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        ship = self._shipment(id, externalId, errors)
        if ship is None:
            return self._payload(errors, shipment=None)
        errors = self.book.update_shipment(ship, input)
        return self._payload(errors, shipment=None if errors else self.views.shipment(ship))

    def capture_shipment(self, _info: Any, id: int | None = None, externalId: str | None = None) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        ship = self._shipment(id, externalId, errors)
        if ship is None:
            return self._payload(errors, shipment=None, paymentHistoryEntry=None)
        status, errors, warnings = self.book.capture_shipment(ship)
        entry = None if status is None else {"status": status, "entryType": "CAPTURE", "paramsJSON": None}
        return self._payload(errors, warnings, shipment=self.views.shipment(ship), paymentHistoryEntry=entry)

    def complete_shipment(
        self, _info: Any, id: int | None = None, externalId: str | None = None, input: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        input = input or {}
        ship = self._shipment(id, externalId, errors)
        shipped_at = self._shipped_at(input.get("shippedAt"), errors, ["input", "shippedAt"])
        if ship is None or errors:
            return self._payload(errors, shipment=None)
        errors = self.book.complete_shipment(ship, shipped_at, input.get("shipmentInfo"), input.get("sendEmail"))
        return self._payload(errors, shipment=None if errors else self.views.shipment(ship))

    def update_order(self, _info: Any, order: dict[str, Any], input: dict[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        number = self._order_number(order, errors, ["order"])
        cancels: list[tuple[int, int]] = []
        for i, c in enumerate(input.get("cancelLines") or []):
            path = ["input", "cancelLines", str(i)]
            policy = {k: v for k, v in (c.get("stockActionPolicy") or {}).items() if v not in (None, False)}
            if len(policy) != 1:
                errors.append(_msg("Exactly one stock action policy must be set", [*path, "stockActionPolicy"]))
            lid = (c.get("line") or {}).get("id")
            if lid is None:
                errors.append(_msg("line.id is required", [*path, "line"]))
                continue
            cancels.append((int(lid), int(c["quantity"])))
        if number is not None and self._locked(number):
            raise _locked_error(number)
        if errors or number is None:
            return self._payload(errors, order=None)
        errors = self.book.cancel_lines(number, cancels, ["input", "cancelLines"])
        payload = self.book.order(number)
        return self._payload(errors, order=None if errors or payload is None else self.views.order(payload))
