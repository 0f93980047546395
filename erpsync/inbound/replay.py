"""Replaying parked events (``erpsync parked retry``): the raw XML kept with the parked row is
parsed and mapped again (a newer erpsync may understand it now) and applied under the same
version guard as a live pull. An event that still cannot be mapped stays parked with its new
reason and one more attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlmodel import Session

from erpsync.errors import ProtocolError
from erpsync.inbound.transform import to_inbound_item
from erpsync.soap.xml import parse_event_xml
from erpsync.store.inbox import EventMeta, InboundItem, InboxRepository
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
        event = parse_event_xml(parked.payload or "", store_tz)
        item = to_inbound_item(event, store_tz)
    except ProtocolError as exc:
        meta = EventMeta(parked.key, None, "", "", "", None)
        item = InboundItem(meta, None, str(exc), parked.payload or "")
    status = repo.replay(session, parked, item, now)
    return ReplayResult(parked.id, parked.key, status, item.park_reason if status == "parked" else None)
