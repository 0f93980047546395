"""The governor against the simulator over HTTP, time-scaled: throughput, zero 429s, adaptation."""

from __future__ import annotations

from typing import Any

from tests.integration.graphql.drive import drive

# Growth's shape, with a smaller hourly mutation bucket so a scaled hour passes quickly:
# mutations_1h binds (0.1/s vs requests 1.39/s)
LIMITS = {"requests_10s": 60, "requests_1h": 5000, "complexity_10s": 250_000, "complexity_1h": 30_000_000,
          "mutations_10s": 20, "mutations_1h": 360}
SIM_LIMITS = {"REQUEST_COUNT:TEN_SECONDS": 60, "REQUEST_COUNT:ONE_HOUR": 5000,
              "QUERY_COMPLEXITY:TEN_SECONDS": 250_000, "QUERY_COMPLEXITY:ONE_HOUR": 30_000_000,
              "MUTATION_COUNT:TEN_SECONDS": 20, "MUTATION_COUNT:ONE_HOUR": 360}
FACTOR = 720.0  # one hour = 5 s


def test_backlog_runs_at_the_binding_limit_without_429s(sim_factory: Any) -> None:
    sim = sim_factory(tier="custom", limits=SIM_LIMITS, time_scale=FACTOR)
    result, gov = drive(sim.graphql_url, sim.token, sim.client_clock(), LIMITS, seconds=13.0)
    assert result.rate_limited == []
    assert sim.state()["graphql"]["quota"]["rejected429"] == 0
    allowed_rate = 360 * 0.8 / 3600
    # the first scaled hour includes the initial allowance: judge the steady state after it
    t0 = result.started + 3600
    steady = result.mutations_between(t0, result.ended) / ((result.ended - t0) * allowed_rate)
    assert result.duration > 2 * 3600
    assert steady >= 0.95, f"steady-state throughput {steady:.3f} of the binding limit × share"
    total_allowed = 360 * 0.8 + allowed_rate * result.duration
    assert len(result.mutation_times) <= total_allowed + 1
    assert gov.stats.reseeds >= 1


def test_adapts_to_a_second_integration_spending_half(sim_factory: Any) -> None:
    sim = sim_factory(tier="custom", limits=SIM_LIMITS, time_scale=FACTOR, other_integration_share=0.5)
    result, gov = drive(sim.graphql_url, sim.token, sim.client_clock(), LIMITS, seconds=13.0, refresh_seconds=300)
    assert result.requests_before_retry_after() == 0
    assert len(result.rate_limited) <= 3  # rare
    assert sim.state()["graphql"]["quota"]["rejected429"] == len(result.rate_limited)
    available = 360 * 0.5 / 3600  # what the other integration leaves
    t0 = result.started + 3600
    rate = result.mutations_between(t0, result.ended) / (result.ended - t0)
    # erpsync adapts down to what is left (it may not take more, and still gets most of it)
    assert rate <= available * 1.05
    assert rate >= available * 0.75
    assert gov.stats.reseeds >= 2
