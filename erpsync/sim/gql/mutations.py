"""Mutation root resolvers: validate everything first, then apply (a failed mutation changes nothing).

``userErrors`` ⇒ nothing changed. ``userWarnings`` ⇒ applied, with remarks. References are inputs
with exactly one field set. Creating with an externalId that already maps to an object creates a
duplicate and moves the mapping to the new object (the old one loses its externalId).

Batch items (``setPrices.productPrices``, each ``setPricesBatch`` entry and its items, and the
lines of ``setStock`` / ``changeStock``) follow the batch-failure policy: ``reject`` fails the whole
mutation with ``userErrors`` on every bad item; ``skip`` applies the good items and reports each bad
one as a ``userWarning`` ("Skipped: …") with the same path.

Per-call limits (PROTOCOL.md §2.2): ``setPrices`` takes at most ``MAX_PRODUCT_PRICES`` entries in
``productPrices``; ``setPricesBatch`` at most that many in total ([open]; ``prices_batch_limit =
"per_entry"``: per entry). A breach is a ``userError`` and changes nothing, whatever the policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from erpsync.clock import Clock
from erpsync.sim.gql.state import (
    STORES,
    Price,
    Pricelist,
    Product,
    ProductSize,
    Size,
    SizeChart,
    State,
    Variant,
)
from erpsync.sim.gql.views import (
    pricelist_view,
    product_size_view,
    product_view,
    size_chart_view,
    variant_view,
)

#: Permission needed by each root mutation field.
MUTATION_PERMISSIONS: dict[str, str | None] = {
    "createSizeChart": "SizeChart:write",
    "createProduct": "Product:write",
    "updateProduct": "Product:write",
    "createProductVariant": "Product:write",
    "updateProductVariant": "Product:write",
    "createProductSize": "Product:write",
    "createPricelist": "Pricelist:write",
    "setPrices": "Price:write",
    "setPricesBatch": "Price:write",
    "setStock": "StockChange:write",
    "changeStock": "StockChange:write",
}

#: Centra's per-call limit of product prices (``setPrices``; ``setPricesBatch`` per the [open] reading)
MAX_PRODUCT_PRICES = 100
PRICES_BATCH_LIMITS = ("total", "per_entry")

Path = list[str]
Msg = dict[str, Any]
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CENT = Decimal("0.01")


def _msg(message: str, path: Path) -> Msg:
    return {"message": message, "path": [str(p) for p in path]}


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


class _Report:
    """userErrors and userWarnings of one mutation, with the batch-failure policy for items."""

    def __init__(self, skip_bad_items: bool) -> None:
        self.errors: list[Msg] = []
        self.warnings: list[Msg] = []
        self.skip = skip_bad_items

    def error(self, message: str, path: Path) -> None:
        self.errors.append(_msg(message, path))

    def warn(self, message: str, path: Path) -> None:
        self.warnings.append(_msg(message, path))

    def item(self, item_errors: list[Msg]) -> bool:
        """Settle one batch item's errors; True if the item is to be applied."""
        if not item_errors:
            return True
        if self.skip:
            self.warnings.extend({**e, "message": f"Skipped: {e['message']}"} for e in item_errors)
        else:
            self.errors.extend(item_errors)
        return False

    def payload(self, **fields: Any) -> dict[str, Any]:
        return {**fields, "userErrors": self.errors, "userWarnings": self.warnings}


def _money(value: Any) -> Decimal | None:
    """A GraphQL Float as Decimal via its shortest repr (exact for values typed with ≤ 15 digits)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    d = Decimal(str(value))
    return d.quantize(_CENT) if d == d.quantize(_CENT) else d


class Mutations:
    """Resolvers for one request; they run under the app's lock against ``state``."""

    def __init__(self, state: State, clock: Clock, batch_failure: str, prices_batch_limit: str = "total") -> None:
        self.s = state
        self.clock = clock
        self.skip = batch_failure == "skip"
        self.prices_per_entry = prices_batch_limit == "per_entry"
        self._ps_index: dict[str, dict[str, list[int]]] | None = None

    def root(self) -> dict[str, Callable[..., Any]]:
        return {
            "createSizeChart": self.create_size_chart,
            "createProduct": self.create_product,
            "updateProduct": self.update_product,
            "createProductVariant": self.create_product_variant,
            "updateProductVariant": self.update_product_variant,
            "createProductSize": self.create_product_size,
            "createPricelist": self.create_pricelist,
            "setPrices": self.set_prices,
            "setPricesBatch": self.set_prices_batch,
            "setStock": self.set_stock,
            "changeStock": self.change_stock,
        }

    # --- references -------------------------------------------------------------------------

    def _one_field(self, ref: Mapping[str, Any], path: Path, errors: list[Msg]) -> tuple[str, Any] | None:
        present = [(k, v) for k, v in ref.items() if v is not None]
        if len(present) != 1:
            got = ", ".join(k for k, _ in present) or "none"
            errors.append(_msg(f"Exactly one field of a reference must be set (got: {got})", path))
            return None
        return present[0]

    def _ref(
        self,
        ref: Mapping[str, Any],
        kind: str,
        objects: Mapping[int, Any],
        label: str,
        path: Path,
        errors: list[Msg],
    ) -> int | None:
        field = self._one_field(ref, path, errors)
        if field is None:
            return None
        key, value = field
        if key == "id":
            if value in objects:
                return int(value)
            errors.append(_msg(f"{label} with id {value} not found", [*path, "id"]))
            return None
        oid = self.s.external[kind].get(value)
        if oid is None or oid not in objects:
            errors.append(_msg(f"{label} with externalId {value!r} not found", [*path, "externalId"]))
            return None
        return oid

    def _size(self, ref: Mapping[str, Any], chart_id: int | None, path: Path, errors: list[Msg]) -> int | None:
        """A size by id, by name (``"<chart>|<size>"`` or a plain size name) or by externalId
        (``"<chart externalId>|<size>"``); restricted to ``chart_id`` when the variant has one."""
        field = self._one_field(ref, path, errors)
        if field is None:
            return None
        key, value = field
        s = self.s
        found: list[Size]
        if key == "id":
            found = [s.sizes[value]] if value in s.sizes else []
        elif "|" in value:
            chart_key, size_name = value.split("|", 1)
            charts = [c for c in s.size_charts.values() if (c.name if key == "name" else c.external_id) == chart_key]
            found = [s.sizes[sid] for c in reversed(charts) for sid in c.size_ids if s.sizes[sid].name == size_name][:1]
        elif key == "name":
            found = [z for z in s.sizes.values() if z.name == value]
        else:
            found = []
        if chart_id is not None:
            found = [z for z in found if z.chart_id == chart_id]
        if not found:
            where = f" in size chart {s.size_charts[chart_id].name!r}" if chart_id is not None else ""
            errors.append(_msg(f"Size {value!r} not found{where}", [*path, key]))
            return None
        if len(found) > 1:
            errors.append(_msg(f"Size name {value!r} is ambiguous; use '<size chart>|<size>'", [*path, key]))
            return None
        return found[0].id

    def _index(self) -> dict[str, dict[str, list[int]]]:
        if self._ps_index is None:
            idx: dict[str, dict[str, list[int]]] = {"SKU": {}, "EAN": {}, "UPC": {}}
            for ps in self.s.product_sizes.values():
                idx["SKU"].setdefault(self.s.sku(ps), []).append(ps.id)
                if ps.ean:
                    idx["EAN"].setdefault(ps.ean, []).append(ps.id)
                if ps.upc:
                    idx["UPC"].setdefault(ps.upc, []).append(ps.id)
            self._ps_index = idx
        return self._ps_index

    def _product_size(self, ref: Mapping[str, Any], path: Path, errors: list[Msg], report: _Report) -> int | None:
        """A product size by id, SKU, EAN, UPC or ``any`` (SKU, then EAN, UPC, id)."""
        field = self._one_field(ref, path, errors)
        if field is None:
            return None
        key, value = field
        idx = self._index()
        ids: list[int] = []
        if key == "id":
            ids = [value] if value in self.s.product_sizes else []
        elif key == "any":
            # EANs are digits too: the codes win over an id that happens to match
            for k in ("SKU", "EAN", "UPC"):
                ids = idx[k].get(value, [])
                if ids:
                    break
            if not ids and value.isdigit() and int(value) in self.s.product_sizes:
                ids = [int(value)]
        else:
            ids = idx[key].get(value, [])
        if not ids:
            errors.append(_msg(f"Product size with {key} {value!r} not found", [*path, key]))
            return None
        if len(ids) > 1:
            chosen = max(ids)
            report.warn(
                f"{key} {value!r} matches {len(ids)} product sizes {sorted(ids)}; used the newest, id {chosen}",
                path,
            )
            return chosen
        return ids[0]

    def _money_input(
        self, value: Mapping[str, Any] | None, currency: str | None, path: Path, errors: list[Msg]
    ) -> Decimal | None:
        if value is None:
            return None
        amount = _money(value["value"])
        if amount is None or amount < 0:
            errors.append(_msg(f"Amount {value['value']!r} must be a finite number ≥ 0", [*path, "value"]))
            return None
        if currency is not None and value["currencyIsoCode"] != currency:
            errors.append(
                _msg(
                    f"Currency {value['currencyIsoCode']!r} does not match the pricelist currency {currency!r}",
                    [*path, "currencyIsoCode"],
                )
            )
            return None
        if currency is None and not _CURRENCY.match(value["currencyIsoCode"]):
            errors.append(_msg("currencyIsoCode must be a 3-letter ISO code", [*path, "currencyIsoCode"]))
            return None
        return amount

    def _now(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def _applied(self) -> None:
        self.s.mutations_applied += 1
        self._ps_index = None

    # --- catalogue --------------------------------------------------------------------------

    def create_size_chart(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        name = input["name"]
        horizontal: list[str] = input["horizontalLabels"]
        vertical: list[str] = input.get("verticalLabels") or []
        if _blank(name):
            report.error("name must not be empty", ["input", "name"])
        if not horizontal:
            report.error("horizontalLabels must not be empty", ["input", "horizontalLabels"])
        divider = input.get("dividerSymbol") or "x"
        names = [f"{h}{divider}{v}" for h in horizontal for v in vertical] if vertical else list(horizontal)
        if any(_blank(n) for n in names):
            report.error("size labels must not be empty", ["input", "horizontalLabels"])
        if len(set(names)) != len(names):
            report.error("size labels must be unique", ["input", "horizontalLabels"])
        if report.errors:
            return report.payload(sizeChart=None)
        s = self.s
        chart = SizeChart(s.new_id("sizeChart"), name, None)
        s.size_charts[chart.id] = chart
        for n in names:
            size = Size(s.new_id("size"), n, chart.id)
            s.sizes[size.id] = size
            chart.size_ids.append(size.id)
        self._external("sizeChart", input.get("externalId"), chart.id, s.size_charts, create=True)
        self._applied()
        return report.payload(sizeChart=size_chart_view(s, chart))

    def _external(self, kind: str, external_id: str | None, oid: int, objects: dict[int, Any], *, create: bool) -> None:
        if external_id is None:
            return
        if create:
            self.s.record_create(kind, external_id)
        self.s.map_external(kind, external_id, oid, objects)

    def _check_variant(
        self, v: Mapping[str, Any], path: Path, errors: list[Msg]
    ) -> tuple[int | None, list[tuple[int, Mapping[str, Any]]]]:
        """Validate a variant create input; (size chart id, [(size id, product size input)])."""
        if _blank(v["name"]):
            errors.append(_msg("name must not be empty", [*path, "name"]))
        chart_id = None
        if v.get("sizeChart") is not None:
            chart_id = self._ref(
                v["sizeChart"], "sizeChart", self.s.size_charts, "Size chart", [*path, "sizeChart"], errors
            )
            if chart_id is None:
                return None, []
        self._money_input(v.get("unitCost"), None, [*path, "unitCost"], errors)
        sizes: list[tuple[int, Mapping[str, Any]]] = []
        seen: set[int] = set()
        for i, ps in enumerate(v.get("productSizes") or []):
            ps_path = [*path, "productSizes", str(i)]
            sid = self._size(ps["size"], chart_id, [*ps_path, "size"], errors)
            if sid is None:
                continue
            if sid in seen:
                errors.append(_msg(f"Size {self.s.size_name(sid)!r} appears twice", [*ps_path, "size"]))
                continue
            seen.add(sid)
            sizes.append((sid, ps))
        return chart_id, sizes

    def _add_variant(
        self,
        product: Product,
        v: Mapping[str, Any],
        chart_id: int | None,
        sizes: list[tuple[int, Mapping[str, Any]]],
    ) -> Variant:
        s = self.s
        unit_cost = v.get("unitCost")
        variant = Variant(
            id=s.new_id("variant"),
            product_id=product.id,
            name=v["name"],
            status=v["status"],
            variant_number=v.get("variantNumber"),
            external_id=None,
            internal_name=v.get("internalName"),
            unit_cost=(str(_money(unit_cost["value"])), unit_cost["currencyIsoCode"]) if unit_cost else None,
            size_chart_id=chart_id,
        )
        s.variants[variant.id] = variant
        product.variant_ids.append(variant.id)
        product.updated_at = self._now()
        self._external("variant", v.get("externalId"), variant.id, s.variants, create=True)
        for sid, ps in sizes:
            self._add_product_size(variant, sid, ps)
        return variant

    def _add_product_size(self, variant: Variant, size_id: int, ps: Mapping[str, Any]) -> ProductSize:
        s = self.s
        if variant.size_chart_id is None:
            variant.size_chart_id = s.sizes[size_id].chart_id
        item = ProductSize(
            id=s.new_id("productSize"),
            variant_id=variant.id,
            size_id=size_id,
            ean=ps.get("EAN"),
            upc=ps.get("UPC"),
            size_number=ps.get("sizeNumber"),
            is_active=ps["isActive"],
            comment=ps.get("comment"),
            preorder=ps.get("preorder"),
        )
        s.product_sizes[item.id] = item
        variant.product_size_ids.append(item.id)
        return item

    def create_product(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        errors = report.errors
        if _blank(input["name"]):
            report.error("name must not be empty", ["input", "name"])
        if _blank(input["productNumber"]):
            report.error("productNumber must not be empty", ["input", "productNumber"])
        plans = [
            (v, *self._check_variant(v, ["input", "addProductVariants", str(i)], errors))
            for i, v in enumerate(input.get("addProductVariants") or [])
        ]
        if errors:
            return report.payload(product=None)
        s = self.s
        product = Product(
            id=s.new_id("product"),
            name=input["name"],
            status=input["status"],
            product_number=input["productNumber"],
            external_id=None,
            updated_at=self._now(),
            harmonized_commodity_code=input.get("harmonizedCommodityCode"),
            harmonized_commodity_code_description=input.get("harmonizedCommodityCodeDescription"),
            internal_comment=input.get("internalComment"),
        )
        s.products[product.id] = product
        self._external("product", input.get("externalId"), product.id, s.products, create=True)
        for v, chart_id, sizes in plans:
            self._add_variant(product, v, chart_id, sizes)
        self._applied()
        return report.payload(product=product_view(s, product))

    def update_product(self, _info: Any, id: int, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        product = self.s.products.get(id)
        if product is None:
            report.error(f"Product with id {id} not found", ["id"])
        for key in ("name", "productNumber", "status"):
            if key in input and _blank(input[key]):
                report.error(f"{key} must not be empty", ["input", key])
        if report.errors or product is None:
            return report.payload(product=None)
        attrs = {
            "name": "name",
            "status": "status",
            "productNumber": "product_number",
            "harmonizedCommodityCode": "harmonized_commodity_code",
            "harmonizedCommodityCodeDescription": "harmonized_commodity_code_description",
            "internalComment": "internal_comment",
        }
        for key, attr in attrs.items():
            if key in input:
                setattr(product, attr, input[key])
        self._external("product", input.get("externalId"), product.id, self.s.products, create=False)
        product.updated_at = self._now()
        self._applied()
        return report.payload(product=product_view(self.s, product))

    def create_product_variant(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        pid = self._ref(input["product"], "product", self.s.products, "Product", ["input", "product"], report.errors)
        chart_id, sizes = self._check_variant(input, ["input"], report.errors)
        if report.errors or pid is None:
            return report.payload(productVariant=None)
        variant = self._add_variant(self.s.products[pid], input, chart_id, sizes)
        self._applied()
        return report.payload(productVariant=variant_view(self.s, variant))

    def update_product_variant(self, _info: Any, id: int, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        variant = self.s.variants.get(id)
        if variant is None:
            report.error(f"Product variant with id {id} not found", ["id"])
        for key in ("name", "status"):
            if key in input and _blank(input[key]):
                report.error(f"{key} must not be empty", ["input", key])
        self._money_input(input.get("unitCost"), None, ["input", "unitCost"], report.errors)
        if report.errors or variant is None:
            return report.payload(productVariant=None)
        for key, attr in (
            ("name", "name"),
            ("status", "status"),
            ("variantNumber", "variant_number"),
            ("internalName", "internal_name"),
        ):
            if key in input:
                setattr(variant, attr, input[key])
        if input.get("unitCost") is not None:
            uc = input["unitCost"]
            variant.unit_cost = (str(_money(uc["value"])), uc["currencyIsoCode"])
        self._external("variant", input.get("externalId"), variant.id, self.s.variants, create=False)
        self.s.products[variant.product_id].updated_at = self._now()
        self._applied()
        return report.payload(productVariant=variant_view(self.s, variant))

    def create_product_size(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        vid = self._ref(
            input["productVariant"],
            "variant",
            self.s.variants,
            "Product variant",
            ["input", "productVariant"],
            report.errors,
        )
        if vid is None:
            return report.payload(productSize=None)
        variant = self.s.variants[vid]
        sid = self._size(input["size"], variant.size_chart_id, ["input", "size"], report.errors)
        if sid is not None and any(self.s.product_sizes[p].size_id == sid for p in variant.product_size_ids):
            report.error(f"The variant already has size {self.s.size_name(sid)!r}", ["input", "size"])
        if report.errors or sid is None:
            return report.payload(productSize=None)
        item = self._add_product_size(variant, sid, input)
        self.s.products[variant.product_id].updated_at = self._now()
        self._applied()
        return report.payload(productSize=product_size_view(self.s, item))

    # --- prices -----------------------------------------------------------------------------

    def create_pricelist(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        if _blank(input["name"]):
            report.error("name must not be empty", ["input", "name"])
        if not _CURRENCY.match(input["currencyIsoCode"]):
            report.error("currencyIsoCode must be a 3-letter ISO code", ["input", "currencyIsoCode"])
        store_id = input["store"].get("id")
        if store_id not in {sid for sid, _ in STORES}:
            report.error(f"Store with id {store_id} not found", ["input", "store", "id"])
        if report.errors:
            return report.payload(pricelist=None)
        s = self.s
        pl = Pricelist(
            id=s.new_id("pricelist"),
            name=input["name"],
            status=input["status"],
            currency=input["currencyIsoCode"],
            store_id=int(store_id),
            external_id=None,
            comment=input.get("comment"),
        )
        s.pricelists[pl.id] = pl
        self._external("pricelist", input.get("externalId"), pl.id, s.pricelists, create=True)
        self._applied()
        return report.payload(pricelist=pricelist_view(pl))

    def _check_prices(
        self, entry: Mapping[str, Any], path: Path, report: _Report
    ) -> tuple[int, list[Callable[[], int]]] | None:
        """Validate one ProductPricesSetInput; (pricelist id, appliers returning product ids)."""
        pl_errors: list[Msg] = []
        plid = self._ref(
            entry["pricelist"], "pricelist", self.s.pricelists, "Pricelist", [*path, "pricelist"], pl_errors
        )
        if plid is None:
            report.item(pl_errors)
            return None
        currency = self.s.pricelists[plid].currency
        appliers: list[Callable[[], int]] = []
        for i, item in enumerate(entry["productPrices"]):
            ipath = [*path, "productPrices", str(i)]
            errors: list[Msg] = []
            pid = self._ref(item["product"], "product", self.s.products, "Product", [*ipath, "product"], errors)
            price = self._money_input(item.get("price"), currency, [*ipath, "price"], errors)
            rrp = self._money_input(
                item.get("recommendedRetailPrice"), currency, [*ipath, "recommendedRetailPrice"], errors
            )
            variant_prices: list[tuple[int, Decimal | None, Decimal | None]] = []
            for j, vp in enumerate(item.get("individualVariantPrices") or []):
                vpath = [*ipath, "individualVariantPrices", str(j)]
                vid = self._ref(
                    vp["productVariant"],
                    "variant",
                    self.s.variants,
                    "Product variant",
                    [*vpath, "productVariant"],
                    errors,
                )
                if vid is not None and pid is not None and self.s.variants[vid].product_id != pid:
                    errors.append(
                        _msg(f"Product variant {vid} does not belong to product {pid}", [*vpath, "productVariant"])
                    )
                vprice = self._money_input(vp.get("price"), currency, [*vpath, "price"], errors)
                vrrp = self._money_input(
                    vp.get("recommendedRetailPrice"), currency, [*vpath, "recommendedRetailPrice"], errors
                )
                if vid is not None:
                    variant_prices.append((vid, vprice, vrrp))
            if not report.item(errors) or pid is None:
                continue
            appliers.append(
                self._price_applier(plid, pid, price, rrp, item["overrideIndividualVariantPrices"], variant_prices)
            )
        return plid, appliers

    def _price_applier(
        self,
        plid: int,
        pid: int,
        price: Decimal | None,
        rrp: Decimal | None,
        override: bool,
        variant_prices: list[tuple[int, Decimal | None, Decimal | None]],
    ) -> Callable[[], int]:
        def apply() -> int:
            s = self.s
            if price is not None or rrp is not None:
                entry = s.prices.setdefault((plid, "product", pid), Price())
                if price is not None:
                    entry.price = price
                if rrp is not None:
                    entry.rrp = rrp
            if override:
                for vid in s.products[pid].variant_ids:
                    s.prices.pop((plid, "variant", vid), None)
            for vid, vprice, vrrp in variant_prices:
                ventry = s.prices.setdefault((plid, "variant", vid), Price())
                if vprice is not None:
                    ventry.price = vprice
                if vrrp is not None:
                    ventry.rrp = vrrp
            return pid

        return apply

    def set_prices(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        if len(input["productPrices"]) > MAX_PRODUCT_PRICES:
            report.error(f"productPrices takes at most {MAX_PRODUCT_PRICES} entries per call, got "
                         f"{len(input['productPrices'])}", ["input", "productPrices"])
            return report.payload(pricelist=None)
        pl_errors: list[Msg] = []
        if (
            self._ref(
                input["pricelist"], "pricelist", self.s.pricelists, "Pricelist", ["input", "pricelist"], pl_errors
            )
            is None
        ):
            report.errors.extend(pl_errors)  # no pricelist: nothing to apply whatever the policy
            return report.payload(pricelist=None)
        checked = self._check_prices(input, ["input"], report)
        if report.errors or checked is None:
            return report.payload(pricelist=None)
        plid, appliers = checked
        for apply in appliers:
            apply()
        self._applied()
        return report.payload(pricelist=pricelist_view(self.s.pricelists[plid]))

    def set_prices_batch(self, _info: Any, input: list[dict[str, Any]]) -> dict[str, Any]:
        report = _Report(self.skip)
        sizes = [len(entry["productPrices"]) for entry in input]
        if self.prices_per_entry:
            for i, n in enumerate(sizes):
                if n > MAX_PRODUCT_PRICES:
                    report.error(f"productPrices takes at most {MAX_PRODUCT_PRICES} entries per call, got {n}",
                                 ["input", str(i), "productPrices"])
        elif sum(sizes) > MAX_PRODUCT_PRICES:
            report.error(f"setPricesBatch takes at most {MAX_PRODUCT_PRICES} product prices per call in total, "
                         f"got {sum(sizes)}", ["input"])
        if report.errors:
            return report.payload(pricelists=None, products=None)
        checked = [self._check_prices(entry, ["input", str(i)], report) for i, entry in enumerate(input)]
        if report.errors:
            return report.payload(pricelists=None, products=None)
        pricelist_ids: list[int] = []
        product_ids: list[int] = []
        for c in checked:
            if c is None:
                continue
            plid, appliers = c
            if plid not in pricelist_ids:
                pricelist_ids.append(plid)
            for apply in appliers:
                pid = apply()
                if pid not in product_ids:
                    product_ids.append(pid)
        self._applied()
        return report.payload(
            pricelists=[pricelist_view(self.s.pricelists[i]) for i in pricelist_ids],
            products=[product_view(self.s, self.s.products[i]) for i in product_ids],
        )

    # --- stock ------------------------------------------------------------------------------

    def _variant_size(self, vid: int, size_ref: Mapping[str, Any], path: Path, errors: list[Msg]) -> int | None:
        variant = self.s.variants[vid]
        sid = self._size(size_ref, variant.size_chart_id, path, errors)
        if sid is None:
            return None
        for psid in variant.product_size_ids:
            if self.s.product_sizes[psid].size_id == sid:
                return psid
        errors.append(_msg(f"Product variant {vid} has no size {self.s.size_name(sid)!r}", path))
        return None

    def _stock_lines(
        self,
        input: Mapping[str, Any],
        qty_key: str,
        report: _Report,
    ) -> list[tuple[Path, list[Msg], int | None, int]]:
        """Every stock line as (path, errors, product size id, quantity), both input shapes."""
        lines: list[tuple[Path, list[Msg], int | None, int]] = []
        for i, line in enumerate(input.get("productSizes") or []):
            path = ["input", "productSizes", str(i)]
            errors: list[Msg] = []
            psid = self._product_size(line["productSize"], [*path, "productSize"], errors, report)
            lines.append((path, errors, psid, line[qty_key]))
        sizes_key = "sizeStockLevels" if qty_key == "quantity" else "sizeChanges"
        for i, group in enumerate(input.get("productVariants") or []):
            gpath = ["input", "productVariants", str(i)]
            gerrors: list[Msg] = []
            vid = self._ref(
                group["productVariant"],
                "variant",
                self.s.variants,
                "Product variant",
                [*gpath, "productVariant"],
                gerrors,
            )
            for j, level in enumerate(group[sizes_key]):
                path = [*gpath, sizes_key, str(j)]
                errors = list(gerrors)
                psid = None if vid is None else self._variant_size(vid, level["size"], [*path, "size"], errors)
                lines.append((path, errors, psid, level[qty_key]))
        return lines

    def set_stock(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        wid = self._ref(
            input["warehouse"], "warehouse", self.s.warehouses, "Warehouse", ["input", "warehouse"], report.errors
        )
        if wid is None:
            return report.payload(stockChanges=None)
        updates: dict[int, int] = {}
        for path, errors, psid, qty in self._stock_lines(input, "quantity", report):
            if qty < 0:
                errors.append(_msg(f"quantity must be ≥ 0, got {qty}", [*path, "quantity"]))
            if report.item(errors) and psid is not None:
                updates[psid] = qty
        if report.errors:
            return report.payload(stockChanges=None)
        for psid, qty in updates.items():
            self.s.stock[(wid, psid)] = qty
        changes = []
        if updates:
            self.s.stock_changes += 1
            changes.append({"id": self.s.stock_changes})
        self._applied()
        return report.payload(stockChanges=changes)

    def change_stock(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        report = _Report(self.skip)
        s = self.s
        into = out = None
        if input.get("intoWarehouse") is None and input.get("outFromWarehouse") is None:
            report.error("Set intoWarehouse, outFromWarehouse or both", ["input"])
        if input.get("intoWarehouse") is not None:
            into = self._ref(
                input["intoWarehouse"],
                "warehouse",
                s.warehouses,
                "Warehouse",
                ["input", "intoWarehouse"],
                report.errors,
            )
        if input.get("outFromWarehouse") is not None:
            out = self._ref(
                input["outFromWarehouse"],
                "warehouse",
                s.warehouses,
                "Warehouse",
                ["input", "outFromWarehouse"],
                report.errors,
            )
        if into is not None and into == out:
            report.error("intoWarehouse and outFromWarehouse must differ", ["input"])
        if report.errors:
            return report.payload(stockChange=None)
        tentative: dict[tuple[int, int], int] = {}

        def level(wid: int, psid: int) -> int:
            return tentative.get((wid, psid), s.stock.get((wid, psid), 0))

        for path, errors, psid, delta in self._stock_lines(input, "deliveredQuantity", report):
            moves: dict[tuple[int, int], int] = {}
            if psid is not None:
                if into is not None and out is not None and delta <= 0:
                    errors.append(
                        _msg(f"A transfer needs a positive quantity, got {delta}", [*path, "deliveredQuantity"])
                    )
                if out is not None:
                    moves[(out, psid)] = level(out, psid) - delta
                if into is not None:
                    moves[(into, psid)] = level(into, psid) + delta
                for (wid, _), new in moves.items():
                    if new < 0:
                        errors.append(
                            _msg(
                                f"Not enough stock in {s.warehouses[wid].name}: has {level(wid, psid)}, change {delta}",
                                [*path, "deliveredQuantity"],
                            )
                        )
            if report.item(errors):
                tentative.update(moves)
        if report.errors:
            return report.payload(stockChange=None)
        s.stock.update(tentative)
        s.stock_changes += 1
        self._applied()
        return report.payload(stockChange={"id": s.stock_changes})
