"""Two pullers on one database fetching the same batch (Centra hands the oldest unacknowledged
events to whoever asks): each event is applied exactly once and neither run fails."""

from __future__ import annotations

import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from erpsync.clock import FakeClock
from erpsync.inbound.pull import PullJob
from erpsync.job import JobResult
from erpsync.store.engine import make_engine
from erpsync.store.models import CentraOrder, CentraOrderLine, InboxEvent
from tests.integration.inbound.fakes import FakeQueue, order_event

TZ = ZoneInfo("Europe/Stockholm")


class _Points:
    """Duck-typed ``CrashPoints``: run a callback at a point instead of killing the process."""

    def __init__(self, **actions: Any) -> None:
        self.actions = actions

    def armed(self, point: str) -> bool:
        return False

    def hit(self, point: str) -> None:
        action = self.actions.get(point)
        if action is not None:
            action()


def test_two_pullers_storing_the_same_batch_apply_each_event_once(engine: Engine, db_url: str) -> None:
    # a new order and a newer version of an existing one, in the same batch
    seed = FakeQueue([order_event(1, "O0", "1.00")])
    PullJob(engine, seed, store_tz=TZ, clock=FakeClock()).run()
    events = [order_event(i, f"O{i % 40}", f"{i}.00") for i in range(2, 62)]
    # one queue each: both fetched the batch before either acknowledged it
    queues = {"a": FakeQueue(events), "b": FakeQueue(events)}

    a_mid = threading.Event()

    def a_mid_transaction() -> None:
        a_mid.set()  # A has written its rows, not committed: B starts storing the same batch now
        time.sleep(1.5)

    def b_after_fetch() -> None:
        assert a_mid.wait(20)

    results: dict[str, JobResult] = {}
    errors: dict[str, BaseException] = {}

    def run(name: str, points: _Points) -> None:
        eng = make_engine(db_url)
        try:
            results[name] = PullJob(eng, queues[name], store_tz=TZ, clock=FakeClock(), crash=points).run()  # type: ignore[arg-type]
        except BaseException as exc:
            errors[name] = exc
        finally:
            eng.dispose()

    ta = threading.Thread(target=run, args=("a", _Points(mid_transaction=a_mid_transaction)))
    tb = threading.Thread(target=run, args=("b", _Points(after_fetch=b_after_fetch)))
    ta.start()
    tb.start()
    ta.join(60)
    tb.join(60)
    assert errors == {}
    assert {n: r.outcome for n, r in results.items()} == {"a": "ok", "b": "ok"}
    a, b = results["a"].counts, results["b"].counts
    assert a["applied"] + b["applied"] + a["superseded"] + b["superseded"] == 60
    assert a["duplicates"] + b["duplicates"] == 60  # the same 60 events, stored by one of them
    assert queues["a"].pending == [] and queues["b"].pending == []
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(InboxEvent)).one()[0] == 61  # type: ignore[call-overload]
        orders = {o.centra_id: o for o in s.exec(select(CentraOrder)).scalars()}  # type: ignore[call-overload]
        assert len(orders) == 40
        # O0 got events 40 (v2) and … : versions count applied events, never doubled
        assert orders["O0"].version == 1 + len([i for i in range(2, 62) if i % 40 == 0])
        assert orders["O2"].version == len([i for i in range(2, 62) if i % 40 == 2])
        assert orders["O21"].last_event_id == "61"
        assert s.exec(select(func.count()).select_from(CentraOrderLine)).one()[0] == 80  # type: ignore[call-overload]
