"""The fulfilment job over the real GraphQL client against the simulator over HTTP, on SQLite and
PostgreSQL: partial deliveries by line id and by SKU, capture, paid outside, over-shipping refused,
a failed capture parked (never completed) until `erpsync parked retry`, PENDING captures waiting,
line cancellations as deltas, and unknown outcomes settled by reading back (no duplicates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from erpsync.config import FulfilmentSettings
from erpsync.store.fulfilment import ErpDeliveryLine, ErpLineCancellation
from erpsync.store.models import ParkedItem
from tests.fixtures.sim import SimFactory
from tests.integration.outbound.fulfilment_helpers import (
    confirmed_orders,
    deliveries,
    make_port,
    order_items,
    run_job,
    sim_shipments,
    write_cancellation,
    write_delivery,
)


def test_partial_by_line_and_sku_capture_paid_outside_and_over_shipping(engine: Engine,
                                                                          sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0)
    clock = sim.client_clock()
    o1, o2, o3 = confirmed_orders(sim, 3)
    first = order_items(sim, o1)[0]
    rest = order_items(sim, o1)[1:]
    write_delivery(engine, "D-1a", o1, [{"order_line_id": first["id"], "quantity": first["qty"]}], capture=True)
    if rest:
        write_delivery(engine, "D-1b", o1, [{"sku": x["sku"], "quantity": x["qty"]} for x in rest])
    write_delivery(engine, "D-2", o2, [{"sku": x["sku"], "quantity": x["qty"]} for x in order_items(sim, o2)],
                   paid_outside=True, shipped_at=datetime.now(UTC) + timedelta(hours=1))
    over = order_items(sim, o3)[0]
    write_delivery(engine, "D-3", o3, [{"order_line_id": over["id"], "quantity": over["qty"] + 1}])
    port = make_port(sim, clock)
    try:
        result = run_job(engine, port, clock)
    finally:
        port.close()
    assert result.outcome == "ok", result
    rows = deliveries(engine)
    shipped = [d for d in rows if rows[d].state == "shipped"]
    assert sorted(shipped) == sorted(["D-1a", "D-2", *(["D-1b"] if rest else [])])
    assert rows["D-1a"].is_captured and rows["D-1a"].captured_at is not None
    assert not rows["D-2"].is_captured and rows["D-2"].is_shipped
    assert rows["D-3"].state == "rejected"
    assert "over-shipping" in (rows["D-3"].error or "") and f"order line {over['id']}" in (rows["D-3"].error or "")
    ships = sim_shipments(sim)
    by_ext = {s["externalId"]: s for per in ships.values() for s in per}
    assert set(by_ext) == set(shipped)
    for d in shipped:
        assert rows[d].shipment_id == by_ext[d]["id"] and rows[d].shipment_number == by_ext[d]["number"]
        assert by_ext[d]["isShipped"] and by_ext[d]["completions"] == 1
        assert by_ext[d]["trackingNumber"] == f"TRK-{d}"
    assert by_ext["D-1a"]["isCaptured"] and by_ext["D-1a"]["captures"] == 1
    assert by_ext["D-2"]["isPaid"] and not by_ext["D-2"]["isCaptured"]
    state = sim.state()["graphql"]["orders"]
    assert state["duplicateShipments"] == {} and state["doubleCaptures"] == []
    assert state["shipmentsWithoutExternalId"] == []
    # 4 mutations with a capture, 3 without; the rejected one sent nothing
    assert result.counts["mutations"] == 4 + 3 * (len(shipped) - 1)
    assert sim.generator.orders[o2]["status"] == "completed"  # SOAP sees the order shipped


def test_failed_capture_is_parked_never_completed_until_retried(engine: Engine, sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0)
    clock = sim.client_clock()
    (order,) = confirmed_orders(sim, 1)
    sim.set_capture_outcome(order, "failed")
    items = order_items(sim, order)
    write_delivery(engine, "D-F", order, [{"order_line_id": x["id"], "quantity": x["qty"]} for x in items],
                   capture=True)
    port = make_port(sim, clock)
    try:
        result = run_job(engine, port, clock)
        assert result.counts["capture_failed"] == 1
        d = deliveries(engine)["D-F"]
        assert d.state == "parked" and not d.is_captured and not d.is_shipped
        assert "declined" in (d.error or "")
        (ship,) = sim_shipments(sim)[order]
        assert not ship["isShipped"] and ship["completions"] == 0 and ship["externalId"] == "D-F"
        again = run_job(engine, port, clock)  # parked: nothing is sent again by itself
        assert again.counts.get("mutations", 0) == 0
        with Session(engine) as s, s.begin():
            item = s.exec(select(ParkedItem).where(col(ParkedItem.key) == "D-F")).scalars().one()  # type: ignore[call-overload]
            assert item.kind == "delivery" and item.resolved_at is None
            item.resolved_at, item.resolution = clock.now() + timedelta(seconds=1), "retried"  # erpsync parked retry
        sim.set_capture_outcome(order, "success")
        retried = run_job(engine, port, clock)
        assert retried.counts["requeued"] == 1 and retried.counts["shipped"] == 1
        d = deliveries(engine)["D-F"]
        assert d.state == "shipped" and d.is_captured
        (ship,) = sim_shipments(sim)[order]
        assert ship["captures"] == 1 and ship["completions"] == 1
    finally:
        port.close()


def test_pending_capture_waits_then_completes(engine: Engine, sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0, capture_outcome="pending", capture_pending_seconds=30)
    clock = sim.client_clock()
    (order,) = confirmed_orders(sim, 1)
    x = order_items(sim, order)[0]
    write_delivery(engine, "D-P", order, [{"order_line_id": x["id"], "quantity": 1}], capture=True)
    port = make_port(sim, clock)
    try:
        first = run_job(engine, port, clock)
        assert first.counts["capture_pending"] == 1
        assert deliveries(engine)["D-P"].state == "capture_pending"
        assert not sim_shipments(sim)[order][0]["isShipped"]
        clock.sleep(31)  # simulated seconds: the payment provider answers
        second = run_job(engine, port, clock)
        assert second.counts["shipped"] == 1 and second.counts["mutations"] == 1  # only the completion
        d = deliveries(engine)["D-P"]
        assert d.state == "shipped" and d.is_captured
    finally:
        port.close()


def test_unknown_outcomes_on_every_step_are_read_back_without_duplicates(engine: Engine,
                                                                          sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0)
    clock = sim.client_clock()
    orders = confirmed_orders(sim, 4)
    for i, order in enumerate(orders):
        x = order_items(sim, order)[0]
        write_delivery(engine, f"D-{i}", order, [{"order_line_id": x["id"], "quantity": x["qty"]}], capture=True)
    sim.set_fault("graphql", "apply_then_499", only="mutation", probability=0.3)
    sim.set_fault("graphql", "http", status=503, probability=0.1)
    sim.set_fault("graphql", "reset", probability=0.1)
    port = make_port(sim, clock)
    try:
        for _ in range(6):
            if all(d.state == "shipped" for d in deliveries(engine).values()):
                break
            run_job(engine, port, clock)
    finally:
        port.close()
    assert {d.state for d in deliveries(engine).values()} == {"shipped"}
    state = sim.state()["graphql"]["orders"]
    assert state["duplicateShipments"] == {} and state["doubleCaptures"] == [] and state["doubleCompletions"] == []
    assert state["shipmentsWithoutExternalId"] == []
    assert sum(len(v) for v in state["shipmentsByOrder"].values()) == 4
    assert sum(sim.faults.inspect()["fired"].values()) > 0


def test_cancellations_are_deltas_and_refused_when_too_many(engine: Engine, sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0)
    clock = sim.client_clock()
    (order,) = confirmed_orders(sim, 1)
    x = max(order_items(sim, order), key=lambda i: i["qty"])
    write_cancellation(engine, "C-1", order, 1, order_line_id=x["id"])
    write_cancellation(engine, "C-2", order, x["qty"] + 5, sku=x["sku"])
    sim.set_fault("graphql", "apply_then_499", only="mutation", count=1)
    port = make_port(sim, clock)
    try:
        result = run_job(engine, port, clock)
    finally:
        port.close()
    assert result.counts["cancelled"] == 1 and result.counts["rejected"] == 1
    with Session(engine) as s:
        rows = {c.cancellation_id: c for c in s.exec(select(ErpLineCancellation)).scalars()}  # type: ignore[call-overload]
    assert rows["C-1"].state == "done" and rows["C-1"].cancelled_before == 0 and rows["C-1"].cancelled_after == 1
    assert rows["C-2"].state == "rejected" and "cannot cancel" in (rows["C-2"].error or "")
    assert sim.state()["graphql"]["orders"]["cancelledLines"] == {str(x["id"]): 1}  # the 499 did not double it


def test_a_changed_rejected_row_is_checked_again(engine: Engine, sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise", time_scale=50.0)
    clock = sim.client_clock()
    (order,) = confirmed_orders(sim, 1)
    write_delivery(engine, "D-X", order, [{"sku": "NO-SUCH-SKU", "quantity": 1}])
    port = make_port(sim, clock)
    try:
        assert run_job(engine, port, clock).counts["rejected"] == 1
        assert "NO-SUCH-SKU" in (deliveries(engine)["D-X"].error or "")
        assert run_job(engine, port, clock).counts.get("rejected", 0) == 0  # unchanged: not re-read
        x = order_items(sim, order)[0]
        with engine.begin() as conn:  # the ERP fixes its row
            conn.execute(update(ErpDeliveryLine).where(col(ErpDeliveryLine.delivery_id) == "D-X")
                         .values(sku=x["sku"]))
        assert run_job(engine, port, clock, FulfilmentSettings(external_id_on_create=True)).counts["shipped"] == 1
        assert deliveries(engine)["D-X"].state == "shipped"
        assert sim_shipments(sim)[order][0]["externalId"] == "D-X"
    finally:
        port.close()
