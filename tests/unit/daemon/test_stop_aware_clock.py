"""The jobs' clock: waits end at a stop; real time is not scaled (#16)."""

from __future__ import annotations

import threading
import time

import pytest

from erpsync.app import StopAwareClock
from erpsync.clock import ScaledClock
from erpsync.job import StopRequested


def test_real_sleep_is_real_time_on_a_scaled_clock() -> None:
    clock = StopAwareClock(ScaledClock(1000.0), threading.Event())
    started, sim_started = time.monotonic(), clock.time()
    clock.real_sleep(0.05)
    assert time.monotonic() - started >= 0.05
    assert clock.time() - sim_started >= 50.0  # 50 simulated seconds passed meanwhile
    real = clock.real_monotonic()
    clock.sleep(50.0)  # 50 simulated seconds: 50 ms of real time
    assert 0.04 <= clock.real_monotonic() - real < 1.0


@pytest.mark.parametrize("wait", ["sleep", "real_sleep"])
def test_every_wait_ends_at_a_stop(wait: str) -> None:
    stop = threading.Event()
    clock = StopAwareClock(ScaledClock(1.0), stop)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        getattr(clock, wait)(30.0)
    assert time.monotonic() - started < 2.0
