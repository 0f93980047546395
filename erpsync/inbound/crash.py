"""Crash points for the crash-safety tests: ``ERPSYNC_TEST_CRASH_AT=after_fetch:3`` makes the
process SIGKILL itself the 3rd time it reaches ``after_fetch`` (comma-separate several points).

Points in the pull job: ``after_fetch`` (fetched, nothing stored), ``mid_transaction`` (object rows
written, transaction open), ``after_commit`` (stored, not acknowledged), ``during_ack`` (half the
batch acknowledged). Without the variable every ``hit`` is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping

ENV = "ERPSYNC_TEST_CRASH_AT"
POINTS = frozenset({"after_fetch", "mid_transaction", "after_commit", "during_ack"})


class CrashPoints:
    def __init__(self, plan: Mapping[str, int] | None = None) -> None:
        self.plan = dict(plan or {})
        unknown = set(self.plan) - POINTS
        if unknown:
            raise ValueError(f"unknown crash point(s) {sorted(unknown)}; known: {sorted(POINTS)}")
        self.seen: Counter[str] = Counter()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CrashPoints:
        spec = (os.environ if environ is None else environ).get(ENV, "").strip()
        plan: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, nth = part.partition(":")
            plan[name] = int(nth or "1")
        return cls(plan)

    def armed(self, point: str) -> bool:
        """Will the next ``hit(point)`` kill the process?"""
        return point in self.plan and self.seen[point] + 1 == self.plan[point]

    def hit(self, point: str) -> None:
        if point not in self.plan:
            return
        self.seen[point] += 1
        if self.seen[point] == self.plan[point]:
            os.kill(os.getpid(), signal.SIGKILL)
