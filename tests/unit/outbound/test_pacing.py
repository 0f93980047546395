"""The quota-derived coalescing window of push_stock (erpsync.outbound.pacing), on an injected clock."""

from __future__ import annotations

import pytest

from erpsync.clock import FakeClock
from erpsync.outbound.pacing import StockPacer

#: Growth at share 0.8: 1,800 × 0.8 mutations an hour
GROWTH_08 = 1800 * 0.8 / 3600


def pacer(clock: FakeClock, share: float = 0.25, allowance: float | None = GROWTH_08,
          lo: float = 5.0, hi: float = 60.0) -> StockPacer:
    return StockPacer(share, lo, hi, clock, lambda: allowance)


def test_the_window_is_the_time_stocks_share_earns_one_mutation() -> None:
    p = pacer(FakeClock())
    assert p.window() == pytest.approx(10.0)  # 25 % of 1,440 an hour = 360 an hour = one per 10 s
    assert pacer(FakeClock(), allowance=25_000 * 0.8 / 3600).window() == 5.0  # floor: min interval
    assert pacer(FakeClock(), allowance=100 / 3600).window() == 60.0  # ceiling: stock_interval_seconds


def test_a_run_that_spent_m_mutations_waits_m_windows_and_an_empty_one_one_window() -> None:
    clock = FakeClock()
    p = pacer(clock)
    assert p.ran(0) == pytest.approx(10.0)
    clock.advance(10)
    assert p.ran(1) == pytest.approx(10.0)
    clock.advance(10)
    assert p.ran(3) == pytest.approx(30.0)
    clock.advance(30)
    assert p.ran(1) == pytest.approx(10.0)


def test_over_any_stretch_stock_spends_at_most_its_share_plus_one_run() -> None:
    clock = FakeClock()
    p = pacer(clock)
    start, spent = clock.time(), 0
    for i in range(500):
        m = (i * 7) % 4  # 0..3 warehouses changed since the last run
        spent += m
        delay = p.ran(m)
        assert delay is not None
        clock.advance(delay)
    elapsed = clock.time() - start
    assert spent <= 0.25 * GROWTH_08 * elapsed + 3


def test_a_bulk_run_never_delays_the_next_beyond_the_interval_and_its_debt_is_repaid() -> None:
    clock = FakeClock()
    p = pacer(clock)
    assert p.ran(45) == 60.0  # 450 s of budget, but a change never waits more than the interval
    clock.advance(60)
    assert p.ran(1) == 60.0  # still paying off: runs stay spaced
    clock.advance(400)
    assert p.ran(0) == pytest.approx(10.0)  # paid: back to one window


def test_pacing_off_or_allowance_unknown_keeps_the_fixed_interval() -> None:
    assert pacer(FakeClock(), share=0).ran(3) is None
    assert pacer(FakeClock(), allowance=None).ran(3) is None
    assert pacer(FakeClock(), allowance=0.0).window() is None


def test_a_lower_allowance_seen_from_centra_widens_the_window() -> None:
    """Others spent more than their part: the governor's learnt refill is lower, so is stock's budget."""
    seen = {"rate": GROWTH_08}
    p = StockPacer(0.25, 1.0, 600.0, FakeClock(), lambda: seen["rate"])
    assert p.window() == pytest.approx(10.0)
    seen["rate"] = GROWTH_08 / 2
    assert p.window() == pytest.approx(20.0)


def test_windows_count_from_the_runs_start_and_a_run_always_rests_the_minimum() -> None:
    clock = FakeClock()
    p = pacer(clock)
    started = clock.time()
    clock.advance(4)  # a run of 4 s that sent one setStock
    assert p.ran(1, started) == pytest.approx(6.0)
    started = clock.time() + 6
    clock.advance(6 + 8)  # a run of 8 s that sent nothing: still the minimum rest of 5 s
    assert p.ran(0, started) == pytest.approx(5.0)
