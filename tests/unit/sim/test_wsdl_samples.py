"""erpsync's WSDL loads offline in zeep and parses every documented sample body (the client's code path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree

import erpsync

WSDL = Path(erpsync.__file__).parent / "contract" / "centra.wsdl"
SAMPLES = Path(__file__).parent / "soap_samples"  # copied verbatim from the contract's soap-samples/
NS = "http://www.centra.com/webservices/"
BINDING = "{http://www.centra.com/webservices/}CentraBinding"


class _Reply:
    def __init__(self, body: bytes, status: int = 200) -> None:
        self.content = body
        self.status_code = status
        self.headers = {"Content-Type": "text/xml; charset=utf-8"}
        self.encoding = "utf-8"


@pytest.fixture(scope="module")
def client() -> zeep.Client:
    settings = zeep.Settings(strict=False, xml_huge_tree=True, forbid_external=True)
    return zeep.Client(wsdl=str(WSDL), settings=settings)


def _parse(client: zeep.Client, op: str, sample: str, status: int = 200) -> Any:
    service = client.create_service(BINDING, "http://127.0.0.1:9/soap")
    binding = service._binding
    return binding.process_reply(client, binding.get(op), _Reply((SAMPLES / sample).read_bytes(), status))


def test_wsdl_has_the_documented_operations_and_actions(client: zeep.Client) -> None:
    binding = client.wsdl.bindings[BINDING]
    ops = {name: binding.get(name) for name in ("events_Get", "events_GetByMarkets", "events_Done", "orders_Update")}
    assert ops["events_Get"].soapaction == f"{NS}Events_Get"
    assert ops["events_Done"].soapaction == f"{NS}Events_Done"
    assert ops["orders_Update"].soapaction == f"{NS}Orders_Update"
    assert ops["events_GetByMarkets"].soapaction == f"{NS}Events_GetByMarkets"
    assert ops["events_Get"].input.body.qname == etree.QName(NS, "events_GetRequest")
    assert ops["events_Get"].output.body.qname == etree.QName(NS, "events_Get")
    assert ops["events_GetByMarkets"].output.body.qname == etree.QName(NS, "events_Get")


def test_events_get_sample_parses_including_unknown_element_and_empty_delete(client: zeep.Client) -> None:
    result = _parse(client, "events_Get", "events_Get.response.xml")
    events = result.events.event
    assert [e.id for e in events] == ["4101", "4102", "4103"]
    assert [e.type for e in events] == ["order", "customer", "paymentterm"]
    assert [e.mission for e in events] == ["update", "update", "delete"]
    assert events[0].date == "2026-11-20 09:14:03"
    assert events[1].date == "2026-11-20T09:14:03+01:00"
    (order,) = events[0].data._value_1
    assert etree.QName(order).localname == "order"
    assert order.findtext(f"{{{NS}}}ordertotal") == "1135.00"
    (customer,) = events[1].data._value_1
    assert customer.findtext(f"{{{NS}}}newsletter") == "yes"  # unknown element kept, not an error
    assert not events[2].data  # <data/> of a delete event


def test_empty_queue_sample(client: zeep.Client) -> None:
    result = _parse(client, "events_Get", "events_Get.empty.response.xml")
    assert not result.events


def test_events_done_and_update_result_samples(client: zeep.Client) -> None:
    assert _parse(client, "events_Done", "events_Done.response.xml") == "OK"
    result = _parse(client, "orders_Update", "update.result.response.xml")
    assert result.success == "false"
    assert result.errors.message == ["Unknown market: Retail-XX"]


def test_fault_sample_raises_zeep_fault(client: zeep.Client) -> None:
    with pytest.raises(zeep.exceptions.Fault) as info:
        _parse(client, "events_Get", "fault.response.xml", status=500)
    assert info.value.message == "Login failed"


def test_requests_serialise_like_the_request_samples(client: zeep.Client) -> None:
    service = client.create_service(BINDING, "http://127.0.0.1:9/soap")
    login = {"username": "erp-user", "password": "s3cret"}
    done = client.create_message(service, "events_Done", login=login, event=["4101", "4102", "4103"])
    sample = etree.parse(str(SAMPLES / "events_Done.request.xml")).getroot()
    assert _shape(done) == _shape(sample)
    get = client.create_message(service, "events_Get", login=login, type="all")
    assert _shape(get) == _shape(etree.parse(str(SAMPLES / "events_Get.request.xml")).getroot())


def _shape(el: Any) -> Any:
    """Tag names (namespace + local) and leaf texts, recursively: prefixes do not matter."""
    children = list(el)
    if not children:
        return (el.tag, (el.text or "").strip())
    return (el.tag, [_shape(c) for c in children])
