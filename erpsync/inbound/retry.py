"""Capped exponential backoff with full jitter, on the injected clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from erpsync.clock import Clock
from erpsync.errors import RetryLater
from erpsync.logs import get_logger

T = TypeVar("T")
log = get_logger("erpsync.sync.retry")


@dataclass
class Backoff:
    """``attempts`` tries in all; before try n+1 sleep uniform(0, min(cap, base * 2**n)), but at
    least what the server asked for (``Retry-After``), never more than ``max_wait``."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.cap, self.base * (2 ** attempt))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_wait)

    def call(self, fn: Callable[[], T], clock: Clock, what: str) -> T:
        """Run ``fn``; on ``RetryLater`` wait and try again, up to ``attempts``; re-raise the last.
        Anything else (fatal errors) propagates at once."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except RetryLater as exc:
                if attempt + 1 >= self.attempts:
                    raise
                wait = self.delay(attempt, exc.retry_after)
                log.warning("retry.scheduled", call=what, attempt=attempt + 1, wait_s=round(wait, 3),
                            error_class=type(exc).__name__, error=str(exc))
                clock.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
