"""The event generator (realistic, consistent money, reproducible) and the queue (no I/O)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from erpsync.clock import FakeClock
from erpsync.sim.events import NS, EventQueue, payload_to_xml, xml_to_payload
from erpsync.sim.generator import EventGenerator, parse_store_date
from erpsync.sim.soap import SoapEndpoint


def _gen(seed: int = 1) -> tuple[EventQueue, EventGenerator, FakeClock]:
    clock = FakeClock()
    queue = EventQueue()
    return queue, EventGenerator(queue, clock, seed=seed), clock


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_generate_emits_exactly_n_events_with_ascending_ids() -> None:
    queue, gen, _ = _gen()
    for n in (1, 2, 7, 100):
        events = gen.generate(n)
        assert len(events) == n
    ids = [e.id for e in queue.fetch(limit=10_000)]
    assert ids == sorted(ids) == list(range(1000, 1000 + 110))


def test_mix_of_types_missions_and_both_date_formats() -> None:
    queue, gen, clock = _gen(seed=2)
    for _ in range(20):
        gen.generate(25)
        clock.advance(37)
    events = queue.fetch(limit=10_000)
    types = Counter(e.type for e in events)
    assert types["order"] > types["customer"] > 0
    assert {"account", "invoice"} <= set(types)
    assert len(set(types) - {"order", "customer", "account", "invoice"}) >= 3  # a few other types
    deletes = [e for e in events if e.mission == "delete"]
    assert deletes and all(e.data is None for e in deletes)
    formats = {("T" in e.date) for e in events}
    assert formats == {True, False}
    for e in events:
        parsed = parse_store_date(e.date)
        assert parsed.tzinfo is not None
        assert abs(parsed.timestamp() - clock.time()) < 20 * 37 + 1


def test_order_money_adds_up_as_decimal_strings() -> None:
    queue, gen, _ = _gen(seed=3)
    gen.generate(300)
    orders = [e.data for e in queue.fetch(type_="order", limit=10_000)]
    assert len(orders) > 50
    multi_line = 0
    for order in orders:
        assert order is not None
        lines = _as_list(order["products"]["product"])
        multi_line += len(lines) > 1
        total = Decimal(0)
        for line in lines:
            price, qty, discount = Decimal(line["price"]), Decimal(line["qty"]), Decimal(line["discount"])
            assert Decimal(line["subtotal"]) == price * qty - discount
            assert line["price"].count(".") == 1 and len(line["price"].split(".")[1]) == 2
            sizes = _as_list(line["sizes"]["size"])
            assert sum(int(s["qty"]) for s in sizes) == int(line["qty"])
            for size in sizes:
                assert size["sku"].startswith(line["sku"])
                if line.get("bundleinfo", {}).get("isbundle") == "yes":
                    assert not size["warehouseitems"]  # a bundle's virtual line is never picked
                    continue
                (wh,) = _as_list(size["warehouseitems"]["warehouse"])
                assert wh["qty"] == size["qty"]
            total += Decimal(line["subtotal"])
        total += Decimal(order["shipping"]["subtotal"])
        assert Decimal(order["ordertotal"]) == total
        assert order["payments"]["payment"][0]["value"] == order["ordertotal"]
        assert order["shippingaddress"]["country"] in ("SE", "DE", "US")
        assert order["currency"] in ("SEK", "EUR", "USD")
        assert [a["key"] for a in order["additionals"]["additional"]] == ["language", "checkout"]
    assert multi_line > 10


def test_order_lifecycle_reemits_the_full_object() -> None:
    queue, gen, _ = _gen(seed=4)
    while True:  # 10 % of orders get cancelled at the first step: take one that is confirmed
        number = gen.new_order().entry
        gen.advance_order(number)
        if gen.orders[number]["status"] == "confirmed":
            break
    for _ in range(3):  # processing, completed (shipment + capture), refund
        gen.advance_order(number)
    history = [e.data for e in queue.fetch(type_="order", limit=10_000) if e.entry == number]
    statuses = [h["status"] for h in history if h is not None]
    assert statuses[:4] == ["pending", "confirmed", "processing", "completed"]
    assert len(history) == 5
    shipped = history[3]
    assert shipped is not None and shipped["shipments"]["shipment"][0]["shipped"] == "yes"
    assert [p["type"] for p in shipped["payments"]["payment"]] == ["auth", "capture"]
    refunded = history[4]
    assert refunded is not None and refunded["payments"]["payment"][-1]["type"] == "refund"
    assert Decimal(refunded["payments"]["payment"][-1]["value"]) < 0
    for h in history:  # every event is the complete object
        assert h is not None and {"ordertotal", "products", "shippingaddress", "payments"} <= set(h)
    # an earlier event keeps the object as it was then
    assert history[0] is not None and "shipments" not in history[0]


def test_same_seed_same_events() -> None:
    a, gen_a, _ = _gen(seed=11)
    b, gen_b, _ = _gen(seed=11)
    gen_a.generate(80)
    gen_b.generate(80)
    assert a.fetch(limit=1000) == b.fetch(limit=1000)


def test_orders_update_is_all_or_nothing() -> None:
    queue, gen, _ = _gen()
    number = gen.new_order().entry
    depth = queue.depth
    errors, _ = gen.update_orders([{"id": number, "locked": "yes"}, {"id": "nope"}])
    assert errors == ["Unknown order: nope"]
    assert gen.orders[number]["locked"] == "no" and queue.depth == depth
    errors, notices = gen.update_orders([{"id": number, "locked": "yes", "shippingaddress": {"city": "Lund"}}])
    assert not errors and notices
    assert gen.orders[number]["locked"] == "yes"
    assert gen.orders[number]["shippingaddress"]["city"] == "Lund"
    assert gen.orders[number]["shippingaddress"]["country"]  # nested merge keeps other fields


def test_payload_xml_round_trip() -> None:
    payload = {"id": "1", "sizes": {"size": [{"id": "S", "qty": "1"}, {"id": "M", "qty": "2"}]},
               "customer": {"id": "8", "description": "Åsa Öberg"}, "empty": ""}
    root = etree.Element(f"{{{NS}}}data")
    payload_to_xml(root, "order", payload)
    (order,) = root
    assert xml_to_payload(order) == payload


def test_queue_limit_filter_and_done() -> None:
    queue = EventQueue(first_id=1)
    for i in range(150):
        queue.enqueue("order" if i % 2 else "customer", str(i), date="2026-11-20 09:14:03",
                      data={"id": str(i), "market": {"id": "Retail-SE" if i % 3 else "Retail-DE"}})
    assert len(queue.fetch()) == 100
    orders = queue.fetch("order")
    assert all(e.type == "order" for e in orders) and len(orders) == 75
    de = queue.fetch("all", markets=["Retail-DE"])
    assert all(e.data is not None and e.data["market"]["id"] == "Retail-DE" for e in de)
    assert queue.done(["1", "2", "2", "999", "x"]) == 2
    assert queue.fetch()[0].id == 3
    assert queue.inspect()["acked_count"] == 2
    with pytest.raises(ValueError):
        queue.enqueue("order", "1", date="d", mission="create")


def test_soap_endpoint_rejects_hostile_xml() -> None:
    queue, gen, _ = _gen()
    endpoint = SoapEndpoint(queue, gen, "u", "p")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<x>&b;</x>')
    reply = endpoint.handle(bomb)
    assert reply.status == 500 and b"Fault" in reply.body
    assert endpoint.handle(b"not xml").status == 500


def test_some_lines_are_bundles_whose_virtual_line_is_never_picked() -> None:
    _, gen, _ = _gen(seed=3)
    gen.generate(300)
    for number in list(gen.orders):
        for _ in range(3):  # confirmed, processing, completed (shipped)
            if gen.orders[number]["status"] not in ("cancelled", "completed", "refunded"):
                gen.advance_order(number)
    bundles = 0
    for order in gen.orders.values():
        lines = _as_list(order["products"]["product"])
        shipped = {p["sku"] for s in _as_list(order.get("shipments", {}).get("shipment", []))
                   for p in _as_list(s["products"]["product"])}
        for i, line in enumerate(lines):
            if line.get("bundleinfo", {}).get("isbundle") != "yes":
                continue
            bundles += 1
            component = lines[i + 1]
            assert component["bundleinfo"]["partof"]["product"]["id"] == line["id"]
            assert component["price"] == "0.00" and component["qty"] == line["qty"]
            if order["status"] == "completed":
                assert not {s["sku"] for s in _as_list(line["sizes"]["size"])} & shipped
                assert {s["sku"] for s in _as_list(component["sizes"]["size"])} <= shipped
    assert bundles > 3


def test_wholesale_orders_carry_account_buyer_and_terms() -> None:
    _, gen, _ = _gen(seed=3)
    gen.generate(400)
    wholesale = [o for o in gen.orders.values() if o["type"] == "wholesale"]
    assert wholesale and len(wholesale) < len(gen.orders)
    for order in wholesale:
        assert order["account"]["id"] in gen.accounts
        assert order["store"] == "2" and order["buyer"]["id"] == order["customer"]["id"]
        assert order["paymentterms"] and order["shippingterms"]
