"""Adaptive batch sizes against the simulator's latency model and 499 threshold."""

from __future__ import annotations

from sqlalchemy import Engine

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.graphql.quota import QuotaGovernor, tier_limits
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.store.quota_repo import SqlQuotaStore
from tests.unit.outbound.helpers import InProcessCentra, centra_state, expected_state, load_catalogue, sim_app

CATALOGUE = Catalogue(products=40, variants=3, sizes=5)  # 600 sizes per warehouse


def _setstock_sizes(port: InProcessCentra) -> list[int]:
    return [len(v["input"]["productSizes"]) for v in port.mutations("SetStock")]


def test_store_that_gives_up_on_big_batches_gets_smaller_ones_and_everything_lands(engine: Engine) -> None:
    port = InProcessCentra(sim_app(timeout_items=200))
    port.sizes = QuotaGovernor(tier_limits("growth"), clock=FakeClock(), store=SqlQuotaStore(engine))
    load_catalogue(engine, CATALOGUE)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    result = PushStock(engine, port, PushSettings(stock_batch_size=500), clock=FakeClock()).run()
    assert result.outcome == "ok" and result.counts.get("parked", 0) == 0
    assert centra_state(port.app.state)["stock"] == expected_state(CATALOGUE)["stock"]
    sizes = _setstock_sizes(port)
    assert sizes[:3] == [500, 250, 125], sizes  # halved at once, twice
    failures = port.app.inspect()["requests"]["byStatus"]["499"]
    assert failures == result.counts["batches_split"] <= 6  # closes in on the limit: no 499 storm
    assert sizes[-2:] == [200, 200], repr(sizes)  # settled on the largest size the store takes
    # learnt and kept: the next run (a new job, a new governor on the same database) starts at it
    learnt = port.sizes.batch_sizes()["setStock"]
    assert 125 <= learnt <= 200
    again = QuotaGovernor(tier_limits("growth"), clock=FakeClock(), store=SqlQuotaStore(engine))
    assert again.batch_sizes() == {"setStock": learnt}


def test_fast_store_grows_setstock_beyond_a_thousand_levels(engine: Engine) -> None:
    port = InProcessCentra(sim_app())
    load_catalogue(engine, Catalogue(products=200, variants=3, sizes=5))  # 3,000 sizes per warehouse
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    result = PushStock(engine, port, PushSettings(stock_batch_size=500), clock=FakeClock()).run()
    assert result.outcome == "ok"
    assert max(_setstock_sizes(port)) >= 1000


def test_slow_answers_shrink_the_batch_before_any_timeout(engine: Engine) -> None:
    clock = FakeClock()  # the store's latency passes on the same clock the job measures with
    from erpsync.sim.gql import GqlOptions, GraphqlApp
    from tests.unit.outbound.helpers import BIG_LIMITS

    app = GraphqlApp(GqlOptions(tier="custom", limits=BIG_LIMITS, latency_per_item_seconds=0.02), clock)
    port = InProcessCentra(app)
    load_catalogue(engine, CATALOGUE)
    PushProducts(engine, port, PushSettings(), clock=clock).run()
    port.calls.clear()
    result = PushStock(engine, port, PushSettings(stock_batch_size=500, batch_target_seconds=5), clock=clock).run()
    assert result.outcome == "ok"
    sizes = _setstock_sizes(port)
    # 500 lines take 10 s > 5 s: halved at once; then it stays near 250 lines (5 s), below the slow 500
    assert sizes[0] == 500 and sizes[2] == 250 and max(sizes[1:]) <= 375, sizes
    assert centra_state(port.app.state)["stock"] == expected_state(CATALOGUE)["stock"]
