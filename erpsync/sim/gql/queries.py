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


def _id_filter(where: dict[str, Any] | None) -> Callable[[int, str | None], bool]:
    """A predicate for the ``id`` / ``externalId`` lists of a filter (both must match when given)."""
    where = where or {}
    ids = None if where.get("id") is None else set(where["id"])
    exts = None if where.get("externalId") is None else set(where["externalId"])

    def match(obj_id: int, ext: str | None) -> bool:
        return (ids is None or obj_id in ids) and (exts is None or (ext is not None and ext in exts))

    return match


def query_root(state: State, quota: Quota) -> dict[str, Callable[..., Any]]:
    """The root value for query operations (graphql-core calls each with ``info`` and the args)."""

    def products(
        _info: Any, where: dict[str, Any] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        where = where or {}
        match = _id_filter(where)
        found = []
        for p in state.products.values():
            if not match(p.id, p.external_id):
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
        match = _id_filter(where)
        found = [pl for pl in state.pricelists.values() if match(pl.id, pl.external_id)]
        return [pricelist_view(pl) for pl in page_of(found, limit, page)]

    def warehouses(
        _info: Any, where: dict[str, Any] | None = None, limit: int = 20, page: int = 1
    ) -> list[dict[str, Any]]:
        match = _id_filter(where)
        found = [w for w in state.warehouses.values() if match(w.id, w.external_id)]
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
