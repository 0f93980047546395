"""SOAP objects (the documented samples) into mapping-table rows: plain asserts, no I/O."""

from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from erpsync.errors import ItemRejected
from erpsync.inbound.transform import event_change, money, to_inbound_item
from erpsync.soap import xml
from erpsync.soap.models import SoapEvent

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def sample_events() -> list[SoapEvent]:
    raw = (Path(__file__).parents[1] / "sim" / "soap_samples" / "events_Get.response.xml").read_bytes()
    return xml.parse_events(xml.payload_element(xml.soap_body(xml.parse_document(raw))), STOCKHOLM)


def test_order_event_becomes_order_row_lines_with_exact_decimals(sample_events: list[SoapEvent]) -> None:
    ch = event_change(sample_events[0], STOCKHOLM)
    assert (ch.table, ch.key, ch.delete) == ("order", "1207", False)
    c = ch.columns
    assert c["order_total"] == Decimal("1135.00") and str(c["order_total"]) == "1135.00"
    assert (c["order_number"], c["status"], c["store"], c["currency"]) == ("1207", "pending", 1, "SEK")
    assert (c["customer_id"], c["market"], c["pricelist"]) == ("88", "Retail-SE", "PL-SEK")
    assert c["created"].isoformat() == "2026-11-20T08:13:58+00:00"
    assert ch.lines is not None and len(ch.lines) == 1
    line = ch.lines[0]
    assert line["line_no"] == 1 and line["order_id"] == "1207"
    assert (line["product_id"], line["variant_id"], line["sku"]) == ("TSHIRT-01", "TSHIRT-01-BLK", "TS01")
    assert (line["size"], line["size_sku"], line["order_item_id"]) == ("M", "TS01BLKM", "5521")
    assert (line["qty"], line["price"], line["subtotal"], line["tax"]) == (
        Decimal("2"), Decimal("543.00"), Decimal("1086.00"), Decimal("25.000"))
    assert str(line["tax"]) == "25.000"  # trailing zeros kept: exactly what Centra sent
    assert all(not isinstance(v, float) for v in [*c.values(), *line.values()])
    assert ch.shipments == []


def test_customer_and_generic_delete(sample_events: list[SoapEvent]) -> None:
    cust = event_change(sample_events[1], STOCKHOLM)
    assert cust.table == "customer" and cust.columns["email"] == "ada@example.com"
    assert cust.columns["payload"]["newsletter"] == "yes"  # unknown fields kept in the payload
    term = event_change(sample_events[2], STOCKHOLM)
    assert (term.table, term.generic_type, term.key, term.delete) == ("generic", "paymentterm", "NET30", True)


def _event(**kw: object) -> SoapEvent:
    base: dict[str, object] = dict(id="1", type="order", entry="5", mission="update", date=None,
                                   data={"ordertotal": "10.00"}, data_tag="order", raw="<event/>")
    base.update(kw)
    return SoapEvent(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "reason"), [
    ({"type": "giftcard", "data_tag": "giftcard"}, "unknown event type"),
    ({"mission": "explode"}, "unknown mission"),
    ({"data": {"ordertotal": "12,50"}}, "not a decimal"),
    ({"data": {"ordertotal": "NaN"}}, "not a finite"),
    ({"data": {"store": "one"}}, "not an integer"),
    ({"data": {"created": "soon"}}, "not a date"),
    ({"data_tag": "customer"}, "expected <order>"),
    ({"problem": "unparseable event date 'x'"}, "unparseable event date"),
    ({"data": {"ordertotal": "1e30"}}, "too large"),
    ({"data": {"ordertotal": "1.123456789"}}, "more than 8 decimal places"),
    ({"data": {"store": "99999999999"}}, "out of range"),
    ({"id": "9" * 65}, "longer than 64"),
])
def test_unmappable_events_are_rejected_with_a_reason(kw: dict[str, object], reason: str) -> None:
    with pytest.raises(ItemRejected, match=reason):
        event_change(_event(**kw), STOCKHOLM)
    item = to_inbound_item(_event(**kw), STOCKHOLM)
    assert item.change is None and item.park_reason is not None and reason in item.park_reason
    assert item.raw_xml == "<event/>"


@pytest.mark.parametrize("etype", ["paymentterm", "shippingterm", "order", "customer", "warehouse"])
def test_an_update_without_an_object_is_an_update_of_type_and_entry_in_the_generic_table(etype: str) -> None:
    raw = (f'<e:event xmlns:e="urn:x"><e:id>31</e:id><e:type>{etype}</e:type><e:entry>NET30</e:entry>'
           '<e:mission>update</e:mission><e:date>2026-11-20 09:00:00</e:date><e:data/></e:event>')
    event = xml.parse_event_xml(raw, STOCKHOLM)
    item = to_inbound_item(event, STOCKHOLM)
    assert item.park_reason is None
    assert item.change is not None
    assert (item.change.table, item.change.generic_type, item.change.key) == ("generic", etype, "NET30")
    assert not item.change.delete and item.change.columns == {}


def test_multi_size_line_and_bundle_and_shipments() -> None:
    data = {"ordertotal": "3.00", "products": {"product": [
        {"id": "P", "qty": "3", "price": "1.00", "subtotal": "3.00", "sizes": {"size": [{"id": "S"}, {"id": "M"}]},
         "bundleinfo": {"isbundle": "yes"}}]},
        "shipments": {"shipment": [{"id": "SH1"}, {"id": "SH2"}]}}
    ch = event_change(_event(data=data), STOCKHOLM)
    assert ch.lines is not None and ch.lines[0]["size"] is None and ch.lines[0]["is_bundle_virtual"] is True
    assert [s["shipment_id"] for s in ch.shipments or []] == ["SH1", "SH2"]


def test_money_never_float() -> None:
    assert money("10.43100", "x") == Decimal("10.43100")
    assert str(money("1.500000000", "x")) == "1.500000000"  # trailing zeros beyond 8 places are exact
    assert money("", "x") is None
    with pytest.raises(ItemRejected):
        money("1e", "x")


@pytest.mark.parametrize("eid", ["²", "١٢٣", "99999999999999999999", "ev-7", "0x1F"])
def test_event_ids_are_strings_only_plain_ascii_int64_ones_are_sequence_numbers(eid: str) -> None:
    # the contract says id is a string: a superscript digit, other scripts' digits or a number past
    # BIGINT must neither crash the batch nor become a sequence number the database cannot hold
    item = to_inbound_item(_event(id=eid), STOCKHOLM)
    assert item.change is not None and item.meta.event_id == eid
    assert item.meta.seq is None


def test_numeric_event_ids_are_sequence_numbers() -> None:
    assert _event(id="4101").seq == 4101
    assert _event(id=str(2**63 - 1)).seq == 2**63 - 1


def test_store_with_a_non_ascii_digit_is_rejected_not_a_crash() -> None:
    with pytest.raises(ItemRejected, match="not an integer"):
        event_change(_event(data={"ordertotal": "1.00", "store": "²"}), STOCKHOLM)


@pytest.mark.parametrize(("etype", "tag"), [("paymentterm", "paymentterms"), ("shippingterm", "shippingterms")])
def test_data_child_named_like_the_update_item_is_accepted(etype: str, tag: str) -> None:
    # paymentterms_Update / shippingterms_Update repeat the plural name for their items, and an
    # event's <data> holds the object "in the same structure as the matching X_Update object"
    ch = event_change(_event(type=etype, entry="NET30", data={"id": "NET30", "days": "30"}, data_tag=tag),
                      STOCKHOLM)
    assert (ch.table, ch.generic_type, ch.key) == ("generic", etype, "NET30")
    assert ch.columns["payload"] == {"id": "NET30", "days": "30"}


def test_data_child_of_another_type_is_still_rejected() -> None:
    with pytest.raises(ItemRejected, match="expected <order>"):
        event_change(_event(data_tag="orders_x"), STOCKHOLM)
