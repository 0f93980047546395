"""The XSD embedded in erpsync's WSDL is valid XSD 1.0: both lxml (libxml2) and the `xmlschema`
package load it. xmllint 2.9 let five Unique Particle Attribution violations through (an
optional declared element followed by an `xsd:any` that could match it too)."""
from __future__ import annotations

import re

import xmlschema
from lxml import etree

from erpsync.soap.client import WSDL_PATH

XSD_NS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def _schema_element() -> etree._Element:
    """The <xsd:schema> as a document of its own, with the WSDL's namespace declarations."""
    doc = etree.parse(str(WSDL_PATH))
    schema = doc.find(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    assert schema is not None
    return etree.fromstring(etree.tostring(schema))  # tostring carries the in-scope xmlns


def test_lxml_accepts_the_embedded_xsd() -> None:
    etree.XMLSchema(_schema_element())  # raises XMLSchemaParseError on a UPA violation


def test_xmlschema_accepts_the_embedded_xsd_as_xsd_1_0() -> None:
    schema = xmlschema.XMLSchema10(etree.tostring(_schema_element()).decode())
    assert schema.elements["events_Get"] is not None


def test_open_content_still_accepts_foreign_and_unknown_children() -> None:
    """The wildcards still take what Centra adds: elements of other namespaces, and (via zeep's
    strict=False and erpsync's own response parser) unknown same-namespace elements."""
    schema = etree.XMLSchema(_schema_element())
    ns = "http://www.centra.com/webservices/"
    ok = etree.fromstring(
        f'<n:events_Get xmlns:n="{ns}" xmlns:x="urn:other"><n:events><n:event><n:id>1</n:id>'
        f'<n:data><n:order><n:anything>1</n:anything></n:order></n:data><x:new>2</x:new>'
        f'</n:event></n:events><x:extra/></n:events_Get>')
    schema.assertValid(ok)


def test_every_wildcard_still_takes_any_number_of_children() -> None:
    anys = re.findall(r"<xsd:any [^>]*>", WSDL_PATH.read_text(encoding="utf-8"))
    assert len(anys) == 7
    assert all('minOccurs="0"' in a and 'maxOccurs="unbounded"' in a for a in anys)
