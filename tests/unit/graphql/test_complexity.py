"""The complexity upper bound is an upper bound: never below what the simulator charges for every
document the push jobs send, and it grows with list limits and input size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from erpsync.graphql.client import RATE_LIMITS_QUERY
from erpsync.graphql.complexity import RATE_LIMITS_COST, upper_bound
from erpsync.graphql.schema import DocumentCache, contract_schema
from erpsync.outbound import documents as d
from erpsync.sim.gql import DEFAULT_TOKEN
from tests.unit.outbound.helpers import sim_app

STOCK = {"input": {"warehouse": {"externalId": "WH-MAIN"}, "description": "x", "stockQuantityType": "PHYSICAL",
                   "productSizes": [{"productSize": {"EAN": str(n)}, "quantity": 1} for n in range(300)]}}
PRICES = {"input": [{"pricelist": {"externalId": "PL-SEK"}, "productPrices": [
    {"product": {"externalId": f"p{n}"}, "price": {"value": 1.0, "currencyIsoCode": "SEK"},
     "overrideIndividualVariantPrices": False} for n in range(100)]}]}

CASES: list[tuple[str, dict[str, Any]]] = [
    (RATE_LIMITS_QUERY, {}),
    (d.LOOKUP_PRODUCTS, {"externalIds": ["a"], "limit": 200}),
    (d.LOOKUP_PRODUCTS, {"externalIds": ["a"], "limit": 3}),
    (d.LOOKUP_PRODUCT_VARIANTS, {"ids": [1], "page": 2}),
    (d.LOOKUP_SIZE_CHARTS, {"limit": 50, "page": 1}),
    (d.LOOKUP_PRICELISTS, {"externalIds": ["a"], "limit": 200}),
    (d.LOOKUP_WAREHOUSES, {"externalIds": ["a"], "limit": 10}),
    (d.SET_STOCK, STOCK),
    (d.SET_PRICES_BATCH, PRICES),
    (d.CREATE_PRICELIST, {"input": {"name": "x", "status": "ACTIVE", "currencyIsoCode": "SEK", "store": {"id": 1},
                                    "externalId": "x"}}),
]


def _sim_cost(document: str, variables: dict[str, Any]) -> int:
    app = sim_app()
    status, _, raw = app.handle({"Authorization": f"Bearer {DEFAULT_TOKEN}"},
                                json.dumps({"query": document, "variables": variables}).encode())
    assert status == 200, raw
    return int(json.loads(raw)["extensions"]["complexity"])


@pytest.mark.parametrize(("document", "variables"), CASES)
def test_bound_is_never_below_the_charged_complexity(document: str, variables: dict[str, Any]) -> None:
    bound = upper_bound(contract_schema(), DocumentCache().get(document).ast, variables)
    assert bound >= _sim_cost(document, variables)
    assert bound <= 3 * _sim_cost(document, variables) + 200  # an upper bound, not an absurd one


def test_bound_grows_with_limits_and_input_size() -> None:
    ast = DocumentCache().get(d.LOOKUP_PRODUCTS).ast
    schema = contract_schema()
    assert upper_bound(schema, ast, {"limit": 200}) > 10 * upper_bound(schema, ast, {"limit": 10})
    stock = DocumentCache().get(d.SET_STOCK).ast
    small = {"input": {**STOCK["input"], "productSizes": STOCK["input"]["productSizes"][:10]}}
    assert upper_bound(schema, stock, STOCK) - upper_bound(schema, stock, small) == 290
    assert upper_bound(schema, DocumentCache().get(RATE_LIMITS_QUERY).ast, None) == RATE_LIMITS_COST
