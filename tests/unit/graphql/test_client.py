"""CentraGraphql: validation, error mapping, userErrors, no transport retries, 429 capture."""

from __future__ import annotations

import threading
from typing import Any

import gql
import pytest
import requests
from pydantic import SecretStr
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError

from erpsync.clock import FakeClock
from erpsync.errors import (
    AuthenticationFailed,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    SchemaMismatch,
    SourceUnavailable,
)
from erpsync.graphql import CentraGraphql, QuotaGovernor
from erpsync.graphql.complexity import upper_bound
from erpsync.graphql.quota import tier_limits
from erpsync.graphql.schema import DocumentCache, contract_schema
from erpsync.sim.gql import GqlOptions, GraphqlApp
from tests.unit.graphql.doubles import ScriptedAdapter, SimAdapter, session_with

URL = "http://centra.test/graphql"
TOKEN = "s3cret-token-value"
QUERY = "query Stores { stores { id name } }"
SET_STOCK = """
mutation SetStock($input: StockSetInput!) {
  setStock(input: $input) { stockChanges { id } userErrors { message path } userWarnings { message path } }
}"""
TWO_CREATES = """
mutation Two($a: ProductCreateInput!, $b: ProductCreateInput!) {
  a: createProduct(input: $a) { product { id } userErrors { message path } userWarnings { message path } }
  b: createProduct(input: $b) { product { id } userErrors { message path } userWarnings { message path } }
}"""
TWO_VARS = {"a": {"name": "x", "status": "ACTIVE"}, "b": {"name": "y", "status": "ACTIVE"}}


def ok_body(data: dict[str, Any], complexity: int = 120) -> dict[str, Any]:
    return {"data": data, "extensions": {"complexity": complexity, "permissionsUsed": []}}


def make_client(
    adapter: Any, *, governor: QuotaGovernor | None = None, clock: FakeClock | None = None,
) -> CentraGraphql:
    return CentraGraphql(URL, SecretStr(TOKEN), governor=governor, clock=clock or FakeClock(),
                         session=session_with(adapter))


def test_pinned_gql_version_loses_the_status_of_a_graphql_shaped_429() -> None:
    """Why the client captures the status itself: gql returns a 429 JSON body as a result."""
    assert gql.__version__.startswith("4.")
    adapter = ScriptedAdapter((429, {"errors": [{"message": "slow down"}]}, {"Retry-After": "3"}))
    from gql.transport.requests import RequestsHTTPTransport

    transport = RequestsHTTPTransport(URL, retries=0)
    transport.connect()
    assert transport.session is not None
    transport.session.mount("http://", adapter)
    result = transport.execute(gql.gql(QUERY))
    assert result.errors == [{"message": "slow down"}]  # no status anywhere
    transport.close()


def test_query_returns_data_complexity_and_sends_bearer_token() -> None:
    body = ok_body({"stores": [{"id": 1, "name": "Retail"}]}, 37)
    adapter = ScriptedAdapter((200, body, {"X-Centra-Request-ID": "r1"}))
    with make_client(adapter) as client:
        result = client.query(QUERY)
    assert result.data == {"stores": [{"id": 1, "name": "Retail"}]}
    assert result.complexity == 37
    assert result.request_id == "r1"
    assert adapter.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert adapter.body()["operationName"] == "Stores"


def test_invalid_document_is_rejected_locally_without_a_request() -> None:
    adapter = ScriptedAdapter()
    with make_client(adapter) as client:
        with pytest.raises(SchemaMismatch, match="noSuchField"):
            client.query("query { noSuchField }")
        with pytest.raises(ValueError, match="mutate"):
            client.query(SET_STOCK)
    assert adapter.requests == []


def test_user_errors_and_warnings_are_returned_per_root_field() -> None:
    adapter = ScriptedAdapter((200, ok_body({
        "a": {"product": None, "userErrors": [{"message": "bad name", "path": ["input", "name"]}], "userWarnings": []},
        "b": {"product": {"id": 7}, "userErrors": [], "userWarnings": [{"message": "trimmed", "path": None}]},
    }), {}))
    with make_client(adapter) as client:
        result = client.mutate(TWO_CREATES, TWO_VARS, lane="catalogue")
    assert not result.ok
    assert [(e.field, e.message, e.path) for e in result.user_errors] == [("a", "bad name", ("input", "name"))]
    assert [(w.field, w.message) for w in result.user_warnings] == [("b", "trimmed")]


@pytest.mark.parametrize(
    ("status", "body", "is_mutation", "expected"),
    [
        (500, b"<html>oops</html>", False, SourceUnavailable),
        (503, {"errors": [{"message": "down"}]}, False, SourceUnavailable),
        (500, b"<html>oops</html>", True, OutcomeUnknown),
        (502, {"errors": [{"message": "bad gateway"}]}, True, OutcomeUnknown),
        (499, b"", True, OutcomeUnknown),
        (499, b"", False, SourceUnavailable),
        (403, {"errors": [{"message": "expired", "extensions": {"category": "authentication"}}]}, True,
         AuthenticationFailed),
        (400, {"errors": [{"message": "Syntax Error"}]}, False, SchemaMismatch),
        (400, b"<html>bad request</html>", False, SourceUnavailable),
        (404, b"not found", False, SourceUnavailable),
        (418, b"teapot", False, SourceUnavailable),
        (520, b"", False, SourceUnavailable),
        (520, b"", True, OutcomeUnknown),
        (404, b"not found", True, OutcomeUnknown),
        (200, b"not json", False, SourceUnavailable),
        (200, b'{"data": {"products": [{"id": 1,', False, SourceUnavailable),
        (200, b'{"hello": "world"}', False, SourceUnavailable),
        (200, b"not json", True, OutcomeUnknown),
    ],
)
def test_http_status_mapping(status: int, body: Any, is_mutation: bool, expected: type[Exception]) -> None:
    adapter = ScriptedAdapter((status, body, {}))
    with make_client(adapter) as client, pytest.raises(expected):
        if is_mutation:
            client.mutate(SET_STOCK, {"input": {"warehouse": {"externalId": "W"}, "stockQuantityType": "PHYSICAL",
                                                "productSizes": []}}, lane="stock")
        else:
            client.query(QUERY)
    assert len(adapter.requests) == 1  # never retried


def test_top_level_errors_permission_fatal_schema_fatal_others_transient() -> None:
    adapter = ScriptedAdapter(
        (200, {"data": None,
               "errors": [{"message": "You need Product:write", "extensions": {"category": "authorization"}}],
               "extensions": {"complexity": 5}}, {}),
        (200, {"data": None, "errors": [{"message": "boom", "extensions": {"category": "internal"}}]}, {}),
        (200, {"data": None, "errors": [{"message": 'Cannot query field "nope" on type "Query".'}]}, {}),
    )
    with make_client(adapter) as client:
        with pytest.raises(PermissionDenied, match="Product:write"):
            client.query(QUERY)
        with pytest.raises(SourceUnavailable, match="boom"):
            client.query(QUERY)
        with pytest.raises(SchemaMismatch, match="nope"):
            client.query(QUERY)


def _conn_refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    from urllib3.exceptions import MaxRetryError

    return requests.ConnectionError(MaxRetryError(None, "/graphql", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "is_mutation", "expected"),
    [
        (_conn_refused(), True, SourceUnavailable),  # never sent: safe to retry even a mutation
        (requests.ConnectTimeout("connect timed out"), True, SourceUnavailable),
        (requests.ReadTimeout("read timed out"), True, OutcomeUnknown),
        (requests.ConnectionError(Urllib3ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
         True, OutcomeUnknown),
        (requests.ReadTimeout("read timed out"), False, SourceUnavailable),
        (_conn_refused(), False, SourceUnavailable),
    ],
)
def test_network_faults(exc: Exception, is_mutation: bool, expected: type[Exception]) -> None:
    adapter = ScriptedAdapter(exc)
    with make_client(adapter) as client, pytest.raises(expected):
        if is_mutation:
            client.mutate(SET_STOCK, {"input": {"warehouse": {"externalId": "W"}, "stockQuantityType": "PHYSICAL",
                                                "productSizes": []}}, lane="stock")
        else:
            client.query(QUERY)
    assert len(adapter.requests) == 1


def test_429_blocks_the_governor_and_raises_rate_limited_with_retry_after() -> None:
    clock = FakeClock()
    gov = QuotaGovernor(tier_limits("growth"), clock=clock)
    gov.reseed([], at=clock.time())  # no refresh due during this test
    rows = [{"type": "REQUEST_COUNT", "intervalSeconds": "TEN_SECONDS", "quota": 60, "usedQuota": 60,
             "remainingQuota": 0}]
    adapter = ScriptedAdapter((429, {"errors": [{"message": "Rate limit exceeded"}]}, {"Retry-After": "7"}),
                              (200, ok_body({"rateLimits": rows}, 10), {}),
                              (200, ok_body({"stores": []}), {}))
    with make_client(adapter, governor=gov, clock=clock) as client:
        with pytest.raises(RateLimited) as info:
            client.query(QUERY)
        assert info.value.retry_after == 7
        before = clock.time()
        client.query(QUERY)  # waits out the Retry-After, reads rateLimits, waits for the bucket, sends
    assert clock.time() - before >= 7 + 10 * (1 + 12) / 48  # then the requests_10s debt (0 − 12 buffer) refills
    assert gov.stats.rate_limited == 1
    assert gov.stats.reseeds == 2
    assert "rateLimits" in adapter.body(1)["query"]


def test_governor_is_charged_the_mutation_fields_and_corrected_from_complexity() -> None:
    clock = FakeClock()
    gov = QuotaGovernor(tier_limits("growth"), clock=clock)
    gov.reseed([], at=clock.time())
    payload = {"product": {"id": 1}, "userErrors": [], "userWarnings": []}
    adapter = ScriptedAdapter((200, ok_body({"a": payload, "b": payload}, 300), {}))
    with make_client(adapter, governor=gov, clock=clock) as client:
        client.mutate(TWO_CREATES, TWO_VARS, lane="catalogue")
    views = {v.name: v for v in gov.snapshot()[0]}
    assert views["mutations_10s"].allowance - views["mutations_10s"].tokens == pytest.approx(2)
    assert views["complexity_1h"].allowance - views["complexity_1h"].tokens == pytest.approx(300)
    # the learnt ratio real ÷ bound makes the next charge of the same document exact
    bound = upper_bound(contract_schema(), DocumentCache().get(TWO_CREATES).ast, TWO_VARS)
    assert gov.charge_for("mutation:createProduct+createProduct", bound) == 300
    assert gov.charge_for("mutation:createProduct+createProduct", 2 * bound) == 600


def test_token_is_never_logged(capsys: pytest.CaptureFixture[str]) -> None:
    from erpsync.logs import configure_logging

    configure_logging("DEBUG", "json")
    adapter = ScriptedAdapter((200, ok_body({"stores": []}), {}), (500, b"down " + TOKEN.encode(), {}))
    with make_client(adapter) as client:
        client.query(QUERY)
        with pytest.raises(SourceUnavailable):
            client.query(QUERY)
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert "graphql.call" in out.out + out.err


def test_against_the_simulator_with_threads() -> None:
    clock = FakeClock()
    app = GraphqlApp(GqlOptions(), clock)
    adapter = SimAdapter(app)
    gov = QuotaGovernor(tier_limits("growth"), clock=clock)
    results: list[int] = []
    errors: list[BaseException] = []
    session = session_with(adapter)
    with CentraGraphql(URL, SecretStr("sim-token"), governor=gov, clock=clock, session=session) as client:
        def work() -> None:
            try:
                for _ in range(5):
                    results.append(len(client.query("query { warehouses { id externalId } }").data["warehouses"]))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = client.rate_limits()
    assert errors == []
    assert results == [3] * 20
    assert 429 not in adapter.statuses
    assert {r.type for r in rows} == {"REQUEST_COUNT", "QUERY_COMPLEXITY", "MUTATION_COUNT"}
    assert gov.stats.reseeds >= 1  # the first call refreshed from rateLimits
