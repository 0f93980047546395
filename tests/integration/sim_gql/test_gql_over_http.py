"""gql (documents validated locally against the contract SDL) runs every master-data mutation
against the simulator over real HTTP; auth, 429/Retry-After and the duplicate trap over the wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.requests import RequestsHTTPTransport
from graphql import GraphQLError

from erpsync.clock import ScaledClock
from erpsync.sim.gql import BUCKET_KEYS, contract_sdl
from erpsync.sim.server import SimServer
from tests.fixtures.sim import SimFactory

P = "userErrors { message path } userWarnings { message path }"

DOCS = {
    "createSizeChart": f"""mutation CreateSizeChart($input: SizeChartCreateInput!) {{
        createSizeChart(input: $input) {{ sizeChart {{ id name externalId sizes {{ id name }} }} {P} }} }}""",
    "createProduct": f"""mutation CreateProduct($input: ProductCreateInput!) {{
        createProduct(input: $input) {{ product {{ id externalId productNumber
          variants {{ id externalId productSizes {{ id SKU EAN }} }} }} {P} }} }}""",
    "updateProduct": f"""mutation UpdateProduct($id: Int!, $input: ProductUpdateInput!) {{
        updateProduct(id: $id, input: $input) {{ product {{ id name status }} {P} }} }}""",
    "createProductVariant": f"""mutation CreateVariant($input: ProductVariantCreateInput!) {{
        createProductVariant(input: $input) {{ productVariant {{ id externalId product {{ id }} }} {P} }} }}""",
    "updateProductVariant": f"""mutation UpdateVariant($id: Int!, $input: ProductVariantUpdateInput!) {{
        updateProductVariant(id: $id, input: $input) {{ productVariant {{ id name status }} {P} }} }}""",
    "createProductSize": f"""mutation CreateSize($input: ProductSizeCreateInput!) {{
        createProductSize(input: $input) {{ productSize {{ id SKU EAN size {{ name }} }} {P} }} }}""",
    "createPricelist": f"""mutation CreatePricelist($input: PricelistCreateInput!) {{
        createPricelist(input: $input) {{ pricelist {{ id externalId currencyIsoCode }} {P} }} }}""",
    "setPrices": f"""mutation SetPrices($input: ProductPricesSetInput!) {{
        setPrices(input: $input) {{ pricelist {{ id }} {P} }} }}""",
    "setPricesBatch": f"""mutation SetPricesBatch($input: [ProductPricesSetInput!]!) {{
        setPricesBatch(input: $input) {{ pricelists {{ externalId }} products {{ externalId }} {P} }} }}""",
    "setStock": f"""mutation SetStock($input: StockSetInput!) {{
        setStock(input: $input) {{ stockChanges {{ id }} {P} }} }}""",
    "changeStock": f"""mutation ChangeStock($input: StockChangeInput!) {{
        changeStock(input: $input) {{ stockChange {{ id }} {P} }} }}""",
}
LOOKUP = "query Lookup($ext: [String!]) { products(where: {externalId: $ext}) { id externalId } }"


class Api:
    """A gql session validating every document against the contract SDL before sending it."""

    def __init__(self, sim: SimServer, token: str | None = None) -> None:
        self.transport = RequestsHTTPTransport(
            url=sim.graphql_url, headers={"Authorization": f"Bearer {token or sim.token}"}, retries=0, timeout=10
        )
        self.client = Client(schema=contract_sdl(), transport=self.transport)
        self.session = self.client.connect_sync()

    def run(self, doc: str, variables: dict[str, Any] | None = None) -> Any:
        return self.session.execute(GraphQLRequest(doc, variable_values=variables), get_execution_result=True)

    def mutate(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        result = self.run(DOCS[name], variables)
        assert result.extensions["complexity"] > 0
        payload = result.data[name]
        assert payload["userErrors"] == [], payload
        return payload

    def close(self) -> None:
        self.client.close_sync()


@pytest.fixture
def api(sim: SimServer) -> Iterator[Api]:
    a = Api(sim)
    yield a
    a.close()


def test_every_master_data_mutation_over_http(sim: SimServer, api: Api) -> None:
    chart = api.mutate(
        "createSizeChart", {"input": {"name": "Tops", "horizontalLabels": ["S", "M", "L"], "externalId": "SC-TOPS"}}
    )
    assert [s["name"] for s in chart["sizeChart"]["sizes"]] == ["S", "M", "L"]
    product = api.mutate(
        "createProduct",
        {
            "input": {
                "name": "Tee",
                "status": "ACTIVE",
                "productNumber": "T1",
                "externalId": "P-T1",
                "addProductVariants": [
                    {
                        "name": "White",
                        "status": "ACTIVE",
                        "variantNumber": "-W",
                        "externalId": "V-T1-W",
                        "sizeChart": {"externalId": "SC-TOPS"},
                        "productSizes": [
                            {"size": {"name": "S"}, "isActive": True, "EAN": "7001", "sizeNumber": "S"},
                            {"size": {"name": "Tops|M"}, "isActive": True, "EAN": "7002", "sizeNumber": "M"},
                        ],
                    }
                ],
            }
        },
    )["product"]
    assert [s["SKU"] for s in product["variants"][0]["productSizes"]] == ["T1-WS", "T1-WM"]
    updated = api.mutate("updateProduct", {"id": product["id"], "input": {"name": "Tee 2", "status": "INACTIVE"}})
    assert updated["product"] == {"id": product["id"], "name": "Tee 2", "status": "INACTIVE"}
    variant = api.mutate(
        "createProductVariant",
        {
            "input": {
                "product": {"externalId": "P-T1"},
                "name": "Black",
                "status": "ACTIVE",
                "variantNumber": "-B",
                "externalId": "V-T1-B",
                "sizeChart": {"id": chart["sizeChart"]["id"]},
            }
        },
    )["productVariant"]
    assert variant["product"]["id"] == product["id"]
    api.mutate("updateProductVariant", {"id": variant["id"], "input": {"name": "Jet black", "status": "INACTIVE"}})
    size = api.mutate(
        "createProductSize",
        {
            "input": {
                "productVariant": {"externalId": "V-T1-B"},
                "size": {"name": "L"},
                "isActive": True,
                "EAN": "7003",
                "sizeNumber": "L",
            }
        },
    )
    assert size["productSize"]["SKU"] == "T1-BL"
    pricelist = api.mutate(
        "createPricelist",
        {
            "input": {
                "name": "Norway",
                "status": "ACTIVE",
                "currencyIsoCode": "NOK",
                "store": {"id": 1},
                "externalId": "PL-NOK",
            }
        },
    )
    assert pricelist["pricelist"]["currencyIsoCode"] == "NOK"
    api.mutate(
        "setPrices",
        {
            "input": {
                "pricelist": {"externalId": "PL-NOK"},
                "productPrices": [
                    {
                        "product": {"externalId": "P-T1"},
                        "price": {"value": 249.0, "currencyIsoCode": "NOK"},
                        "overrideIndividualVariantPrices": True,
                    }
                ],
            }
        },
    )
    batch = api.mutate(
        "setPricesBatch",
        {
            "input": [
                {
                    "pricelist": {"externalId": "PL-SEK"},
                    "productPrices": [
                        {
                            "product": {"externalId": "P-T1"},
                            "price": {"value": 199.5, "currencyIsoCode": "SEK"},
                            "overrideIndividualVariantPrices": False,
                            "individualVariantPrices": [
                                {
                                    "productVariant": {"externalId": "V-T1-B"},
                                    "price": {"value": 189, "currencyIsoCode": "SEK"},
                                }
                            ],
                        }
                    ],
                },
                {
                    "pricelist": {"externalId": "PL-EUR"},
                    "productPrices": [
                        {
                            "product": {"id": product["id"]},
                            "price": {"value": 19.9, "currencyIsoCode": "EUR"},
                            "overrideIndividualVariantPrices": True,
                        }
                    ],
                },
            ]
        },
    )
    assert batch["pricelists"] == [{"externalId": "PL-SEK"}, {"externalId": "PL-EUR"}]
    stock = api.mutate(
        "setStock",
        {
            "input": {
                "warehouse": {"externalId": "WH-MAIN"},
                "description": "count",
                "stockQuantityType": "PHYSICAL",
                "productSizes": [
                    {"productSize": {"EAN": "7001"}, "quantity": 10},
                    {"productSize": {"SKU": "T1-WM"}, "quantity": 4},
                ],
            }
        },
    )
    assert stock["stockChanges"][0]["id"] >= 1
    api.mutate(
        "changeStock",
        {
            "input": {
                "outFromWarehouse": {"externalId": "WH-MAIN"},
                "intoWarehouse": {"externalId": "WH-EU"},
                "description": "move",
                "productSizes": [{"productSize": {"EAN": "7001"}, "deliveredQuantity": 3}],
            }
        },
    )

    held = sim.gql.inspect()
    assert held["counts"]["products"] == 1 and held["counts"]["variants"] == 2 and held["counts"]["productSizes"] == 3
    assert {(r["warehouse"], r["SKU"]): r["quantity"] for r in held["stock"]} == {
        ("WH-MAIN", "T1-WS"): 7,
        ("WH-MAIN", "T1-WM"): 4,
        ("WH-EU", "T1-WS"): 3,
    }
    assert {(r["pricelist"], r["kind"], r["externalId"]): r["price"] for r in held["prices"]} == {
        ("PL-NOK", "product", "P-T1"): "249.00",
        ("PL-SEK", "product", "P-T1"): "199.50",
        ("PL-SEK", "variant", "V-T1-B"): "189.00",
        ("PL-EUR", "product", "P-T1"): "19.90",
    }
    assert held["quota"]["buckets"]["MUTATION_COUNT:ONE_HOUR"]["used"] == 11


def test_documents_are_validated_locally_before_sending(sim: SimServer, api: Api) -> None:
    before = sim.gql.inspect()["requests"]["total"]
    with pytest.raises(GraphQLError):
        api.run("{ products { id gtin } }")
    with pytest.raises(GraphQLError):
        api.run("mutation { setStock(input: {warehouse: {id: 1}}) { stockChanges { id } } }")
    assert sim.gql.inspect()["requests"]["total"] == before


def test_user_errors_and_authorization_errors_over_http(sim_factory: SimFactory) -> None:
    sim = sim_factory(tokens={"reader": frozenset({"Product:read"})})
    reader = Api(sim, token="reader")
    try:
        with pytest.raises(TransportQueryError) as info:
            reader.run(
                DOCS["createPricelist"],
                {"input": {"name": "X", "status": "ACTIVE", "currencyIsoCode": "NOK", "store": {"id": 1}}},
            )
        assert info.value.errors[0]["extensions"]["category"] == "authorization"
        assert reader.run(LOOKUP, {"ext": ["none"]}).data == {"products": []}
    finally:
        reader.close()
    admin = Api(sim)
    try:
        result = admin.run(
            DOCS["setStock"],
            {"input": {"warehouse": {"externalId": "WH-NOPE"}, "description": "d", "stockQuantityType": "PHYSICAL"}},
        )
        assert result.data["setStock"]["userErrors"][0]["path"] == ["input", "warehouse", "externalId"]
    finally:
        admin.close()


def post(sim: SimServer, body: dict[str, Any], token: str | None = None) -> requests.Response:
    return requests.post(
        sim.graphql_url, json=body, headers={"Authorization": f"Bearer {token or sim.token}"}, timeout=10
    )


def test_http_status_codes(sim: SimServer) -> None:
    assert post(sim, {"query": "{ stores { id } }"}, token="wrong").status_code == 403
    r = requests.post(sim.graphql_url, data=b"{oops", headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
    assert r.status_code == 400
    ok = post(sim, {"query": "{ stores { id } }"})
    assert ok.status_code == 200
    assert ok.headers["X-Centra-Request-ID"]
    assert ok.json()["extensions"] == {"complexity": 11, "permissionsUsed": ["Store:read"]}
    sim.expire_token(sim.token)
    assert post(sim, {"query": "{ stores { id } }"}).status_code == 403


@pytest.mark.parametrize("fmt", ["seconds", "unix", "http-date"])
def test_429_retry_after_over_http_with_a_scaled_clock(sim_factory: SimFactory, fmt: str) -> None:
    limits = dict.fromkeys(BUCKET_KEYS, 10**9)
    limits["MUTATION_COUNT:ONE_HOUR"] = 2
    sim = sim_factory(tier="custom", limits=limits, retry_after_format=fmt, time_scale=3600.0)
    clock = ScaledClock(sim.time_factor, sim.time_epoch)
    body = {
        "query": 'mutation { createPricelist(input: {name: "N", status: ACTIVE, currencyIsoCode: "NOK", '
        "store: {id: 1}}) { pricelist { id } } }"
    }
    assert [post(sim, body).status_code for _ in range(2)] == [200, 200]
    refused = post(sim, body)
    assert refused.status_code == 429
    value = refused.headers["Retry-After"]
    if fmt == "seconds":
        wait = float(value)
    elif fmt == "unix":
        wait = float(value) - clock.time()
    else:
        wait = parsedate_to_datetime(value).timestamp() - clock.time()
    # scaled seconds: 1 mutation per 1800 s of the hour bucket, minus what refilled in real time meanwhile
    assert 0 < wait <= 1802
    assert post(sim, {"query": "{ stores { id } }"}).status_code == 200  # queries spend no mutations
    clock.sleep(wait)  # ~0.5 real seconds
    assert post(sim, body).status_code == 200
    state = sim.state()["graphql"]
    assert state["quota"]["rejected429"] == 1
    assert state["counts"]["pricelists"] == 3 + 3


def test_lost_response_then_blind_retry_makes_a_duplicate(sim: SimServer, api: Api) -> None:
    create = {"input": {"name": "Boot", "status": "ACTIVE", "productNumber": "B1", "externalId": "P-B1"}}
    sim.set_fault("graphql", "apply_then_499", only="mutation")
    with pytest.raises(TransportServerError) as info:
        api.run(DOCS["createProduct"], create)
    assert info.value.code == 499
    # the create was applied although the client never saw the answer: look up before retrying
    assert [p["externalId"] for p in api.run(LOOKUP, {"ext": ["P-B1"]}).data["products"]] == ["P-B1"]
    api.mutate("createProduct", create)  # a blind retry
    held = sim.gql.inspect()
    assert held["counts"]["products"] == 2
    assert held["duplicates"]["product"] == {"P-B1": 1}


def test_concurrent_http_clients(sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise")
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        a = Api(sim)
        try:
            for i in range(10):
                a.mutate(
                    "createPricelist",
                    {
                        "input": {
                            "name": f"L{n}-{i}",
                            "status": "ACTIVE",
                            "currencyIsoCode": "NOK",
                            "store": {"id": 1},
                            "externalId": f"PL-{n}-{i}",
                        }
                    },
                )
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            a.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sim.gql.inspect()["counts"]["pricelists"] == 3 + 40
