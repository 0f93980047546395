"""createPricelist, setPrices, setPricesBatch, overrideIndividualVariantPrices, batch-failure policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erpsync.sim.gql import GraphqlApp

from .conftest import CREATE_PRODUCT, PAYLOAD, Caller, boot, seed_catalogue

SET_PRICES = f"""mutation($input: ProductPricesSetInput!) {{
  setPrices(input: $input) {{ pricelist {{ id externalId currencyIsoCode }} {PAYLOAD} }}
}}"""
SET_BATCH = f"""mutation($input: [ProductPricesSetInput!]!) {{
  setPricesBatch(input: $input) {{ pricelists {{ externalId }} products {{ externalId }} {PAYLOAD} }}
}}"""
CREATE_PRICELIST = f"""mutation($input: PricelistCreateInput!) {{
  createPricelist(input: $input) {{ pricelist {{ id name status currencyIsoCode externalId }} {PAYLOAD} }}
}}"""


def money(value: float, currency: str = "SEK") -> dict[str, Any]:
    return {"value": value, "currencyIsoCode": currency}


def prices(app: GraphqlApp) -> dict[tuple[str, str, str | None], tuple[str | None, str | None]]:
    return {
        (r["pricelist"], r["kind"], r["externalId"]): (r["price"], r["recommendedRetailPrice"])
        for r in app.inspect()["prices"]
    }


def test_set_prices_stores_decimal_strings(gql: Caller) -> None:
    seed_catalogue(gql)
    payload = gql.mutate(
        "setPrices",
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-SEK"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-1"},
                        "price": money(1135.0),
                        "recommendedRetailPrice": money(1299.9),
                        "overrideIndividualVariantPrices": False,
                    }
                ],
            }
        },
    )
    assert payload["userErrors"] == []
    assert payload["pricelist"]["externalId"] == "PL-SEK"
    assert prices(gql.app) == {("PL-SEK", "product", "P-1"): ("1135.00", "1299.90")}


def test_variant_prices_and_override(gql: Caller) -> None:
    seed_catalogue(gql)
    variant_price = {"productVariant": {"externalId": "P-1-BLK"}, "price": money(10.431, "EUR")}
    gql.mutate(
        "setPrices",
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-EUR"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-1"},
                        "price": money(12, "EUR"),
                        "overrideIndividualVariantPrices": False,
                        "individualVariantPrices": [variant_price],
                    }
                ],
            }
        },
    )
    assert prices(gql.app) == {
        ("PL-EUR", "product", "P-1"): ("12.00", None),
        ("PL-EUR", "variant", "P-1-BLK"): ("10.431", None),
    }
    # without override the variant price stays
    gql.mutate(
        "setPrices",
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-EUR"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-1"},
                        "price": money(13, "EUR"),
                        "overrideIndividualVariantPrices": False,
                    }
                ],
            }
        },
    )
    assert prices(gql.app)[("PL-EUR", "variant", "P-1-BLK")] == ("10.431", None)
    # with override the product price replaces individual variant prices
    gql.mutate(
        "setPrices",
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-EUR"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-1"},
                        "price": money(14, "EUR"),
                        "overrideIndividualVariantPrices": True,
                    }
                ],
            }
        },
    )
    assert prices(gql.app) == {("PL-EUR", "product", "P-1"): ("14.00", None)}


def test_price_user_errors_change_nothing(gql: Caller) -> None:
    seed_catalogue(gql, products=2)
    gql.mutate("createProduct", CREATE_PRODUCT, {"input": {**boot("P-3", "B3"), "addProductVariants": []}})
    good = {"product": {"externalId": "P-1"}, "price": money(100), "overrideIndividualVariantPrices": True}
    cases = [
        (
            {"product": {"externalId": "P-2"}, "price": money(1, "EUR"), "overrideIndividualVariantPrices": True},
            ["input", "productPrices", "1", "price", "currencyIsoCode"],
        ),
        (
            {"product": {"externalId": "P-404"}, "price": money(1), "overrideIndividualVariantPrices": True},
            ["input", "productPrices", "1", "product", "externalId"],
        ),
        (
            {"product": {"externalId": "P-2"}, "price": money(-1), "overrideIndividualVariantPrices": True},
            ["input", "productPrices", "1", "price", "value"],
        ),
        (
            {
                "product": {"externalId": "P-3"},
                "overrideIndividualVariantPrices": False,
                "individualVariantPrices": [{"productVariant": {"externalId": "P-1-BLK"}, "price": money(5)}],
            },
            ["input", "productPrices", "1", "individualVariantPrices", "0", "productVariant"],
        ),
    ]
    for bad, path in cases:
        payload = gql.mutate(
            "setPrices", SET_PRICES, {"input": {"pricelist": {"externalId": "PL-SEK"}, "productPrices": [good, bad]}}
        )
        assert payload["pricelist"] is None
        assert [e["path"] for e in payload["userErrors"]] == [path]
    assert prices(gql.app) == {}
    unknown_list = gql.mutate(
        "setPrices", SET_PRICES, {"input": {"pricelist": {"externalId": "PL-NOK"}, "productPrices": [good]}}
    )
    assert unknown_list["userErrors"][0]["path"] == ["input", "pricelist", "externalId"]


def test_skip_policy_applies_good_items_and_warns(make_app: Callable[..., GraphqlApp]) -> None:
    gql = Caller(make_app(tier="enterprise", batch_failure="skip"))
    seed_catalogue(gql, products=2)
    payload = gql.mutate(
        "setPrices",
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-SEK"},
                "productPrices": [
                    {"product": {"externalId": "P-1"}, "price": money(100), "overrideIndividualVariantPrices": True},
                    {"product": {"externalId": "P-404"}, "price": money(1), "overrideIndividualVariantPrices": True},
                    {"product": {"externalId": "P-2"}, "price": money(200), "overrideIndividualVariantPrices": True},
                ],
            }
        },
    )
    assert payload["userErrors"] == []
    assert payload["pricelist"]["externalId"] == "PL-SEK"
    assert len(payload["userWarnings"]) == 1
    warning = payload["userWarnings"][0]
    assert warning["message"].startswith("Skipped: ")
    assert warning["path"] == ["input", "productPrices", "1", "product", "externalId"]
    assert prices(gql.app) == {
        ("PL-SEK", "product", "P-1"): ("100.00", None),
        ("PL-SEK", "product", "P-2"): ("200.00", None),
    }


def test_set_prices_batch_reject_and_skip(make_app: Callable[..., GraphqlApp]) -> None:
    def entries() -> list[dict[str, Any]]:
        return [
            {
                "pricelist": {"externalId": "PL-SEK"},
                "productPrices": [
                    {"product": {"externalId": "P-1"}, "price": money(100), "overrideIndividualVariantPrices": True}
                ],
            },
            {
                "pricelist": {"externalId": "PL-EUR"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-1"},
                        "price": money(10, "EUR"),
                        "overrideIndividualVariantPrices": True,
                    },
                    {
                        "product": {"externalId": "P-2"},
                        "price": money(20, "USD"),
                        "overrideIndividualVariantPrices": True,
                    },
                ],
            },
            {"pricelist": {"externalId": "PL-GONE"}, "productPrices": []},
        ]

    reject = Caller(make_app(tier="enterprise"))
    seed_catalogue(reject, products=2)
    payload = reject.mutate("setPricesBatch", SET_BATCH, {"input": entries()})
    assert payload["pricelists"] is None
    assert [e["path"] for e in payload["userErrors"]] == [
        ["input", "1", "productPrices", "1", "price", "currencyIsoCode"],
        ["input", "2", "pricelist", "externalId"],
    ]
    assert prices(reject.app) == {}
    ok = reject.mutate("setPricesBatch", SET_BATCH, {"input": entries()[:1]})
    assert ok["userErrors"] == []
    assert ok["pricelists"] == [{"externalId": "PL-SEK"}]

    skip = Caller(make_app(tier="enterprise", batch_failure="skip"))
    seed_catalogue(skip, products=2)
    payload = skip.mutate("setPricesBatch", SET_BATCH, {"input": entries()})
    assert payload["userErrors"] == []
    assert len(payload["userWarnings"]) == 2
    assert payload["pricelists"] == [{"externalId": "PL-SEK"}, {"externalId": "PL-EUR"}]
    assert payload["products"] == [{"externalId": "P-1"}]
    assert prices(skip.app) == {
        ("PL-SEK", "product", "P-1"): ("100.00", None),
        ("PL-EUR", "product", "P-1"): ("10.00", None),
    }


def test_create_pricelist_and_duplicate_external_id(gql: Caller) -> None:
    new = {"name": "Norway", "status": "ACTIVE", "currencyIsoCode": "NOK", "store": {"id": 1}, "externalId": "PL-NOK"}
    first = gql.mutate("createPricelist", CREATE_PRICELIST, {"input": new})
    assert first["userErrors"] == []
    assert first["pricelist"]["currencyIsoCode"] == "NOK"
    second = gql.mutate("createPricelist", CREATE_PRICELIST, {"input": new})
    assert second["pricelist"]["id"] != first["pricelist"]["id"]
    assert gql.app.inspect()["duplicates"]["pricelist"] == {"PL-NOK": 1}
    found = gql.ok('{ pricelists(where: {externalId: ["PL-NOK"]}) { id } }')["pricelists"]
    assert found == [{"id": second["pricelist"]["id"]}]
    bad = gql.mutate(
        "createPricelist", CREATE_PRICELIST, {"input": {**new, "currencyIsoCode": "kr", "store": {"id": 9}}}
    )
    assert [e["path"] for e in bad["userErrors"]] == [["input", "currencyIsoCode"], ["input", "store", "id"]]
    assert gql.app.inspect()["counts"]["pricelists"] == 5


def _lines(n: int, currency: str = "SEK") -> list[dict[str, Any]]:
    return [{"product": {"externalId": "P-1"}, "price": money(n + 1, currency), "overrideIndividualVariantPrices": True}
            for n in range(n)]


def test_per_call_limits_of_set_prices_and_set_prices_batch(make_app: Callable[..., GraphqlApp]) -> None:
    """PROTOCOL.md §2.2: setPrices ≤ 100 product prices; setPricesBatch ≤ 100 in total ([open]: or
    per entry); a breach is a userError and changes nothing, whatever the batch policy."""
    for policy in ("reject", "skip"):
        gql = Caller(make_app(tier="enterprise", batch_failure=policy))
        seed_catalogue(gql)
        over = gql.mutate("setPrices", SET_PRICES, {"input": {"pricelist": {"externalId": "PL-SEK"},
                                                              "productPrices": _lines(101)}})
        assert over["userErrors"][0]["path"] == ["input", "productPrices"] and prices(gql.app) == {}
        assert gql.mutate("setPrices", SET_PRICES, {"input": {"pricelist": {"externalId": "PL-SEK"},
                                                              "productPrices": _lines(100)}})["userErrors"] == []
        split = [{"pricelist": {"externalId": "PL-SEK"}, "productPrices": _lines(60)},
                 {"pricelist": {"externalId": "PL-EUR"}, "productPrices": _lines(41, "EUR")}]
        total = gql.mutate("setPricesBatch", SET_BATCH, {"input": split})
        assert total["userErrors"][0]["path"] == ["input"] and "in total" in total["userErrors"][0]["message"]
        assert ("PL-EUR", "product", "P-1") not in prices(gql.app)
        assert gql.mutate("setPricesBatch", SET_BATCH, {"input": split[:1]})["userErrors"] == []
    per_entry = Caller(make_app(tier="enterprise", prices_batch_limit="per_entry"))
    seed_catalogue(per_entry)
    assert per_entry.mutate("setPricesBatch", SET_BATCH, {"input": split})["userErrors"] == []
    big = [split[0], {"pricelist": {"externalId": "PL-EUR"}, "productPrices": _lines(101, "EUR")}]
    payload = per_entry.mutate("setPricesBatch", SET_BATCH, {"input": big})
    assert [e["path"] for e in payload["userErrors"]] == [["input", "1", "productPrices"]]
