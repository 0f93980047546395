"""Inspection, snapshot/restore (the --state-file option), reset, and thread safety of mutations."""

from __future__ import annotations

import json
import threading

import pytest

from erpsync.clock import FakeClock
from erpsync.sim.gql import GqlOptions, GraphqlApp

from .conftest import CREATE_PRODUCT, Caller, boot, seed_catalogue

SET_PRICES = """mutation($input: ProductPricesSetInput!) { setPrices(input: $input) { userErrors { message } } }"""
SET_STOCK = """mutation($input: StockSetInput!) { setStock(input: $input) { userErrors { message } } }"""


def populate(gql: Caller) -> None:
    seed_catalogue(gql, products=2)
    gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-1", "B1")})  # a duplicate
    gql.ok(
        SET_PRICES,
        {
            "input": {
                "pricelist": {"externalId": "PL-EUR"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-2"},
                        "price": {"value": 19.99, "currencyIsoCode": "EUR"},
                        "overrideIndividualVariantPrices": False,
                        "individualVariantPrices": [
                            {
                                "productVariant": {"externalId": "P-2-BLK"},
                                "price": {"value": 17.5, "currencyIsoCode": "EUR"},
                            }
                        ],
                    }
                ],
            }
        },
    )
    gql.ok(
        SET_STOCK,
        {
            "input": {
                "warehouse": {"externalId": "WH-US"},
                "description": "d",
                "stockQuantityType": "PHYSICAL",
                "productSizes": [{"productSize": {"EAN": "2001"}, "quantity": 12}],
            }
        },
    )


def test_inspect_reports_what_the_server_holds(gql: Caller) -> None:
    populate(gql)
    state = gql.app.inspect()
    json.dumps(state)  # JSON-able
    assert state["counts"]["products"] == 3
    assert state["duplicates"]["product"] == {"P-1": 1}
    assert state["stock"] == [
        {"warehouseId": 3, "warehouse": "WH-US", "productSizeId": 3, "SKU": "B2-BLK38", "EAN": "2001", "quantity": 12}
    ]
    assert [(p["kind"], p["externalId"], p["price"]) for p in state["prices"]] == [
        ("product", "P-2", "19.99"),
        ("variant", "P-2-BLK", "17.50"),
    ]
    assert state["requests"]["byStatus"] == {"200": 6}
    assert state["clock"] == {"factor": 1.0, "epoch": None, "now": 1_800_000_000.0}


def test_snapshot_restore_round_trip_through_json(clock: FakeClock) -> None:
    first = GraphqlApp(GqlOptions(tier="enterprise"), clock)
    populate(Caller(first))
    saved = json.loads(json.dumps(first.snapshot()))
    second = GraphqlApp(GqlOptions(tier="enterprise"), clock)
    second.restore(saved)
    keep = ("counts", "duplicates", "externalIds", "stock", "prices")
    assert {k: second.inspect()[k] for k in keep} == {k: first.inspect()[k] for k in keep}
    # ids continue where they were
    payload = Caller(second).mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-9", "B9", ("9001", "9002"))})
    assert payload["product"]["id"] == 4
    assert payload["product"]["variants"][0]["productSizes"][0]["SKU"] == "B9-BLK38"


def test_restore_rejects_unknown_versions(app: GraphqlApp) -> None:
    with pytest.raises(ValueError, match="version"):
        app.restore({"version": 99, "state": {}})


def test_reset_returns_to_the_seeded_state(gql: Caller) -> None:
    populate(gql)
    gql.app.expire_token("sim-token")
    gql.app.reset()
    state = gql.app.inspect()
    assert state["counts"]["products"] == 0
    assert state["counts"]["warehouses"] == 3 and state["counts"]["pricelists"] == 3
    assert state["stock"] == [] and state["prices"] == []
    assert state["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["used"] == 0
    assert state["requests"]["total"] == 0
    assert gql.raw("{ stores { id } }")[0] == 200  # the expiry was reset too


def test_custom_seeded_warehouses_and_pricelists(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(warehouses=("DC1",), pricelists=(("RETAIL-DKK", "DKK"),)), clock)
    data = Caller(app).ok("{ warehouses { id externalId name } pricelists { externalId currencyIsoCode status } }")
    assert data == {
        "warehouses": [{"id": 1, "externalId": "DC1", "name": "DC1"}],
        "pricelists": [{"externalId": "RETAIL-DKK", "currencyIsoCode": "DKK", "status": "ACTIVE"}],
    }


def test_concurrent_creates_get_unique_ids(app: GraphqlApp) -> None:
    seed_catalogue(Caller(app))
    errors: list[object] = []

    def worker(n: int) -> None:
        gql = Caller(app)
        for i in range(15):
            ext = f"T{n}-{i}"
            payload = gql.mutate(
                "createProduct", CREATE_PRODUCT, {"input": {**boot(ext, ext), "addProductVariants": []}}
            )
            if payload["userErrors"]:
                errors.append(payload["userErrors"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = app.inspect()
    assert state["counts"]["products"] == 1 + 6 * 15
    assert len(set(state["externalIds"]["product"].values())) == 1 + 6 * 15
