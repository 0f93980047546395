"""Complexity before the first send: a never-seen document is charged its upper bound, so the first
requests on a tight complexity bucket earn no 429; the real cost is learnt from the answer."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from erpsync.graphql import CentraGraphql, QuotaGovernor
from erpsync.outbound.documents import LOOKUP_PRODUCTS

# a custom tier whose 10-second complexity bucket holds barely two heavy product lookups
SIM_LIMITS = {"REQUEST_COUNT:TEN_SECONDS": 1000, "REQUEST_COUNT:ONE_HOUR": 100_000,
              "QUERY_COMPLEXITY:TEN_SECONDS": 80_000, "QUERY_COMPLEXITY:ONE_HOUR": 30_000_000,
              "MUTATION_COUNT:TEN_SECONDS": 100, "MUTATION_COUNT:ONE_HOUR": 10_000}
LIMITS = {"requests_10s": 1000, "requests_1h": 100_000, "complexity_10s": 80_000, "complexity_1h": 30_000_000,
          "mutations_10s": 100, "mutations_1h": 10_000}
# another never-seen operation (its own estimate), heavier per product (two fields per size)
LOOKUP_WIDE = """
query LookupWide($externalIds: [String!]!, $limit: Int!) {
  products(where: {externalId: $externalIds}, limit: $limit) {
    id externalId name status productNumber
    variants(limit: 20) { id externalId name status variantNumber productSizes { EAN SKU } }
  }
  warehouses(limit: 1) { id }
}
"""


def test_first_requests_on_a_tight_complexity_bucket_earn_no_429(sim_factory: Any) -> None:
    sim = sim_factory(tier="custom", limits=SIM_LIMITS, time_scale=5.0)
    clock = sim.client_clock()
    gov = QuotaGovernor(LIMITS, clock=clock, share=0.8, refresh_seconds=1e9)
    gov.reseed([], at=clock.time())
    costs = []
    with CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=gov, clock=clock) as client:
        for document in (LOOKUP_PRODUCTS, LOOKUP_WIDE, LOOKUP_PRODUCTS, LOOKUP_WIDE):
            costs.append(client.query(document, {"externalIds": ["x"], "limit": 100}).complexity)
    assert sim.state()["graphql"]["quota"]["rejected429"] == 0
    assert gov.stats.rate_limited == 0
    assert costs[0] is not None and costs[0] + costs[1] > 80_000 * 0.8  # the two never fit one window
    # learnt: the same document with another limit is charged its real cost, not the bound
    key = "query:products"
    from erpsync.graphql.complexity import upper_bound
    from erpsync.graphql.schema import DocumentCache, contract_schema

    ast = DocumentCache().get(LOOKUP_PRODUCTS).ast
    small = gov.charge_for(key, upper_bound(contract_schema(), ast, {"limit": 10}))
    assert small < upper_bound(contract_schema(), ast, {"limit": 10})
