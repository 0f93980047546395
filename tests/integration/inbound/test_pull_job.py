"""The pull job against a recording fake queue, on real SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from erpsync.clock import FakeClock
from erpsync.errors import AuthenticationFailed, SourceUnavailable
from erpsync.inbound.pull import PullJob
from erpsync.inbound.retry import Backoff
from erpsync.store.engine import transaction
from erpsync.store.inbox import InboxRepository
from erpsync.store.models import (
    CentraCustomer,
    CentraGeneric,
    CentraOrder,
    CentraOrderLine,
    IdMap,
    InboxEvent,
    JobRun,
    ParkedItem,
)
from tests.integration.inbound.fakes import FakeQueue, generic_event, order_event

TZ = ZoneInfo("Europe/Stockholm")


def _job(engine: Engine, queue: FakeQueue, clock: FakeClock | None = None, **kw: object) -> PullJob:
    return PullJob(engine, queue, store_tz=TZ, clock=clock or FakeClock(), **kw)  # type: ignore[arg-type]


def _count(engine: Engine, model: type) -> int:
    """Row count in its own short transaction (never call inside another session: SQLite locks)."""
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one()[0])  # type: ignore[call-overload]


def test_drains_in_batches_of_100_stores_latest_versions_and_acks_everything(engine: Engine) -> None:
    events = [order_event(i, f"O{i % 50}", f"{i}.50", lines=3) for i in range(1, 251)]
    events.append(generic_event(251, "customer", "88", {"id": "88", "email": "a@b.se"}))
    events.append(generic_event(252, "warehouse", "WH1", {"id": "WH1", "name": "Main"}))
    queue = FakeQueue(events)
    result = _job(engine, queue).run()
    assert result.outcome == "ok"
    c = result.counts
    assert (c["fetched"], c["acked"], c["batches"], c["drained"]) == (252, 252, 3, 1)
    assert c["applied"] == 252 and c["superseded"] == 0 and c["duplicates"] == 0 and c["parked"] == 0
    assert queue.pending == [] and sorted(queue.acked, key=int) == [str(i) for i in range(1, 253)]
    assert [len(a) for a in queue.acks] == [100, 100, 52]
    with Session(engine) as s:
        orders = {o.centra_id: o for o in s.exec(select(CentraOrder)).scalars()}  # type: ignore[call-overload]
        assert len(orders) == 50
        # the latest event per order: ids 201..250 carry orders O1..O49, O0
        assert orders["O1"].order_total == Decimal("201.50") and orders["O1"].last_event_id == "201"
        assert orders["O1"].version == 5
        line = s.exec(select(CentraOrderLine).where(col(CentraOrderLine.order_id) == "O1")  # type: ignore[call-overload]
                      .order_by(col(CentraOrderLine.line_no))).scalars().first()
        assert line.price == Decimal("1.10") and line.tax == Decimal("25.000")
        assert s.get(CentraCustomer, "88").email == "a@b.se"  # type: ignore[union-attr]
        assert s.get(CentraGeneric, ("WH1", "warehouse")) is not None
        unacked = s.exec(select(func.count()).select_from(InboxEvent)  # type: ignore[call-overload]
                         .where(col(InboxEvent.acked_at).is_(None))).one()[0]
        assert unacked == 0
        run = s.exec(select(JobRun)).scalars().one()  # type: ignore[call-overload]
        assert run.outcome == "ok" and run.counts["acked"] == 252
    assert _count(engine, CentraOrderLine) == 150  # 3 lines per order, replaced not appended
    assert _count(engine, IdMap) == 52
    assert _count(engine, InboxEvent) == 252


def test_redelivered_events_are_recognised_and_not_applied_twice(engine: Engine) -> None:
    events = [order_event(i, f"O{i}", "10.00") for i in range(1, 6)]
    queue = FakeQueue(events)
    queue.fail_ack = [SourceUnavailable("down")] * 6  # all attempts of the first ack fail
    first = _job(engine, queue, backoff=Backoff(attempts=6)).run()
    assert first.outcome == "retry" and first.counts["applied"] == 5 and first.counts["acked"] == 0
    assert len(queue.pending) == 5  # stored but not acknowledged: Centra redelivers
    second = _job(engine, queue).run()
    assert second.counts["duplicates"] == 5 and second.counts["applied"] == 0 and second.counts["acked"] == 5
    assert queue.pending == []
    assert _count(engine, CentraOrder) == 5 and _count(engine, CentraOrderLine) == 10
    with Session(engine) as s:
        assert {o.version for o in s.exec(select(CentraOrder)).scalars()} == {1}  # type: ignore[call-overload]


def test_older_event_never_overwrites_newer_version(engine: Engine) -> None:
    newer = order_event(20, "O1", "20.00", status="completed")
    queue = FakeQueue([newer])
    _job(engine, queue).run()
    older = order_event(10, "O1", "10.00", status="pending")
    queue.pending = [older]
    result = _job(engine, queue).run()
    assert result.counts["superseded"] == 1 and result.counts["acked"] == 1
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and o.status == "completed" and o.order_total == Decimal("20.00") and o.version == 1
        assert s.exec(select(InboxEvent.status).where(col(InboxEvent.event_id) == "10")).one()[0] == "superseded"  # type: ignore[call-overload]


def test_non_numeric_ids_compare_by_date(engine: Engine) -> None:
    a = order_event(5, "O1", "5.00", minutes=50)
    b = order_event(6, "O1", "6.00", minutes=10)
    a = type(a)(**{**a.__dict__, "id": "ev-a"})
    b = type(b)(**{**b.__dict__, "id": "ev-b"})
    _job(engine, FakeQueue([a, b])).run()
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and o.order_total == Decimal("5.00")


def test_delete_marks_deleted_keeps_history_and_update_resurrects(engine: Engine) -> None:
    queue = FakeQueue([order_event(1, "O1", "10.00", lines=2), order_event(2, "O1", "", mission="delete")])
    _job(engine, queue).run()
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and o.deleted and o.deleted_at is not None and o.version == 2
        assert o.order_total == Decimal("10.00") and o.payload is not None  # history kept
    assert _count(engine, CentraOrderLine) == 2
    queue.pending = [order_event(3, "O1", "12.00", lines=1)]
    _job(engine, queue).run()
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and not o.deleted and o.order_total == Decimal("12.00") and o.version == 3
    assert _count(engine, CentraOrderLine) == 1


def test_unknown_type_and_unparseable_object_are_parked_acked_and_the_rest_stored(engine: Engine) -> None:
    good = order_event(1, "O1", "10.00")
    unknown = generic_event(2, "giftcard", "G1")
    bad = order_event(3, "O2", "ten crowns")
    good2 = order_event(4, "O3", "30.00")
    queue = FakeQueue([good, unknown, bad, good2])
    result = _job(engine, queue).run()
    assert result.counts["parked"] == 2 and result.counts["applied"] == 2 and result.counts["acked"] == 4
    assert queue.pending == []
    with Session(engine) as s:
        parked = {p.key: p for p in s.exec(select(ParkedItem)).scalars()}  # type: ignore[call-overload]
        assert set(parked) == {"2", "3"}
        assert "unknown event type 'giftcard'" in parked["2"].reason
        assert "not a decimal" in parked["3"].reason and parked["3"].payload == bad.raw_xml
        assert all(p.kind == "event" for p in parked.values())
        assert s.get(CentraOrder, "O1") is not None and s.get(CentraOrder, "O3") is not None
        assert s.get(CentraOrder, "O2") is None


def test_retriable_fetch_faults_back_off_on_the_clock_then_succeed(engine: Engine) -> None:
    clock = FakeClock()
    queue = FakeQueue([order_event(1, "O1", "1.00")])
    queue.fail_fetch = [SourceUnavailable("503"), SourceUnavailable("reset"), SourceUnavailable("timeout")]
    result = _job(engine, queue, clock, backoff=Backoff(attempts=5, base=1.0, cap=4.0)).run()
    assert result.outcome == "ok" and result.counts["acked"] == 1
    assert len(clock.sleeps) == 3 and all(0 <= w <= 4.0 for w in clock.sleeps)
    assert clock.sleeps[0] <= 1.0 and clock.sleeps[1] <= 2.0


def test_bad_login_is_fatal_and_acks_nothing(engine: Engine) -> None:
    queue = FakeQueue([order_event(1, "O1", "1.00")])
    queue.fail_fetch = [AuthenticationFailed("Login failed")]
    with pytest.raises(AuthenticationFailed):
        _job(engine, queue).run()
    assert queue.acks == [] and queue.fetches == 1
    with Session(engine) as s:
        assert s.exec(select(JobRun)).scalars().one().outcome == "failed"  # type: ignore[call-overload]


def test_ack_failure_after_commit_never_acks_unstored_and_retries(engine: Engine) -> None:
    queue = FakeQueue([order_event(i, f"O{i}", "1.00") for i in range(1, 4)])
    queue.fail_ack = [SourceUnavailable("reset")]
    clock = FakeClock()
    result = _job(engine, queue, clock).run()
    assert result.outcome == "ok" and queue.acks == [["1", "2", "3"]] and len(clock.sleeps) == 1


def test_stats_and_replay_of_parked_event(engine: Engine) -> None:
    queue = FakeQueue([order_event(1, "O1", "1.00"), generic_event(2, "giftcard", "G1")])
    _job(engine, queue).run()
    with transaction(engine) as s:
        stats = InboxRepository().stats(s)
    assert {(r["type"], r["status"], r["count"], r["acked"]) for r in stats} == {
        ("order", "applied", 1, 1), ("giftcard", "parked", 1, 1)}


def test_backoff_respects_retry_after_and_cap() -> None:
    b = Backoff(attempts=3, base=1.0, cap=8.0, max_wait=60.0)
    assert all(0 <= b.delay(n, None) <= min(8.0, 2 ** n) for n in range(10) for _ in range(20))
    assert b.delay(0, 30.0) == 30.0
    assert b.delay(0, 600.0) == 60.0
    clock = FakeClock()
    calls = []

    def always() -> None:
        calls.append(1)
        raise SourceUnavailable("x")

    with pytest.raises(SourceUnavailable):
        b.call(always, clock, "t")
    assert len(calls) == 3 and len(clock.sleeps) == 2


def test_erp_side_columns_survive_new_versions(engine: Engine) -> None:
    queue = FakeQueue([order_event(1, "O1", "1.00")])
    _job(engine, queue).run()
    with transaction(engine) as s:  # the ERP takes version 1 and records its own id
        o = s.get(CentraOrder, "O1")
        assert o is not None
        o.erp_taken_version, o.erp_taken_at = o.version, o.changed_at
        idm = s.exec(select(IdMap).where(col(IdMap.centra_id) == "O1")).scalars().one()  # type: ignore[call-overload]
        idm.erp_id = "SO-1"
    queue.pending = [order_event(2, "O1", "2.00")]
    _job(engine, queue).run()
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and o.version == 2 and o.erp_taken_version == 1  # changed since the ERP took it
        assert s.exec(select(IdMap.erp_id)).one()[0] == "SO-1"  # type: ignore[call-overload]


def test_database_locked_is_retry_later_and_nothing_is_acked(engine: Engine) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    class LockedRepository(InboxRepository):
        def store_batch(self, *args: object, **kwargs: object) -> Any:
            raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))

    queue = FakeQueue([order_event(1, "O1", "1.00")])
    result = _job(engine, queue, repository=LockedRepository()).run()
    assert result.outcome == "retry" and "database is locked" in (result.error or "")
    assert queue.acks == [] and len(queue.pending) == 1


def test_acked_at_is_recorded_even_when_a_later_fetch_ends_the_run(engine: Engine) -> None:
    class FailsSecondFetch(FakeQueue):
        def fetch(self) -> list[Any]:
            if self.fetches >= 1:
                self.fetches += 1
                raise SourceUnavailable("down")
            return super().fetch()

    queue = FailsSecondFetch([order_event(i, f"O{i}", "1.00") for i in range(1, 151)])
    result = _job(engine, queue, backoff=Backoff(attempts=2)).run()
    assert result.outcome == "retry" and result.counts["acked"] == 100
    with Session(engine) as s:
        acked = s.exec(select(func.count()).select_from(InboxEvent)  # type: ignore[call-overload]
                       .where(col(InboxEvent.acked_at).is_not(None))).one()[0]
    assert acked == 100


def test_an_event_twice_in_one_batch_is_applied_once_and_acknowledged_once(engine: Engine) -> None:
    ev = order_event(1, "O1", "1.00")
    queue = FakeQueue([ev, order_event(2, "O2", "2.00"), ev])
    result = _job(engine, queue).run()
    assert result.counts["applied"] == 2 and result.counts["duplicates"] == 1
    assert queue.acks == [["1", "2"]]


def _xml_event(eid: str, date: str, total: str) -> Any:
    from erpsync.soap.xml import parse_event_xml

    return parse_event_xml(
        f"<event><id>{eid}</id><type>order</type><entry>O1</entry><mission>update</mission><date>{date}</date>"
        f"<data><order><id>O1</id><ordertotal>{total}</ordertotal></order></data></event>", TZ)


def test_store_local_dates_in_the_repeated_dst_hour_do_not_lose_the_newer_event(engine: Engine) -> None:
    # Stockholm falls back at 03:00 CEST on 2026-10-25: 02:00-02:59 happens twice. Ids are not numeric,
    # so the dates order the versions: 02:10 arriving after 02:50 is the second pass (CET), the newer one
    first = _xml_event("ev-a", "2026-10-25 02:50:00", "1.00")
    second = _xml_event("ev-b", "2026-10-25 02:10:00", "2.00")
    queue = FakeQueue([first])
    _job(engine, queue).run()
    queue.pending = [second]
    result = _job(engine, queue).run()
    assert result.counts["applied"] == 1 and result.counts["superseded"] == 0
    with Session(engine) as s:
        o = s.get(CentraOrder, "O1")
        assert o is not None and o.order_total == Decimal("2.00") and o.last_event_id == "ev-b"


def test_unambiguous_store_local_dates_still_order_versions(engine: Engine) -> None:
    newer = _xml_event("ev-a", "2026-10-25 04:50:00", "1.00")
    older = _xml_event("ev-b", "2026-10-25 04:10:00", "2.00")
    queue = FakeQueue([newer])
    _job(engine, queue).run()
    queue.pending = [older]
    assert _job(engine, queue).run().counts["superseded"] == 1


def test_an_event_without_id_is_parked_once_not_again_on_every_run(engine: Engine) -> None:
    # it cannot be acknowledged, so Centra delivers it on every run: one parked row, attempts counted
    bad = order_event(1, "O1", "1.00")
    bad = type(bad)(**{**bad.__dict__, "id": "", "problem": "event without <id>"})
    queue = FakeQueue([bad, order_event(2, "O2", "2.00")])
    for _ in range(3):
        _job(engine, queue).run()
    with Session(engine) as s:
        parked = s.exec(select(ParkedItem)).scalars().all()  # type: ignore[call-overload]
    assert len(parked) == 1 and parked[0].attempts == 3 and parked[0].key == "entry:O1"
    assert queue.acked == ["2"]
