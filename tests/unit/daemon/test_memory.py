"""The daemon bounds glibc's malloc arenas (RSS creep in the soak, #16)."""

from __future__ import annotations

import ctypes
import platform

import pytest

from erpsync.daemon.memory import DAEMON_ARENAS, limit_malloc_arenas

glibc = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_arenas_are_bounded_on_glibc() -> None:
    assert hasattr(ctypes.CDLL(None), "mallopt")
    assert limit_malloc_arenas({}) == DAEMON_ARENAS


def test_an_operators_malloc_arena_max_wins() -> None:
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "4"}) is None
