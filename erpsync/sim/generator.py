"""Seeded, reproducible generator of Centra objects and the events they emit.

Orders (retail, and wholesale ones with ``account``/``buyer``/terms once accounts exist) have
several lines (some sold as bundles: a virtual line carrying the price and never picked,
plus a component line with ``bundleinfo/partof``), sizes, warehouse items, shipping/billing addresses
and payments; money
is computed with ``Decimal`` and written as decimal strings that add up (line subtotal = price × qty
− discount; ordertotal = Σ subtotals + shipping). An order emits again, with its FULL current object,
on every status change, shipment and refund. Customers, wholesale accounts, invoices, a few other
types (market, pricelist, warehouse, salesrep, size, paymentterm, shippingterm) and deletes
(``mission=delete``, empty data) are mixed in. Event dates use both formats Centra sends: store-local
``YYYY-MM-DD hh:mm:ss`` (in the store's time zone, ``Europe/Stockholm`` unless ``store_tz`` says
otherwise) and ISO-8601 with an offset — the store's own offset or, for a quarter of the events,
``+00:00``: an offset is an offset, a client must not assume it is the store's.

Same seed + same calls ⇒ the same events (ids, objects, dates are taken from the injected clock).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.clock import Clock
from erpsync.sim.events import Event, EventQueue, Payload

STORE_TZ = ZoneInfo("Europe/Stockholm")
CENT = Decimal("0.01")

# market id, description, currency, pricelist id, pricelist description, country, tax %, rate to SEK, shipping
MARKETS: tuple[tuple[str, str, str, str, str, str, str, str, str], ...] = (
    ("Retail-SE", "Retail Sweden", "SEK", "PL-SEK", "Retail SEK", "SE", "25.000", "1.00000", "49.00"),
    ("Retail-DE", "Retail Germany", "EUR", "PL-EUR", "Retail EUR", "DE", "19.000", "11.43100", "4.95"),
    ("Retail-US", "Retail USA", "USD", "PL-USD", "Retail USD", "US", "0.000", "10.43100", "5.95"),
)
WAREHOUSE_BY_COUNTRY = {"SE": "WH-MAIN", "DE": "WH-EU", "US": "WH-US"}

# product id, description, brand, sku prefix, variants (code, colour), sizes, price SEK / EUR / USD
CATALOGUE: tuple[tuple[str, str, str, str, tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, str, str]], ...] = (
    ("TSHIRT-01", "Organic tee", "Nordvik", "TS01", (("BLK", "Black"), ("WHT", "White")),
     ("S", "M", "L", "XL"), ("543.00", "49.95", "54.00")),
    ("HOODIE-02", "Loopback hoodie", "Nordvik", "HD02", (("GRY", "Grey"), ("NVY", "Navy")),
     ("S", "M", "L", "XL"), ("1199.00", "109.00", "119.00")),
    ("JEANS-03", "Straight jeans", "Fjord Denim", "JN03", (("IND", "Indigo"),),
     ("28", "30", "32", "34", "36"), ("999.00", "89.90", "99.00")),
    ("SOCK-04", "Wool socks", "Nordvik", "SK04", (("BLK", "Black"), ("RED", "Red"), ("GRN", "Green")),
     ("36-40", "41-45"), ("129.00", "11.95", "12.50")),
    ("CAP-05", "Canvas cap", "Fjord Denim", "CP05", (("BEI", "Beige"),), ("ONE",), ("299.00", "27.50", "29.00")),
    ("JACKET-06", "Rain jacket", "Skagen Outdoor", "JK06", (("YEL", "Yellow"), ("BLK", "Black")),
     ("S", "M", "L"), ("2490.00", "229.00", "249.00")),
)

FIRST_NAMES = ("Ada", "Björn", "Clara", "David", "Elin", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Leo")
LAST_NAMES = ("Berg", "Lind", "Nyström", "Schulz", "Meyer", "Olsen", "Karlsson", "Novak", "Smith", "Garcia")
CITIES = {
    "SE": (("Stockholm", "111 57", "Sveavägen"), ("Göteborg", "411 19", "Avenyn"), ("Malmö", "211 22", "Stortorget")),
    "DE": (("Berlin", "10115", "Invalidenstraße"), ("Hamburg", "20095", "Mönckebergstraße")),
    "US": (("Portland", "97205", "SW Morrison St"), ("Austin", "78701", "Congress Ave")),
}
COMPANIES = ("Butik Nord AB", "Kaufhaus Süd GmbH", "Evergreen Outfitters Inc", "Strand & Co AB", "Alpin Sport GmbH")
OTHER_TYPES = ("market", "pricelist", "warehouse", "salesrep", "size", "paymentterm", "shippingterm")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class EventGenerator:
    """Creates and evolves Centra objects; every change goes into ``queue`` as an event."""

    def __init__(self, queue: EventQueue, clock: Clock, seed: int = 1, store_tz: ZoneInfo = STORE_TZ) -> None:
        self.queue = queue
        self.clock = clock
        self.store_tz = store_tz
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.orders: dict[str, Payload] = {}
        self.customers: dict[str, Payload] = {}
        self.accounts: dict[str, Payload] = {}
        self.invoices: dict[str, Payload] = {}
        self.objects: dict[str, dict[str, Payload]] = {}  # other types set by *_Update: type -> id -> object
        self._open_orders: list[str] = []  # not cancelled/refunded, in creation order
        self._customer_ids: list[str] = []
        self._order_ids: list[str] = []
        self._account_ids: list[str] = []
        self._next = {"order": 1200, "customer": 80, "account": 500, "invoice": 9000, "orderitem": 5500,
                      "transaction": 77000, "shipment": 300, "other": 10}

    # ------------------------------------------------------------------ public

    def generate(self, count: int) -> list[Event]:
        """Emit exactly ``count`` events (a seeded mix of new orders, order changes and other types;
        a new order from a new customer emits the customer event first)."""
        with self._lock:
            out: list[Event] = []
            while len(out) < count:
                out.extend(self._one(room=count - len(out)))
            return out

    def new_order(self) -> Event:
        """A new order (from a new or returning customer); returns the order's event."""
        with self._lock:
            return self._new_order_events(allow_new_customer=True)[-1]

    def advance_order(self, order_id: str) -> Event:
        """Move an order one step along pending → confirmed → processing → shipped → refunded."""
        with self._lock:
            return self._advance(order_id)

    # --- the order book's access (erpsync.sim.orderbook): one set of orders for SOAP and GraphQL ---

    def order_copy(self, number: str) -> Payload | None:
        """A deep copy of order ``number`` as the SOAP queue serves it (None if unknown)."""
        with self._lock:
            order = self.orders.get(number)
            return None if order is None else _copy(order)

    def order_numbers(self) -> list[str]:
        with self._lock:
            return list(self.orders)

    def change_order(self, number: str, change: Callable[[Payload], None]) -> Event:
        """Apply ``change`` to order ``number``'s payload under the generator's lock, then emit the
        order's event with its full current object (as Centra does on every shipment)."""
        with self._lock:
            order = self.orders[number]
            change(order)
            if order.get("status") in ("cancelled", "refunded") and number in self._open_orders:
                self._open_orders.remove(number)
            return self._emit_order(order)

    def next_id(self, kind: str) -> str:
        """The next id of ``kind`` (``shipment``, ``transaction`` …) from the generator's sequences."""
        with self._lock:
            return self._id(kind)

    def update_orders(self, changes: list[Payload]) -> tuple[list[str], list[str]]:
        """``orders_Update``: a partial upsert of existing orders. All-or-nothing.

        Returns (errors, notices); on errors nothing changed. Each changed order emits an event.
        """
        with self._lock:
            errors: list[str] = []
            targets: list[tuple[str, Payload]] = []
            for change in changes:
                key = change.get("id") or change.get("ordernumber")
                if not isinstance(key, str) or not key:
                    errors.append("Order without id or ordernumber")
                elif key not in self.orders:
                    errors.append(f"Unknown order: {key}")
                else:
                    targets.append((key, change))
            if errors:
                return errors, []
            notices: list[str] = []
            for key, change in targets:
                order = self.orders[key]
                _merge(order, {k: v for k, v in change.items() if k not in ("id", "ordernumber")})
                self._emit_order(order)
                notices.append(f"Order {key} updated")
            return [], notices

    def update_objects(self, type_: str, changes: list[Payload], *, emit: bool) -> tuple[list[str], list[str]]:
        """A ``*_Update`` other than orders: a partial upsert by ``id`` (new ids are created). All-or-nothing.

        Returns (errors, notices); on errors nothing changed. With ``emit`` each changed object emits an
        event carrying its full current object."""
        with self._lock:
            errors: list[str] = []
            for change in changes:
                key = change.get("id")
                if not isinstance(key, str) or not key:
                    errors.append(f"{type_.capitalize()} without id")
            if errors:
                return errors, []
            notices: list[str] = []
            for change in changes:
                key = str(change["id"])
                store = self._store(type_, key)
                created = key not in store
                obj = store.setdefault(key, {"id": key})
                _merge(obj, change)
                if emit:
                    self._emit(type_, key, obj)
                notices.append(f"{type_.capitalize()} {key} {'created' if created else 'updated'}")
            return [], notices

    def _store(self, type_: str, key: str) -> dict[str, Payload]:
        """Where object ``key`` lives: a generated one is updated in place; ERP-created objects are kept
        apart (the generator never builds orders from their partial data)."""
        generated = {"customer": self.customers, "account": self.accounts, "invoice": self.invoices}.get(type_)
        if generated is not None and key in generated:
            return generated
        return self.objects.setdefault(type_, {})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            state = self._rng.getstate()
            return {
                "seed": self.seed,
                "rng": [state[0], list(state[1]), state[2]],
                "next": dict(self._next),
                "orders": self.orders, "customers": self.customers,
                "accounts": self.accounts, "invoices": self.invoices, "objects": self.objects,
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            version, internal, gauss = data["rng"]
            self._rng.setstate((version, tuple(internal), gauss))
            self.seed = data.get("seed", self.seed)
            self._next.update({k: int(v) for k, v in data.get("next", {}).items()})
            self.orders = data.get("orders", {})
            self.customers = data.get("customers", {})
            self.accounts = data.get("accounts", {})
            self.invoices = data.get("invoices", {})
            self.objects = data.get("objects", {})
            self._reindex()

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(self.seed)
            self.orders, self.customers, self.accounts, self.invoices = {}, {}, {}, {}
            self.objects = {}
            self._reindex()

    def _reindex(self) -> None:
        self._order_ids = list(self.orders)
        self._customer_ids = list(self.customers)
        self._account_ids = list(self.accounts)
        self._open_orders = [k for k, o in self.orders.items() if o.get("status") not in ("cancelled", "refunded")]

    def counts(self) -> dict[str, int]:
        with self._lock:
            by_status: dict[str, int] = {}
            for order in self.orders.values():
                status = str(order.get("status"))
                by_status[status] = by_status.get(status, 0) + 1
            return {"orders": len(self.orders), "customers": len(self.customers), "accounts": len(self.accounts),
                    "invoices": len(self.invoices), **{f"orders_{k}": v for k, v in sorted(by_status.items())}}

    # ------------------------------------------------------------------ internals

    def _id(self, kind: str) -> str:
        self._next[kind] += 1
        return str(self._next[kind])

    def _date(self) -> str:
        now = self.clock.now().astimezone(self.store_tz).replace(microsecond=0)
        roll = self._rng.random()
        if roll < 0.5:
            return now.strftime("%Y-%m-%d %H:%M:%S")
        if roll < 0.75:
            return now.isoformat()
        return now.astimezone(UTC).isoformat()  # same instant, another offset

    def _iso(self) -> str:
        return self.clock.now().astimezone(self.store_tz).replace(microsecond=0).isoformat()

    def _one(self, room: int) -> list[Event]:
        roll = self._rng.random()
        open_orders = self._open_orders
        if roll < 0.40 or not self.orders:
            if room < 2 and not self.customers:
                return [self._other()]  # a new customer + order pair would not fit
            return self._new_order_events(allow_new_customer=room >= 2)
        if roll < 0.70 and open_orders:
            return [self._advance(self._rng.choice(open_orders))]
        if roll < 0.78 and self.customers:
            return [self._touch_customer(self._rng.choice(self._customer_ids))]
        if roll < 0.83:
            return [self._account()]
        if roll < 0.90:
            return [self._invoice(self._rng.choice(self._order_ids))]
        if roll < 0.97:
            return [self._other()]
        return [self._delete()]

    def _address(self, first: str, last: str, country: str, email: str) -> Payload:
        city, zipcode, street = self._rng.choice(CITIES[country])
        return {"firstname": first, "lastname": last, "address1": f"{street} {self._rng.randint(1, 120)}",
                "address2": "", "city": city, "state": "", "zipcode": zipcode, "country": country,
                "email": email, "telephone": f"+{self._rng.randint(10**9, 10**10 - 1)}"}

    def _new_customer(self, country: str) -> Payload:
        first, last = self._rng.choice(FIRST_NAMES), self._rng.choice(LAST_NAMES)
        cid = self._id("customer")
        email = f"{first.lower()}.{last.lower()}{cid}@example.com".replace("ö", "o").replace("ä", "a").replace("ø", "o")
        address = self._address(first, last, country, email)
        customer: Payload = {"id": cid, "store": "1", "type": "retail", "status": "active", **address,
                             "newsletter": self._rng.choice(("yes", "no"))}
        self.customers[cid] = customer
        self._customer_ids.append(cid)
        return customer

    def _new_order_events(self, allow_new_customer: bool) -> list[Event]:
        market = self._rng.choice(MARKETS)
        m_id, m_desc, currency, pl_id, pl_desc, country, tax, rate, shipping = market
        if self.customers and (not allow_new_customer or self._rng.random() < 0.3):
            customer = self.customers[self._rng.choice(self._customer_ids)]
            new_customer = False
        else:
            customer = self._new_customer(country)
            new_customer = True
        currency_index = ("SEK", "EUR", "USD").index(currency)
        warehouse = WAREHOUSE_BY_COUNTRY[country]
        lines: list[Payload] = []
        for item in self._rng.sample(CATALOGUE, self._rng.randint(1, 4)):
            pid, desc, brand, sku, variants, sizes, prices = item
            v_code, colour = self._rng.choice(variants)
            price = Decimal(prices[currency_index])
            size_entries: list[Payload] = []
            qty_total = 0
            for size in self._rng.sample(sizes, min(len(sizes), self._rng.randint(1, 2))):
                qty = self._rng.randint(1, 3)
                qty_total += qty
                size_entries.append({
                    "id": size, "sku": f"{sku}{v_code}{size}", "qty": str(qty), "preorder": "no",
                    "description": size, "orderitem": {"id": self._id("orderitem"), "description": f"{desc} {size}"},
                    "warehouseitems": {"warehouse": [{"id": warehouse, "qty": str(qty)}]},
                })
            roll = self._rng.random()  # one draw decides discount and bundle: seeded sequences stay as they were
            discount = (price * qty_total * Decimal("0.10")) if roll < 0.25 else Decimal(0)
            subtotal = price * qty_total - discount.quantize(CENT, rounding=ROUND_HALF_UP)
            line: Payload = {
                "id": pid, "tax": tax, "sku": sku, "origprice": money(price), "price": money(price),
                "discount": money(discount), "qty": str(qty_total), "subtotal": money(subtotal),
                "description": desc, "variation": {"id": f"{pid}-{v_code}", "description": colour},
                "brand": {"id": brand.upper().replace(" ", "-"), "description": brand},
                "sizes": {"size": size_entries}, "type": "product", "comment": "",
            }
            lines.append(line)
            if 0.25 <= roll < 0.31:  # sold as a bundle: this line is virtual, a component line is picked
                lines.append(self._bundle(line, item, qty_total, tax, warehouse))
        total = sum((Decimal(str(line["subtotal"])) for line in lines), Decimal(0)) + Decimal(shipping)
        number = self._id("order")
        name = f"{customer['firstname']} {customer['lastname']}"
        address = {k: customer[k] for k in ("firstname", "lastname", "address1", "address2", "city", "state",
                                            "zipcode", "country", "email", "telephone")}
        created = self._iso()
        order: Payload = {
            "id": number, "ordernumber": number, "type": "retail", "store": "1", "locked": "no",
            "status": "pending", "ordertotal": money(total), "currency": currency, "currencyrate": rate,
            "basecurrency": "SEK", "created": created, "internal": "false",
            "customer": {"id": str(customer["id"]), "description": name},
            "shippingaddress": dict(address), "billingaddress": dict(address),
            "market": {"id": m_id, "description": m_desc}, "pricelist": {"id": pl_id, "description": pl_desc},
            "primary_warehouse": warehouse,
            "additionals": {"additional": [  # repeated key/value pairs, never a map
                {"key": "language", "value": {"SE": "sv", "DE": "de", "US": "en"}[country]},
                {"key": "checkout", "value": "web"}]},
            "shipping": {"subtotal": shipping, "description": "Standard"},
            "payments": {"name": "Card", "type": "cc", "total": money(total), "payment": [{
                "type": "auth", "paid": "yes", "value": money(total), "created": created,
                "transaction": f"tx-{self._id('transaction')}"}]},
            "products": {"product": lines},
        }
        if self._account_ids and int(number) % 5 == 0:  # every fifth order is wholesale (no extra draw)
            account = self.accounts[self._account_ids[int(number) % len(self._account_ids)]]
            order.update({
                "type": "wholesale", "store": str(account["store"]),
                "account": {"id": str(account["id"]), "description": str(account["name"])},
                "buyer": {"id": str(customer["id"]), "description": name},
                "paymentterms": str(account["paymentterms"]), "shippingterms": str(account["shippingterms"]),
                "deliverywindow": "Immediate",
            })
            order["payments"] = {"name": "Invoice", "type": "invoice", "total": money(total), "payment": [{
                "type": "auth", "paid": "no", "value": money(total), "created": created,
                "transaction": str(order["payments"]["payment"][0]["transaction"])}]}
        self.orders[number] = order
        self._order_ids.append(number)
        self._open_orders.append(number)
        events = [self._emit("customer", str(customer["id"]), customer)] if new_customer else []
        return [*events, self._emit_order(order)]

    def _bundle(self, line: Payload, item: Any, qty: int, tax: str, warehouse: str) -> Payload:
        """Turn ``line`` into a bundle's virtual line (carries the price, never picked: no warehouse
        items) and return its component line (price 0, picked from ``warehouse``)."""
        line["bundleinfo"] = {"isbundle": "yes"}
        for size in _as_list(_get(line, "sizes", "size")):
            size["warehouseitems"] = ""
        component = CATALOGUE[(CATALOGUE.index(item) + 1) % len(CATALOGUE)]
        c_pid, c_desc, c_brand, c_sku, c_variants, c_sizes, _ = component
        (c_code, c_colour), c_size = c_variants[0], c_sizes[0]
        return {
            "id": c_pid, "tax": tax, "sku": c_sku, "origprice": "0.00", "price": "0.00", "discount": "0.00",
            "qty": str(qty), "subtotal": "0.00", "description": c_desc,
            "variation": {"id": f"{c_pid}-{c_code}", "description": c_colour},
            "brand": {"id": c_brand.upper().replace(" ", "-"), "description": c_brand},
            "sizes": {"size": [{
                "id": c_size, "sku": f"{c_sku}{c_code}{c_size}", "qty": str(qty), "preorder": "no",
                "description": c_size, "orderitem": {"id": self._id("orderitem"), "description": f"{c_desc} {c_size}"},
                "warehouseitems": {"warehouse": [{"id": warehouse, "qty": str(qty)}]},
            }]},
            "type": "product", "comment": "",
            "bundleinfo": {"isbundle": "no", "partof": {"product": {"id": str(line["id"])}}},
        }

    def _advance(self, order_id: str) -> Event:
        order = self.orders[order_id]
        status = order.get("status")
        if status == "pending":
            order["status"] = "cancelled" if self._rng.random() < 0.1 else "confirmed"
        elif status == "confirmed":
            order["status"] = "processing"
        elif status == "processing":
            self._ship(order)
        else:  # completed: a refund of the first line
            self._refund(order)
        if order["status"] in ("cancelled", "refunded") and order_id in self._open_orders:
            self._open_orders.remove(order_id)
        return self._emit_order(order)

    def _ship(self, order: Payload) -> None:
        order["status"] = "completed"
        lines = _as_list(_get(order, "products", "product"))
        items = [{"sku": str(s["sku"]), "qty": str(s["qty"])} for line in lines
                 if _get(line, "bundleinfo", "isbundle") != "yes"  # a bundle's virtual line is never picked
                 for s in _as_list(_get(line, "sizes", "size"))]
        order["shipments"] = {"shipment": [{
            "id": self._id("shipment"), "created": self._iso(), "shipped": "yes",
            "carrier": "PostNord", "tracking": f"PN{self._rng.randint(10**8, 10**9 - 1)}SE",
            "products": {"product": items}}]}
        payments = order["payments"]
        assert isinstance(payments, dict)
        entries = _as_list(payments.get("payment"))
        entries.append({"type": "capture", "paid": "yes", "value": str(order["ordertotal"]), "created": self._iso(),
                        "transaction": f"tx-{self._id('transaction')}"})
        payments["payment"] = entries

    def _refund(self, order: Payload) -> None:
        lines = _as_list(_get(order, "products", "product"))
        first = lines[0]
        assert isinstance(first, dict)
        amount = Decimal(str(first["subtotal"]))
        payments = order["payments"]
        assert isinstance(payments, dict)
        entries = _as_list(payments.get("payment"))
        entries.append({"type": "refund", "paid": "yes", "value": money(-amount), "created": self._iso(),
                        "transaction": f"tx-{self._id('transaction')}"})
        payments["payment"] = entries
        order["status"] = "refunded" if len(lines) == 1 else order["status"]
        order["refunded"] = money(amount)

    def _emit_order(self, order: Payload) -> Event:
        return self._emit("order", str(order["ordernumber"]), order)

    def _touch_customer(self, customer_id: str) -> Event:
        customer = self.customers[customer_id]
        customer["newsletter"] = "no" if customer.get("newsletter") == "yes" else "yes"
        return self._emit("customer", customer_id, customer)

    def _account(self) -> Event:
        if self.accounts and self._rng.random() < 0.4:
            account = self.accounts[self._rng.choice(self._account_ids)]
            account["creditlimit"] = money(Decimal(self._rng.randint(10, 200)) * 1000)
        else:
            m_id, m_desc, currency, pl_id, pl_desc, country, *_ = self._rng.choice(MARKETS)
            aid = self._id("account")
            name = self._rng.choice(COMPANIES)
            email = f"orders{aid}@example.com"
            account = {"id": aid, "store": "2", "status": "active", "name": name, "email": email,
                       "market": {"id": m_id, "description": m_desc},
                       "pricelist": {"id": pl_id, "description": pl_desc}, "currency": currency,
                       "paymentterms": "NET30", "shippingterms": "DAP",
                       "creditlimit": money(Decimal(self._rng.randint(10, 200)) * 1000),
                       "address": self._address("Inköp", name.split()[0], country, email)}
            self.accounts[aid] = account
            self._account_ids.append(aid)
        return self._emit("account", str(account["id"]), account)

    def _invoice(self, order_id: str) -> Event:
        order = self.orders[order_id]
        rate = Decimal(str(_as_list(_get(order, "products", "product"))[0]["tax"])) / 100  # type: ignore[index]
        total = Decimal(str(order["ordertotal"]))
        tax = total - total / (1 + rate)
        iid = self._id("invoice")
        invoice: Payload = {"id": iid, "invoicenumber": f"INV-{iid}", "order": order_id, "created": self._iso(),
                            "currency": str(order["currency"]), "total": money(total), "tax": money(tax),
                            "paid": "yes", "customer": _copy(order["customer"]),
                            "market": _copy(order["market"])}
        self.invoices[iid] = invoice
        return self._emit("invoice", iid, invoice)

    def _other(self) -> Event:
        kind = self._rng.choice(OTHER_TYPES)
        oid = self._id("other")
        data: Payload
        if kind == "market":
            m_id, m_desc, *_ = self._rng.choice(MARKETS)
            data = {"id": m_id, "name": m_desc, "active": "yes"}
            oid = m_id
        elif kind == "pricelist":
            _m, _d, currency, pl_id, pl_desc, *_ = self._rng.choice(MARKETS)
            data = {"id": pl_id, "name": pl_desc, "currency": currency, "status": "active"}
            oid = pl_id
        elif kind == "warehouse":
            wh = self._rng.choice(sorted(WAREHOUSE_BY_COUNTRY.items()))
            data = {"id": wh[1], "name": f"Warehouse {wh[0]}", "country": wh[0], "active": "yes"}
            oid = wh[1]
        elif kind == "salesrep":
            first, last = self._rng.choice(FIRST_NAMES), self._rng.choice(LAST_NAMES)
            data = {"id": oid, "name": f"{first} {last}", "email": f"rep{oid}@example.com", "commission": "5.00"}
        elif kind == "size":
            data = {"id": oid, "name": self._rng.choice(("XS", "XXL", "27", "38")), "sizechart": "Apparel"}
        elif kind == "paymentterm":
            days = self._rng.choice((10, 30, 60))
            oid = f"NET{days}"
            data = {"id": oid, "description": f"Net {days} days", "days": str(days)}
        else:
            oid = self._rng.choice(("DAP", "EXW", "FCA"))
            data = {"id": oid, "description": f"Incoterm {oid}"}
        return self._emit(kind, oid, data)

    def _delete(self) -> Event:
        kind, entry = self._rng.choice((("paymentterm", "NET60"), ("shippingterm", "EXW"), ("size", "XXS")))
        return self.queue.enqueue(kind, entry, date=self._date(), mission="delete")

    def _emit(self, type_: str, entry: str, data: Payload) -> Event:
        # a deep copy: the queued event keeps the object as it was at this change
        return self.queue.enqueue(type_, entry, date=self._date(), data=_copy(data))


def _copy(value: Any) -> Any:
    """Deep copy of a payload (dicts, lists, strings): several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _merge(target: dict[str, Any], change: dict[str, Any]) -> None:
    """Partial upsert: nested dicts merge, leaves and lists replace."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = _copy(value)


def parse_store_date(text: str, store_tz: ZoneInfo = STORE_TZ) -> datetime:
    """Both of Centra's date formats → aware datetime (for tests and inspection)."""
    if "T" in text:
        return datetime.fromisoformat(text)
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=store_tz)
