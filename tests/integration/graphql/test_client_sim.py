"""CentraGraphql over real HTTP against the simulator: faults, 429 formats, pooled session."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import SecretStr

from erpsync.clock import SystemClock
from erpsync.errors import AuthenticationFailed, OutcomeUnknown, RateLimited, SourceUnavailable
from erpsync.graphql import CentraGraphql, QuotaGovernor
from erpsync.graphql.client import _pooled_session
from erpsync.graphql.quota import tier_limits
from tests.integration.graphql.drive import STOCK_VARS, stock_document

QUERY = "query { warehouses { id externalId } }"
MUTATION = stock_document(1)


def client_for(sim: Any, *, governor: QuotaGovernor | None = None, read_timeout: float = 5.0) -> CentraGraphql:
    return CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=sim.client_clock(),
                         connect_timeout=2, read_timeout=read_timeout)


def graphql_requests(sim: Any) -> int:
    return int(sim.state()["graphql"]["requests"]["total"])


def test_pooled_session_has_no_retries() -> None:
    session = _pooled_session(4)
    try:
        for prefix in ("http://", "https://"):
            retry = session.get_adapter(prefix + "x").max_retries  # type: ignore[attr-defined]
            assert retry.total == 0
            assert retry.read is False
    finally:
        session.close()


@pytest.mark.parametrize(
    ("kind", "params", "expected", "applied"),
    [
        ("http", {"status": 503}, OutcomeUnknown, False),
        ("http", {"status": 500}, OutcomeUnknown, False),
        ("apply_then_499", {}, OutcomeUnknown, True),
        ("reset", {}, OutcomeUnknown, False),
        ("hang", {"seconds": 3}, OutcomeUnknown, False),
        ("truncate", {}, OutcomeUnknown, True),
        ("malformed", {}, OutcomeUnknown, True),
        ("expired_token", {}, AuthenticationFailed, False),
    ],
)
def test_mutation_faults_are_mapped_and_never_resent(sim: Any, kind: str, params: dict[str, Any],
                                                     expected: type[Exception], applied: bool) -> None:
    with client_for(sim, read_timeout=1.0) as client:
        before = graphql_requests(sim)
        sim.set_fault("graphql", kind, only="mutation", **params)
        with pytest.raises(expected):
            client.mutate(MUTATION, STOCK_VARS, lane="stock")
        client.query(QUERY)  # the client still works afterwards
    assert graphql_requests(sim) - before <= 2  # one mutation attempt (+ the query), never a retry


def test_query_faults_are_source_unavailable(sim: Any) -> None:
    with client_for(sim, read_timeout=1.0) as client:
        for kind, params in (("http", {"status": 502}), ("reset", {}), ("hang", {"seconds": 3})):
            sim.set_fault("graphql", kind, only="query", **params)
            with pytest.raises(SourceUnavailable):
                client.query(QUERY)


def test_connection_refused_is_source_unavailable_even_for_a_mutation() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CentraGraphql(f"http://127.0.0.1:{port}/graphql", SecretStr("t0ken"), governor=None,
                           clock=SystemClock(), connect_timeout=1)
    with client, pytest.raises(SourceUnavailable):
        client.mutate(MUTATION, STOCK_VARS, lane="stock")


@pytest.mark.parametrize("fmt", ["seconds", "unix", "http-date"])
def test_real_429_in_each_retry_after_format_blocks_until_then(sim_factory: Any, fmt: str) -> None:
    limits = {"REQUEST_COUNT:TEN_SECONDS": 60, "REQUEST_COUNT:ONE_HOUR": 5000,
              "QUERY_COMPLEXITY:TEN_SECONDS": 250_000, "QUERY_COMPLEXITY:ONE_HOUR": 30_000_000,
              "MUTATION_COUNT:TEN_SECONDS": 2, "MUTATION_COUNT:ONE_HOUR": 1800}
    sim = sim_factory(tier="custom", limits=limits, retry_after_format=fmt, time_scale=10.0)
    clock = sim.client_clock()
    # a governor that believes in a bigger bucket than the server's: the server answers 429
    gov = QuotaGovernor({**tier_limits("growth"), "mutations_10s": 100}, clock=clock, share=1.0)
    gov.reseed([], at=clock.time())  # no rateLimits refresh: let the 429 happen
    with client_for(sim, governor=gov) as client:
        client.mutate(MUTATION, STOCK_VARS, lane="stock")
        client.mutate(MUTATION, STOCK_VARS, lane="stock")
        with pytest.raises(RateLimited) as info:
            client.mutate(MUTATION, STOCK_VARS, lane="stock")
        retry_after = info.value.retry_after
        assert retry_after is not None and 0 < retry_after <= 11
        blocked_at = clock.time()
        client.mutate(MUTATION, STOCK_VARS, lane="stock")  # waits out Retry-After, refreshes rateLimits first
        assert clock.time() - blocked_at >= retry_after - 0.05
    assert gov.stats.rate_limited == 1
    assert gov.stats.reseeds >= 2  # the refresh after the 429
    assert sim.state()["graphql"]["quota"]["rejected429"] == 1
