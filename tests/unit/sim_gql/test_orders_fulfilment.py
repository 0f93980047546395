"""The simulator's one order book over GraphQL: orders generated for the SOAP queue read with the same
number and line ids, shipments created / captured / completed, over-shipping, cancellations,
capture outcomes, and the order event every change emits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.clock import FakeClock
from erpsync.sim.events import EventQueue
from erpsync.sim.generator import EventGenerator
from erpsync.sim.gql import GqlOptions, GraphqlApp
from erpsync.sim.orderbook import OrderBook
from tests.unit.sim_gql.conftest import PAYLOAD, Caller

ORDER = """query($n: [Int!]) { orders(where: {number: $n}, limit: 10) {
  __typename id number status grandTotal { value currency { code } }
  lines(includeFullyCancelled: true) { id quantity cancelledQuantity productSize { SKU EAN }
    unitPrice { value currency { code } } }
  shipments { id number externalId: number isCaptured isShipped lines { quantity orderLine { id } } }
  ... on DirectToConsumerOrder { customer { id email } }
} }"""
CREATE = f"""mutation($i: ShipmentCreateInput!) {{ createShipment(input: $i) {{
  shipment {{ id number isGoodToGo isPaid isCaptured isShipped lines {{ id quantity orderLine {{ id }} }} }}
  {PAYLOAD} }} }}"""
UPDATE = f"""mutation($id: Int!, $i: ShipmentUpdateInput!) {{ updateShipment(id: $id, input: $i) {{
  shipment {{ id }} {PAYLOAD} }} }}"""
CAPTURE = f"""mutation($ext: String!) {{ captureShipment(externalId: $ext) {{
  shipment {{ id isCaptured isPaid }} paymentHistoryEntry {{ status entryType }} {PAYLOAD} }} }}"""
COMPLETE = f"""mutation($id: Int!, $i: ShipmentCompleteInput) {{ completeShipment(id: $id, input: $i) {{
  shipment {{ id isShipped shippedAt trackingNumber }} {PAYLOAD} }} }}"""
CANCEL = f"""mutation($n: Int!, $i: DirectToConsumerOrderUpdateInput!) {{
  updateDirectToConsumerOrder(order: {{number: $n}}, input: $i) {{
    order {{ lines(includeFullyCancelled: true) {{ id quantity cancelledQuantity }} }} {PAYLOAD} }} }}"""
BY_EXTERNAL = "query($e: String!) { shipment(externalId: $e) { id number isShipped lines { quantity } } }"


@pytest.fixture
def world(clock: FakeClock) -> tuple[Caller, EventGenerator, GraphqlApp]:
    queue = EventQueue()
    generator = EventGenerator(queue, clock, seed=3)
    app = GraphqlApp(GqlOptions(tier="enterprise"), clock, orders=OrderBook(generator, clock))
    return Caller(app), generator, app


def confirmed_order(generator: EventGenerator) -> str:
    """A generated retail order advanced to confirmed (as its SOAP events show it)."""
    while True:
        number = generator.new_order().entry
        if generator.orders[number]["type"] == "retail":
            generator.advance_order(number)
            if generator.orders[number]["status"] == "confirmed":
                return number


def soap_items(order: dict[str, Any]) -> list[tuple[int, str, int]]:
    out = []
    for product in order["products"]["product"]:
        for size in product["sizes"]["size"]:
            out.append((int(size["orderitem"]["id"]), size["sku"], int(size["qty"])))
    return out


def test_an_order_generated_for_the_soap_queue_reads_the_same_over_graphql(world: Any) -> None:
    gql, generator, _app = world
    number = confirmed_order(generator)
    soap = generator.orders[number]
    order = gql.ok(ORDER, {"n": [int(number)]})["orders"][0]
    assert order["number"] == int(number)
    assert order["status"] == "CONFIRMED"
    assert order["__typename"] == "DirectToConsumerOrder"
    assert order["customer"]["id"] == int(soap["customer"]["id"])
    assert Decimal(str(order["grandTotal"]["value"])) == Decimal(soap["ordertotal"])
    assert order["grandTotal"]["currency"]["code"] == soap["currency"]
    lines = [(x["id"], x["productSize"]["SKU"], x["quantity"]) for x in order["lines"]]
    assert lines == soap_items(soap)  # line ids = SOAP orderitem ids, same SKUs and quantities
    assert all(len(x["productSize"]["EAN"]) == 13 for x in order["lines"])
    assert order["shipments"] == []


def test_ship_capture_complete_and_the_order_event_each_step_emits(world: Any) -> None:
    gql, generator, app = world
    number = confirmed_order(generator)
    line_id, sku, qty = soap_items(generator.orders[number])[0]
    before = generator.queue.inspect()["emitted_by_type"]["order"]
    heard: list[tuple[str, str]] = []
    app.orders.on_change(lambda n, change: heard.append((n, change)))
    created = gql.mutate("createShipment", CREATE, {"i": {
        "order": {"number": int(number)}, "lines": [{"orderLine": {"id": line_id}, "quantity": qty}],
        "isGoodToGo": True, "sendEmail": False}})
    assert created["userErrors"] == []
    ship = created["shipment"]
    assert ship["number"] == f"{number}-1"
    assert ship["lines"][0]["orderLine"]["id"] == line_id
    assert (ship["isCaptured"], ship["isShipped"]) == (False, False)
    assert gql.mutate("updateShipment", UPDATE, {"id": ship["id"], "i": {"externalId": "DEL-1"}})["userErrors"] == []
    captured = gql.mutate("captureShipment", CAPTURE, {"ext": "DEL-1"})
    assert captured["paymentHistoryEntry"] == {"status": "SUCCESS", "entryType": "CAPTURE"}
    assert captured["shipment"]["isCaptured"] is True
    again = gql.mutate("captureShipment", CAPTURE, {"ext": "DEL-1"})
    assert again["userErrors"] and "already captured" in again["userErrors"][0]["message"]
    done = gql.mutate("completeShipment", COMPLETE, {"id": ship["id"], "i": {
        "shipmentInfo": {"carrier": "DHL", "trackingNumber": "TRK1"}}})
    assert done["userErrors"] == [] and done["shipment"]["isShipped"] is True
    assert done["shipment"]["trackingNumber"] == "TRK1"
    second = gql.mutate("completeShipment", COMPLETE, {"id": ship["id"]})
    assert second["userErrors"] and second["shipment"] is None
    assert gql.ok(BY_EXTERNAL, {"e": "DEL-1"})["shipment"]["isShipped"] is True
    # SOAP sees the shipment too: each applied step emitted the order's full current object
    assert generator.queue.inspect()["emitted_by_type"]["order"] == before + 4
    assert heard == [(number, "SHIPMENT_CREATED"), (number, "SHIPMENT_UPDATED"), (number, "SHIPMENT_UPDATED"),
                     (number, "SHIPMENT_COMPLETED")]
    soap_ship = generator.orders[number]["shipments"]["shipment"][0]
    assert soap_ship["shipped"] == "yes" and soap_ship["tracking"] == "TRK1"
    assert soap_ship["products"]["product"] == [{"sku": sku, "qty": str(qty)}]
    state = app.inspect()["orders"]
    assert state["duplicateShipments"] == {} and state["doubleCaptures"] == []
    assert state["shipmentsByOrder"][number][0]["externalId"] == "DEL-1"


def test_over_shipping_and_unknown_lines_are_refused_and_change_nothing(world: Any) -> None:
    gql, generator, app = world
    number = confirmed_order(generator)
    line_id, _sku, qty = soap_items(generator.orders[number])[0]
    over = gql.mutate("createShipment", CREATE, {"i": {
        "order": {"number": int(number)}, "lines": [{"orderLine": {"id": line_id}, "quantity": qty + 1}]}})
    assert over["shipment"] is None
    assert "exceeds the unshipped quantity" in over["userErrors"][0]["message"]
    unknown = gql.mutate("createShipment", CREATE, {"i": {
        "order": {"number": int(number)}, "lines": [{"orderLine": {"id": 1}, "quantity": 1}]}})
    assert "not found" in unknown["userErrors"][0]["message"]
    assert app.inspect()["orders"]["shipments"] == 0


def test_cancellations_are_deltas_read_back_as_cancelled_quantity(world: Any) -> None:
    gql, generator, _app = world
    number = confirmed_order(generator)
    items = soap_items(generator.orders[number])
    line_id, _sku, qty = items[0]
    policy = {"releaseItemsBackToWarehouse": True}
    out = gql.mutate("updateDirectToConsumerOrder", CANCEL, {"n": int(number), "i": {
        "cancelLines": [{"line": {"id": line_id}, "quantity": 1, "stockActionPolicy": policy}]}})
    assert out["userErrors"] == []
    line = next(x for x in out["order"]["lines"] if x["id"] == line_id)
    assert (line["quantity"], line["cancelledQuantity"]) == (qty - 1, 1)
    too_many = gql.mutate("updateDirectToConsumerOrder", CANCEL, {"n": int(number), "i": {
        "cancelLines": [{"line": {"id": line_id}, "quantity": qty, "stockActionPolicy": policy}]}})
    assert too_many["userErrors"] and too_many["order"] is None
    two_policies = gql.mutate("updateDirectToConsumerOrder", CANCEL, {"n": int(number), "i": {
        "cancelLines": [{"line": {"id": line_id}, "quantity": 1,
                         "stockActionPolicy": {**policy, "removeItemsFromStock": True}}]}})
    assert two_policies["userErrors"]


def test_capture_outcomes_failed_and_pending(clock: FakeClock) -> None:
    generator = EventGenerator(EventQueue(), clock, seed=5)
    app = GraphqlApp(GqlOptions(tier="enterprise", capture_outcome="pending", capture_pending_seconds=30),
                     clock, orders=OrderBook(generator, clock))
    gql = Caller(app)
    pending_order, failing_order = confirmed_order(generator), confirmed_order(generator)
    app.orders.capture.per_order[failing_order] = "failed"
    ids = {}
    for number, ext in ((pending_order, "P"), (failing_order, "F")):
        line_id, _sku, qty = soap_items(generator.orders[number])[0]
        made = gql.mutate("createShipment", CREATE, {"i": {
            "order": {"number": int(number)}, "lines": [{"orderLine": {"id": line_id}, "quantity": qty}]}})
        ids[ext] = made["shipment"]["id"]
        gql.mutate("updateShipment", UPDATE, {"id": made["shipment"]["id"], "i": {"externalId": ext}})
    failed = gql.mutate("captureShipment", CAPTURE, {"ext": "F"})
    assert failed["paymentHistoryEntry"]["status"] == "FAILED"
    assert failed["userErrors"] and failed["shipment"]["isCaptured"] is False
    pending = gql.mutate("captureShipment", CAPTURE, {"ext": "P"})
    assert pending["paymentHistoryEntry"]["status"] == "PENDING" and pending["shipment"]["isCaptured"] is False
    clock.advance(31)
    settled = gql.ok("query($e: String!) { shipment(externalId: $e) { isCaptured isPaid } }", {"e": "P"})
    assert settled["shipment"] == {"isCaptured": True, "isPaid": True}
    assert app.inspect()["orders"]["doubleCaptures"] == []


def test_a_shipment_centra_made_itself_is_listed_on_the_order(world: Any) -> None:
    gql, generator, _app = world
    number = confirmed_order(generator)
    generator.advance_order(number)  # processing
    generator.advance_order(number)  # Centra ships it ("Direct to Shipment")
    order = gql.ok(ORDER, {"n": [int(number)]})["orders"][0]
    assert order["status"] == "SHIPPED"
    assert len(order["shipments"]) == 1 and order["shipments"][0]["isShipped"] is True
    shipped = sorted((x["orderLine"]["id"], x["quantity"]) for x in order["shipments"][0]["lines"])
    assert shipped == sorted((lid, q) for lid, _s, q in soap_items(generator.orders[number]))


def test_the_order_book_survives_a_snapshot(world: Any, clock: FakeClock) -> None:
    gql, generator, app = world
    number = confirmed_order(generator)
    line_id, _sku, qty = soap_items(generator.orders[number])[0]
    gql.mutate("createShipment", CREATE, {"i": {
        "order": {"number": int(number)}, "lines": [{"orderLine": {"id": line_id}, "quantity": qty}],
        "externalId": "D-9"}})
    snap = app.snapshot()
    app.reset()
    assert gql.ok(BY_EXTERNAL, {"e": "D-9"})["shipment"] is None
    app.restore(snap)
    assert gql.ok(BY_EXTERNAL, {"e": "D-9"})["shipment"]["number"] == f"{number}-1"
