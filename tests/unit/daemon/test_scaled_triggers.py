"""`erpsync run` on a time-scaled simulator's clock: every trigger is read in that clock's time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger

from erpsync.app import triggers
from erpsync.clock import ScaledClock, SystemClock
from erpsync.config import load_settings

EXAMPLE = Path(__file__).parents[3] / "config" / "erpsync.example.toml"
SECRETS = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "s3cret-pw", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "tok-123456"}


def test_intervals_and_the_housekeeping_cron_follow_a_scaled_clock() -> None:
    settings = load_settings(EXAMPLE, SECRETS)
    epoch = datetime(2026, 11, 23, 0, 0, tzinfo=UTC).timestamp()
    clock = ScaledClock(60.0, epoch)  # one simulated minute per real second
    scaled = triggers(settings, clock)
    real = triggers(settings, SystemClock())
    for name in ("pull", "push_stock", "push_prices", "push_products", "quota_refresh"):
        a, b = scaled[name], real[name]
        assert isinstance(a, IntervalTrigger) and isinstance(b, IntervalTrigger)
        assert a.interval.total_seconds() * 60 == b.interval.total_seconds()
    # housekeeping at 03:17 simulated time: 197 simulated minutes after the epoch = 197 real seconds
    start = datetime.fromtimestamp(epoch + 10, UTC)
    fire = scaled["housekeeping"].get_next_fire_time(None, start)
    assert fire is not None and fire.timestamp() == epoch + (3 * 60 + 17)
    assert clock.epoch + (fire.timestamp() - clock.epoch) * clock.factor == epoch + (3 * 3600 + 17 * 60)
    # the next one a simulated day later: 1,440 real seconds
    after = scaled["housekeeping"].get_next_fire_time(fire, fire)
    assert after is not None and (after - fire).total_seconds() == 24 * 60
    # on the system clock the cron is the plain one
    plain = real["housekeeping"].get_next_fire_time(None, start)
    assert plain == datetime(2026, 11, 23, 3, 17, tzinfo=UTC)


def test_a_scaled_cron_always_moves_forward_whatever_the_epoch() -> None:
    """APScheduler's catch-up loop asks for the next fire time after the last one until it passes
    now: a fire time read back a microsecond early (float round trip) must not come back again."""
    settings = load_settings(EXAMPLE, SECRETS)
    for epoch, factor in ((1796159419.132731, 144.0), (1796159419.987654, 60.0), (1764547200.5, 3600.0)):
        trigger = triggers(settings, ScaledClock(factor, epoch))["housekeeping"]
        fire = trigger.get_next_fire_time(None, datetime.fromtimestamp(epoch, UTC))
        assert fire is not None
        for _ in range(50):  # fifty simulated days, each one simulated day after the other
            after = trigger.get_next_fire_time(fire, fire)
            assert after is not None and after > fire
            assert abs((after - fire).total_seconds() - 86_400 / factor) < 0.01
            fire = after
