"""The daemon bounds glibc's malloc arenas (RSS creep in the soak, #16)."""

from __future__ import annotations

import ctypes
import platform

from erpsync.daemon.memory import DAEMON_ARENAS, limit_malloc_arenas

glibc = platform.libc_ver()[0] == "glibc"


def test_arenas_are_bounded_on_glibc_and_left_alone_elsewhere() -> None:
    if glibc:  # this machine and CI (Debian)
        assert hasattr(ctypes.CDLL(None), "mallopt")
        assert limit_malloc_arenas({}) == DAEMON_ARENAS
    else:  # musl and others have no arenas to bound: nothing is done
        assert limit_malloc_arenas({}) is None


def test_an_operators_malloc_arena_max_wins() -> None:
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "4"}) is None
