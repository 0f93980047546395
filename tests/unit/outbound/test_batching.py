"""Adaptive batch sizes (AIMD): grow on fast full batches, halve on slow answers and failures,
stay within the limits, persist in the governor's shared state."""

from __future__ import annotations

from erpsync.clock import FakeClock
from erpsync.graphql.quota import MemoryQuotaStore, QuotaGovernor, tier_limits
from erpsync.outbound.batching import BatchSizer


def test_grows_additively_on_fast_full_batches_up_to_the_maximum() -> None:
    s = BatchSizer("setStock", 500, 5000, target_seconds=5)
    s.answered(500, 0.4)
    assert s.size == 750  # + 5 % of the maximum
    s.answered(100, 0.1)  # a short (last) batch says nothing about bigger ones
    assert s.size == 750
    for _ in range(100):
        s.answered(s.size, 1.0)
    assert s.size == 5000


def test_halves_at_once_on_a_slow_answer_or_a_failure() -> None:
    s = BatchSizer("setStock", 1000, 5000, target_seconds=5)
    s.answered(1000, 9.0)
    assert s.size == 500
    assert s.failed(500) is True and s.size == 250  # the batch is now too big: split it
    assert s.failed(100) is True and s.size == 50
    for _ in range(20):
        s.failed(s.size)
    assert s.size == 1
    assert s.failed(1) is False  # at the minimum: resend it as it is (the sender's retries decide)


def test_prices_never_exceed_the_per_call_limit() -> None:
    s = BatchSizer("setPricesBatch", 100, 100)
    for _ in range(10):
        s.answered(100, 0.1)
    assert s.size == 100
    assert BatchSizer("setPricesBatch", 400, 100).size == 100


def test_learnt_size_survives_a_restart_through_the_shared_state() -> None:
    store = MemoryQuotaStore()
    gov = QuotaGovernor(tier_limits("growth"), clock=FakeClock(), store=store)
    s = BatchSizer("setStock", 500, 5000, store=gov)
    s.answered(500, 0.1)
    s.answered(750, 0.1)
    assert gov.batch_sizes() == {"setStock": 1000}
    again = QuotaGovernor(tier_limits("growth"), clock=FakeClock(), store=store)  # a new process
    assert BatchSizer("setStock", 500, 5000, store=again).size == 1000


def test_a_failed_one_item_batch_never_leaves_a_size_of_zero() -> None:
    sizer = BatchSizer("setPricesBatch", size=4, maximum=100)
    sizer.failed(4)
    sizer.failed(2)
    sizer.failed(1)  # the ceiling is now 1
    sizer.answered(1, 0.01)  # closing in below a ceiling of 1 would give 0
    assert sizer.size == 1
    assert all(new >= 1 for _kind, _old, new, _why in sizer.changes)
