"""When the next ``push_stock`` run goes: a coalescing window derived from the quota.

Stock changes arrive continuously (SQL poll, imports). One ``setStock`` per change would spend the
hour's mutations on stock; a fixed 60 s interval leaves a change stale for up to a minute. Instead
stock is given a budget, ``push.stock_mutation_share`` of erpsync's hourly mutation allowance (the
governor's refill of ``mutations_1h``, which already counts ``quota.share`` and what other
integrations were seen to spend), and the changes staged meanwhile are coalesced until the budget
has earned the mutations the last run spent:

- ``window`` = 1 ÷ (stock share × allowance per second): the time in which stock's budget earns one
  mutation (Growth at share 0.8 and 25 %: 1,440 mutations an hour → 360 for stock → 10 s);
- after a run that spent ``m`` mutations, the next starts when the budget has paid for them
  (``m`` windows after the run's start, or after the debt it already had), and never sooner than
  one window after the run's start (a run that sent nothing: a change arriving then waits at most
  about a window);
- bounds: never sooner than ``push.stock_min_interval_seconds`` (a big tier would otherwise diff
  the stock table every second), never later than ``push.stock_interval_seconds`` (the longest a
  change waits, whatever a bulk run cost; the debt is kept, so the runs after it stay spaced).

So over any stretch stock spends at most its share (plus one run), and a change waits about one
window (p99 ≈ the window plus a run). ``push.stock_mutation_share = 0`` turns pacing off: the
daemon runs ``push_stock`` every ``push.stock_interval_seconds`` as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from erpsync.clock import Clock


@dataclass
class StockPacer:
    """The quota-derived coalescing window of ``push_stock`` (see the module docstring)."""

    share: float  # push.stock_mutation_share
    min_seconds: float  # push.stock_min_interval_seconds
    max_seconds: float  # push.stock_interval_seconds
    clock: Clock
    #: erpsync's hourly mutation allowance per second (refill of ``mutations_1h``), None when unknown
    allowance: Callable[[], float | None]
    _paid_until: float = field(default=0.0, repr=False)

    def window(self) -> float | None:
        """Seconds in which stock's share earns one mutation (bounded); None when pacing is off or
        the allowance is unknown."""
        if self.share <= 0:
            return None
        rate = self.allowance()
        if rate is None or rate <= 0:
            return None
        return self._bounded(1.0 / (self.share * rate))

    def ran(self, mutations: int, started: float | None = None) -> float | None:
        """A run that started at ``started`` (clock time; default now) just ended having sent
        ``mutations``: the seconds until the next one (None: pacing is off, keep the fixed
        interval). Windows count from the run's start, so a long run does not stretch them."""
        window = self.window()
        if window is None:
            return None
        now = self.clock.time()
        start = now if started is None else min(started, now)
        self._paid_until = max(self._paid_until, start) + max(0, mutations) * window
        return self._bounded(max(start + window, self._paid_until) - now)

    def _bounded(self, seconds: float) -> float:
        return min(self.max_seconds, max(self.min_seconds, seconds))
