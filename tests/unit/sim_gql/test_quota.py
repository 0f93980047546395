"""The six buckets: 429 + Retry-After (three formats), all-or-nothing charging, refill, tiers,
the "other integration" share, rateLimits, and the scaled clock."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.clock import FakeClock, ScaledClock
from erpsync.sim.gql import BUCKET_KEYS, TIERS, GqlOptions, GraphqlApp
from erpsync.sim.gql.quota import Quota

from .conftest import Caller

HUGE = 10**9
QUERY = "{ products(limit: 40) { id } }"  # complexity 41, no mutation
MUTATION = (
    'mutation { createPricelist(input: {name: "N", status: ACTIVE, currencyIsoCode: "NOK", store: {id: 1}})'
    " { pricelist { id } } }"
)
MUTATION_COST = 100 + 1 + 1


def limits(**small: int) -> dict[str, int]:
    out = dict.fromkeys(BUCKET_KEYS, HUGE)
    out.update({k.replace("__", ":"): v for k, v in small.items()})
    return out


# bucket key -> (capacity, request that spends it, how many fit, tokens the refused one needs)
CASES = {
    "REQUEST_COUNT:TEN_SECONDS": (3, QUERY, 3, 1),
    "REQUEST_COUNT:ONE_HOUR": (3, QUERY, 3, 1),
    "QUERY_COMPLEXITY:TEN_SECONDS": (100, QUERY, 2, 41 - 18),
    "QUERY_COMPLEXITY:ONE_HOUR": (100, QUERY, 2, 41 - 18),
    "MUTATION_COUNT:TEN_SECONDS": (2, MUTATION, 2, 1),
    "MUTATION_COUNT:ONE_HOUR": (2, MUTATION, 2, 1),
}


def parse_retry_after(value: str, fmt: str, now: float) -> float:
    """Seconds to wait, as a client would compute them."""
    if fmt == "seconds":
        assert value.isdigit()
        return float(value)
    if fmt == "unix":
        assert value.isdigit()
        return float(value) - now
    when = parsedate_to_datetime(value)
    assert when.tzinfo is not None
    assert value.endswith(" GMT")
    return when.timestamp() - now


@pytest.mark.parametrize("fmt", ["seconds", "unix", "http-date"])
@pytest.mark.parametrize("key", list(CASES))
def test_each_bucket_gives_429_with_retry_after_and_refills(key: str, fmt: str, clock: FakeClock) -> None:
    capacity, request, fits, needed = CASES[key]
    app = GraphqlApp(
        GqlOptions(tier="custom", limits=limits(**{key.replace(":", "__"): capacity}), retry_after_format=fmt), clock
    )
    gql = Caller(app)
    for _ in range(fits):
        assert gql.raw(request)[0] == 200
    before = app.inspect()
    status, headers, body = gql.raw(request)
    assert status == 429
    assert body["errors"][0]["extensions"]["category"] == "rate_limit"
    assert headers["X-Centra-Request-ID"]
    after = app.inspect()
    # a 429 costs nothing and changes nothing
    for k in BUCKET_KEYS:
        assert after["quota"]["buckets"][k]["level"] == before["quota"]["buckets"][k]["level"]
    assert after["counts"] == before["counts"]
    assert after["quota"]["rejected429"] == 1

    exact = needed / (capacity / (10 if key.endswith("TEN_SECONDS") else 3600))
    wait = parse_retry_after(headers["Retry-After"], fmt, clock.time())
    assert exact <= wait <= exact + 1
    assert wait == math.ceil(exact) or fmt != "seconds"
    clock.advance(exact * 0.9)
    assert gql.raw(request)[0] == 429
    clock.advance(wait - exact * 0.9)
    status, _, body = gql.raw(request)
    assert status == 200, body
    assert app.inspect()["quota"]["rejected429"] == 2


def test_http_date_and_unix_name_the_same_instant(clock: FakeClock) -> None:
    stamps = {}
    for fmt in ("unix", "http-date"):
        app = GraphqlApp(
            GqlOptions(tier="custom", limits=limits(REQUEST_COUNT__ONE_HOUR=1), retry_after_format=fmt), clock
        )
        gql = Caller(app)
        gql.raw(QUERY)
        stamps[fmt] = gql.raw(QUERY)[1]["Retry-After"]
    assert parsedate_to_datetime(stamps["http-date"]) == datetime.fromtimestamp(int(stamps["unix"]), UTC)
    assert int(stamps["unix"]) == math.ceil(clock.time() + 3600)


def test_a_request_is_charged_all_or_nothing(clock: FakeClock) -> None:
    # the mutation bucket refuses, so neither the request nor the complexity buckets are charged
    app = GraphqlApp(GqlOptions(tier="custom", limits=limits(MUTATION_COUNT__ONE_HOUR=1)), clock)
    gql = Caller(app)
    assert gql.raw(MUTATION)[0] == 200
    used = {k: v["used"] for k, v in app.inspect()["quota"]["buckets"].items()}
    assert used["REQUEST_COUNT:TEN_SECONDS"] == 1 and used["QUERY_COMPLEXITY:ONE_HOUR"] == MUTATION_COST
    assert gql.raw(MUTATION)[0] == 429
    assert {k: v["used"] for k, v in app.inspect()["quota"]["buckets"].items()} == used
    assert gql.raw(QUERY)[0] == 200  # queries spend no mutations


def test_cost_beyond_capacity_is_400_not_429(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier="custom", limits=limits(QUERY_COMPLEXITY__TEN_SECONDS=40)), clock)
    status, _, body = Caller(app).raw(QUERY)
    assert status == 400
    assert body["errors"][0]["extensions"]["category"] == "complexity"
    assert app.inspect()["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["used"] == 0


def test_refill_is_continuous_and_capped(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier="custom", limits=limits(REQUEST_COUNT__TEN_SECONDS=10)), clock)
    gql = Caller(app)
    for _ in range(10):
        assert gql.raw(QUERY)[0] == 200
    assert gql.raw(QUERY)[0] == 429
    clock.advance(2.5)  # 1 token/s: 2.5 tokens back
    assert [gql.raw(QUERY)[0] for _ in range(3)] == [200, 200, 429]
    clock.advance(1000)
    assert app.inspect()["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["remaining"] == 10


def test_rate_limits_reports_all_six_and_costs_a_request(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier="growth"), clock)
    gql = Caller(app)
    gql.raw(MUTATION)
    rows = gql.ok("{ rateLimits { type intervalSeconds quota usedQuota remainingQuota } }")["rateLimits"]
    by_key = {f"{r['type']}:{r['intervalSeconds']}": r for r in rows}
    assert set(by_key) == set(BUCKET_KEYS)
    assert {k: r["quota"] for k, r in by_key.items()} == TIERS["growth"]
    assert by_key["REQUEST_COUNT:TEN_SECONDS"]["usedQuota"] == 2  # the mutation and this query
    assert by_key["MUTATION_COUNT:ONE_HOUR"]["usedQuota"] == 1
    assert by_key["QUERY_COMPLEXITY:TEN_SECONDS"]["usedQuota"] == MUTATION_COST + 10
    for r in rows:
        assert r["usedQuota"] + r["remainingQuota"] == r["quota"]


@pytest.mark.parametrize("tier", list(TIERS))
def test_tiers(tier: str, clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier=tier), clock)
    assert app.inspect()["quota"]["limits"] == TIERS[tier]
    gql = Caller(app)
    cap = TIERS[tier]["MUTATION_COUNT:TEN_SECONDS"]
    mutation = " ".join(
        f'm{i}: createPricelist(input: {{name: "L", status: ACTIVE, currencyIsoCode: "NOK", store: {{id: 1}}}})'
        " { pricelist { id } }"
        for i in range(cap)
    )
    assert gql.raw(f"mutation {{ {mutation} }}")[0] == 200
    assert gql.raw(MUTATION)[0] == 429


def test_published_tier_numbers() -> None:
    assert TIERS["growth"] == {
        "REQUEST_COUNT:TEN_SECONDS": 60,
        "REQUEST_COUNT:ONE_HOUR": 5_000,
        "MUTATION_COUNT:TEN_SECONDS": 20,
        "MUTATION_COUNT:ONE_HOUR": 1_800,
        "QUERY_COMPLEXITY:TEN_SECONDS": 250_000,
        "QUERY_COMPLEXITY:ONE_HOUR": 30_000_000,
    }
    assert TIERS["enterprise"]["QUERY_COMPLEXITY:ONE_HOUR"] == 400_000_000
    assert TIERS["high_volume"]["MUTATION_COUNT:ONE_HOUR"] == 7_000
    assert TIERS["enhanced"]["REQUEST_COUNT:ONE_HOUR"] == 20_000


def test_limits_override_a_tier() -> None:
    options = GqlOptions(tier="growth", limits={"MUTATION_COUNT:ONE_HOUR": 100})
    assert options.bucket_limits() == {**TIERS["growth"], "MUTATION_COUNT:ONE_HOUR": 100}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tier": "platinum"}, "tier must be one of"),
        ({"tier": "custom", "limits": {"REQUEST_COUNT:TEN_SECONDS": 5}}, "needs all six"),
        ({"limits": {"REQUESTS": 5}}, "unknown limit keys"),
        ({"limits": {"REQUEST_COUNT:TEN_SECONDS": 0}}, "positive"),
        ({"retry_after_format": "minutes"}, "retry_after_format"),
        ({"other_integration_share": 1.0}, "other_integration_share"),
        ({"batch_failure": "maybe"}, "batch_failure"),
        ({"warehouses": ("A", "A")}, "warehouse"),
    ],
)
def test_invalid_options_are_reported(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        GqlOptions(**kwargs)


def test_other_integration_spends_a_share_of_the_refill(clock: FakeClock) -> None:
    app = GraphqlApp(
        GqlOptions(tier="custom", limits=limits(REQUEST_COUNT__TEN_SECONDS=10), other_integration_share=0.5), clock
    )
    gql = Caller(app)
    for _ in range(10):
        assert gql.raw(QUERY)[0] == 200
    status, headers, _ = gql.raw(QUERY)
    assert status == 429
    assert headers["Retry-After"] == "2"  # 1 token at 0.5 token/s left for us
    clock.advance(4)
    assert [gql.raw(QUERY)[0] for _ in range(3)] == [200, 200, 429]
    spent = app.inspect()["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["otherIntegrationSpent"]
    assert spent == pytest.approx(2.0)


def test_scaled_clock_makes_the_hour_pass_in_real_seconds() -> None:
    sim_clock = ScaledClock(3600.0)
    app = GraphqlApp(
        GqlOptions(tier="custom", limits=limits(REQUEST_COUNT__ONE_HOUR=2), retry_after_format="unix"), sim_clock
    )
    published = app.inspect()["clock"]
    client_clock = ScaledClock(published["factor"], published["epoch"])
    gql = Caller(app)
    assert [gql.raw(QUERY)[0] for _ in range(2)] == [200, 200]
    status, headers, _ = gql.raw(QUERY)
    assert status == 429
    retry_at = int(headers["Retry-After"])
    # about half an hour of scaled time (1 token per 1800 s), i.e. about half a real second
    assert 1000 < retry_at - client_clock.time() <= 1801
    for _ in range(20):
        client_clock.sleep(retry_at - client_clock.time())
        if client_clock.time() >= retry_at:
            break
    assert gql.raw(QUERY)[0] == 200


def test_concurrent_requests_never_overdraw(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier="custom", limits=limits(REQUEST_COUNT__TEN_SECONDS=50)), clock)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        gql = Caller(app)
        for _ in range(20):
            status = gql.raw(QUERY)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 50
    assert statuses.count(429) == 110
    assert app.inspect()["quota"]["rejected429"] == 110


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.integers(0, 12), st.integers(0, 3)), max_size=40))
def test_quota_property_levels_stay_within_bounds(steps: list[tuple[float, int, int]]) -> None:
    clock = FakeClock()
    caps = {
        "REQUEST_COUNT:TEN_SECONDS": 5,
        "REQUEST_COUNT:ONE_HOUR": 40,
        "QUERY_COMPLEXITY:TEN_SECONDS": 20,
        "QUERY_COMPLEXITY:ONE_HOUR": 200,
        "MUTATION_COUNT:TEN_SECONDS": 3,
        "MUTATION_COUNT:ONE_HOUR": 10,
    }
    quota = Quota(caps, clock, other_share=0.25)
    for advance, complexity, mutations in steps:
        clock.advance(advance)
        quota.refill()
        levels = {k: b.level for k, b in quota.buckets.items()}
        costs = {"REQUEST_COUNT": 1, "QUERY_COMPLEXITY": complexity, "MUTATION_COUNT": mutations}
        wait = quota.try_charge(costs)
        for k, b in quota.buckets.items():
            assert 0 <= b.level <= b.capacity
            charged = levels[k] - b.level
            if wait is None:
                assert charged == pytest.approx(costs[b.type])
            else:
                assert charged == pytest.approx(0.0)
        if wait is not None:
            assert wait > 0
            clock.advance(wait)
            assert quota.try_charge(costs) is None


def test_each_app_has_its_own_quota(make_app: Callable[..., GraphqlApp]) -> None:
    a, b = make_app(), make_app()
    Caller(a).raw(QUERY)
    assert b.inspect()["quota"]["buckets"]["REQUEST_COUNT:TEN_SECONDS"]["used"] == 0


def test_limits_can_be_lowered_at_runtime_and_reset(clock: FakeClock) -> None:
    app = GraphqlApp(GqlOptions(tier="growth"), clock)
    gql = Caller(app)
    assert gql.raw(MUTATION)[0] == 200
    app.set_limits({"MUTATION_COUNT:TEN_SECONDS": 1})
    assert app.inspect()["quota"]["limits"]["MUTATION_COUNT:TEN_SECONDS"] == 1
    assert gql.raw(MUTATION)[0] == 429
    clock.advance(10)
    assert gql.raw(MUTATION)[0] == 200
    with pytest.raises(ValueError, match="limits need keys"):
        app.set_limits({"MUTATIONS": 1})
    app.reset()
    assert app.inspect()["quota"]["limits"] == TIERS["growth"]
