"""Acceptance: the push jobs over the real GraphQL client against ``erpsync sim`` over HTTP.

A 50 products × 3 variants × 5 sizes catalogue, 3 warehouses, 3 pricelists, on SQLite and
PostgreSQL: the sim's state equals the ERP's exactly; a second push sends 0 mutations; 10 changed
stock rows send one setStock per affected warehouse; faults on every mutation kind (timeout, 499
after apply, 5xx, reset) still converge with zero duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from erpsync.clock import Clock
from erpsync.config import PushSettings, QuotaSettings
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import MemoryQuotaStore, QuotaGovernor
from erpsync.outbound.port import GraphqlPort
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.sim.server import SimServer
from erpsync.store.staging import StagingStock
from tests.fixtures.sim import SimFactory
from tests.unit.outbound.helpers import BIG_LIMITS, assert_same, centra_state, expected_state, load_catalogue

CATALOGUE = Catalogue(products=50, variants=3, sizes=5)
JOBS = (PushProducts, PushPrices, PushStock)


class CountingPort(GraphqlPort):
    """The real port, counting mutation fields by name, and optionally arming one sim fault before
    the first request of every mutation kind."""

    def __init__(self, client: CentraGraphql, sim: SimServer, fault: dict[str, Any] | None = None) -> None:
        super().__init__(client)
        self.sim = sim
        self.fault = fault
        self.fields: Counter[str] = Counter()
        self.faulted: set[str] = set()

    def mutate(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        kind = document.split("(", 1)[0].rsplit(maxsplit=1)[-1]  # operation name: SetStock, Catalogue, …
        if self.fault is not None and kind not in self.faulted:
            self.faulted.add(kind)
            self.sim.set_fault("graphql", only="mutation", count=1, **self.fault)
        data = super().mutate(document, variables, lane=lane)
        for key, value in data.items():
            if isinstance(value, dict) and not value.get("userErrors"):
                self.fields[_field(document, key)] += 1
        return data


def _field(document: str, alias: str) -> str:
    for raw in document.splitlines():
        line = raw.strip()
        if line.startswith(f"{alias}:"):
            return line.split(":", 1)[1].split("(", 1)[0].strip()
        if line.startswith(f"{alias}("):
            return alias
    return alias


def make_port(sim: SimServer, clock: Clock, *, governed: bool, read_timeout: float = 5.0,
              fault: dict[str, Any] | None = None) -> CountingPort:
    governor = None
    if governed:
        governor = QuotaGovernor.from_settings(QuotaSettings(tier=sim.options.tier, share=0.8)
                                               if sim.options.tier != "custom" else
                                               QuotaSettings(tier="enterprise"),
                                               clock=clock, store=MemoryQuotaStore())
    client = CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=clock,
                           connect_timeout=2, read_timeout=read_timeout)
    return CountingPort(client, sim, fault)


def push_all(engine: Engine, port: CountingPort, clock: Clock, push: PushSettings) -> None:
    for cls in JOBS:
        result = cls(engine, port, push, clock=clock).run()
        assert result.outcome == "ok", result


@pytest.fixture
def growth_sim(sim_factory: SimFactory) -> SimServer:
    return sim_factory(tier="growth", time_scale=100.0)


def test_catalogue_over_http_equals_erp_then_nothing_then_one_set_stock_per_warehouse(
    engine: Engine, growth_sim: SimServer,
) -> None:
    load_catalogue(engine, CATALOGUE)
    clock = growth_sim.client_clock()
    port = make_port(growth_sim, clock, governed=True)
    # 750 sizes per warehouse: one setStock each (sizes held fixed: this test counts mutations exactly)
    push = PushSettings(stock_batch_size=1000, batch_target_seconds=1e6)
    try:
        push_all(engine, port, clock, push)
        assert_same(expected_state(CATALOGUE), centra_state(growth_sim.gql.state))
        inspect = growth_sim.state()["graphql"]
        assert all(not d for d in inspect["duplicates"].values())
        # 150 product prices: two setPricesBatch of at most 100 (Centra's per-call limit)
        assert port.fields == {"createSizeChart": 2, "createProduct": 50, "setPricesBatch": 2, "setStock": 3}
        assert inspect["requests"]["byStatus"].get("429", 0) == 0  # the governor kept within the quota

        port.fields.clear()
        applied = inspect["counts"]["mutationsApplied"]
        push_all(engine, port, clock, push)
        assert port.fields == {}
        assert growth_sim.state()["graphql"]["counts"]["mutationsApplied"] == applied

        with Session(engine) as s, s.begin():
            rows = [r[0] for r in s.exec(select(StagingStock).order_by(col(StagingStock.ean)))]  # type: ignore[call-overload]
            picked = [r for r in rows if r.warehouse != "WH-EU"][::37][:10]
            for r in picked:
                r.quantity += 3
            changed = {(r.warehouse, r.ean): r.quantity for r in picked}
        push_all(engine, port, clock, push)
        assert port.fields == {"setStock": len({wh for wh, _ in changed})}
        expected = expected_state(CATALOGUE)
        expected["stock"].update(changed)
        assert_same(expected, centra_state(growth_sim.gql.state))
    finally:
        port.close()


FAULTS = {
    "timeout": {"kind": "hang", "seconds": 1.5},
    "499-after-apply": {"kind": "apply_then_499"},
    "5xx": {"kind": "http", "status": 500},
    "reset": {"kind": "reset"},
}


@pytest.fixture
def fast_sim(sim_factory: SimFactory) -> Iterator[SimServer]:
    yield sim_factory(tier="custom", limits=BIG_LIMITS, time_scale=50.0, hang_seconds=1.5)


# HTTP faults do not depend on the database: SQLite only (the acceptance test above runs on both)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faults_on_every_mutation_kind_converge_without_duplicates(
    engine: Engine, fast_sim: SimServer, fault: str,
) -> None:
    catalogue = Catalogue(products=20, variants=3, sizes=5)
    load_catalogue(engine, catalogue)
    clock = fast_sim.client_clock()
    port = make_port(fast_sim, clock, governed=False, read_timeout=0.5, fault=FAULTS[fault])
    try:
        push_all(engine, port, clock, PushSettings(products_batch_size=5, prices_batch_size=20,
                                                   stock_batch_size=100))
        assert port.faulted == {"CreateSizeChart", "Catalogue", "SetPricesBatch", "SetStock"}
        fired = fast_sim.state()["faults"]["fired"]
        assert sum(fired.values()) == 4, fired
        assert_same(expected_state(catalogue), centra_state(fast_sim.gql.state))
        assert all(not d for d in fast_sim.state()["graphql"]["duplicates"].values())
        # after the first run nothing is left: faults lost nothing and recorded nothing wrongly
        port.fields.clear()
        port.fault = None
        push_all(engine, port, clock, PushSettings())
        assert port.fields == {}
    finally:
        port.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_random_faults_on_mutations_still_converge(engine: Engine, fast_sim: SimServer) -> None:
    catalogue = Catalogue(products=20, variants=3, sizes=5)
    load_catalogue(engine, catalogue)
    clock = fast_sim.client_clock()
    for kind in ("apply_then_499", "reset"):
        fast_sim.set_fault("graphql", kind, probability=0.15, only="mutation")
    fast_sim.set_fault("graphql", "http", status=503, probability=0.1)
    port = make_port(fast_sim, clock, governed=False, read_timeout=2.0)
    try:
        push = PushSettings(products_batch_size=4, prices_batch_size=10, stock_batch_size=50, max_attempts=10)
        for cls in JOBS:
            for _ in range(3):  # a run that ends "retry" is simply run again, as the daemon would
                if cls(engine, port, push, clock=clock).run().outcome == "ok":
                    break
            else:
                pytest.fail(f"{cls.name} did not finish")
        fast_sim.clear_faults()
        assert sum(fast_sim.state()["faults"]["fired"].values()) > 5
        assert_same(expected_state(catalogue), centra_state(fast_sim.gql.state))
        assert all(not d for d in fast_sim.state()["graphql"]["duplicates"].values())
    finally:
        port.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_slow_create_applied_after_the_client_gave_up_is_not_duplicated(engine: Engine, fast_sim: SimServer) -> None:
    """A timeout is not a 499: Centra may still apply the request after the client stopped waiting.
    The read-back waits ``push.unknown_outcome_wait_seconds`` (60 sim-s = 1.2 s here) so such a
    request (applied 0.9 s after it was sent) lands first; without the wait this duplicates."""
    catalogue = Catalogue(products=5, variants=3, sizes=5)
    load_catalogue(engine, catalogue)
    clock = fast_sim.client_clock()
    port = make_port(fast_sim, clock, governed=False, read_timeout=0.5,
                     fault={"kind": "latency", "seconds": 0.9})
    try:
        push_all(engine, port, clock, PushSettings(products_batch_size=5))
        assert all(not d for d in fast_sim.state()["graphql"]["duplicates"].values()), \
            fast_sim.state()["graphql"]["duplicates"]
        assert_same(expected_state(catalogue), centra_state(fast_sim.gql.state))
    finally:
        port.close()
