"""List-ness comes from the bundled contract: every element with maxOccurs > 1 is a list in
erpsync's dicts, also when it occurs once."""

from __future__ import annotations

import pytest
from lxml import etree

from erpsync.soap import xml
from erpsync.soap.contract import CONTRACT_FILES, repeated_elements, repeated_in

NS = "http://www.centra.com/webservices/"


def _derived_from_files() -> frozenset[tuple[str, str]]:
    """Independently of the cached helper: walk every element declaration of the contract files."""
    return repeated_in(etree.parse(str(p)).getroot() for p in CONTRACT_FILES)


PAIRS = sorted(_derived_from_files())


def test_the_contract_declares_the_containers_real_traffic_has() -> None:
    pairs = repeated_elements()
    assert pairs == frozenset(PAIRS)
    # the ones the hand-kept list had, and the ones it missed (refunds, buyers, invoice items)
    for pair in [("products", "product"), ("cancelled", "product"), ("shipments", "shipment"), ("sizes", "size"),
                 ("warehouseitems", "warehouse"), ("additionals", "additional"), ("payments", "payment"),
                 ("markets", "market"), ("errors", "message"), ("notices", "message"), ("partof", "product"),
                 ("invoices", "invoice"), ("lines", "line"), ("items", "item"), ("events", "event"),
                 ("refunds", "refund"), ("buyers", "buyer"), ("items", "invoiceitem")]:
        assert pair in pairs, pair


@pytest.mark.parametrize(("container", "item"), PAIRS)
def test_one_item_of_every_repeated_element_is_a_one_item_list(container: str, item: str) -> None:
    doc = (f'<n:obj xmlns:n="{NS}"><n:{container}><n:{item}><n:id>7</n:id></n:{item}></n:{container}>'
           f'<n:other><n:{item}>x</n:{item}></n:other></n:obj>')
    data = xml.element_to_dict(etree.fromstring(doc))
    assert data[container][item] == [{"id": "7"}]
    assert data["other"][item] == "x"  # the same name elsewhere is not a list
    one = f'<n:{container} xmlns:n="{NS}"><n:{item}>v</n:{item}></n:{container}>'
    leaf = xml.element_to_dict(etree.fromstring(one))
    assert leaf == {item: ["v"]}


def test_a_one_item_order_reads_like_a_many_item_one() -> None:
    order = f"""<n:order xmlns:n="{NS}"><n:id>1311</n:id>
      <n:products><n:product><n:id>P</n:id><n:qty>1</n:qty>
        <n:sizes><n:size><n:id>M</n:id><n:warehouseitems><n:warehouse><n:id>W</n:id></n:warehouse></n:warehouseitems>
        </n:size></n:sizes></n:product></n:products>
      <n:refunds><n:refund><n:id>R1</n:id><n:products><n:product><n:sku>S</n:sku></n:product></n:products></n:refund></n:refunds>
      <n:shipments><n:shipment><n:id>SH</n:id></n:shipment></n:shipments><n:newthing>kept</n:newthing></n:order>"""
    data = xml.element_to_dict(etree.fromstring(order))
    line = data["products"]["product"][0]
    assert line["sizes"]["size"][0]["warehouseitems"]["warehouse"] == [{"id": "W"}]
    assert data["refunds"]["refund"][0]["products"]["product"] == [{"sku": "S"}]
    assert data["shipments"]["shipment"] == [{"id": "SH"}]
    assert data["newthing"] == "kept"


def test_derivation_follows_named_types_anonymous_types_choices_and_extensions() -> None:
    schema = etree.fromstring("""<s:schema xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t">
      <s:complexType name="Base"><s:sequence><s:element name="row" maxOccurs="3"/></s:sequence></s:complexType>
      <s:complexType name="Sub"><s:complexContent><s:extension base="t:Base"/></s:complexContent></s:complexType>
      <s:complexType name="Either"><s:choice maxOccurs="unbounded"><s:element name="a"/><s:element name="b"/>
        </s:choice></s:complexType>
      <s:element name="table" type="t:Base"/><s:element name="subtable" type="t:Sub"/>
      <s:element name="mix" type="t:Either"/>
      <s:element name="anon"><s:complexType><s:sequence><s:element name="x" maxOccurs="unbounded"/>
        <s:element name="single" maxOccurs="1"/><s:any maxOccurs="unbounded"/></s:sequence></s:complexType></s:element>
    </s:schema>""")
    assert repeated_in([schema]) == {("table", "row"), ("subtable", "row"), ("mix", "a"), ("mix", "b"),
                                     ("anon", "x")}
