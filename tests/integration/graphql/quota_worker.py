"""A separate erpsync process spending the shared quota (for the multi-process test and benchmark).

    python -m tests.integration.graphql.quota_worker DB_URL EPOCH FACTOR SECONDS LIMITS_JSON

Runs a governor on DB_URL with a ScaledClock(FACTOR, EPOCH) and acquires one mutation after the
other for SECONDS of real time; prints one JSON line: the clock times of every granted decision.
"""

from __future__ import annotations

import json
import sys
import time

from erpsync.clock import ScaledClock
from erpsync.graphql.quota import QuotaGovernor
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore


def main(argv: list[str]) -> None:
    url, epoch, factor, seconds, limits = argv[0], float(argv[1]), float(argv[2]), float(argv[3]), json.loads(argv[4])
    clock = ScaledClock(factor, epoch)
    engine = make_engine(url)
    gov = QuotaGovernor(limits, clock=clock, share=0.8, store=SqlQuotaStore(engine))
    granted: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        permit = gov.acquire(mutations=1, complexity=100, lane="stock", timeout=0.5 * factor)
        if permit.granted:
            granted.append(permit.at)
    engine.dispose()
    print(json.dumps(granted))


if __name__ == "__main__":
    main(sys.argv[1:])
