"""Benchmark of the simulator's GraphQL executor, in process (no HTTP). Prints figures, asserts none.

Run: .venv/bin/python -m tests.bench.bench_gql_sim
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from erpsync.clock import SystemClock
from erpsync.sim.gql import GqlOptions, GraphqlApp

HEADERS = {"Authorization": "Bearer sim-token"}


def call(app: GraphqlApp, query: str, variables: dict | None = None) -> dict:
    status, _, body = app.handle(HEADERS, json.dumps({"query": query, "variables": variables or {}}).encode())
    assert status == 200, body
    return json.loads(body)


def timed(label: str, n: int, fn: Callable[[int], object]) -> None:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    elapsed = time.perf_counter() - start
    print(f"{label:<48} {n:>6} x  {elapsed / n * 1000:8.3f} ms each  {n / elapsed:9.1f}/s")


def main() -> None:
    app = GraphqlApp(
        GqlOptions(
            tier="custom",
            limits=dict.fromkeys(
                [
                    f"{t}:{i}"
                    for t in ("REQUEST_COUNT", "QUERY_COMPLEXITY", "MUTATION_COUNT")
                    for i in ("TEN_SECONDS", "ONE_HOUR")
                ],
                10**12,
            ),
        ),
        SystemClock(),
    )
    sizes = [str(s) for s in range(30, 45)]
    call(
        app,
        "mutation($i: SizeChartCreateInput!) { createSizeChart(input: $i) { userErrors { message } } }",
        {"i": {"name": "N", "horizontalLabels": sizes}},
    )
    create = """mutation($i: ProductCreateInput!) { createProduct(input: $i) {
        product { id variants { productSizes { id SKU } } } userErrors { message } } }"""

    def create_product(n: int) -> object:
        return call(
            app,
            create,
            {
                "i": {
                    "name": f"P{n}",
                    "status": "ACTIVE",
                    "productNumber": f"P{n}",
                    "externalId": f"P{n}",
                    "addProductVariants": [
                        {
                            "name": f"V{v}",
                            "status": "ACTIVE",
                            "variantNumber": f"-{v}",
                            "productSizes": [
                                {"size": {"name": s}, "isActive": True, "EAN": f"{n}-{v}-{s}", "sizeNumber": s}
                                for s in sizes[:5]
                            ],
                        }
                        for v in range(3)
                    ],
                }
            },
        )

    timed("createProduct (3 variants x 5 sizes)", 400, create_product)
    timed("rateLimits query", 2000, lambda _: call(app, "{ rateLimits { type usedQuota } }"))
    lookup = "query($e: [String!]) { products(where: {externalId: $e}) { id externalId } }"
    timed("products lookup by 20 externalIds", 1000, lambda n: call(app, lookup, {"e": [f"P{k}" for k in range(20)]}))
    lines = [
        {"productSize": {"EAN": f"{n}-{v}-{s}"}, "quantity": n % 7}
        for n in range(400)
        for v in range(3)
        for s in sizes[:5]
    ]
    stock = "mutation($i: StockSetInput!) { setStock(input: $i) { userErrors { message } } }"
    timed(
        f"setStock with {len(lines)} lines by EAN",
        5,
        lambda _: call(
            app,
            stock,
            {
                "i": {
                    "warehouse": {"id": 1},
                    "description": "bench",
                    "stockQuantityType": "PHYSICAL",
                    "productSizes": lines,
                }
            },
        ),
    )
    prices = "mutation($i: ProductPricesSetInput!) { setPrices(input: $i) { userErrors { message } } }"
    items = [
        {
            "product": {"externalId": f"P{n}"},
            "price": {"value": 99.5, "currencyIsoCode": "SEK"},
            "overrideIndividualVariantPrices": True,
        }
        for n in range(400)
    ]
    timed(
        "setPrices with 400 products",
        10,
        lambda _: call(app, prices, {"i": {"pricelist": {"externalId": "PL-SEK"}, "productPrices": items}}),
    )
    print("held:", json.dumps(app.inspect()["counts"]))


if __name__ == "__main__":
    main()
