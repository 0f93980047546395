"""Benchmark (prints figures, asserts nothing): complexity of the GraphQL events source per page,
measured against the simulator's complexity formula — the full order inline in ``events`` versus
references plus ``orders(where: {number})`` pages — and the share of the Growth tier's 10-second
complexity bucket (250,000) one page costs.

    .venv/bin/python -m tests.bench.bench_gql_events [--events 600]
"""

from __future__ import annotations

import argparse
import logging

from pydantic import SecretStr

from erpsync.clock import SystemClock
from erpsync.graphql.client import CentraGraphql
from erpsync.inbound.gql_documents import EVENTS, ORDER_FIELDS, ORDERS_BY_NUMBER
from erpsync.sim.server import SimOptions, SimServer

BUCKET_10S = 250_000
FULL_INLINE = EVENTS.replace(
    "... on Account { accountId: id name }",
    "... on Account { accountId: id name }\n ... on Order { "
    + ORDER_FIELDS.replace("__typename id number", "__typename orderHash: id number") + " }")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=600)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    sim = SimServer(SimOptions(port=0))
    sim.start()
    client = CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=None, clock=SystemClock(),
                           decimal_floats=True)
    try:
        client.mutate("mutation { setEventListeners(input: [{objectType: Order}, {objectType: Customer}, "
                      "{objectType: Account}]) { userErrors { message } userWarnings { message } } }",
                      lane="events")
        sim.generate(args.events)
        for limit in (50, 100, 200):
            full = client.query(FULL_INLINE, {"limit": limit}, lane="events").complexity or 0
            refs = client.query(EVENTS, {"limit": limit}, lane="events")
            events = refs.data["events"]
            numbers = sorted({int(e["objectReference"]) for e in events
                              if e["objectType"] == "Order" and e["changeType"] != "DELETED"})
            orders_cost = 0
            for start in range(0, len(numbers), 100):
                chunk = numbers[start:start + 100]
                orders_cost += client.query(ORDERS_BY_NUMBER, {"numbers": chunk, "limit": len(chunk)},
                                            lane="events").complexity or 0
            total = (refs.complexity or 0) + orders_cost
            print(f"page {limit:3d} events ({len(numbers):3d} distinct orders): full inline {full:7d} "
                  f"({full / BUCKET_10S:5.1%} of 10 s bucket)  references {refs.complexity:6d} + orders "
                  f"{orders_cost:6d} = {total:7d} ({total / BUCKET_10S:5.1%}); ratio {total / full:.2f}")
    finally:
        client.close()
        sim.stop()


if __name__ == "__main__":
    main()
