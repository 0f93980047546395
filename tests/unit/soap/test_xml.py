"""SOAP bodies (the documented samples) into erpsync's dataclasses: pure lxml, no HTTP."""

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from erpsync.errors import AuthenticationFailed, PermissionDenied, ProtocolError, SchemaMismatch, SourceUnavailable
from erpsync.soap import xml
from erpsync.soap.client import classify_fault
from erpsync.soap.models import parse_centra_date

SAMPLES = Path(__file__).parents[1] / "sim" / "soap_samples"  # verbatim copies of the contract samples
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _body(name: str):
    return xml.soap_body(xml.parse_document((SAMPLES / name).read_bytes()))


def test_events_sample_parses_to_dataclasses_with_utc_dates_and_plain_dicts() -> None:
    events = xml.parse_events(xml.payload_element(_body("events_Get.response.xml")), STOCKHOLM)
    assert [(e.id, e.type, e.entry, e.mission) for e in events] == [
        ("4101", "order", "1207", "update"), ("4102", "customer", "88", "update"),
        ("4103", "paymentterm", "NET30", "delete")]
    # offset-less date is Stockholm local time (UTC+1 in November)
    assert events[0].date == datetime(2026, 11, 20, 8, 14, 3, tzinfo=UTC)
    assert events[1].date == datetime(2026, 11, 20, 8, 14, 3, tzinfo=UTC)
    assert events[0].seq == 4101
    order = events[0].data
    assert order is not None and events[0].data_tag == "order"
    assert order["ordertotal"] == "1135.00"
    assert order["customer"] == {"id": "88", "description": "Ada Berg"}
    # a list container with a single item is still a list
    assert isinstance(order["products"]["product"], list)
    assert order["products"]["product"][0]["sizes"]["size"][0]["orderitem"] == {"id": "5521"}
    assert events[2].data is None and events[2].problem is None
    assert "<" in events[0].raw_xml and "1207" in events[0].raw_xml
    assert all(e.problem is None for e in events)


def test_empty_queue_sample() -> None:
    assert xml.parse_events(xml.payload_element(_body("events_Get.empty.response.xml")), STOCKHOLM) == []


def test_done_response_and_update_result() -> None:
    assert xml.parse_done_response(xml.payload_element(_body("events_Done.response.xml"))) == "OK"
    assert xml.parse_done_response(xml.payload_element(_body("update.result.response.xml"))) != "OK"


def test_fault_sample_is_a_bad_login() -> None:
    fault = xml.find_fault(_body("fault.response.xml"))
    assert fault == xml.SoapFault("SOAP-ENV:Client", "Login failed")
    assert isinstance(classify_fault("events_Get", fault), AuthenticationFailed)
    assert isinstance(classify_fault("events_Get", xml.SoapFault("SOAP-ENV:Server", "busy")), SourceUnavailable)
    # a Client fault that is not about the login, a permission or an unknown operation is transient
    assert isinstance(classify_fault("events_Get", xml.SoapFault("SOAP-ENV:Client", "bad type")), SourceUnavailable)
    assert isinstance(classify_fault("events_Get", xml.SoapFault("SOAP-ENV:Client", "Permission denied: events")),
                      PermissionDenied)
    assert isinstance(classify_fault("events_Get", xml.SoapFault("SOAP-ENV:Client", "Procedure 'x' not present")),
                      SchemaMismatch)


def test_malformed_xml_and_non_envelope_raise_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        xml.parse_document(b"<Envelope><Body>")
    with pytest.raises(ProtocolError):
        xml.soap_body(xml.parse_document(b"<html/>"))


def test_unknown_elements_are_tolerated_and_bad_events_carry_a_problem() -> None:
    body = b"""<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:n="urn:x"><e:Body>
      <n:events_Get><n:extra>1</n:extra><n:events>
        <n:event><n:id>7</n:id><n:type>order</n:type><n:entry>9</n:entry><n:mission>update</n:mission>
          <n:date>yesterday</n:date><n:newfield>x</n:newfield><n:data><n:order><n:id>9</n:id></n:order></n:data></n:event>
        <n:event><n:id>8</n:id><n:type>order</n:type><n:entry>9</n:entry><n:mission>update</n:mission>
          <n:date>2026-01-01T00:00:00Z</n:date><n:data><n:order/><n:order/></n:data></n:event>
      </n:events></n:events_Get></e:Body></e:Envelope>"""
    events = xml.parse_events(xml.payload_element(xml.soap_body(xml.parse_document(body))), STOCKHOLM)
    assert [e.id for e in events] == ["7", "8"]
    assert events[0].problem is not None and "date" in events[0].problem
    assert events[1].problem is not None and "2 objects" in events[1].problem
    again = xml.parse_event_xml(events[0].raw_xml, STOCKHOLM)
    assert again.id == "7" and again.data == {"id": "9"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2019-03-27 12:52:20", datetime(2019, 3, 27, 11, 52, 20, tzinfo=UTC)),  # CET
    ("2019-07-01 12:00:00", datetime(2019, 7, 1, 10, 0, 0, tzinfo=UTC)),  # CEST
    ("2026-11-20T09:13:58+01:00", datetime(2026, 11, 20, 8, 13, 58, tzinfo=UTC)),
    ("2026-11-20T09:13:58Z", datetime(2026, 11, 20, 9, 13, 58, tzinfo=UTC)),
    ("", None),
])
def test_both_date_formats(text: str, expected: datetime | None) -> None:
    assert parse_centra_date(text, STOCKHOLM) == expected


def test_store_timezone_is_configuration_not_utc() -> None:
    assert parse_centra_date("2019-03-27 12:52:20", ZoneInfo("America/New_York")) == datetime(
        2019, 3, 27, 16, 52, 20, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_centra_date("27/03/2019", STOCKHOLM)


def test_an_element_centra_adds_beside_the_object_in_data_is_ignored() -> None:
    # Centra adds elements without notice: one named after the type is still "the" object
    body = b"""<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:n="urn:x"><e:Body>
      <n:events_Get><n:events>
        <n:event><n:id>7</n:id><n:type>order</n:type><n:entry>9</n:entry><n:mission>update</n:mission>
          <n:date>2026-01-01T00:00:00Z</n:date>
          <n:data><n:meta><n:source>api</n:source></n:meta><n:order><n:id>9</n:id></n:order></n:data></n:event>
        <n:event><n:id>8</n:id><n:type>paymentterm</n:type><n:entry>NET30</n:entry><n:mission>update</n:mission>
          <n:date>2026-01-01T00:00:00Z</n:date>
          <n:data><n:paymentterms><n:id>NET30</n:id></n:paymentterms><n:flags/></n:data></n:event>
        <n:event><n:id>9</n:id><n:type>order</n:type><n:entry>9</n:entry><n:mission>update</n:mission>
          <n:date>2026-01-01T00:00:00Z</n:date><n:data><n:meta/><n:other/></n:data></n:event>
      </n:events></n:events_Get></e:Body></e:Envelope>"""
    events = xml.parse_events(xml.payload_element(xml.soap_body(xml.parse_document(body))), STOCKHOLM)
    assert events[0].problem is None and events[0].data_tag == "order" and events[0].data == {"id": "9"}
    assert events[1].problem is None and events[1].data_tag == "paymentterms" and events[1].data == {"id": "NET30"}
    assert events[2].problem is not None and "2 objects" in events[2].problem


@pytest.mark.parametrize(("text", "ambiguous"), [
    ("2026-10-25 02:30:00", True),  # Stockholm falls back 03:00 -> 02:00: this hour happens twice
    ("2026-10-25 03:30:00", False),
    ("2026-03-29 02:30:00", False),  # spring-forward gap: never happens, not a repeat
    ("2026-10-25T02:30:00+01:00", False),  # an offset says which one
    ("nonsense", False),
])
def test_ambiguous_store_local_dates(text: str, ambiguous: bool) -> None:
    from erpsync.soap.models import is_ambiguous_local

    assert is_ambiguous_local(text, STOCKHOLM) is ambiguous


def test_salvage_reads_every_well_formed_event_and_marks_the_broken_ones_with_their_bytes() -> None:
    body = (b'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:ns1="http://www.centra.com/webservices/"><SOAP-ENV:Body><ns1:events_Get><ns1:events>'
            b"<ns1:event><ns1:id>1</ns1:id><ns1:type>paymentterm</ns1:type><ns1:entry>NET30</ns1:entry>"
            b"<ns1:mission>delete</ns1:mission><ns1:date>2026-01-01 10:00:00</ns1:date><ns1:data/></ns1:event>"
            b"<ns1:event><ns1:id>2</ns1:id><ns1:type>customer</ns1:type><ns1:entry>88</ns1:entry>"
            b"<ns1:mission>update</ns1:mission><ns1:date>2026-01-01 10:00:00</ns1:date><ns1:data><ns1:customer>"
            b"<ns1:id>88</ns1:id><ns1:email>a & b</ns1:email></ns1:customer></ns1:data></ns1:event>"
            b"<ns1:event><ns1:id>3</ns1:id><ns1:type>warehouse</ns1:type><ns1:entry>W</ns1:entry>"
            b"<ns1:mission>update</ns1:mission><ns1:date>2026-01-01T10:00:00Z</ns1:date><ns1:data><ns1:warehouse>"
            b"<ns1:id>W</ns1:id></ns1:warehouse></ns1:data></ns1:event>"
            b"<ns1:event><ns1:id>4</ns1:id><ns1:type>warehouse</ns1:type><ns1:entry>W</ns1:entry><ns1:mi")
    with pytest.raises(ProtocolError):
        xml.parse_document(body)
    events = xml.salvage_events(body, STOCKHOLM)
    assert [(e.id, e.type, e.problem is None) for e in events] == [
        ("1", "paymentterm", True), ("2", "", False), ("3", "warehouse", True), ("4", "", False)]
    assert events[2].data == {"id": "W"}
    assert events[1].raw is not None and "a & b" in events[1].raw and events[1].raw.startswith("<ns1:event>")
    assert xml.salvage_events(b"<html><body>502 Bad Gateway</body></html>", STOCKHOLM) == []
