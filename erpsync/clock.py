"""The injected clock: all rate, retry and timestamp logic reads time through a ``Clock``.

``SystemClock`` is the real one; ``ScaledClock`` runs faster than real time (the simulator's
time-scale option; client and simulator must then share the same epoch and factor);
``FakeClock`` is for tests: ``sleep`` advances time instantly.

Two kinds of time: the clock's own (``time``/``monotonic``/``sleep``: rates, retries, quota windows,
schedules, which a scaled clock compresses) and *real work* (``real_monotonic``/``real_sleep``: how
long a server takes to answer, how long the daemon itself works), which no scale compresses: a store
that answers in 50 ms answers in 50 ms whatever the simulated time. On ``FakeClock`` both are its one
fake time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (scaled clocks scale it)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    def real_monotonic(self) -> float:
        """Seconds at real speed whatever the scale, for the duration of real work (a server's
        answer time); never goes back."""
        ...

    def real_sleep(self, seconds: float) -> None:
        """Spend ``seconds`` of real time whatever the scale (the simulator's answer latency)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def real_monotonic(self) -> float:
        return time.monotonic()

    def real_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class ScaledClock:
    """Time that runs ``factor`` times faster than the real clock, from ``epoch`` (Unix seconds).

    Two processes given the same ``epoch`` and ``factor`` read the same scaled time.
    """

    def __init__(self, factor: float, epoch: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("time scale factor must be positive")
        self.factor = factor
        self.epoch = time.time() if epoch is None else epoch

    def time(self) -> float:
        return self.epoch + (time.time() - self.epoch) * self.factor

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        return time.monotonic() * self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)

    def real_monotonic(self) -> float:
        return time.monotonic()  # not scaled: real work takes real time

    def real_sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock for tests: time only moves when ``advance`` or ``sleep`` is called."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._t = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def monotonic(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))

    def real_monotonic(self) -> float:
        return self._t

    def real_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds


SIM_TIME_SCALE_ENV = "ERPSYNC_SIM_TIME_SCALE"
SIM_TIME_EPOCH_ENV = "ERPSYNC_SIM_TIME_EPOCH"


def clock_from_environ(environ: Mapping[str, str]) -> Clock:
    """The clock of a CLI process: the system clock, or, to rehearse against
    ``erpsync sim --time-scale F``, the simulator's scaled clock when ``ERPSYNC_SIM_TIME_SCALE`` (and
    ``ERPSYNC_SIM_TIME_EPOCH``, the simulator's epoch from ``/_sim/state``) are set."""
    scale = environ.get(SIM_TIME_SCALE_ENV)
    if not scale:
        return SystemClock()
    epoch = environ.get(SIM_TIME_EPOCH_ENV)
    return ScaledClock(float(scale), float(epoch) if epoch else None)
