"""In-memory catalogue, price and stock state of the simulated Centra (plain data, JSON round-trip)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

#: Kinds of objects that carry an externalId mapping.
EXTERNAL_KINDS = ("product", "variant", "sizeChart", "pricelist", "warehouse")

STORES: tuple[tuple[int, str], ...] = ((1, "Retail"), (2, "Wholesale"))


@dataclass
class Size:
    id: int
    name: str
    chart_id: int


@dataclass
class SizeChart:
    id: int
    name: str
    external_id: str | None
    size_ids: list[int] = field(default_factory=list)


@dataclass
class Product:
    id: int
    name: str
    status: str
    product_number: str
    external_id: str | None
    updated_at: str
    harmonized_commodity_code: str | None = None
    harmonized_commodity_code_description: str | None = None
    internal_comment: str | None = None
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class Variant:
    id: int
    product_id: int
    name: str
    status: str
    variant_number: str | None
    external_id: str | None
    internal_name: str | None = None
    unit_cost: tuple[str, str] | None = None  # (decimal string, currency)
    size_chart_id: int | None = None
    product_size_ids: list[int] = field(default_factory=list)


@dataclass
class ProductSize:
    id: int
    variant_id: int
    size_id: int
    ean: str | None
    upc: str | None
    size_number: str | None
    is_active: bool
    comment: str | None = None
    preorder: bool | None = None


@dataclass
class Pricelist:
    id: int
    name: str
    status: str
    currency: str
    store_id: int
    external_id: str | None
    comment: str | None = None


@dataclass
class Warehouse:
    id: int
    name: str
    external_id: str | None


@dataclass
class Price:
    price: Decimal | None = None
    rrp: Decimal | None = None


@dataclass
class State:
    """Everything the simulated Centra holds on the GraphQL side."""

    size_charts: dict[int, SizeChart] = field(default_factory=dict)
    sizes: dict[int, Size] = field(default_factory=dict)
    products: dict[int, Product] = field(default_factory=dict)
    variants: dict[int, Variant] = field(default_factory=dict)
    product_sizes: dict[int, ProductSize] = field(default_factory=dict)
    pricelists: dict[int, Pricelist] = field(default_factory=dict)
    warehouses: dict[int, Warehouse] = field(default_factory=dict)
    #: kind -> externalId -> id of the object the externalId currently maps to
    external: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in EXTERNAL_KINDS})
    #: kind -> externalId -> how many objects were created with it (duplicates = creates - 1)
    creates: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in EXTERNAL_KINDS})
    #: (pricelist id, "product" | "variant", object id) -> price
    prices: dict[tuple[int, str, int], Price] = field(default_factory=dict)
    #: (warehouse id, product size id) -> physical quantity
    stock: dict[tuple[int, int], int] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)
    stock_changes: int = 0
    mutations_applied: int = 0

    def new_id(self, kind: str) -> int:
        n = self.next_id.get(kind, 1)
        self.next_id[kind] = n + 1
        return n

    def sku(self, ps: ProductSize) -> str:
        variant = self.variants[ps.variant_id]
        product = self.products[variant.product_id]
        return f"{product.product_number}{variant.variant_number or ''}{ps.size_number or ''}"

    def size_name(self, size_id: int) -> str:
        return self.sizes[size_id].name

    # --- externalId bookkeeping -------------------------------------------------------------

    def map_external(self, kind: str, external_id: str, obj_id: int, objects: dict[int, Any]) -> None:
        """Point ``external_id`` at ``obj_id``; the object it pointed at before loses it."""
        mapping = self.external[kind]
        previous = mapping.get(external_id)
        loser = objects.get(previous) if previous is not None and previous != obj_id else None
        if loser is not None and loser.external_id == external_id:
            loser.external_id = None  # the mapping moves: the older object loses its externalId
        old = objects[obj_id].external_id
        if old is not None and old != external_id and mapping.get(old) == obj_id:
            del mapping[old]  # the object's former externalId no longer finds it
        mapping[external_id] = obj_id
        objects[obj_id].external_id = external_id

    def record_create(self, kind: str, external_id: str | None) -> None:
        if external_id is not None:
            self.creates[kind][external_id] = self.creates[kind].get(external_id, 0) + 1

    def duplicates(self) -> dict[str, dict[str, int]]:
        return {kind: {ext: n - 1 for ext, n in sorted(per.items()) if n > 1} for kind, per in self.creates.items()}

    # --- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "size_charts": [asdict(x) for x in self.size_charts.values()],
            "sizes": [asdict(x) for x in self.sizes.values()],
            "products": [asdict(x) for x in self.products.values()],
            "variants": [asdict(x) for x in self.variants.values()],
            "product_sizes": [asdict(x) for x in self.product_sizes.values()],
            "pricelists": [asdict(x) for x in self.pricelists.values()],
            "warehouses": [asdict(x) for x in self.warehouses.values()],
            "external": self.external,
            "creates": self.creates,
            "prices": [[pl, kind, oid, _dec(p.price), _dec(p.rrp)] for (pl, kind, oid), p in self.prices.items()],
            "stock": [[wh, ps, qty] for (wh, ps), qty in self.stock.items()],
            "next_id": self.next_id,
            "stock_changes": self.stock_changes,
            "mutations_applied": self.mutations_applied,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        def variant(d: dict[str, Any]) -> Variant:
            uc = d.get("unit_cost")
            return Variant(**{**d, "unit_cost": tuple(uc) if uc else None})

        return cls(
            size_charts={d["id"]: SizeChart(**d) for d in data["size_charts"]},
            sizes={d["id"]: Size(**d) for d in data["sizes"]},
            products={d["id"]: Product(**d) for d in data["products"]},
            variants={d["id"]: variant(d) for d in data["variants"]},
            product_sizes={d["id"]: ProductSize(**d) for d in data["product_sizes"]},
            pricelists={d["id"]: Pricelist(**d) for d in data["pricelists"]},
            warehouses={d["id"]: Warehouse(**d) for d in data["warehouses"]},
            external={k: dict(data["external"].get(k, {})) for k in EXTERNAL_KINDS},
            creates={k: dict(data["creates"].get(k, {})) for k in EXTERNAL_KINDS},
            prices={(pl, kind, oid): Price(_undec(p), _undec(r)) for pl, kind, oid, p, r in data["prices"]},
            stock={(wh, ps): qty for wh, ps, qty in data["stock"]},
            next_id=dict(data["next_id"]),
            stock_changes=int(data["stock_changes"]),
            mutations_applied=int(data.get("mutations_applied", 0)),
        )


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def seeded(warehouses: tuple[str, ...], pricelists: tuple[tuple[str, str], ...]) -> State:
    """A fresh state holding the pre-seeded warehouses and pricelists (as in a real environment)."""
    state = State()
    for ext in warehouses:
        wid = state.new_id("warehouse")
        state.warehouses[wid] = Warehouse(wid, ext, None)
        state.map_external("warehouse", ext, wid, state.warehouses)
    for ext, currency in pricelists:
        pid = state.new_id("pricelist")
        state.pricelists[pid] = Pricelist(pid, ext, "ACTIVE", currency, STORES[0][0], None)
        state.map_external("pricelist", ext, pid, state.pricelists)
    return state
