"""Auth (403 / authorization errors), malformed requests (400), headers and extensions."""

from __future__ import annotations

import json

from erpsync.clock import FakeClock
from erpsync.sim.gql import ALL_PERMISSIONS, GqlOptions, GraphqlApp

from .conftest import CREATE_PRODUCT, Caller, boot, seed_catalogue

PRODUCTS = "{ products { id externalId } }"


def test_missing_bad_and_expired_tokens_get_403_and_cost_nothing(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tokens={"good": ALL_PERMISSIONS}, expired_tokens=frozenset({"old"})), clock)
    body = json.dumps({"query": PRODUCTS}).encode()
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer old"},
    ):
        status, out_headers, out = app.handle(headers, body)
        assert status == 403
        assert json.loads(out)["errors"][0]["extensions"]["category"] == "authentication"
        assert out_headers["X-Centra-Request-ID"]
    assert app.inspect()["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["used"] == 0
    status, _, _ = app.handle({"authorization": "bearer good"}, body)
    assert status == 200


def test_expire_token_at_runtime(gql: Caller) -> None:
    assert gql.raw(PRODUCTS)[0] == 200
    gql.app.expire_token("sim-token")
    status, _, body = gql.raw(PRODUCTS)
    assert status == 403
    assert "expired" in body["errors"][0]["message"]


def test_missing_permission_is_200_with_authorization_error_and_changes_nothing(clock: FakeClock) -> None:
    app = GraphqlApp(
        GqlOptions(tokens={"all": ALL_PERMISSIONS, "reader": frozenset({"Product:read"})}, tier="enterprise"),
        clock,
    )
    admin = Caller(app, "all")
    seed_catalogue(admin)
    reader = Caller(app, "reader")
    status, _, body = reader.raw(CREATE_PRODUCT, {"input": boot("P-9", "B9")})
    assert status == 200
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["category"] == "authorization"
    assert "Product:write" in error["message"]
    assert body["extensions"]["complexity"] > 0
    assert app.inspect()["counts"]["products"] == 1
    # reading is allowed and reports the permission used
    status, _, body = reader.raw(PRODUCTS)
    assert status == 200
    assert body["extensions"]["permissionsUsed"] == ["Product:read"]
    assert [p["externalId"] for p in body["data"]["products"]] == ["P-1"]


def test_every_200_has_complexity_and_permissions_used(gql: Caller) -> None:
    status, _, body = gql.raw("{ warehouses { id } stores { id } rateLimits { type } }")
    assert status == 200
    assert body["extensions"]["permissionsUsed"] == ["Store:read", "Warehouse:read"]
    assert isinstance(body["extensions"]["complexity"], int)
    assert body["extensions"]["complexity"] == (1 + 20 * 1) + (1 + 10 * 1) + 10


def test_request_and_correlation_ids(gql: Caller) -> None:
    _, h1, _ = gql.raw(PRODUCTS, headers={"X-Correlation-ID": "corr-1"})
    _, h2, _ = gql.raw(PRODUCTS)
    assert h1["X-Correlation-ID"] == "corr-1"
    assert h1["X-Centra-Request-ID"] != h2["X-Centra-Request-ID"]
    assert h2["X-Correlation-ID"]
    assert h1["Content-Type"] == "application/json"


def test_malformed_requests_get_400_and_cost_nothing(app: GraphqlApp) -> None:
    auth = {"Authorization": "Bearer sim-token"}
    bodies = [
        b"{not json",
        b"\xff\xfe",
        json.dumps(["query"]).encode(),
        json.dumps({"variables": {}}).encode(),
        json.dumps({"query": "{ products { id }"}).encode(),  # syntax error
        json.dumps({"query": "{ products { nope } }"}).encode(),  # fails validation
        json.dumps({"query": "query($n: Int!) { products(limit: $n) { id } }", "variables": {"n": "x"}}).encode(),
        json.dumps({"query": "query A { stores { id } } query B { stores { id } }"}).encode(),  # no operationName
        json.dumps({"query": "{ stores { id } }", "variables": [1]}).encode(),
    ]
    for body in bodies:
        status, _, out = app.handle(auth, body)
        assert status == 400, body
        assert json.loads(out)["errors"]
    assert app.inspect()["quota"]["buckets"]["REQUEST_COUNT:ONE_HOUR"]["used"] == 0


def test_operation_name_selects_the_operation(gql: Caller) -> None:
    doc = "query A { stores { id } } query B { warehouses { externalId } }"
    data = gql.ok(doc, operation_name="B")
    assert data == {"warehouses": [{"externalId": "WH-MAIN"}, {"externalId": "WH-EU"}, {"externalId": "WH-US"}]}


def test_reference_with_two_fields_is_a_user_error(gql: Caller) -> None:
    seed_catalogue(gql)
    status, _, body = gql.raw(
        """mutation { setStock(input: {warehouse: {id: 1}, description: "d", stockQuantityType: PHYSICAL,
             productSizes: [{productSize: {EAN: "1001", SKU: "B1-BLK38"}, quantity: 1}]}) {
             stockChanges { id } userErrors { message path } } }"""
    )
    assert status == 200
    [error] = body["data"]["setStock"]["userErrors"]
    assert error["path"] == ["input", "productSizes", "0", "productSize"]
    assert error["message"] == "Exactly one field of a reference must be set (got: SKU, EAN)"  # schema field order
    assert "errors" not in body
