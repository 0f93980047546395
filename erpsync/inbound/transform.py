"""Pure transforms: a ``SoapEvent`` (plain dicts) into the rows of the ERP mapping tables.

No I/O. What an event means (delete, update, update without an object) is decided here; the object
itself is validated and mapped by its model in ``erpsync.inbound.models`` (money and quantities
``Decimal``, never float; dates aware UTC, offset-less ones in the Centra store's time zone). A value
that cannot be understood raises ``ItemRejected`` naming its path; ``to_inbound_item`` turns that
into an item to park (it is still acknowledged).
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import Decimal
from typing import Any

from erpsync.errors import ItemRejected
from erpsync.inbound.models import object_change, parse_decimal
from erpsync.soap.models import KNOWN_EVENT_TYPES, MISSIONS, SoapEvent
from erpsync.store.inbox import MAX_EVENT_ID, EventMeta, InboundItem, ObjectChange

DEDICATED_TABLES = {"order": "order", "customer": "customer", "account": "account", "invoice": "invoice"}
# <data> holds the object as the matching X_Update names its items: paymentterms_Update and
# shippingterms_Update repeat the plural name (PROTOCOL.md §1.2), so their events may too
DATA_TAG_ALIASES = {"paymentterm": frozenset({"paymentterm", "paymentterms"}),
                    "shippingterm": frozenset({"shippingterm", "shippingterms"})}


def to_inbound_item(event: SoapEvent, store_tz: tzinfo) -> InboundItem:
    """The event as the inbox repository takes it: a change to apply, or a reason to park."""
    meta = EventMeta(event.id, event.seq, event.type, event.entry, event.mission, event.date, event.date_ambiguous)
    try:
        change = event_change(event, store_tz)
    except ItemRejected as exc:
        return InboundItem(meta, None, exc.reason, event.raw_xml)
    return InboundItem(meta, change, None, "")  # the raw XML is kept only for what gets parked


def event_change(event: SoapEvent, store_tz: tzinfo) -> ObjectChange:
    """What ``event`` does to its object. Raises ``ItemRejected`` for anything not mappable."""
    if event.problem:
        raise ItemRejected(event.problem, item_key=event.id)
    if len(event.id) > MAX_EVENT_ID:
        raise ItemRejected(f"event id longer than {MAX_EVENT_ID} characters", item_key=event.id)
    if event.type not in KNOWN_EVENT_TYPES:
        raise ItemRejected(f"unknown event type {event.type!r}", item_key=event.id)
    if event.mission not in MISSIONS:
        raise ItemRejected(f"unknown mission {event.mission!r}", item_key=event.id)
    table = DEDICATED_TABLES.get(event.type, "generic")
    generic_type = event.type if table == "generic" else None
    key = event.entry
    if len(key) > 128:
        raise ItemRejected(f"entry id longer than 128 characters: {key[:40]!r}…", item_key=event.id)
    if event.mission == "delete":
        return ObjectChange(table, key, delete=True, generic_type=generic_type)
    data = event.data
    if data is None:
        # an update that carries no object (``<data/>``: paymentterm, shippingterm, …): it is what it
        # is, an update of (type, entry); recorded in the generic table without touching its payload
        return ObjectChange("generic", key, generic_type=event.type)
    if event.data_tag not in DATA_TAG_ALIASES.get(event.type, (event.type,)):
        raise ItemRejected(f"<data> holds <{event.data_tag}>, expected <{event.type}>", item_key=event.id)
    # one declarative model per object type (erpsync.inbound.models): every bad path named at once
    return object_change(event.type, key, data, store_tz=store_tz)


# ------------------------------------------------------------------ value helpers


def money(value: Any, where: str) -> Decimal | None:
    """A Centra decimal string (``1135.00``, ``25.000``) as an exact ``Decimal``; empty -> None."""
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise ItemRejected(f"{where}: {exc}") from None
