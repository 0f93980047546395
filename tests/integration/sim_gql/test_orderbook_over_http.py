"""Over real HTTP: an order generated for the SOAP queue is shipped over GraphQL with the same number and
line ids; /_sim/state shows shipments per order; per-order capture outcomes switch over /_sim/."""

from __future__ import annotations

from typing import Any

import requests

from tests.fixtures.sim import SimFactory

P = "userErrors { message path } userWarnings { message path }"


def _gql(sim: Any, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(sim.graphql_url, json={"query": query, "variables": variables},
                      headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    return dict(body["data"])


def test_soap_order_shipped_over_graphql_with_failed_capture_switch(sim_factory: SimFactory) -> None:
    sim = sim_factory(tier="enterprise")
    number = ""
    while not number:
        candidate = sim.generator.new_order().entry
        sim.generator.advance_order(candidate)
        if sim.generator.orders[candidate]["status"] == "confirmed":
            number = candidate
    size = sim.generator.orders[number]["products"]["product"][0]["sizes"]["size"][0]
    line_id = int(size["orderitem"]["id"])
    order = _gql(sim, "query($n: [Int!]) { orders(where: {number: $n}, limit: 1) { number lines { id } } }",
                 {"n": [int(number)]})["orders"][0]
    assert line_id in [x["id"] for x in order["lines"]]
    r = requests.post(f"{sim.base_url}/_sim/orders/{number}/capture", json={"outcome": "failed"}, timeout=10)
    assert r.status_code == 200
    create = f"mutation($i: ShipmentCreateInput!) {{ createShipment(input: $i) {{ shipment {{ id }} {P} }} }}"
    made = _gql(sim, create,
                {"i": {"order": {"number": int(number)}, "externalId": "D-1",
                       "lines": [{"orderLine": {"id": line_id}, "quantity": int(size["qty"])}]}})["createShipment"]
    assert made["userErrors"] == []
    cap = _gql(sim, f"""mutation {{ captureShipment(externalId: "D-1") {{ shipment {{ isCaptured }}
        paymentHistoryEntry {{ status }} {P} }} }}""", {})["captureShipment"]
    assert cap["paymentHistoryEntry"]["status"] == "FAILED" and cap["shipment"]["isCaptured"] is False
    state = requests.get(f"{sim.base_url}/_sim/state", timeout=10).json()["graphql"]["orders"]
    assert [s["externalId"] for s in state["shipmentsByOrder"][number]] == ["D-1"]
    assert state["duplicateShipments"] == {} and state["shipmentsWithoutExternalId"] == []
    assert state["capture"]["per_order"] == {number: "failed"}
