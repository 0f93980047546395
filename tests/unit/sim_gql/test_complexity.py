"""The documented complexity formula and the mutation count (erpsync.sim.gql.complexity)."""

from __future__ import annotations

import pytest

from erpsync.sim.gql.complexity import DEFAULT_LIST_SIZE, MUTATION_BASE, RATE_LIMITS_COST

from .conftest import PAYLOAD, Caller, seed_catalogue


def complexity(gql: Caller, query: str, variables: dict | None = None) -> int:
    status, _, body = gql.raw(query, variables)
    assert status == 200, body
    return body["extensions"]["complexity"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ rateLimits { type intervalSeconds quota usedQuota remainingQuota } }", RATE_LIMITS_COST),
        ("{ products(limit: 5) { id name } }", 1 + 5 * 2),
        ("{ products { id } }", 1 + 20 * 1),  # schema default limit 20
        ("{ __typename products(limit: 1) { __typename id } }", 1 + 1),
        ("{ stores { id name } }", 1 + DEFAULT_LIST_SIZE * 2),
        ("{ sizeCharts(limit: 2) { id sizes { id name } } }", 1 + 2 * (1 + (1 + DEFAULT_LIST_SIZE * 2))),
        # nested lists multiply: variants default 20, productSizes 10
        (
            "{ products(limit: 3) { id variants { id productSizes { id EAN } } } }",
            1 + 3 * (1 + (1 + 20 * (1 + (1 + DEFAULT_LIST_SIZE * 2)))),
        ),
        ("{ products(limit: 2) { variants(limit: 1) { product { id } } } }", 1 + 2 * (1 + 1 * (1 + 1))),
        # fragments are expanded in place
        ("query { products(limit: 4) { ...F } } fragment F on Product { id name }", 1 + 4 * 2),
        ("query { products(limit: 4) { ... on Product { id } } }", 1 + 4 * 1),
    ],
)
def test_query_complexity(gql: Caller, query: str, expected: int) -> None:
    assert complexity(gql, query) == expected


def test_limit_from_variable(gql: Caller) -> None:
    assert complexity(gql, "query($n: Int) { products(limit: $n) { id } }", {"n": 7}) == 1 + 7


def test_mutation_complexity_documented_example(gql: Caller) -> None:
    query = f"""mutation {{ createProduct(input: {{name: "X", status: ACTIVE, productNumber: "X1"}})
        {{ product {{ id }} {PAYLOAD} }} }}"""
    assert complexity(gql, query) == MUTATION_BASE + 2 + 21 + 21 == 144


def test_mutation_input_lists_add_one_per_element(gql: Caller) -> None:
    seed_catalogue(gql)
    lines = [{"productSize": {"EAN": "1001"}, "quantity": q} for q in range(50)]
    query = """mutation($input: StockSetInput!) { setStock(input: $input) { userErrors { message } } }"""
    base = complexity(
        gql, query, {"input": {"warehouse": {"id": 1}, "description": "d", "stockQuantityType": "PHYSICAL"}}
    )
    assert base == MUTATION_BASE + 1 + DEFAULT_LIST_SIZE * 1
    with_lines = complexity(
        gql,
        query,
        {
            "input": {
                "warehouse": {"id": 1},
                "description": "d",
                "stockQuantityType": "PHYSICAL",
                "productSizes": lines,
            }
        },
    )
    assert with_lines == base + 50


def test_aliased_mutations_count_once_each(gql: Caller) -> None:
    before = gql.app.inspect()["quota"]["buckets"]["MUTATION_COUNT:TEN_SECONDS"]["used"]
    query = " ".join(
        f'm{i}: createPricelist(input: {{name: "L{i}", status: ACTIVE, currencyIsoCode: "NOK", store: {{id: 1}}}})'
        " { pricelist { id } }"
        for i in range(5)
    )
    status, _, body = gql.raw(f"mutation {{ {query} }}")
    assert status == 200
    assert body["extensions"]["complexity"] == 5 * (MUTATION_BASE + 1 + 1)
    after = gql.app.inspect()["quota"]["buckets"]["MUTATION_COUNT:TEN_SECONDS"]["used"]
    assert after - before == 5
    assert gql.app.inspect()["counts"]["pricelists"] == 3 + 5


def test_one_batch_mutation_costs_one_mutation(gql: Caller) -> None:
    seed_catalogue(gql)
    lines = [{"productSize": {"EAN": "1001"}, "quantity": 1}] * 1000
    gql.ok(
        """mutation($input: StockSetInput!) { setStock(input: $input) { userErrors { message } } }""",
        {"input": {"warehouse": {"id": 1}, "description": "d", "stockQuantityType": "PHYSICAL", "productSizes": lines}},
    )
    buckets = gql.app.inspect()["quota"]["buckets"]
    assert buckets["MUTATION_COUNT:ONE_HOUR"]["used"] == 1 + 2  # seed: chart + product
