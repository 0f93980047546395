"""Replaying parked events (``erpsync parked retry``): the raw XML kept with the parked row (the
raw JSON event, with the object it was read with, for the GraphQL queue's ``gql:<id>`` rows) is
parsed and mapped again (a newer erpsync may understand it now) and applied under the same
version guard as a live pull. An event that still cannot be mapped stays parked with its new
reason and one more attempt."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from sqlmodel import Session

from erpsync.errors import ProtocolError
from erpsync.inbound.transform import to_inbound_item
from erpsync.soap.xml import parse_event_xml
from erpsync.store.inbox import EventMeta, InboundItem, InboxRepository, source_of
from erpsync.store.models import ParkedItem


@dataclass(frozen=True)
class ReplayResult:
    parked_id: int | None
    key: str
    status: str  # applied | superseded | parked
    reason: str | None = None


def replay_parked_event(
    session: Session, repo: InboxRepository, parked: ParkedItem, store_tz: tzinfo, now: datetime,
) -> ReplayResult:
    """Re-map one parked ``event`` row and apply it inside the caller's transaction."""
    try:
        if source_of(parked.key) == "graphql":
            item = _graphql_item(parked)
        else:
            event = parse_event_xml(parked.payload or "", store_tz)
            item = to_inbound_item(event, store_tz)
    except ProtocolError as exc:
        meta = EventMeta(parked.key, None, "", "", "", None)
        item = InboundItem(meta, None, str(exc), parked.payload or "")
    status = repo.replay(session, parked, item, now)
    return ReplayResult(parked.id, parked.key, status, item.park_reason if status == "parked" else None)


def _graphql_item(parked: ParkedItem) -> InboundItem:
    """A parked GraphQL event (its JSON, ``object`` = what was read with it) as the inbox takes it."""
    import json
    from decimal import Decimal

    from erpsync.inbound import gql_transform

    try:
        event = json.loads(parked.payload or "", parse_float=Decimal)
    except ValueError:
        raise ProtocolError(f"parked GraphQL event {parked.key}: its payload is not JSON") from None
    if not isinstance(event, dict):
        raise ProtocolError(f"parked GraphQL event {parked.key}: its payload is not an event object")
    order = event.get("object") if event.get("objectType") == "Order" and isinstance(event.get("object"), dict) \
        else None
    item = gql_transform.to_inbound_item(event, order)
    # the object is the one read when the event was parked: a same-second tie is judged as of then (a
    # SOAP snapshot stored since wins it, as in a live pull), never as a fresh read
    created = parked.created_at
    read_at = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    return replace(item, meta=replace(item.meta, read_at=read_at))
