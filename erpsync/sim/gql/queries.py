"""Query root resolvers: lookups by id / externalId / productNumber, paging, rateLimits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erpsync.sim.gql.quota import Quota
from erpsync.sim.gql.state import State
from erpsync.sim.gql.views import (
    page_of,
    pricelist_view,
    product_view,
    size_chart_view,
    store_views,
    warehouse_view,
)


def _match_ids(obj_id: int, ext: str | None, where: dict[str, Any] | None) -> bool:
    if not where:
        return True
    ids = where.get("id")
    if ids is not None and obj_id not in ids:
        return False
    exts = where.get("externalId")
    return exts is None or (ext is not None and ext in exts)


def query_root(state: State, quota: Quota) -> dict[str, Callable[..., Any]]:
    """The root value for query operations (graphql-core calls each with ``info`` and the args)."""

    def products(
        _info: Any, where: dict[str, Any] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        where = where or {}
        found = []
        for p in state.products.values():
            if not _match_ids(p.id, p.external_id, where):
                continue
            number = where.get("productNumber")
            if number:
                if number.get("equals") is not None and p.product_number != number["equals"]:
                    continue
                if number.get("contains") is not None and number["contains"] not in p.product_number:
                    continue
            statuses = where.get("status")
            if statuses is not None and p.status not in statuses:
                continue
            found.append(p)
        return [product_view(state, p) for p in page_of(found, limit, page)]

    def pricelists(
        _info: Any, where: dict[str, Any] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        found = [pl for pl in state.pricelists.values() if _match_ids(pl.id, pl.external_id, where)]
        return [pricelist_view(pl) for pl in page_of(found, limit, page)]

    def warehouses(
        _info: Any, where: dict[str, Any] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        found = [w for w in state.warehouses.values() if _match_ids(w.id, w.external_id, where)]
        return [warehouse_view(w) for w in page_of(found, limit, page)]

    def size_charts(_info: Any, limit: int = 20, page: int = 1) -> list[dict[str, Any]]:
        return [size_chart_view(state, c) for c in page_of(list(state.size_charts.values()), limit, page)]

    return {
        "rateLimits": lambda _info: quota.rows(),
        "products": products,
        "pricelists": pricelists,
        "warehouses": warehouses,
        "sizeCharts": size_charts,
        "stores": lambda _info: store_views(),
    }
