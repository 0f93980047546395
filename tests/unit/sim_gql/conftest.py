"""Drive ``GraphqlApp.handle`` directly, as the HTTP server does."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from erpsync.clock import FakeClock
from erpsync.sim.gql import GqlOptions, GraphqlApp

PAYLOAD = "userErrors { message path } userWarnings { message path }"


class Caller:
    def __init__(self, app: GraphqlApp, token: str = "sim-token") -> None:
        self.app = app
        self.token = token

    def raw(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        operation_name: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        h = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"}
        h.update(headers or {})
        body = {"query": query, "variables": dict(variables or {}), "operationName": operation_name}
        status, out_headers, out = self.app.handle(h, json.dumps(body).encode())
        return status, out_headers, json.loads(out)

    def ok(self, query: str, variables: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        status, _, body = self.raw(query, variables, **kw)
        assert status == 200, body
        assert "errors" not in body, body
        return body["data"]

    def mutate(self, field: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run a one-field mutation and return its payload."""
        return self.ok(query, variables)[field]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(clock: FakeClock) -> Callable[..., GraphqlApp]:
    def make(**options: Any) -> GraphqlApp:
        return GraphqlApp(GqlOptions(**options), clock)

    return make


@pytest.fixture
def app(make_app: Callable[..., GraphqlApp]) -> GraphqlApp:
    # Enterprise limits keep functional tests clear of the quota; quota tests build their own app.
    return make_app(tier="enterprise")


@pytest.fixture
def gql(app: GraphqlApp) -> Caller:
    return Caller(app)


CREATE_CHART = f"""
mutation($input: SizeChartCreateInput!) {{
  createSizeChart(input: $input) {{ sizeChart {{ id name externalId sizes {{ id name }} }} {PAYLOAD} }}
}}"""

CREATE_PRODUCT = f"""
mutation($input: ProductCreateInput!) {{
  createProduct(input: $input) {{
    product {{ id name status productNumber externalId
      variants {{ id name variantNumber externalId productSizes {{ id SKU EAN UPC sizeNumber size {{ name }} }} }} }}
    {PAYLOAD}
  }}
}}"""


def boot(external_id: str = "P-1", number: str = "B1", eans: tuple[str, str] = ("1001", "1002")) -> dict[str, Any]:
    """A product input with one variant in the 'Shoes' chart (sizes 38, 39)."""
    return {
        "name": "Boot",
        "status": "ACTIVE",
        "productNumber": number,
        "externalId": external_id,
        "addProductVariants": [
            {
                "name": "Black",
                "status": "ACTIVE",
                "variantNumber": "-BLK",
                "externalId": f"{external_id}-BLK",
                "sizeChart": {"externalId": "SC-SHOES"},
                "productSizes": [
                    {
                        "size": {"name": "38"},
                        "isActive": True,
                        "EAN": eans[0],
                        "UPC": f"U{eans[0]}",
                        "sizeNumber": "38",
                    },
                    {"size": {"name": "Shoes|39"}, "isActive": True, "EAN": eans[1], "sizeNumber": "39"},
                ],
            }
        ],
    }


def seed_catalogue(gql: Caller, products: int = 1) -> list[dict[str, Any]]:
    """The 'Shoes' size chart and ``products`` boots P-1… with EANs 1001/1002, 2001/2002 …"""
    chart = gql.mutate(
        "createSizeChart",
        CREATE_CHART,
        {"input": {"name": "Shoes", "horizontalLabels": ["38", "39", "40"], "externalId": "SC-SHOES"}},
    )
    assert chart["userErrors"] == []
    created = []
    for n in range(1, products + 1):
        payload = gql.mutate(
            "createProduct",
            CREATE_PRODUCT,
            {"input": boot(f"P-{n}", f"B{n}", (f"{n}001", f"{n}002"))},
        )
        assert payload["userErrors"] == [], payload
        created.append(payload["product"])
    return created
