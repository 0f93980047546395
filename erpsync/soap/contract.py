"""What the bundled contract says about list-ness: every element that may repeat.

The WSDL's embedded schema (``erpsync/contract/centra.wsdl``) and the object shapes beside it
(``erpsync/contract/centra-objects.xsd``) are read with a plain lxml tree walk — no schema
compilation, so an open-content schema that a strict compiler refuses (UPA) is still read. An
element is *repeated* when its own ``maxOccurs`` or that of an enclosing ``sequence`` / ``choice``
is above 1 (or ``unbounded``). Each is reported as ``(container, item)`` local names: the element
that holds it (the element an anonymous type belongs to, or every element whose ``type`` names the
enclosing complexType or a type derived from it) and its own name. ``erpsync.soap.xml`` makes
every such item a list, also when it occurs once.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from lxml import etree

CONTRACT_DIR = Path(__file__).resolve().parent.parent / "contract"
CONTRACT_FILES = (CONTRACT_DIR / "centra.wsdl", CONTRACT_DIR / "centra-objects.xsd")
XSD = "http://www.w3.org/2001/XMLSchema"
_PARTICLES = {f"{{{XSD}}}sequence", f"{{{XSD}}}choice", f"{{{XSD}}}all", f"{{{XSD}}}group"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def _many(node: etree._Element) -> bool:
    value = (node.get("maxOccurs") or "1").strip()
    return value == "unbounded" or (value.isdigit() and int(value) > 1)


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


def repeated_in(roots: Iterable[etree._Element]) -> frozenset[tuple[str, str]]:
    """``(container, item)`` for every repeated element declared under ``roots`` (schemas or
    documents holding them)."""
    schema_nodes = [n for root in roots for n in root.iter(f"{{{XSD}}}schema")]
    # which element names carry each named type, and which types derive from which
    users: dict[str, set[str]] = {}
    derived: dict[str, set[str]] = {}
    for schema in schema_nodes:
        for el in schema.iter(f"{{{XSD}}}element"):
            if el.get("name") and el.get("type"):
                users.setdefault(_local(el.get("type")), set()).add(str(el.get("name")))
        for ext in schema.iter(f"{{{XSD}}}extension", f"{{{XSD}}}restriction"):
            owner = next((a for a in ext.iterancestors(f"{{{XSD}}}complexType") if a.get("name")), None)
            if owner is not None and ext.get("base"):
                derived.setdefault(_local(ext.get("base")), set()).add(str(owner.get("name")))

    def holders(type_name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names = set(users.get(type_name, ()))
        for sub in derived.get(type_name, ()):
            if sub not in seen:
                names |= holders(sub, seen | {type_name})
        return names

    pairs: set[tuple[str, str]] = set()
    for schema in schema_nodes:
        for el in schema.iter(f"{{{XSD}}}element"):
            name = el.get("name")
            if not name:
                continue
            repeated = _many(el)
            container: etree._Element | None = None
            for anc in el.iterancestors():
                if anc.tag in _PARTICLES:
                    repeated = repeated or _many(anc)
                elif anc.tag == f"{{{XSD}}}complexType":
                    container = anc
                    break
            if not repeated or container is None:
                continue
            if container.get("name"):
                parents = holders(str(container.get("name")))
            else:
                owner = container.getparent()
                parents = {str(owner.get("name"))} if owner is not None and owner.get("name") else set()
            pairs.update((parent, name) for parent in parents)
    return frozenset(pairs)


@cache
def repeated_elements() -> frozenset[tuple[str, str]]:
    """The repeated ``(container, item)`` pairs of the bundled contract (read once per process)."""
    return repeated_in(etree.parse(str(path), _PARSER).getroot() for path in CONTRACT_FILES)
