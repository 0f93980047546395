"""The six-bucket rate-limit quota of the simulated Integration API (PROTOCOL.md §2.1).

Each bucket (``REQUEST_COUNT``, ``QUERY_COMPLEXITY``, ``MUTATION_COUNT`` over ``TEN_SECONDS`` and
``ONE_HOUR``) holds up to ``capacity`` tokens and refills continuously at
``capacity / interval_seconds`` tokens per second of the injected clock, so a ``ScaledClock``
makes the hour window pass in a minute at ×60. A request is charged all-or-nothing: if any bucket
would go below zero nothing is taken and the caller gets the time until every bucket can pay.

The simulated "other integration" spends ``share`` of every bucket's refill; what is left for the
clients is ``(1 - share) × rate``. Its spending is counted for inspection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from erpsync.clock import Clock
from erpsync.sim.gql.options import BUCKET_INTERVALS, BUCKET_KEYS


class CostExceedsCapacity(Exception):
    """The request costs more than a bucket can ever hold: retrying cannot help."""

    def __init__(self, key: str, cost: int, capacity: int) -> None:
        super().__init__(f"request costs {cost} {key} but the bucket holds at most {capacity}")
        self.key = key
        self.cost = cost
        self.capacity = capacity


@dataclass
class Bucket:
    key: str
    capacity: int
    interval_seconds: int
    level: float
    other_spent: float = 0.0

    @property
    def rate(self) -> float:
        return self.capacity / self.interval_seconds

    @property
    def type(self) -> str:
        return self.key.split(":")[0]

    @property
    def interval(self) -> str:
        return self.key.split(":")[1]

    @property
    def tolerance(self) -> float:
        # float refill arithmetic: waiting exactly the announced time must be enough
        return 1e-6 + 1e-13 * self.capacity

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.level + self.tolerance))

    @property
    def used(self) -> int:
        return self.capacity - self.remaining


class Quota:
    """Six shared token buckets with continuous refill; not thread-safe (the app holds a lock)."""

    def __init__(self, limits: Mapping[str, int], clock: Clock, other_share: float = 0.0) -> None:
        self._clock = clock
        self._share = other_share
        self._last = clock.monotonic()
        self.buckets: dict[str, Bucket] = {
            key: Bucket(key, limits[key], BUCKET_INTERVALS[key.split(":")[1]], float(limits[key]))
            for key in BUCKET_KEYS
        }
        self.rejected = 0
        self.charged_requests = 0

    def refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._last)
        self._last = now
        for b in self.buckets.values():
            b.level = min(float(b.capacity), b.level + elapsed * b.rate * (1.0 - self._share))
            b.other_spent += elapsed * b.rate * self._share

    def try_charge(self, costs: Mapping[str, int]) -> float | None:
        """Charge ``costs`` (bucket type → amount, both intervals) or return seconds to wait.

        Raises ``CostExceedsCapacity`` when some bucket could never pay. Nothing is taken
        unless every bucket can pay.
        """
        self.refill()
        wait = 0.0
        for b in self.buckets.values():
            cost = costs.get(b.type, 0)
            if cost > b.capacity:
                raise CostExceedsCapacity(b.key, cost, b.capacity)
            if cost > b.level + b.tolerance:
                wait = max(wait, (cost - b.level) / (b.rate * (1.0 - self._share)))
        if wait > 0:
            self.rejected += 1
            return wait
        for b in self.buckets.values():
            b.level = max(0.0, b.level - costs.get(b.type, 0))
        self.charged_requests += 1
        return None

    def set_limits(self, limits: Mapping[str, int]) -> None:
        """Change bucket capacities now (Centra may lower limits temporarily); what was used
        stays used."""
        self.refill()
        for key, capacity in limits.items():
            b = self.buckets[key]
            used = b.capacity - b.level
            b.capacity = capacity
            b.level = min(float(capacity), max(0.0, capacity - used))

    def rows(self) -> list[dict[str, object]]:
        """The six buckets as ``rateLimits`` rows (after a refill)."""
        self.refill()
        return [
            {
                "type": b.type,
                "intervalSeconds": b.interval,
                "quota": b.capacity,
                "usedQuota": b.used,
                "remainingQuota": b.remaining,
            }
            for b in self.buckets.values()
        ]

    def inspect(self) -> dict[str, object]:
        self.refill()
        return {
            "buckets": {
                b.key: {
                    "quota": b.capacity,
                    "used": b.used,
                    "remaining": b.remaining,
                    "level": round(b.level, 3),
                    "otherIntegrationSpent": round(b.other_spent, 3),
                }
                for b in self.buckets.values()
            },
            "rejected429": self.rejected,
            "chargedRequests": self.charged_requests,
        }
