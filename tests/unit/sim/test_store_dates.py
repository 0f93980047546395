"""Event dates: the store's own time zone is an option, and ISO dates carry offsets other than the store's."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from erpsync.clock import FakeClock
from erpsync.sim.events import EventQueue
from erpsync.sim.generator import EventGenerator, parse_store_date
from erpsync.sim.server import SimOptions, SimServer

NEW_YORK = ZoneInfo("America/New_York")


def test_generator_writes_store_local_dates_in_the_configured_zone() -> None:
    clock = FakeClock(start=1_800_000_000.0)
    queue = EventQueue()
    events = EventGenerator(queue, clock, seed=4, store_tz=NEW_YORK).generate(200)
    local = [e.date for e in events if "T" not in e.date]
    iso = [e.date for e in events if "T" in e.date]
    assert local and iso
    for text in local:  # no clock advance: every date is the same instant
        assert parse_store_date(text, NEW_YORK).timestamp() == clock.time()
    for text in iso:
        assert datetime.fromisoformat(text).timestamp() == clock.time()
    offsets = {datetime.fromisoformat(t).utcoffset() for t in iso}
    assert offsets == {datetime.fromtimestamp(clock.time(), NEW_YORK).utcoffset(), UTC.utcoffset(None)}


def test_sim_option_store_timezone_and_default_enqueue_date() -> None:
    sim = SimServer(SimOptions(port=0, store_timezone="America/New_York"))
    event = sim.enqueue_event("customer", "1", data={"id": "1"})
    parsed = parse_store_date(event.date, NEW_YORK)
    assert abs(parsed.timestamp() - sim.clock.time()) < 5
    assert sim.state()["clock"]["store_timezone"] == "America/New_York"
