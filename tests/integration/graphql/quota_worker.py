"""A separate erpsync process spending the shared quota (for the multi-process test and benchmark).

    python -m tests.integration.graphql.quota_worker DB_URL EPOCH FACTOR SECONDS LIMITS_JSON [GRAPHQL_URL TOKEN]

Runs a governor on DB_URL with a ScaledClock(FACTOR, EPOCH) and acquires one mutation after the
other for SECONDS of real time; prints one JSON line: the clock times of every granted decision.
With GRAPHQL_URL and TOKEN it sends real setStock mutations to the simulator through CentraGraphql
and prints the success times, the 429s and the requests sent during a Retry-After.
"""

from __future__ import annotations

import json
import sys
import time

from erpsync.clock import ScaledClock
from erpsync.graphql.quota import QuotaGovernor
from erpsync.store.engine import make_engine
from erpsync.store.quota_repo import SqlQuotaStore
from tests.integration.graphql.drive import drive


def main(argv: list[str]) -> None:
    url, epoch, factor, seconds, limits = argv[0], float(argv[1]), float(argv[2]), float(argv[3]), json.loads(argv[4])
    clock = ScaledClock(factor, epoch)
    engine = make_engine(url)
    if len(argv) > 5:  # against the simulator: GRAPHQL_URL TOKEN
        result, gov = drive(argv[5], argv[6], clock, limits, seconds=seconds, store=SqlQuotaStore(engine))
        engine.dispose()
        print(json.dumps({"mutations": result.mutation_times, "rate_limited": result.rate_limited,
                          "early": result.requests_before_retry_after()}))
        return
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
