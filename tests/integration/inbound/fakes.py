"""A recording fake of Centra's event queue (the ``EventSource`` protocol) for job tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from erpsync.soap.models import SoapEvent


class FakeQueue:
    """Oldest-first queue; ``fetch`` returns up to 100 unacked events; ``ack`` removes ids.

    ``fail_fetch`` / ``fail_ack`` are lists of exceptions raised by the next calls.
    """

    def __init__(self, events: Sequence[SoapEvent] = ()) -> None:
        self.pending: list[SoapEvent] = list(events)
        self.fetches = 0
        self.acks: list[list[str]] = []
        self.fail_fetch: list[Exception] = []
        self.fail_ack: list[Exception] = []
        self.on_ack: Callable[[list[str]], None] | None = None

    def fetch(self) -> list[SoapEvent]:
        self.fetches += 1
        if self.fail_fetch:
            raise self.fail_fetch.pop(0)
        return self.pending[:100]

    def ack(self, event_ids: Sequence[str]) -> None:
        if self.fail_ack:
            raise self.fail_ack.pop(0)
        ids = list(event_ids)
        self.acks.append(ids)
        drop = set(ids)
        self.pending = [e for e in self.pending if e.id not in drop]

    @property
    def acked(self) -> list[str]:
        return [i for batch in self.acks for i in batch]


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def order_event(eid: int, order: str, total: str, *, status: str = "pending", lines: int = 2,
                mission: str = "update", minutes: int | None = None) -> SoapEvent:
    data = None
    if mission == "update":
        data = {
            "id": order, "ordernumber": order, "status": status, "store": "1", "currency": "SEK",
            "ordertotal": total, "customer": {"id": "88"},
            "products": {"product": [
                {"id": f"P{n}", "sku": f"SKU{n}", "qty": "1", "price": f"{n}.10", "subtotal": f"{n}.10",
                 "tax": "25.000",
                 "sizes": {"size": [{"id": "M", "sku": f"SKU{n}M", "orderitem": {"id": f"{order}-{n}"}}]}}
                for n in range(1, lines + 1)]},
        }
    return SoapEvent(
        id=str(eid), type="order", entry=order, mission=mission,
        date=T0 + timedelta(minutes=eid if minutes is None else minutes),
        data=data, data_tag="order" if data else None, raw=f"<event><id>{eid}</id></event>")


def generic_event(eid: int, etype: str, entry: str, data: dict[str, str] | None = None) -> SoapEvent:
    return SoapEvent(id=str(eid), type=etype, entry=entry, mission="update", date=T0 + timedelta(minutes=eid),
                     data=data or {"id": entry}, data_tag=etype, raw=f"<event><id>{eid}</id></event>")
