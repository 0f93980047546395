"""The pull job pauses the cyclic garbage collector for one batch and always restores it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from erpsync.inbound.pull import collector_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_off_during_the_batch_on_again_after_also_when_it_fails() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_left_off_when_someone_else_turned_it_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_two_threads_on_again_only_when_the_last_batch_ends() -> None:
    first_in, release_first = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            release_first.wait(5)

    t = threading.Thread(target=first)
    t.start()
    assert first_in.wait(5)
    with collector_paused():
        pass
    seen.append(gc.isenabled())  # the first batch still runs: still off
    release_first.set()
    t.join(5)
    assert seen == [False] and gc.isenabled()
