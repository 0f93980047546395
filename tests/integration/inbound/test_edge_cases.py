"""What a real Centra queue sends that a tidy one does not, through the pull job into real SQLite
and PostgreSQL: updates without an object, an older event after a newer one, one id twice in a
batch, delete then update, dates in the repeated DST hour, both date formats in one payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from erpsync.clock import FakeClock
from erpsync.inbound.pull import PullJob
from erpsync.soap.models import SoapEvent
from erpsync.store.models import CentraGeneric, InboxEvent, ParkedItem
from tests.integration.inbound.fakes import FakeQueue, generic_event

TZ = ZoneInfo("Europe/Stockholm")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _run(engine: Engine, queue: FakeQueue) -> dict[str, int]:
    result = PullJob(engine, queue, store_tz=TZ, clock=FakeClock()).run()
    assert result.outcome == "ok", result
    return result.counts


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one()[0])  # type: ignore[call-overload]


def empty_update(eid: int, etype: str, entry: str) -> SoapEvent:
    return SoapEvent(id=str(eid), type=etype, entry=entry, mission="update", date=T0 + timedelta(minutes=eid),
                     data=None, data_tag=None, raw=f"<event><id>{eid}</id><data/></event>")


def test_updates_with_an_empty_data_are_stored_not_parked_and_keep_a_stored_payload(engine: Engine) -> None:
    _run(engine, FakeQueue([generic_event(1, "warehouse", "WH1", {"id": "WH1", "name": "Main"})]))
    queue = FakeQueue([
        empty_update(2, "paymentterm", "NET30"),
        empty_update(3, "shippingterm", "DHL"),
        empty_update(4, "warehouse", "WH1"),  # an update that names no object: the stored one stays
        empty_update(5, "order", "1311"),
    ])
    counts = _run(engine, queue)
    assert (counts["applied"], counts["parked"], counts["acked"]) == (4, 0, 4)
    assert _count(engine, ParkedItem) == 0
    with Session(engine) as s:
        term = s.get(CentraGeneric, ("NET30", "paymentterm"))
        assert term is not None and term.payload is None and term.last_event_id == "2"
        assert term.last_event_date is not None and not term.deleted
        assert s.get(CentraGeneric, ("DHL", "shippingterm")) is not None
        wh = s.get(CentraGeneric, ("WH1", "warehouse"))
        assert wh is not None and wh.payload == {"id": "WH1", "name": "Main"} and wh.last_event_id == "4"
        order = s.get(CentraGeneric, ("1311", "order"))
        assert order is not None and order.payload is None
        statuses = {e.event_id: e.status for e in s.exec(select(InboxEvent)).scalars()}  # type: ignore[call-overload]
    assert statuses == {str(i): "applied" for i in range(1, 6)}
