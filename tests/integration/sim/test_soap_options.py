"""SOAP contract details and the [open] SOAP behaviours as simulator options, over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from erpsync.sim.server import SimServer

NS = "http://www.centra.com/webservices/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING = "{http://www.centra.com/webservices/}CentraBinding"
SAMPLES = Path(__file__).parents[2] / "unit" / "sim" / "soap_samples"


def _post(sim: SimServer, body: bytes, action: str | None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = action
    return requests.post(sim.soap_url, data=body, timeout=10, headers=headers)


def _fault(reply: requests.Response) -> str:
    assert reply.status_code == 500
    root = etree.fromstring(reply.content)
    return str(root.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultstring"))


def _order_update(sim: SimServer, order_id: str) -> bytes:
    return (f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:ns1="{NS}"><SOAP-ENV:Body><ns1:orders_Update>'
            f"<ns1:login><ns1:username>{sim.soap_user}</ns1:username><ns1:password>{sim.soap_password}"
            f"</ns1:password></ns1:login><ns1:orders><ns1:order><ns1:id>{order_id}</ns1:id>"
            "<ns1:locked>yes</ns1:locked></ns1:order></ns1:orders></ns1:orders_Update></SOAP-ENV:Body>"
            "</SOAP-ENV:Envelope>").encode()


@pytest.mark.parametrize("action", [None, "", f'"{NS}events_Get"', f'"{NS}Events_Done"', "Events_Get"])
def test_wrong_or_missing_soapaction_is_a_client_fault(sim: SimServer, action: str | None) -> None:
    sim.generate(2)
    reply = _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes(), action)
    assert "SOAPAction" in _fault(reply)
    assert b"SOAP-ENV:Client" in reply.content


@pytest.mark.parametrize("action", [f'"{NS}Events_Get"', f"{NS}Events_Get"])
def test_documented_soapaction_with_or_without_quotes(sim: SimServer, action: str) -> None:
    sim.generate(2)
    assert _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes(), action).status_code == 200


def test_soapaction_check_can_be_switched_off(sim_factory: Any) -> None:
    sim = sim_factory(soap_action_check=False)
    assert _post(sim, (SAMPLES / "events_Get.request.xml").read_bytes(), None).status_code == 200


def test_events_get_response_wrapper_is_not_a_request(sim: SimServer) -> None:
    body = (SAMPLES / "events_Get.request.xml").read_bytes().replace(b"events_GetRequest", b"events_Get")
    assert "Unknown operation" in _fault(_post(sim, body, f'"{NS}Events_Get"'))


def test_unknown_ack_policy_fault_acks_nothing(sim_factory: Any, centra_wsdl_path: Path) -> None:
    sim = sim_factory(unknown_ack="fault")
    ids = [str(e.id) for e in sim.generate(3)]
    client = zeep.Client(wsdl=str(centra_wsdl_path), settings=zeep.Settings(strict=False, forbid_external=True))
    service = client.create_service(BINDING, sim.soap_url)
    login = {"username": sim.soap_user, "password": sim.soap_password}
    with pytest.raises(zeep.exceptions.Fault, match="Unknown event id"):
        service.events_Done(login=login, event=[ids[0], "999999"])
    assert sim.queue.depth == 3
    assert service.events_Done(login=login, event=ids[:2]) == "OK"
    with pytest.raises(zeep.exceptions.Fault, match=ids[0]):  # already acked
        service.events_Done(login=login, event=[ids[0]])
    assert sim.queue.depth == 1


def test_unknown_ack_policy_ignore_is_the_default(sim: SimServer) -> None:
    ids = [e.id for e in sim.generate(2)]
    body = (SAMPLES / "events_Done.request.xml").read_bytes()
    for i, old in enumerate((b"4101", b"4102")):
        body = body.replace(old, str(ids[i]).encode())
    reply = _post(sim, body, f'"{NS}Events_Done"')
    assert reply.status_code == 200 and b"<eventsDoneResponse>OK</eventsDoneResponse>" in reply.content
    assert sim.queue.depth == 0


def test_update_response_ok_shape(sim_factory: Any) -> None:
    sim = sim_factory(update_response="ok")
    order = sim.generator.new_order()
    reply = _post(sim, _order_update(sim, order.entry), f'"{NS}Orders_Update"')
    assert reply.status_code == 200
    body = etree.fromstring(reply.content).find(f"{{{SOAP_ENV}}}Body")
    assert body is not None
    assert [(c.tag, c.text) for c in body] == [("ordersUpdateResponse", "OK")]
    assert sim.generator.orders[order.entry]["locked"] == "yes"
    assert "Unknown order" in _fault(_post(sim, _order_update(sim, "nope"), f'"{NS}Orders_Update"'))


def test_update_response_result_shape_by_default(sim: SimServer) -> None:
    order = sim.generator.new_order()
    reply = _post(sim, _order_update(sim, order.entry), f'"{NS}Orders_Update"')
    result = etree.fromstring(reply.content).find(f"{{{SOAP_ENV}}}Body/{{{NS}}}result")
    assert result is not None and result.findtext(f"{{{NS}}}success") == "true"
    assert [etree.QName(c).localname for c in result] == ["success", "errors", "notices"]


def test_bad_option_values_are_rejected(sim_factory: Any) -> None:
    with pytest.raises(ValueError, match="unknown_ack"):
        sim_factory(unknown_ack="explode")
    with pytest.raises(ValueError, match="update_response"):
        sim_factory(update_response="xml")


def _update(sim: SimServer, operation: str, plural: str, item: str, fields: str) -> bytes:
    return (f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:ns1="{NS}"><SOAP-ENV:Body><ns1:{operation}>'
            f"<ns1:login><ns1:username>{sim.soap_user}</ns1:username><ns1:password>{sim.soap_password}"
            f"</ns1:password></ns1:login><ns1:{plural}><ns1:{item}>{fields}</ns1:{item}></ns1:{plural}>"
            f"</ns1:{operation}></SOAP-ENV:Body></SOAP-ENV:Envelope>").encode()


@pytest.mark.parametrize(("operation", "plural", "item", "event_type"), [
    ("accounts_Update", "accounts", "account", "account"),
    ("customers_Update", "customers", "customer", "customer"),
    ("deliverywindows_Update", "deliverywindows", "deliverywindow", None),
    ("invoices_Update", "invoices", "invoice", "invoice"),
    ("markets_Update", "markets", "market", "market"),
    ("paymentterms_Update", "paymentterms", "paymentterms", "paymentterm"),
    ("pricealterationdates_Update", "pricealterationdates", "pricealterationdate", None),
    ("pricelists_Update", "pricelists", "pricelist", "pricelist"),
    ("products_Update", "products", "product", None),
    ("salesreps_Update", "salesreps", "salesrep", "salesrep"),
    ("shippingterms_Update", "shippingterms", "shippingterms", "shippingterm"),
    ("sizes_Update", "sizes", "size", "size"),
    ("warehouses_Update", "warehouses", "warehouse", "warehouse"),
])
def test_every_update_operation_is_a_partial_upsert(sim: SimServer, operation: str, plural: str, item: str,
                                                     event_type: str | None) -> None:
    action = f'"{NS}{operation[0].upper()}{operation[1:]}"'
    reply = _post(sim, _update(sim, operation, plural, item, "<ns1:id>X1</ns1:id><ns1:name>One</ns1:name>"), action)
    assert reply.status_code == 200, reply.content
    result = etree.fromstring(reply.content).find(f"{{{SOAP_ENV}}}Body/{{{NS}}}result")
    assert result is not None and result.findtext(f"{{{NS}}}success") == "true"
    reply = _post(sim, _update(sim, operation, plural, item, "<ns1:id>X1</ns1:id><ns1:extra>2</ns1:extra>"), action)
    assert reply.status_code == 200
    events = sim.queue.fetch(limit=1000)
    if event_type is None:
        assert events == []
    else:
        assert [(e.type, e.entry) for e in events] == [(event_type, "X1")] * 2
        assert events[-1].data == {"id": "X1", "name": "One", "extra": "2"}  # the full object, not the diff
    failed = _post(sim, _update(sim, operation, plural, item, "<ns1:name>no id</ns1:name>"), action)
    result = etree.fromstring(failed.content).find(f"{{{SOAP_ENV}}}Body/{{{NS}}}result")
    assert result is not None and result.findtext(f"{{{NS}}}success") == "false"
    assert len(sim.queue.fetch(limit=1000)) == len(events)  # a failed update changes nothing


def test_zeep_calls_an_update_operation_from_the_wsdl(sim: SimServer, centra_wsdl_path: Path) -> None:
    client = zeep.Client(wsdl=str(centra_wsdl_path), settings=zeep.Settings(strict=False, forbid_external=True))
    service = client.create_service(BINDING, sim.soap_url)
    login = {"username": sim.soap_user, "password": sim.soap_password}
    item = etree.Element(f"{{{NS}}}id")
    item.text = "C9"
    result = service.customers_Update(login=login, customers={"customer": [{"_value_1": [item]}]})
    assert result.success == "true"
    assert sim.generator.objects["customer"]["C9"] == {"id": "C9"}
    assert len(sim.generate(30)) == 30  # ERP-created partial customers never feed generated orders
