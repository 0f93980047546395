"""The batch sizer judges the store by its answer time: real seconds, the request alone (#16).

On the soak's ×288 simulator clock a 70 ms answer read in simulated seconds was 20 s: every setStock
"slow", the size halved to 1 in 7 batches and stock fell hours behind (one level per mutation token).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from erpsync.clock import FakeClock, ScaledClock
from erpsync.outbound.batching import BatchSizer
from erpsync.outbound.documents import SET_STOCK
from erpsync.outbound.push import Sender
from erpsync.sim.gql import GqlOptions, GraphqlApp
from tests.unit.outbound.helpers import BIG_LIMITS, DEFAULT_TOKEN


class TimedPort:
    """A store that answers after ``answer`` real seconds; the clock runs on while the port waits
    ``quota_wait`` of its time for tokens first (a governed port) and says how long the answer took."""

    def __init__(self, clock: Any, answer: float, quota_wait: float = 0.0, reports: bool = False) -> None:
        self.clock = clock
        self.answer = answer
        self.quota_wait = quota_wait
        self._answer_seconds: float | None = None
        if reports:
            self.answer_seconds = lambda: self._answer_seconds

    def mutate(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        self.clock.sleep(self.quota_wait)  # the governor's wait for a mutation token
        started = self.clock.real_monotonic()
        self.clock.real_sleep(self.answer)
        self._answer_seconds = self.clock.real_monotonic() - started
        return {"setStock": {"userErrors": [], "userWarnings": []}}

    def query(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        raise AssertionError("not used")


def _send_full_batches(port: Any, clock: Any, sizer: BatchSizer, batches: int) -> None:
    sender = Sender(port, clock, max_attempts=3, stop_event=threading.Event())
    for _ in range(batches):
        sender.mutate_idempotent(SET_STOCK, {}, "stock", sizer, items=sizer.size)


def test_a_quick_answer_on_a_scaled_clock_is_quick() -> None:
    clock = ScaledClock(288.0)
    sizer = BatchSizer("setStock", 500, 5000, target_seconds=5)
    _send_full_batches(TimedPort(clock, answer=0.03), clock, sizer, 3)  # 30 ms real = 8.6 s simulated
    assert [why for *_, why in sizer.changes] == ["fast answer"] * 3, sizer.changes
    assert sizer.size == 1250


def test_a_slow_answer_on_a_scaled_clock_still_shrinks_the_batch() -> None:
    clock = ScaledClock(288.0)
    sizer = BatchSizer("setStock", 500, 5000, target_seconds=0.05)
    _send_full_batches(TimedPort(clock, answer=0.08), clock, sizer, 1)
    assert sizer.size == 250 and sizer.changes[0][3].startswith("slow answer")


def test_waiting_for_quota_tokens_is_not_a_slow_answer() -> None:
    clock = FakeClock()  # a 60 s wait for a mutation token, then a 0.2 s answer
    sizer = BatchSizer("setStock", 500, 5000, target_seconds=5)
    _send_full_batches(TimedPort(clock, answer=0.2, quota_wait=60.0, reports=True), clock, sizer, 2)
    assert sizer.size == 1000, sizer.changes


def test_the_simulators_latency_model_is_real_time_on_a_scaled_clock() -> None:
    """A store's work is not compressed by a simulated clock: 40 items × 2 ms take 80 ms at ×1000."""
    import json

    app = GraphqlApp(GqlOptions(tier="custom", limits=BIG_LIMITS, latency_per_item_seconds=0.002),
                     ScaledClock(1000.0))
    sizes = [{"productSize": {"EAN": f"73000000{i:05d}"}, "quantity": 1} for i in range(40)]
    body = json.dumps({"query": SET_STOCK, "variables": {"input": {
        "warehouse": {"externalId": "WH-MAIN"}, "description": "t", "stockQuantityType": "PHYSICAL",
        "productSizes": sizes}}}).encode()
    started = time.monotonic()
    status, _headers, _out = app.handle({"Authorization": f"Bearer {DEFAULT_TOKEN}"}, body)
    assert status == 200
    assert time.monotonic() - started >= 0.08
