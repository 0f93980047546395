"""zeep, loading erpsync's WSDL, against the simulator over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from erpsync.sim.server import SimServer

NS = "http://www.centra.com/webservices/"
BINDING = "{http://www.centra.com/webservices/}CentraBinding"
SAMPLES = Path(__file__).parents[2] / "unit" / "sim" / "soap_samples"


@pytest.fixture(scope="module")
def zeep_client(centra_wsdl_path: Path) -> zeep.Client:
    settings = zeep.Settings(strict=False, xml_huge_tree=True, forbid_external=True)
    return zeep.Client(wsdl=str(centra_wsdl_path), settings=settings)


def _service(client: zeep.Client, sim: SimServer) -> Any:
    return client.create_service(BINDING, sim.soap_url)


def _login(sim: SimServer) -> dict[str, str]:
    return {"username": sim.soap_user, "password": sim.soap_password}


def _ids(result: Any) -> list[int]:
    return [int(e.id) for e in (result.events.event if result.events else [])]


def _shape(el: Any) -> Any:
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return (el.tag, (el.text or "").strip())
    return (el.tag, [_shape(c) for c in children])


def _post(sim: SimServer, body: bytes, action: str) -> requests.Response:
    return requests.post(sim.soap_url, data=body, timeout=10, headers={
        "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{action}"'})


def test_response_is_structurally_identical_to_the_sample(sim_factory: Any) -> None:
    sim = sim_factory(first_event_id=4101, soap_user="erp-user", soap_password="s3cret")
    sample = etree.parse(str(SAMPLES / "events_Get.response.xml")).getroot()
    for event in sample.iterfind(f".//{{{NS}}}event"):
        data = event.find(f"{{{NS}}}data")
        assert data is not None
        children = list(data)
        sim.enqueue_event(event.findtext(f"{{{NS}}}type"), event.findtext(f"{{{NS}}}entry"),
                          mission=event.findtext(f"{{{NS}}}mission"), date=event.findtext(f"{{{NS}}}date"),
                          data_xml=etree.tostring(children[0]).decode() if children else None)
    reply = _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes(), "Events_Get")
    assert reply.status_code == 200
    assert reply.headers["X-Centra-Request-ID"]
    assert reply.headers["X-Correlation-ID"]
    assert _shape(etree.fromstring(reply.content)) == _shape(sample)

    done = _post(sim, (SAMPLES / "events_Done.request.xml").read_bytes(), "Events_Done")
    expected_done = etree.parse(str(SAMPLES / "events_Done.response.xml")).getroot()
    assert _shape(etree.fromstring(done.content)) == _shape(expected_done)
    empty = _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes(), "Events_Get")
    expected_empty = etree.parse(str(SAMPLES / "events_Get.empty.response.xml")).getroot()
    assert _shape(etree.fromstring(empty.content)) == _shape(expected_empty)


def test_zeep_drains_250_events_100_at_a_time_and_acks(zeep_client: zeep.Client, sim: SimServer) -> None:
    generated = [e.id for e in sim.generate(250)]
    assert generated == sorted(generated) and len(generated) == 250
    service = _service(zeep_client, sim)
    seen: list[int] = []
    sizes = []
    while True:
        ids = _ids(service.events_Get(login=_login(sim), type="all"))
        sizes.append(len(ids))
        if not ids:
            break
        assert ids == sorted(ids)
        seen.extend(ids)
        assert service.events_Done(login=_login(sim), event=[str(i) for i in ids]) == "OK"
    assert sizes == [100, 100, 50, 0]
    assert seen == generated
    state = sim.state()["soap"]
    assert state["queue_depth"] == 0
    assert state["acked_count"] == 250


def test_unacked_events_are_redelivered_and_unknown_ids_ignored(zeep_client: zeep.Client, sim: SimServer) -> None:
    sim.generate(5)
    service = _service(zeep_client, sim)
    first = _ids(service.events_Get(login=_login(sim), type="all"))
    assert _ids(service.events_Get(login=_login(sim), type="all")) == first  # never expire, same order
    assert service.events_Done(login=_login(sim), event=[str(first[0]), "999999", "not-a-number"]) == "OK"
    assert service.events_Done(login=_login(sim), event=[str(first[0])]) == "OK"  # already acked: ignored
    assert _ids(service.events_Get(login=_login(sim), type="all")) == first[1:]


def test_type_filter_and_by_markets(zeep_client: zeep.Client, sim: SimServer) -> None:
    sim.enqueue_event("order", "1", data={"id": "1", "market": {"id": "Retail-SE"}})
    sim.enqueue_event("customer", "2", data={"id": "2"})
    sim.enqueue_event("order", "3", data={"id": "3", "market": {"id": "Retail-DE"}})
    sim.enqueue_event("paymentterm", "NET30", mission="delete")
    service = _service(zeep_client, sim)
    orders = service.events_Get(login=_login(sim), type="order")
    assert [e.entry for e in orders.events.event] == ["1", "3"]
    customers = service.events_Get(login=_login(sim), type="customer")
    assert [e.entry for e in customers.events.event] == ["2"]
    terms = service.events_Get(login=_login(sim), type="paymentterm")
    (delete,) = terms.events.event
    assert delete.mission == "delete" and not delete.data
    de = service.events_GetByMarkets(login=_login(sim), type="all", markets={"market": [{"id": "Retail-DE"}]})
    assert [e.entry for e in de.events.event] == ["3"]
    with pytest.raises(zeep.exceptions.Fault, match="Unknown event type"):
        service.events_Get(login=_login(sim), type="bogus")


def test_bad_login_is_a_soap_fault_with_http_500(zeep_client: zeep.Client, sim: SimServer) -> None:
    sim.generate(3)
    service = _service(zeep_client, sim)
    for op, kwargs in (("events_Get", {"type": "all"}), ("events_Done", {"event": ["1000"]})):
        with pytest.raises(zeep.exceptions.Fault) as info:
            getattr(service, op)(login={"username": sim.soap_user, "password": "wrong"}, **kwargs)
        assert info.value.message == "Login failed"
    body = (SAMPLES / "events_Get.request.xml").read_bytes().replace(b"s3cret", b"nope")
    reply = _post(sim, body, "Events_Get")
    assert reply.status_code == 500
    assert b"Login failed" in reply.content
    assert reply.headers["X-Centra-Request-ID"]
    assert sim.state()["soap"]["queue_depth"] == 3  # nothing acked by a failed call


def test_order_changes_emit_the_full_current_object(zeep_client: zeep.Client, sim: SimServer) -> None:
    order_event = sim.generator.new_order()
    number = order_event.entry
    for _ in range(4):  # pending → confirmed|cancelled → processing → completed (shipment) → refund
        if sim.generator.orders[number]["status"] in ("cancelled", "refunded"):
            break
        sim.generator.advance_order(number)
    service = _service(zeep_client, sim)
    result = service.events_Get(login=_login(sim), type="order")
    events = [e for e in result.events.event if e.entry == number]
    assert len(events) >= 2
    statuses = []
    for event in events:
        (order,) = event.data._value_1
        # every event carries the complete object, not a diff
        assert order.findtext(f"{{{NS}}}ordertotal")
        assert order.find("{*}products/{*}product/{*}sizes/{*}size/{*}warehouseitems/{*}warehouse") is not None
        assert order.find(f"{{{NS}}}shippingaddress/{{{NS}}}city") is not None
        statuses.append(order.findtext(f"{{{NS}}}status"))
    assert statuses[0] == "pending"
    assert len(set(statuses)) >= 2


def test_orders_update_partial_upsert(zeep_client: zeep.Client, sim: SimServer) -> None:
    number = sim.generator.new_order().entry
    service = _service(zeep_client, sim)
    depth = sim.queue.depth
    order = etree.fromstring(f'<o xmlns="{NS}"><id>{number}</id><locked>yes</locked></o>')
    result = service.orders_Update(login=_login(sim), orders={"order": [{"_value_1": list(order)}]})
    assert result.success == "true"
    assert sim.generator.orders[number]["locked"] == "yes"
    assert sim.generator.orders[number]["status"] == "pending"  # untouched fields stay
    assert sim.queue.depth == depth + 1  # the change emitted an order event

    unknown = etree.fromstring(f'<o xmlns="{NS}"><id>no-such</id><locked>yes</locked></o>')
    known = etree.fromstring(f'<o xmlns="{NS}"><id>{number}</id><locked>no</locked></o>')  # lxml moves nodes
    result = service.orders_Update(login=_login(sim), orders={"order": [{"_value_1": list(known)},
                                                                         {"_value_1": list(unknown)}]})
    assert result.success == "false"
    assert result.errors.message == ["Unknown order: no-such"]
    assert sim.queue.depth == depth + 1  # all-or-nothing
    assert sim.generator.orders[number]["locked"] == "yes"


def test_wsdl_is_served_with_this_servers_address(zeep_client: zeep.Client, sim: SimServer) -> None:
    reply = requests.get(sim.wsdl_url, timeout=10)
    assert reply.status_code == 200
    assert sim.soap_url.encode() in reply.content
    remote = zeep.Client(wsdl=sim.wsdl_url, settings=zeep.Settings(strict=False))
    sim.generate(2)
    assert len(_ids(remote.service.events_Get(login=_login(sim), type="all"))) == 2


def _paths(el: Any, prefix: str = "") -> set[str]:
    out = set()
    for child in el:
        if isinstance(child.tag, str):
            path = f"{prefix}/{etree.QName(child).localname}"
            out.add(path)
            out |= _paths(child, path)
    return out


def test_generated_objects_have_every_element_of_the_sample_objects(sim: SimServer) -> None:
    sample = etree.parse(str(SAMPLES / "events_Get.response.xml")).getroot()
    sim.generate(200)
    reply = _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes().replace(b"s3cret", sim.soap_password.encode())
                  .replace(b"erp-user", sim.soap_user.encode()), "Events_Get")
    generated = etree.fromstring(reply.content)
    for kind in ("order", "customer"):
        (sample_obj,) = sample.iterfind(f".//{{{NS}}}data/{{{NS}}}{kind}")
        produced: set[str] = set()
        for obj in generated.iterfind(f".//{{{NS}}}data/{{{NS}}}{kind}"):
            produced |= _paths(obj)
        missing = _paths(sample_obj) - produced
        assert not missing, f"{kind}: generated objects lack {sorted(missing)}"
    event_paths = _paths(next(sample.iterfind(f".//{{{NS}}}event")))
    for event in generated.iterfind(f".//{{{NS}}}event"):
        assert {p for p in event_paths if p.count("/") == 1} <= _paths(event)
