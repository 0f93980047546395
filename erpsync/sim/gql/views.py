"""Output objects for graphql-core's default resolver: dicts whose callables resolve lazily."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from erpsync.sim.gql.state import STORES, Pricelist, Product, ProductSize, SizeChart, State, Variant, Warehouse

T = TypeVar("T")


def page_of(items: Sequence[T], limit: int, page: int) -> list[T]:
    limit = max(0, limit)
    start = max(0, page - 1) * limit
    return list(items[start : start + limit])


def size_view(state: State, size_id: int) -> dict[str, Any]:
    s = state.sizes[size_id]
    return {"id": s.id, "name": s.name}


def size_chart_view(state: State, chart: SizeChart) -> dict[str, Any]:
    return {
        "id": chart.id,
        "name": chart.name,
        "externalId": chart.external_id,
        "sizes": [size_view(state, sid) for sid in chart.size_ids],
    }


def product_size_view(state: State, ps: ProductSize) -> dict[str, Any]:
    return {
        "id": ps.id,
        "size": size_view(state, ps.size_id),
        "EAN": ps.ean,
        "UPC": ps.upc,
        "sizeNumber": ps.size_number,
        "SKU": state.sku(ps),
        "isActive": ps.is_active,
    }


def variant_view(state: State, v: Variant) -> dict[str, Any]:
    product: Callable[..., Any] = lambda _info: product_view(state, state.products[v.product_id])  # noqa: E731
    return {
        "id": v.id,
        "name": v.name,
        "status": v.status,
        "variantNumber": v.variant_number,
        "externalId": v.external_id,
        "product": product,
        "productSizes": [product_size_view(state, state.product_sizes[i]) for i in v.product_size_ids],
    }


def product_view(state: State, p: Product) -> dict[str, Any]:
    def variants(_info: Any, limit: int = 20, page: int = 1) -> list[dict[str, Any]]:
        return [variant_view(state, state.variants[i]) for i in page_of(p.variant_ids, limit, page)]

    return {
        "id": p.id,
        "name": p.name,
        "status": p.status,
        "productNumber": p.product_number,
        "externalId": p.external_id,
        "updatedAt": p.updated_at,
        "variants": variants,
    }


def pricelist_view(pl: Pricelist) -> dict[str, Any]:
    return {
        "id": pl.id,
        "name": pl.name,
        "status": pl.status,
        "currencyIsoCode": pl.currency,
        "externalId": pl.external_id,
    }


def warehouse_view(wh: Warehouse) -> dict[str, Any]:
    return {"id": wh.id, "name": wh.name, "externalId": wh.external_id}


def store_views() -> list[dict[str, Any]]:
    return [{"id": sid, "name": name} for sid, name in STORES]
