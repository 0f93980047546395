"""erpsync's own view of Centra's SOAP events: plain dataclasses, never zeep objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

# The event types Centra documents for events_Get / the <data> child names (PROTOCOL.md §1.1).
KNOWN_EVENT_TYPES = frozenset({
    "account", "customer", "invoice", "market", "order", "paymentterm", "pricelist", "salesrep",
    "shippingterm", "size", "warehouse", "stock",
})
MISSIONS = frozenset({"update", "delete"})
FETCH_LIMIT = 100  # events_Get returns at most this many; a full batch means "fetch again at once"
MAX_SEQ = 2**63 - 1  # inbox_event.event_seq / last_event_seq are BIGINT


@dataclass(frozen=True)
class SoapEvent:
    """One event from ``events_Get``.

    ``data`` is the single child of ``<data>`` as a plain nested dict (leaves are strings, repeated
    elements lists), ``None`` when ``<data>`` is empty (deletes). ``problem`` is set when the event
    envelope itself could not be understood (bad date, several objects in ``<data>`` …): such an
    event is parked, but still acknowledged. ``raw_xml`` is the ``<event>`` element as received.
    """

    id: str
    type: str
    entry: str
    mission: str
    date: datetime | None
    data: dict[str, Any] | None
    data_tag: str | None
    raw: str | None = None
    problem: str | None = None
    date_ambiguous: bool = False  # a store-local date in the hour a DST fall-back repeats
    element: Any = field(default=None, compare=False, repr=False)  # lxml <event>, serialised on demand

    @property
    def raw_xml(self) -> str:
        """The ``<event>`` element as received (serialised only when needed: parking)."""
        if self.raw is not None:
            return self.raw
        if self.element is None:
            return ""
        from lxml import etree

        return str(etree.tostring(self.element, encoding="unicode"))

    @property
    def seq(self) -> int | None:
        """The event id as a number when it is a plain ASCII one that fits BIGINT (Centra's ids grow
        with time); ``None`` otherwise: the id is a string (``str.isdigit`` also accepts ``²``)."""
        if not (self.id.isascii() and self.id.isdigit()):
            return None
        number = int(self.id)
        return number if number <= MAX_SEQ else None


def is_ambiguous_local(value: str | None, store_tz: tzinfo) -> bool:
    """Is ``value`` an offset-less date that happens twice in the store's time zone (the hour a DST
    fall-back repeats)? ``parse_centra_date`` reads it as the first pass; it may be the second."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return False
    if parsed.tzinfo is not None:
        return False
    first, second = parsed.replace(tzinfo=store_tz, fold=0), parsed.replace(tzinfo=store_tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False
    # a time in a spring-forward gap also has two offsets, but neither round-trips: not a repeat
    return all(d.astimezone(UTC).astimezone(store_tz).replace(tzinfo=None) == parsed for d in (first, second))


def parse_centra_date(value: str | None, store_tz: tzinfo) -> datetime | None:
    """Parse both date formats Centra uses into aware UTC.

    ``2019-03-27 12:52:20`` (no offset) is in the store's own time zone; ISO-8601 with an offset
    (``2026-11-20T09:13:58+01:00`` or ``…Z``) carries its own. Raises ``ValueError`` otherwise.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.startswith("0000-00-00"):
        return None  # Centra's "no date"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=store_tz)
    return parsed.astimezone(UTC)
