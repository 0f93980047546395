"""The quota governor on a fake clock: buckets, refill, share, lanes, Retry-After, feedback."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.clock import FakeClock
from erpsync.config import QuotaSettings
from erpsync.graphql.quota import (
    BUCKETS,
    MemoryQuotaStore,
    QuotaGovernor,
    limits_from_settings,
    parse_retry_after,
    tier_limits,
)
from erpsync.sim.gql.quota import Quota

BIG = {"requests_10s": 10**6, "requests_1h": 10**8, "complexity_10s": 10**9, "complexity_1h": 10**11,
       "mutations_10s": 10**6, "mutations_1h": 10**8}
NOW = 1_800_000_000.0


def governor(limits: dict[str, int] | None = None, *, clock: FakeClock | None = None, share: float = 1.0,
             **kw: object) -> QuotaGovernor:
    clock = clock or FakeClock(NOW)
    gov = QuotaGovernor({**BIG, **(limits or {})}, clock=clock, share=share, **kw)  # type: ignore[arg-type]
    return gov


def drain(gov: QuotaGovernor, **kw: object) -> int:
    n = 0
    while gov.try_acquire(**kw).granted:  # type: ignore[arg-type]
        n += 1
        assert n < 100_000
    return n


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        ("0", 0.0),
        (str(int(NOW) + 12), 12.0),  # Unix timestamp
        (str(int(NOW) - 5), 0.0),  # in the past
        (format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True), 90.0),  # HTTP-date
        ("Wed, 15 Jan 2027 08:00:00 GMT", datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp() - NOW),
        ("", None),
        (None, None),
        ("soon", None),
        ("-3", 0.0),
    ],
)
def test_parse_retry_after_all_three_formats(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, NOW)
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("header", ["7", str(int(NOW) + 7), "HTTP-DATE"])
def test_retry_after_blocks_every_lane_and_is_counted(header: str) -> None:
    clock = FakeClock(NOW)
    gov = governor(clock=clock)
    if header == "HTTP-DATE":
        header = format_datetime(datetime.fromtimestamp(NOW + 7, UTC), usegmt=True)
    gov.on_rate_limited(parse_retry_after(header, clock.time()))
    for lane in ("stock", "prices", "catalogue"):
        p = gov.try_acquire(lane=lane, complexity=1)
        assert not p.granted
        assert p.reason == "retry-after"
        assert p.wait == pytest.approx(7)
    assert not gov.refresh_due()
    before = clock.time()
    permit = gov.acquire(lane="catalogue", complexity=1)
    assert permit.granted
    assert clock.time() - before == pytest.approx(7)
    assert gov.refresh_due()  # a 429 makes a rateLimits refresh due once the block ends
    _, info = gov.snapshot()
    assert info["rate_limited_count"] == 1


# ---------------------------------------------------------------- buckets


@pytest.mark.parametrize("bucket", BUCKETS)
def test_each_bucket_binds_in_turn(bucket: str) -> None:
    kind = bucket.rsplit("_", 1)[0]
    cost = {"requests": 1, "complexity": 100, "mutations": 1}[kind]
    capacity = {"requests": 7, "complexity": 700, "mutations": 7}[kind]
    gov = governor({bucket: capacity})
    granted = drain(gov, requests=1, complexity=100, mutations=1, lane="stock")
    assert granted == capacity // cost
    refused = gov.try_acquire(requests=1, complexity=100, mutations=1, lane="stock")
    assert refused.reason == bucket
    interval = 10.0 if bucket.endswith("10s") else 3600.0
    assert refused.wait == pytest.approx(cost / (capacity / interval))


def test_refill_is_continuous_and_capped() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_10s": 10}, clock=clock)
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 10
    clock.advance(0.5)  # half a token
    p = gov.try_acquire(mutations=1, complexity=1, lane="stock")
    assert not p.granted
    assert p.wait == pytest.approx(0.5)
    clock.advance(0.5)
    assert gov.try_acquire(mutations=1, complexity=1, lane="stock").granted
    clock.advance(3.0)  # three tokens, exactly
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 3
    clock.advance(1000)  # capped at capacity
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 10


def test_share_leaves_the_rest_to_other_integrations() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_1h": 1800}, clock=clock, share=0.8)
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 1440
    p = gov.try_acquire(mutations=1, complexity=1, lane="stock")
    assert p.wait == pytest.approx(1 / (1800 * 0.8 / 3600))  # 0.4 mutations/s


def test_growth_tier_binds_on_hourly_mutations() -> None:
    clock = FakeClock(NOW)
    gov = QuotaGovernor(tier_limits("growth"), clock=clock, share=0.8)
    gov.reseed([], at=NOW)
    granted = 0
    end = NOW + 2 * 3600
    while clock.time() < end:
        gov.acquire(mutations=1, complexity=150, lane="stock")
        granted += 1
    # initial allowance + 2 h of refill at 0.4/s
    assert granted == pytest.approx(1440 + 2 * 3600 * 0.4, abs=2)


def test_limits_from_settings() -> None:
    assert limits_from_settings(QuotaSettings(tier="enterprise"))["mutations_1h"] == 25_000
    custom = QuotaSettings(tier="custom", limits_10s=(10, 2, 1000), limits_1h=(100, 20, 10_000))
    assert limits_from_settings(custom) == {"requests_10s": 10, "mutations_10s": 2, "complexity_10s": 1000,
                                            "requests_1h": 100, "mutations_1h": 20, "complexity_1h": 10_000}
    with pytest.raises(ValueError, match="custom"):
        limits_from_settings(QuotaSettings(tier="custom"))


# ---------------------------------------------------------------- lanes


def test_without_higher_lane_work_the_catalogue_spends_the_whole_share() -> None:
    gov = QuotaGovernor.from_settings(QuotaSettings(tier="custom", limits_10s=(10**6, 10, 10**9),
                                                    limits_1h=(10**8, 10**8, 10**12), share=1.0,
                                                    stock_reserve=0.3, prices_reserve=0.2), clock=FakeClock(NOW))
    assert drain(gov, mutations=1, complexity=1, lane="catalogue") == 10  # the old floors have no effect


def test_declared_backlog_of_a_higher_lane_is_kept_free() -> None:
    gov = governor({"mutations_10s": 10})
    gov.declare_backlog("stock", 3)
    assert drain(gov, mutations=1, complexity=1, lane="catalogue") == 7
    assert drain(gov, mutations=1, complexity=1, lane="prices") == 0  # stock's, too
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 3
    gov.declare_backlog("stock", 0)


def test_grants_count_the_backlog_down_and_declarations_lapse() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_10s": 100, "mutations_1h": 10_000}, clock=clock)
    gov.declare_backlog("fulfilment", 5)
    assert gov.lane_demand()["fulfilment"]["mutations"] == 5
    gov.acquire(mutations=2, complexity=1, lane="fulfilment")
    assert gov.lane_demand()["fulfilment"]["mutations"] == pytest.approx(3 + 2 / 60 * 10, abs=1e-3)  # + rate × 10 s
    gov.declare_backlog("events", 40)
    clock.advance(10_000)  # the process that declared it died: the declaration lapses, the rate decays
    assert gov.lane_demand()["events"]["mutations"] == 0
    assert gov.lane_demand()["fulfilment"]["mutations"] == pytest.approx(0, abs=1e-6)


def test_priority_is_strict_fulfilment_stock_prices_events_catalogue() -> None:
    for i, lane in enumerate(("fulfilment", "stock", "prices", "events")):
        gov = governor({"mutations_10s": 10})
        gov.declare_backlog(lane, 4)
        assert gov.try_acquire(mutations=1, complexity=1, lane=lane).granted
        lower = ("fulfilment", "stock", "prices", "events", "catalogue")[i + 1:]
        higher = ("fulfilment", "stock", "prices", "events", "catalogue")[:i]
        assert all(gov.try_acquire(mutations=7, complexity=1, lane=low).wait > 0 for low in lower)
        assert all(gov.try_acquire(mutations=1, complexity=1, lane=high).granted for high in higher)


def test_stock_goes_first_when_everyone_waits() -> None:
    """A waiting caller declares its call: lower lanes leave it the next tokens."""
    clock = FakeClock(NOW)
    gov = governor({"mutations_10s": 10}, clock=clock)
    drain(gov, mutations=1, complexity=1, lane="catalogue")
    waits = {lane: gov.try_acquire(mutations=1, complexity=1, lane=lane).wait
             for lane in ("stock", "prices", "catalogue")}
    assert waits["stock"] < waits["prices"] < waits["catalogue"]
    assert waits["stock"] == pytest.approx(1.0)  # one token's refill: the next tokens are stock's
    clock.advance(1.0)
    assert not gov.try_acquire(mutations=1, complexity=1, lane="catalogue").granted
    assert gov.try_acquire(mutations=1, complexity=1, lane="stock").granted


def test_catalogue_backlog_never_starves_stock() -> None:
    """A catalogue backlog spends everything; stock work that appears waits at most one governor wait."""
    clock = FakeClock(NOW)
    gov = governor({"mutations_10s": 20, "mutations_1h": 1800}, clock=clock)
    stock_waits = []
    for i in range(600):
        gov.acquire(mutations=1, complexity=1, lane="catalogue")
        if i % 50 == 0:
            gov.declare_backlog("stock", 1)
            before = clock.time()
            gov.acquire(mutations=1, complexity=1, lane="stock")
            stock_waits.append(clock.time() - before)
    assert gov.stats.lane_max_sleeps.get("stock", 0) <= 1
    assert max(stock_waits) <= 10 / 20 + 1e-6  # one token of the 10-s bucket's refill, at most
    # work-conserving: 612 mutations at the 10-s bucket's pace (20 at once, then 2/s), no token idle
    assert clock.time() - NOW <= (612 - 20) / 2 * 1.01


def test_unknown_lane_is_an_error() -> None:
    with pytest.raises(ValueError, match="lane"):
        governor().try_acquire(lane="express")


def test_a_call_bigger_than_the_lane_room_waits_for_a_full_bucket() -> None:
    clock = FakeClock(NOW)
    gov = governor({"complexity_10s": 1000}, clock=clock)
    assert gov.try_acquire(complexity=800, lane="catalogue").granted  # full bucket: allowed
    assert gov.try_acquire(complexity=800, lane="catalogue").wait == pytest.approx(6.0)  # no reserve
    gov.declare_backlog("stock", 1, complexity=500)
    p = gov.try_acquire(complexity=800, lane="catalogue")
    assert p.wait == pytest.approx(8.0)  # 800 + 500 > the bucket: until the bucket is full again


def test_acquire_with_timeout_returns_the_refusal() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_10s": 1}, clock=clock)
    assert gov.acquire(mutations=1, complexity=1, lane="stock").granted
    p = gov.acquire(mutations=1, complexity=1, lane="stock", timeout=2)
    assert not p.granted
    assert p.wait == pytest.approx(10)
    assert clock.sleeps == []


# ---------------------------------------------------------------- feedback


def test_complexity_estimate_per_operation_and_correction() -> None:
    gov = governor({"complexity_10s": 10_000})
    first = gov.acquire(lane="stock", op_key="mutation:setStock")
    assert first.complexity == gov.default_complexity  # the only guess
    gov.settle(first, 100)
    assert gov.estimate("mutation:setStock") == 100
    assert gov.estimate("query:products") == gov.default_complexity
    second = gov.acquire(lane="stock", op_key="mutation:setStock")
    assert second.complexity == 100
    gov.settle(second, 200)
    assert gov.estimate("mutation:setStock") == 130  # running estimate
    views = {v.name: v for v in gov.snapshot()[0]}
    assert views["complexity_10s"].allowance - views["complexity_10s"].tokens == pytest.approx(300)


def test_reseed_from_rate_limits_sees_other_spenders_and_lowered_limits() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_1h": 1800, "mutations_10s": 20}, clock=clock, share=0.8)
    gov.reseed([
        {"type": "MUTATION_COUNT", "intervalSeconds": "ONE_HOUR", "quota": 1800, "usedQuota": 900,
         "remainingQuota": 900},
        {"type": "MUTATION_COUNT", "intervalSeconds": "TEN_SECONDS", "quota": 10, "usedQuota": 0,
         "remainingQuota": 10},
        {"type": "BOGUS", "intervalSeconds": "ONE_HOUR", "quota": 1, "remainingQuota": 1},
    ])
    views = {v.name: v for v in gov.snapshot()[0]}
    assert views["mutations_1h"].tokens == pytest.approx(900 - 0.2 * 1800)
    assert views["mutations_10s"].capacity == 10  # lowered by Centra
    assert views["mutations_10s"].allowance == pytest.approx(8)
    assert not gov.refresh_due()
    clock.advance(gov.refresh_seconds)
    assert gov.refresh_due()
    assert gov.claim_refresh()
    assert not gov.claim_refresh()  # one caller refreshes per period


def test_reseed_below_the_others_part_makes_us_wait() -> None:
    clock = FakeClock(NOW)
    gov = governor({"mutations_1h": 1800}, clock=clock, share=0.8)
    gov.reseed([{"type": "MUTATION_COUNT", "intervalSeconds": "ONE_HOUR", "quota": 1800, "usedQuota": 1700,
                 "remainingQuota": 100}])
    p = gov.try_acquire(mutations=1, complexity=1, lane="stock")
    assert not p.granted
    assert p.wait == pytest.approx((1 + 260) / 0.4)


def test_state_survives_a_restart_on_the_same_store() -> None:
    clock = FakeClock(NOW)
    store = MemoryQuotaStore()
    gov = governor({"mutations_1h": 100}, clock=clock, store=store)
    assert drain(gov, mutations=1, complexity=1, lane="stock") == 100
    restarted = governor({"mutations_1h": 100}, clock=clock, store=store)
    assert not restarted.try_acquire(mutations=1, complexity=1, lane="stock").granted


# ---------------------------------------------------------------- property: never more than the server allows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["stock", "prices", "catalogue"]), st.integers(1, 3),
                          st.integers(1, 400), st.floats(0, 5)), min_size=1, max_size=120))
def test_grants_never_exceed_the_server_buckets(calls: list[tuple[str, int, int, float]]) -> None:
    limits = {"requests_10s": 20, "requests_1h": 300, "complexity_10s": 2000, "complexity_1h": 30_000,
              "mutations_10s": 8, "mutations_1h": 100}
    clock = FakeClock(NOW)
    gov = QuotaGovernor(limits, clock=clock, share=1.0)
    referee = Quota({"REQUEST_COUNT:TEN_SECONDS": 20, "REQUEST_COUNT:ONE_HOUR": 300,
                     "QUERY_COMPLEXITY:TEN_SECONDS": 2000, "QUERY_COMPLEXITY:ONE_HOUR": 30_000,
                     "MUTATION_COUNT:TEN_SECONDS": 8, "MUTATION_COUNT:ONE_HOUR": 100}, clock)
    for lane, mutations, complexity, pause in calls:
        clock.advance(pause)
        permit = gov.acquire(mutations=mutations, complexity=complexity, lane=lane)
        assert permit.granted
        refused = referee.try_charge({"REQUEST_COUNT": 1, "QUERY_COMPLEXITY": complexity, "MUTATION_COUNT": mutations})
        assert refused is None or refused < 1e-6


# ---------------------------------------------------------------- learning what others leave


def run_against_referee(other: float, hours: float, refresh: float = 300.0) -> tuple[QuotaGovernor, int, int]:
    """A backlog of one-mutation calls against a referee server whose other integration spends
    ``other`` of every refill; rateLimits read every ``refresh`` s and after each 429.
    Returns the governor, the 429 count, and the 429 count of the last hour."""
    clock = FakeClock(NOW)
    limits = {**BIG, "mutations_10s": 40, "mutations_1h": 3600}
    gov = QuotaGovernor(limits, clock=clock, share=0.8, refresh_seconds=refresh)
    server = Quota({"REQUEST_COUNT:TEN_SECONDS": 10**6, "REQUEST_COUNT:ONE_HOUR": 10**8,
                    "QUERY_COMPLEXITY:TEN_SECONDS": 10**9, "QUERY_COMPLEXITY:ONE_HOUR": 10**11,
                    "MUTATION_COUNT:TEN_SECONDS": 40, "MUTATION_COUNT:ONE_HOUR": 3600}, clock, other_share=other)
    rejected = late = 0
    end = NOW + hours * 3600
    while clock.time() < end:
        if gov.refresh_due() and gov.claim_refresh():
            gov.reseed([{"type": r["type"], "intervalSeconds": r["intervalSeconds"], "quota": r["quota"],
                         "remainingQuota": r["remainingQuota"]} for r in server.rows()])
        gov.acquire(mutations=1, complexity=1, lane="stock")
        wait = server.try_charge({"REQUEST_COUNT": 1, "QUERY_COMPLEXITY": 1, "MUTATION_COUNT": 1})
        if wait is not None:
            rejected += 1
            late += clock.time() > end - 3600
            gov.on_rate_limited(max(1.0, wait))
    return gov, rejected, late


def test_learns_what_a_second_integration_leaves_and_stops_429s() -> None:
    gov, rejected, late = run_against_referee(other=0.5, hours=3)
    views = {v.name: v for v in gov.snapshot()[0]}
    assert views["mutations_1h"].refill_per_second == pytest.approx(0.5, rel=0.1)  # not the 0.8 of share
    assert views["mutations_10s"].refill_per_second == pytest.approx(2.0, rel=0.15)  # 4/s × (1 − 0.5)
    assert rejected <= 10
    assert late == 0  # once learnt, no 429 at all


def test_alone_the_learnt_rate_stays_at_the_share() -> None:
    gov, rejected, _ = run_against_referee(other=0.0, hours=2)
    views = {v.name: v for v in gov.snapshot()[0]}
    assert views["mutations_1h"].refill_per_second == pytest.approx(0.8, rel=0.02)
    assert rejected == 0


def test_a_call_granted_before_a_429_waits_out_the_retry_after_before_sending() -> None:
    clock = FakeClock(NOW)
    gov = governor(clock=clock)
    assert gov.try_acquire(complexity=1, lane="stock").granted  # granted …
    gov.on_rate_limited(4.0)  # … then another thread's call got a 429
    assert gov.wait_while_blocked() == pytest.approx(4.0)
    assert clock.time() == pytest.approx(NOW + 4.0)
    assert gov.wait_while_blocked() == 0.0


def test_a_limit_lowered_by_centra_sticks_after_a_429_and_a_restart() -> None:
    clock = FakeClock(NOW)
    store = MemoryQuotaStore()
    gov = governor({"mutations_10s": 20}, clock=clock, share=0.8, store=store)
    gov.reseed([{"type": "MUTATION_COUNT", "intervalSeconds": "TEN_SECONDS", "quota": 10, "remainingQuota": 10}])
    gov.on_rate_limited(1.0)
    clock.advance(1.0)
    restarted = governor({"mutations_10s": 20}, clock=clock, share=0.8, store=store)
    assert {v.name: v for v in restarted.snapshot()[0]}["mutations_10s"].capacity == 10
    assert drain(restarted, mutations=1, complexity=1, lane="stock") == 8
