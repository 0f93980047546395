"""The simulated SOAP event queue: ascending ids, oldest first, at most 100 per fetch, never expiring.

An event's object payload is a plain nested structure (:data:`Payload`): a dict maps element names
to a string (a leaf), a nested dict (one child element) or a list of dicts/strings (the element
repeated). ``{"sizes": {"size": [{...}, {...}]}}`` becomes ``<sizes><size>…</size><size>…</size></sizes>``.
Tests that need the exact bytes of an object can enqueue raw XML (``data_xml``) instead.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

NS = "http://www.centra.com/webservices/"

#: Event types of ``events_Get(type=…)`` (besides ``all``), PROTOCOL.md §1.1.
EVENT_TYPES: tuple[str, ...] = (
    "account", "customer", "invoice", "market", "order", "paymentterm", "pricelist", "salesrep",
    "shippingterm", "size", "warehouse", "stock",
)
MAX_EVENTS_PER_GET = 100

#: A nested object payload (see the module docstring); values: str | Payload | list[str | Payload] | None.
Payload = dict[str, Any]


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    entry: str
    mission: str  # update | delete
    date: str  # as Centra sends it: "YYYY-MM-DD hh:mm:ss" (store time) or ISO-8601 with offset
    data: Payload | None = None  # the complete current object; None for a delete
    data_xml: str | None = None  # alternatively the object element as raw XML (exact bytes for tests)
    broken: bool = False  # rendered not well-formed (a bare "&" in the object): the whole batch breaks
    duplicate: bool = False  # rendered twice in its batch: the same event id delivered twice at once

    def market_id(self) -> str | None:
        if self.data is None:
            if self.data_xml is None:
                return None
            el = etree.fromstring(self.data_xml.encode(), parser=safe_parser())
            found = el.find("{*}market/{*}id")
            if found is None:
                found = el.find("market/id")
            return None if found is None else (found.text or "")
        market = self.data.get("market")
        if isinstance(market, dict):
            value = market.get("id")
            return value if isinstance(value, str) else None
        return None


def safe_parser() -> etree.XMLParser:
    """No entities, no network, no DTDs: the simulator parses untrusted bodies."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def payload_to_xml(parent: etree._Element, name: str, value: Any) -> None:
    """Append ``value`` under ``parent`` as element(s) called ``name`` in Centra's namespace."""
    if isinstance(value, list):
        for item in value:
            payload_to_xml(parent, name, item)
        return
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if value is None:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            payload_to_xml(el, key, child)
    else:
        el.text = str(value)


def xml_to_payload(el: etree._Element) -> Payload | str:
    """The inverse of :func:`payload_to_xml`: namespaces dropped, a name seen twice becomes a list."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return (el.text or "").strip()
    grouped: dict[str, list[Any]] = {}
    for child in children:
        grouped.setdefault(etree.QName(child).localname, []).append(xml_to_payload(child))
    return {key: values[0] if len(values) == 1 else values for key, values in grouped.items()}


_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: str) -> str:
    """``value`` escaped for XML text; ValueError for characters XML 1.0 cannot carry."""
    if _NOT_XML_TEXT.search(value):
        raise ValueError(f"not representable in XML 1.0: {value!r}")
    return escape(value)


def render_payload(name: str, value: Any, out: list[str]) -> None:
    """Append ``value`` as ``<ns1:name>…</ns1:name>`` text (``ns1`` = Centra's namespace, declared
    on the envelope). Raises ValueError for a key that is not an XML name."""
    if not _XML_NAME.match(name):
        raise ValueError(f"not an XML element name: {name!r}")
    if isinstance(value, list):
        for item in value:
            render_payload(name, item, out)
    elif value is None or value in ("", {}):
        out.append(f"<ns1:{name}/>")
    elif isinstance(value, dict):
        out.append(f"<ns1:{name}>")
        for key, child in value.items():
            render_payload(str(key), child, out)
        out.append(f"</ns1:{name}>")
    else:
        out.append(f"<ns1:{name}>{_text(str(value))}</ns1:{name}>")


def render_event(event: Event) -> str:
    """One ``<ns1:event>`` as XML text, the shape of ``soap-samples/events_Get.response.xml``."""
    out = ["<ns1:event>"]
    for name, value in (("id", str(event.id)), ("type", event.type), ("entry", event.entry),
                        ("mission", event.mission), ("date", event.date)):
        out.append(f"<ns1:{name}>{_text(value)}</ns1:{name}>")
    if event.data_xml is not None:
        obj = etree.fromstring(event.data_xml.encode(), parser=safe_parser())
        for node in obj.iter():  # raw XML from tests may omit the namespace: put it in Centra's
            if isinstance(node.tag, str) and etree.QName(node).namespace is None:
                node.tag = f"{{{NS}}}{etree.QName(node).localname}"
        etree.cleanup_namespaces(obj, top_nsmap={"ns1": NS})
        out.append("<ns1:data>" + etree.tostring(obj, encoding="unicode") + "</ns1:data>")
    elif event.data is not None:
        out.append("<ns1:data>")
        render_payload(event.type, event.data, out)
        out.append("</ns1:data>")
    else:
        out.append("<ns1:data/>")
    if event.broken:
        # a real store once sent an unescaped ampersand: the batch holding this event does not parse
        out.insert(len(out) - 1 if out[-1] == "<ns1:data/>" else len(out) - 2, "<ns1:note>R&D</ns1:note>")
    out.append("</ns1:event>")
    return "".join(out) * (2 if event.duplicate else 1)


class UnknownEventIds(ValueError):
    """events_Done named ids that are not pending (unknown or already acknowledged)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__("Unknown event id(s): " + ", ".join(ids))
        self.ids = ids


class EventQueue:
    """Thread-safe queue of unacknowledged events (ids ascending; acking removes them)."""

    def __init__(self, first_id: int = 1000) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, Event] = {}
        self._next_id = first_id
        self._acked: set[int] = set()
        self._emitted: Counter[str] = Counter()
        self._xml: dict[int, str] = {}  # rendered once: events never change
        self.listeners: list[Callable[[Event], None]] = []  # told of each enqueued event (webhooks)

    def enqueue(self, type_: str, entry: str, *, date: str, mission: str = "update",
                data: Payload | None = None, data_xml: str | None = None, broken: bool = False,
                duplicate: bool = False) -> Event:
        if mission not in ("update", "delete"):
            raise ValueError(f"mission must be update or delete, not {mission!r}")
        if not _XML_NAME.match(type_):
            raise ValueError(f"not an event type: {type_!r}")
        with self._lock:
            event = Event(self._next_id, type_, str(entry), mission, date,
                          None if mission == "delete" else data, None if mission == "delete" else data_xml,
                          broken, duplicate)
            try:
                self._xml[event.id] = render_event(event)  # also rejects bad payloads before queueing
            except etree.XMLSyntaxError as exc:
                raise ValueError(f"data_xml is not well-formed XML: {exc}") from exc
            self._events[event.id] = event
            self._next_id += 1
            self._emitted[type_] += 1
        for listener in self.listeners:
            listener(event)
        return event

    def redeliver(self, event: Event) -> bool:
        """Put an acknowledged event back under its own id (Centra re-delivers an event whose
        acknowledgement it lost): it now arrives after newer events of the same object."""
        with self._lock:
            if event.id in self._events:
                return False
            self._acked.discard(event.id)
            self._events[event.id] = event
            self._xml[event.id] = render_event(event)
            return True

    def fetch(self, type_: str = "all", markets: Iterable[str] | None = None,
              limit: int = MAX_EVENTS_PER_GET) -> list[Event]:
        """The oldest unacknowledged events of ``type_`` (``all`` = every type), ascending.

        With ``markets``, only events whose object carries ``market.id`` in that set are returned
        (objects without a market, e.g. retail customers, are not market-scoped and are left out).
        """
        wanted = set(markets) if markets is not None else None
        with self._lock:
            out: list[Event] = []
            for event_id in sorted(self._events):
                event = self._events[event_id]
                if type_ not in ("all", event.type):
                    continue
                if wanted is not None and event.market_id() not in wanted:
                    continue
                out.append(event)
                if len(out) >= limit:
                    break
            return out

    def done(self, ids: Iterable[str | int], *, require_known: bool = False) -> int:
        """Remove the given ids; unknown or already-acked ids are ignored. Returns how many were removed.

        With ``require_known`` an unknown or already-acked id raises :class:`UnknownEventIds` and
        nothing is removed."""
        with self._lock:
            known: list[int] = []
            unknown: list[str] = []
            for raw in ids:
                try:
                    event_id = int(str(raw).strip())
                except ValueError:
                    unknown.append(str(raw).strip())
                    continue
                if event_id in self._events:
                    known.append(event_id)
                else:
                    unknown.append(str(raw).strip())
            if require_known and unknown:
                raise UnknownEventIds(unknown)
            removed = 0
            for event_id in known:
                if self._events.pop(event_id, None) is not None:
                    self._xml.pop(event_id, None)
                    self._acked.add(event_id)
                    removed += 1
            return removed

    def render(self, events: Iterable[Event]) -> str:
        """The cached ``<ns1:event>`` XML of events (rendered now if already acked meanwhile)."""
        with self._lock:
            cached = [self._xml.get(e.id) for e in events]
        return "".join(c if c is not None else render_event(e) for c, e in zip(cached, events, strict=True))

    def get(self, event_id: int) -> Event | None:
        with self._lock:
            return self._events.get(event_id)

    @property
    def depth(self) -> int:
        with self._lock:
            return len(self._events)

    def inspect(self, acked_sample: int = 1000) -> dict[str, Any]:
        with self._lock:
            pending = Counter(e.type for e in self._events.values())
            return {
                "queue_depth": len(self._events),
                "pending_by_type": dict(sorted(pending.items())),
                "oldest_pending_id": min(self._events) if self._events else None,
                "next_event_id": self._next_id,
                "acked_count": len(self._acked),
                "acked_ids": sorted(self._acked)[-acked_sample:],
                "emitted_by_type": dict(sorted(self._emitted.items())),
            }

    def acked_ids(self) -> set[int]:
        with self._lock:
            return set(self._acked)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._xml.clear()
            self._acked.clear()
            self._emitted.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "next_id": self._next_id,
                "events": [asdict(e) for e in sorted(self._events.values(), key=lambda e: e.id)],
                "acked": sorted(self._acked),
                "emitted": dict(self._emitted),
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._events = {int(e["id"]): Event(**e) for e in data.get("events", [])}
            self._xml = {i: render_event(e) for i, e in self._events.items()}
            self._next_id = int(data.get("next_id", self._next_id))
            self._acked = {int(i) for i in data.get("acked", [])}
            self._emitted = Counter({str(k): int(v) for k, v in data.get("emitted", {}).items()})
