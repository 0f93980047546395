"""Compare what Centra holds with what the ERP staged (used by ``erpsync demo`` and the end-to-end
tests): stock per warehouse and EAN, prices per pricelist and product/variant, and which products,
variants and pricelists exist (by externalId).

``centra`` is an inspection of the store in the simulator's ``/_sim/state`` ``graphql`` shape:
``{"stock": [{"warehouse", "EAN", "quantity"}], "prices": [{"pricelist", "externalId", "price"}],
"externalIds": {kind: {externalId: id}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from erpsync.store.staging import StagingPrice, StagingPricelist, StagingProduct, StagingStock, StagingVariant

MAX_SHOWN = 10


def differences(engine: Engine, centra: Mapping[str, Any], *, warehouses: Mapping[str, str] | None = None,
                pricelists: Mapping[str, str] | None = None) -> list[str]:
    """Every way Centra differs from the ERP's staged data (empty: in sync)."""
    wh_map, pl_map = dict(warehouses or {}), dict(pricelists or {})
    with Session(engine) as s:
        stock = {(wh_map.get(r.warehouse, r.warehouse), r.ean): r.quantity
                 for r in s.scalars(select(StagingStock).where(col(StagingStock.removed_at).is_(None)))}
        prices = {}
        for p in s.scalars(select(StagingPrice).where(col(StagingPrice.removed_at).is_(None))):
            ext = f"var_{p.variant_number}" if p.variant_number else f"prd_{p.product_number}"
            prices[(pl_map.get(p.pricelist, p.pricelist), ext)] = Decimal(p.price)
        products = {f"prd_{n}" for n in s.scalars(select(col(StagingProduct.product_number)).where(
            col(StagingProduct.removed_at).is_(None)))}
        variants = {f"var_{n}" for n in s.scalars(select(col(StagingVariant.variant_number)).where(
            col(StagingVariant.removed_at).is_(None)))}
        pls = {pl_map.get(c, c) for c in s.scalars(select(col(StagingPricelist.code)).where(
            col(StagingPricelist.removed_at).is_(None)))}

    out: list[str] = []
    c_stock = {(r["warehouse"], r["EAN"]): int(r["quantity"]) for r in centra.get("stock", [])}
    for key, qty in sorted(stock.items()):
        if c_stock.get(key) != qty:
            out.append(f"stock {key[0]}/{key[1]}: ERP {qty}, Centra {c_stock.get(key)}")
    c_prices = {(r["pricelist"], r["externalId"]): _exact(r["price"]) for r in centra.get("prices", [])
                if r.get("price") is not None}
    for key, price in sorted(prices.items()):
        if c_prices.get(key) != price:
            out.append(f"price {key[0]}/{key[1]}: ERP {price}, Centra {c_prices.get(key)}")
    ext = centra.get("externalIds", {})
    for kind, wanted in (("product", products), ("variant", variants), ("pricelist", pls)):
        have = set(_ids_of(ext, kind))
        for missing in sorted(wanted - have):
            out.append(f"{kind} {missing}: in the ERP, absent from Centra")
    if len(out) > MAX_SHOWN:
        out = [*out[:MAX_SHOWN], f"... and {len(out) - MAX_SHOWN} more"]
    return out


def _exact(value: Any) -> Decimal:
    """A price read back from Centra as a Decimal: a GraphQL Float by its shortest repr (the amount
    that was sent), never its binary expansion."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _ids_of(ext: Mapping[str, Any], kind: str) -> list[str]:
    for key in (kind, f"{kind}s", kind.capitalize(), f"{kind.capitalize()}s"):
        if key in ext:
            return list(ext[key])
    return []
