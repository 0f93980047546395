"""``python -m erpsync …`` with tracemalloc on, for the soak's memory investigation (bench only).

    BENCH_TRACEMALLOC_DIR=/tmp/snaps python -m tests.bench.traced_daemon --config … run

Every ``BENCH_TRACEMALLOC_SECONDS`` (real, default 30) a snapshot is dumped to the directory
(``snap-000.pickle`` …); compare two with ``python -m tests.bench.traced_daemon --diff A B``.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 8


def _dump_every(directory: Path, seconds: float) -> None:
    n = 0
    while True:
        time.sleep(seconds)
        tracemalloc.take_snapshot().dump(str(directory / f"snap-{n:03d}.pickle"))
        n += 1


def diff(first: str, last: str, top: int = 25) -> None:
    a = tracemalloc.Snapshot.load(first)
    b = tracemalloc.Snapshot.load(last)
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    a, b = a.filter_traces(filters), b.filter_traces(filters)
    print(f"traced: {sum(s.size for s in a.statistics('filename')) / 1e6:.1f} MB -> "
          f"{sum(s.size for s in b.statistics('filename')) / 1e6:.1f} MB")
    for stat in b.compare_to(a, "traceback")[:top]:
        print(f"{stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d} blocks  (now {stat.size / 1e6:.2f} MB)")
        for line in stat.traceback.format()[-2 * FRAMES:]:
            print("      " + line)


def main() -> None:
    if sys.argv[1:2] == ["--diff"]:
        diff(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 25)
        return
    directory = Path(os.environ["BENCH_TRACEMALLOC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    every = float(os.environ.get("BENCH_TRACEMALLOC_SECONDS", "30"))
    threading.Thread(target=_dump_every, args=(directory, every), name="tracemalloc", daemon=True).start()
    sys.argv = ["erpsync", *sys.argv[1:]]
    runpy.run_module("erpsync", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
