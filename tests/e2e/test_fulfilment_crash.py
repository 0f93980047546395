"""Exactly once under kill -9: ``erpsync push fulfilment --once`` (a real subprocess) SIGKILLs itself at
every step of the delivery flow (cancellation answered, intent stored, create answered, created
recorded, externalId set, capture answered, completion answered), while the simulator also
answers 5 % of mutations with 499-after-apply, 5 % with 5xx and resets 5 % of connections. A final
run converges: every delivery shipped (or parked when its capture was set to fail), 0 duplicate
shipments, 0 double captures, 0 completions after a failed capture, cancellations applied once."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from erpsync.outbound.fulfilment import CRASH_POINTS
from erpsync.outbound.push import CRASH_ENV
from erpsync.store.engine import make_engine
from tests.e2e.test_push_cli import env_for
from tests.e2e.test_push_cli import erpsync as run_erpsync
from tests.fixtures.sim import SimFactory
from tests.integration.outbound.fulfilment_helpers import (
    confirmed_orders,
    deliveries,
    order_items,
    write_cancellation,
    write_delivery,
)

pytestmark = pytest.mark.slow  # a few dozen erpsync subprocesses

DELIVERIES = 12


def write_config(tmp_path: Path, graphql_url: str) -> Path:
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra.soap]
url = "http://127.0.0.1:9/soap"
username = "erp-user"
[centra.graphql]
url = "{graphql_url}"
read_timeout = 5.0
[quota]
tier = "enterprise"
[push]
unknown_outcome_wait_seconds = 0.0
max_attempts = 8
""")
    return cfg


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite: the same flow in tests/integration
def test_kill_9_at_every_step_under_faults_converges_exactly_once(
    db_url: str, tmp_path: Path, sim_factory: SimFactory,
) -> None:
    sim = sim_factory(tier="enterprise", time_scale=20.0)
    engine = make_engine(db_url)
    SQLModel.metadata.create_all(engine)
    orders = confirmed_orders(sim, DELIVERIES // 2 + 1)
    failing = orders[0]
    sim.set_capture_outcome(failing, "failed")
    expected = 0
    for i, order in enumerate(orders):
        items = order_items(sim, order)
        halves = [items[: max(1, len(items) // 2)], items[max(1, len(items) // 2):]]
        for j, part in enumerate(h for h in halves if h):  # partial deliveries: several per order
            by_sku = (i + j) % 2 == 1
            write_delivery(engine, f"D-{order}-{j}", order,
                           [{"sku": x["sku"], "quantity": x["qty"]} if by_sku else
                            {"order_line_id": x["id"], "quantity": x["qty"]} for x in part],
                           capture=(i + j) % 3 != 2, paid_outside=(i + j) % 3 == 2)
            expected += 1
    while True:  # an order with a line of 2 units or more: two cancellations of 1
        cancel_order = confirmed_orders(sim, 1)[0]
        big = max(order_items(sim, cancel_order), key=lambda x: x["qty"])
        if big["qty"] >= 2:
            break
    write_cancellation(engine, "C-1", cancel_order, 1, order_line_id=big["id"])
    write_cancellation(engine, "C-2", cancel_order, 1, order_line_id=big["id"])
    engine.dispose()

    for kind, extra in (("apply_then_499", {}), ("http", {"status": 503}), ("reset", {})):
        sim.set_fault("graphql", kind, only="mutation", probability=0.05, **extra)
    cfg = write_config(tmp_path, sim.graphql_url)
    kills: Counter[str] = Counter()
    for point in CRASH_POINTS:
        res = run_erpsync(cfg, env_for(db_url, sim, **{CRASH_ENV: f"{point}:1"}), "push", "fulfilment", "--once")
        if res.returncode == -signal.SIGKILL:
            kills[point] += 1
        else:
            assert res.returncode in (0, 75), (point, res.returncode, res.stderr[-2000:])
    assert set(kills) == set(CRASH_POINTS), kills  # every step was interrupted at least once

    for _ in range(4):
        final = run_erpsync(cfg, env_for(db_url, sim), "push", "fulfilment", "--once")
        assert final.returncode in (0, 75), final.stderr[-2000:]
        engine = make_engine(db_url)
        rows = deliveries(engine)
        engine.dispose()
        if all(d.state in ("shipped", "parked") for d in rows.values()):
            break
    assert len(rows) == expected
    for d in rows.values():
        if d.order_number == failing and d.capture:
            assert d.state == "parked" and not d.is_shipped and "declined" in (d.error or "")
        else:
            assert d.state == "shipped", (d.delivery_id, d.state, d.error)
            assert d.is_shipped and d.shipment_id is not None and d.is_captured == d.capture
    state = sim.state()["graphql"]["orders"]
    assert state["duplicateShipments"] == {}
    assert state["doubleCaptures"] == [] and state["doubleCompletions"] == []
    assert state["shipmentsWithoutExternalId"] == []
    ships = [s for per in state["shipmentsByOrder"].values() for s in per]
    assert len(ships) == expected  # one shipment per delivery, no more
    by_ext = {s["externalId"]: s for s in ships}
    for d in rows.values():
        assert by_ext[d.delivery_id]["id"] == d.shipment_id
        if d.state == "parked":
            assert not by_ext[d.delivery_id]["isShipped"]  # never completed after a failed capture
    assert state["cancelledLines"] == {str(big["id"]): 2}
    assert sum(sim.faults.inspect()["fired"].values()) > 0
