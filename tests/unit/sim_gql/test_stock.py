"""setStock (absolute, sizes by EAN/SKU/UPC/id/any or per variant) and changeStock (deltas)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erpsync.sim.gql import GraphqlApp

from .conftest import CREATE_PRODUCT, PAYLOAD, Caller, boot, seed_catalogue

SET_STOCK = f"""mutation($input: StockSetInput!) {{ setStock(input: $input) {{ stockChanges {{ id }} {PAYLOAD} }} }}"""
CHANGE_STOCK = f"""mutation($input: StockChangeInput!) {{
  changeStock(input: $input) {{ stockChange {{ id }} {PAYLOAD} }}
}}"""


def stock(app: GraphqlApp) -> dict[tuple[str, str], int]:
    return {(r["warehouse"], r["SKU"]): r["quantity"] for r in app.inspect()["stock"]}


def set_input(lines: list[dict[str, Any]], warehouse: str = "WH-MAIN", **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "warehouse": {"externalId": warehouse},
            "description": "count",
            "stockQuantityType": "PHYSICAL",
            "productSizes": lines,
            **extra,
        }
    }


def test_set_stock_addresses_sizes_every_way(gql: Caller) -> None:
    [product] = seed_catalogue(gql, products=1)
    seed_catalogue_more = gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-2", "B2", ("2001", "2002"))})
    ps_id = seed_catalogue_more["product"]["variants"][0]["productSizes"][1]["id"]
    payload = gql.mutate(
        "setStock",
        SET_STOCK,
        set_input(
            [
                {"productSize": {"EAN": "1001"}, "quantity": 1},
                {"productSize": {"SKU": "B1-BLK39"}, "quantity": 2},
                {"productSize": {"UPC": "U2001"}, "quantity": 3},
                {"productSize": {"id": ps_id}, "quantity": 4},
            ]
        ),
    )
    assert payload["userErrors"] == [] and payload["userWarnings"] == []
    assert payload["stockChanges"] == [{"id": 1}]
    assert stock(gql.app) == {
        ("WH-MAIN", "B1-BLK38"): 1,
        ("WH-MAIN", "B1-BLK39"): 2,
        ("WH-MAIN", "B2-BLK38"): 3,
        ("WH-MAIN", "B2-BLK39"): 4,
    }
    # "any" tries SKU, then EAN, UPC, id; setStock is absolute (safe to repeat)
    for _ in range(2):
        gql.mutate(
            "setStock",
            SET_STOCK,
            set_input(
                [
                    {"productSize": {"any": "B1-BLK38"}, "quantity": 10},
                    {"productSize": {"any": "1002"}, "quantity": 20},
                    {"productSize": {"any": "U2001"}, "quantity": 30},
                    {"productSize": {"any": str(ps_id)}, "quantity": 0},
                ],
                warehouse="WH-EU",
            ),
        )
    eu = {k: v for k, v in stock(gql.app).items() if k[0] == "WH-EU"}
    assert eu == {
        ("WH-EU", "B1-BLK38"): 10,
        ("WH-EU", "B1-BLK39"): 20,
        ("WH-EU", "B2-BLK38"): 30,
        ("WH-EU", "B2-BLK39"): 0,
    }
    assert product["id"] == 1


def test_set_stock_per_variant_and_size(gql: Caller) -> None:
    seed_catalogue(gql)
    payload = gql.mutate(
        "setStock",
        SET_STOCK,
        {
            "input": {
                "warehouse": {"id": 2},
                "description": "d",
                "stockQuantityType": "PHYSICAL",
                "productVariants": [
                    {
                        "productVariant": {"externalId": "P-1-BLK"},
                        "sizeStockLevels": [
                            {"size": {"name": "38"}, "quantity": 5},
                            {"size": {"name": "Shoes|39"}, "quantity": 6},
                        ],
                    }
                ],
            }
        },
    )
    assert payload["userErrors"] == []
    assert stock(gql.app) == {("WH-EU", "B1-BLK38"): 5, ("WH-EU", "B1-BLK39"): 6}
    missing_size = gql.mutate(
        "setStock",
        SET_STOCK,
        {
            "input": {
                "warehouse": {"id": 2},
                "description": "d",
                "stockQuantityType": "PHYSICAL",
                "productVariants": [
                    {
                        "productVariant": {"externalId": "P-1-BLK"},
                        "sizeStockLevels": [{"size": {"name": "40"}, "quantity": 5}],
                    }
                ],
            }
        },
    )
    assert missing_size["userErrors"][0]["path"] == ["input", "productVariants", "0", "sizeStockLevels", "0", "size"]


def test_set_stock_rejects_bad_lines_and_changes_nothing(gql: Caller) -> None:
    seed_catalogue(gql)
    payload = gql.mutate(
        "setStock",
        SET_STOCK,
        set_input(
            [
                {"productSize": {"EAN": "1001"}, "quantity": 5},
                {"productSize": {"EAN": "9999"}, "quantity": 5},
                {"productSize": {"EAN": "1002"}, "quantity": -1},
            ]
        ),
    )
    assert payload["stockChanges"] is None
    assert [e["path"] for e in payload["userErrors"]] == [
        ["input", "productSizes", "1", "productSize", "EAN"],
        ["input", "productSizes", "2", "quantity"],
    ]
    assert stock(gql.app) == {}
    unknown_wh = gql.mutate("setStock", SET_STOCK, set_input([{"productSize": {"EAN": "1001"}, "quantity": 5}], "WH-X"))
    assert unknown_wh["userErrors"][0]["path"] == ["input", "warehouse", "externalId"]
    assert gql.app.inspect()["counts"]["stockChanges"] == 0


def test_set_stock_skip_policy(make_app: Callable[..., GraphqlApp]) -> None:
    gql = Caller(make_app(tier="enterprise", batch_failure="skip"))
    seed_catalogue(gql)
    payload = gql.mutate(
        "setStock",
        SET_STOCK,
        set_input(
            [
                {"productSize": {"EAN": "1001"}, "quantity": 5},
                {"productSize": {"EAN": "9999"}, "quantity": 5},
            ]
        ),
    )
    assert payload["userErrors"] == []
    assert [w["path"] for w in payload["userWarnings"]] == [["input", "productSizes", "1", "productSize", "EAN"]]
    assert stock(gql.app) == {("WH-MAIN", "B1-BLK38"): 5}


def test_ambiguous_ean_after_duplicate_uses_newest_and_warns(gql: Caller) -> None:
    seed_catalogue(gql)
    dup = gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-1", "B1")})
    newest = dup["product"]["variants"][0]["productSizes"][0]["id"]
    payload = gql.mutate("setStock", SET_STOCK, set_input([{"productSize": {"EAN": "1001"}, "quantity": 8}]))
    assert payload["userErrors"] == []
    assert "matches 2 product sizes" in payload["userWarnings"][0]["message"]
    assert [(r["productSizeId"], r["quantity"]) for r in gql.app.inspect()["stock"]] == [(newest, 8)]


def change(lines: list[dict[str, Any]], into: str | None = None, out: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": "move", "productSizes": lines}
    if into:
        body["intoWarehouse"] = {"externalId": into}
    if out:
        body["outFromWarehouse"] = {"externalId": out}
    return {"input": body}


def test_change_stock_deltas_and_transfers(gql: Caller) -> None:
    seed_catalogue(gql)
    gql.mutate("setStock", SET_STOCK, set_input([{"productSize": {"EAN": "1001"}, "quantity": 10}]))
    delivered = gql.mutate(
        "changeStock", CHANGE_STOCK, change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 5}], into="WH-MAIN")
    )
    assert delivered["userErrors"] == [] and delivered["stockChange"]["id"] == 2
    assert stock(gql.app)[("WH-MAIN", "B1-BLK38")] == 15
    # changeStock is not idempotent: the same call applies again
    gql.mutate(
        "changeStock", CHANGE_STOCK, change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 5}], into="WH-MAIN")
    )
    assert stock(gql.app)[("WH-MAIN", "B1-BLK38")] == 20
    moved = gql.mutate(
        "changeStock",
        CHANGE_STOCK,
        change([{"productSize": {"SKU": "B1-BLK38"}, "deliveredQuantity": 7}], into="WH-EU", out="WH-MAIN"),
    )
    assert moved["userErrors"] == []
    assert stock(gql.app) == {("WH-MAIN", "B1-BLK38"): 13, ("WH-EU", "B1-BLK38"): 7}
    out = gql.mutate(
        "changeStock", CHANGE_STOCK, change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 3}], out="WH-EU")
    )
    assert out["userErrors"] == []
    assert stock(gql.app)[("WH-EU", "B1-BLK38")] == 4


def test_change_stock_rejects_transfers_beyond_stock(gql: Caller) -> None:
    seed_catalogue(gql)
    gql.mutate("setStock", SET_STOCK, set_input([{"productSize": {"EAN": "1001"}, "quantity": 4}]))
    before = stock(gql.app)
    cases = [
        change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 5}], into="WH-EU", out="WH-MAIN"),
        change(
            [
                {"productSize": {"EAN": "1001"}, "deliveredQuantity": 3},
                {"productSize": {"EAN": "1001"}, "deliveredQuantity": 3},
            ],
            out="WH-MAIN",
        ),
        change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": -1}], into="WH-EU", out="WH-MAIN"),
        change([{"productSize": {"EAN": "1002"}, "deliveredQuantity": -1}], into="WH-MAIN"),
    ]
    for case in cases:
        payload = gql.mutate("changeStock", CHANGE_STOCK, case)
        assert payload["stockChange"] is None
        assert payload["userErrors"], case
    assert stock(gql.app) == before
    no_warehouse = gql.mutate(
        "changeStock", CHANGE_STOCK, change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 1}])
    )
    assert no_warehouse["userErrors"][0]["path"] == ["input"]
    same = gql.mutate(
        "changeStock",
        CHANGE_STOCK,
        change([{"productSize": {"EAN": "1001"}, "deliveredQuantity": 1}], into="WH-MAIN", out="WH-MAIN"),
    )
    assert "must differ" in same["userErrors"][0]["message"]


def test_change_stock_per_variant_with_skip(make_app: Callable[..., GraphqlApp]) -> None:
    gql = Caller(make_app(tier="enterprise", batch_failure="skip"))
    seed_catalogue(gql)
    payload = gql.mutate(
        "changeStock",
        CHANGE_STOCK,
        {
            "input": {
                "intoWarehouse": {"externalId": "WH-US"},
                "description": "delivery",
                "productVariants": [
                    {
                        "productVariant": {"externalId": "P-1-BLK"},
                        "sizeChanges": [
                            {"size": {"name": "38"}, "deliveredQuantity": 4},
                            {"size": {"name": "40"}, "deliveredQuantity": 4},
                            {"size": {"name": "39"}, "deliveredQuantity": -2},
                        ],
                    }
                ],
            }
        },
    )
    assert payload["userErrors"] == []
    assert [w["path"] for w in payload["userWarnings"]] == [
        ["input", "productVariants", "0", "sizeChanges", "1", "size"],
        ["input", "productVariants", "0", "sizeChanges", "2", "deliveredQuantity"],
    ]
    assert stock(gql.app) == {("WH-US", "B1-BLK38"): 4}


def test_any_prefers_codes_over_a_matching_id(gql: Caller) -> None:
    seed_catalogue(gql)
    # product size 2 exists, but "2" is also the EAN of product size 3: the EAN wins
    gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-2", "B2", ("2", "2002"))})
    gql.mutate("setStock", SET_STOCK, set_input([{"productSize": {"any": "2"}, "quantity": 9}]))
    assert [(r["productSizeId"], r["EAN"]) for r in gql.app.inspect()["stock"]] == [(3, "2")]
