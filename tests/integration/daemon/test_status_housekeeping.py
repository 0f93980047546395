"""``erpsync status`` figures and housekeeping, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from erpsync.clock import FakeClock
from erpsync.daemon.housekeeping import HousekeepingJob
from erpsync.daemon.metrics import store_figures
from erpsync.daemon.status import collect_status, render_status
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.engine import transaction
from erpsync.store.models import InboxEvent, JobRun, OutboundItem, ParkedItem, QuotaBucket, QuotaState

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _seed(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add(JobRun(run_id="r1", job="pull", started_at=NOW - timedelta(minutes=5),
                     finished_at=NOW - timedelta(minutes=5) + timedelta(seconds=2), outcome="ok",
                     counts={"fetched": 100, "acked": 100}))
        s.add(JobRun(run_id="r2", job="pull", started_at=NOW - timedelta(minutes=1),
                     finished_at=NOW - timedelta(seconds=50), outcome="retry", counts={"fetched": 0},
                     error="sim answered 503"))
        s.add(JobRun(run_id="r3", job="push_stock", started_at=NOW - timedelta(minutes=2), outcome="running"))
        s.add(InboxEvent(event_id="e1", type="order", entry="1", mission="update", status="applied",
                         acked_at=NOW))
        s.add(InboxEvent(event_id="e2", type="order", entry="2", mission="update", status="applied"))
        s.add(ParkedItem(kind="stock", key="WH|1", reason="unknown EAN"))
        s.add(ParkedItem(kind="stock", key="WH|2", reason="unknown EAN", resolved_at=NOW, resolution="dropped"))
        s.add(OutboundItem(entity="stock", erp_key="WH|3", status="accepted", accepted_hash="h"))
        s.add(QuotaBucket(name="mutations_1h", capacity=1800, tokens=900, updated_at=NOW.timestamp()))
        s.add(QuotaState(id=1, rate_limited_count=4))
        s.add(DaemonInstance(instance_id="h:1:a", host="h", pid=1, role="leader", state="running",
                             started_at=NOW - timedelta(hours=1), heartbeat_at=NOW - timedelta(seconds=3),
                             status_text="leader: pulled 100 events",
                             jobs={"pull": {"next_run": "2026-11-23T12:01:00+00:00", "enabled": True},
                                   "push_stock": {"next_run": None, "enabled": False,
                                                  "disabled_reason": "AuthenticationFailed: login rejected"}}))
        s.add(DaemonInstance(instance_id="h2:2:b", host="h2", pid=2, role="standby", state="running",
                             heartbeat_at=NOW - timedelta(seconds=4)))
        s.add(DaemonInstance(instance_id="gone:3:c", host="gone", pid=3, role="standby", state="running",
                             heartbeat_at=NOW - timedelta(hours=2)))


def test_status_reports_jobs_instances_backlog_parked_quota(engine: Engine) -> None:
    _seed(engine)
    st = collect_status(engine, NOW, ["pull", "push_stock", "housekeeping"])
    assert st["daemon"]["leader"]["instance"] == "h:1:a"
    assert [s["instance"] for s in st["daemon"]["standbys"]] == ["h2:2:b"]  # the stale one is gone
    pull = st["jobs"]["pull"]
    assert pull["outcome"] == "retry" and pull["error"] == "sim answered 503"
    assert pull["last_success"].startswith("2026-11-23T11:55")
    assert pull["next_run"] == "2026-11-23T12:01:00+00:00" and pull["duration_s"] == 10.0
    assert st["jobs"]["push_stock"]["enabled"] is False and st["jobs"]["push_stock"]["outcome"] == "running"
    assert st["jobs"]["housekeeping"]["last_run"] is None
    assert st["inbox_backlog"] == 1 and st["parked"] == {"stock": 1}
    # the governor's view: erpsync's share (1,800 × 0.8), topped up to NOW (stored at NOW: nothing to add)
    assert st["quota"]["mutations_1h"] == {"remaining": 900.0, "capacity": 1800.0, "allowance": 1440.0,
                                           "left_pct": 62.5}
    assert st["quota_left_pct"] == 62.5
    assert st["rate_limited_429s"] == 4
    text = render_status(st)
    assert "daemon: leader h:1:a (running)" in text and "standby: h2:2:b" in text
    assert "(DISABLED)" in text and "push_stock disabled: AuthenticationFailed" in text
    assert "pull: sim answered 503" in text
    assert "inbox backlog (stored, not acked): 1" in text and "parked items: stock=1 (total 1)" in text
    assert "quota: 62.5 % left; mutations_1h 900/1440 (62.5 %)" in text and "429s: 4" in text
    assert store_figures(engine)["outbound"] == {("stock", "accepted"): 1}


def test_status_after_a_takeover_does_not_list_the_dead_leader_as_a_standby(engine: Engine) -> None:
    """kill -9 of the leader: its row keeps role=leader and a heartbeat under a minute old while the
    standby that took over leads. The dead one is a former leader, not a standby."""
    with transaction(engine) as s:
        s.add(DaemonInstance(instance_id="old:1:a", host="old", pid=1, role="leader", state="running",
                             heartbeat_at=NOW - timedelta(seconds=25)))
        s.add(DaemonInstance(instance_id="new:2:b", host="new", pid=2, role="leader", state="running",
                             heartbeat_at=NOW - timedelta(seconds=2)))
        s.add(DaemonInstance(instance_id="sb:3:c", host="sb", pid=3, role="standby", state="running",
                             heartbeat_at=NOW - timedelta(seconds=3)))
    st = collect_status(engine, NOW, ["pull"])
    assert st["daemon"]["leader"]["instance"] == "new:2:b"
    assert [s["instance"] for s in st["daemon"]["standbys"]] == ["sb:3:c"]
    assert "standby: old:1:a" not in render_status(st)


def test_status_without_a_daemon(engine: Engine) -> None:
    st = collect_status(engine, NOW, ["pull"])
    assert st["daemon"]["running"] is False and st["jobs"]["pull"]["outcome"] is None
    assert "not running" in render_status(st)


def test_housekeeping_prunes_old_rows_and_closes_abandoned_runs(engine: Engine) -> None:
    clock = FakeClock(NOW.timestamp())
    old = NOW - timedelta(days=100)
    with transaction(engine) as s:
        s.add(JobRun(run_id="old", job="pull", started_at=old, finished_at=old, outcome="ok"))
        s.add(JobRun(run_id="recent", job="pull", started_at=NOW - timedelta(days=1), outcome="ok"))
        s.add(JobRun(run_id="dead", job="push_stock", started_at=NOW - timedelta(days=2), outcome="running"))
        s.add(JobRun(run_id="live", job="push_prices", started_at=NOW - timedelta(minutes=3), outcome="running"))
        s.add(DaemonInstance(instance_id="gone", host="h", pid=1, role="leader", state="stopped", heartbeat_at=old))
        s.add(ParkedItem(kind="event", key="x", reason="r", resolved_at=old, resolution="dropped"))
        s.add(ParkedItem(kind="event", key="y", reason="r"))
        s.add(InboxEvent(event_id="a", type="order", entry="1", mission="update", status="applied", acked_at=old))
        s.add(InboxEvent(event_id="b", type="order", entry="2", mission="update", status="applied"))
    result = HousekeepingJob(engine, clock=clock).run()
    assert result.outcome == "ok"
    assert result.counts == {"job_runs_abandoned": 1, "job_runs_pruned": 1, "instances_pruned": 1,
                             "parked_pruned": 1, "inbox_pruned": 1}
    with Session(engine) as s:
        runs = {r.run_id: r.outcome for r in s.exec(select(JobRun)).scalars()}  # type: ignore[call-overload]
        assert runs == {"recent": "ok", "dead": "abandoned", "live": "running", result.run_id: "ok"}
        assert [p.key for p in s.exec(select(ParkedItem)).scalars()] == ["y"]  # type: ignore[call-overload]
        assert [e.event_id for e in s.exec(select(InboxEvent)).scalars()] == ["b"]  # type: ignore[call-overload]


def test_status_reads_while_a_job_holds_the_sqlite_write_lock(sqlite_url: str) -> None:
    from sqlmodel import SQLModel

    from erpsync.store.engine import make_engine, make_read_engine

    writer = make_engine(sqlite_url, busy_timeout_ms=100)
    SQLModel.metadata.create_all(writer)
    _seed(writer)
    reader = make_read_engine(sqlite_url, busy_timeout_ms=100)
    try:
        with transaction(writer) as s:  # BEGIN IMMEDIATE: the write lock, as a running job holds it
            s.add(ParkedItem(kind="price", key="k", reason="r"))
            s.flush()
            st = collect_status(reader, NOW, ["pull"])  # would fail with "database is locked" otherwise
            assert st["parked"] == {"stock": 1}  # the uncommitted row is not seen
    finally:
        reader.dispose()
        writer.dispose()


def test_housekeeping_never_removes_an_unexported_unapplied_or_latest_version(engine: Engine) -> None:
    from erpsync.config import RetentionSettings
    from erpsync.store.models import CentraGeneric, CentraOrder

    clock = FakeClock(NOW.timestamp())
    old = NOW - timedelta(days=400)
    with transaction(engine) as s:
        # the latest (only) version of every object stays, exported or not, deleted or not
        s.add(CentraOrder(centra_id="o1", last_event_id="a1", version=3, changed_at=old))  # never exported
        s.add(CentraOrder(centra_id="o2", last_event_id="a2", version=2, changed_at=old, exported_version=2,
                          exported_at=old, deleted=True, deleted_at=old))
        s.add(CentraGeneric(centra_id="m1", type="market", last_event_id="a3", changed_at=old))
        for event_id, status, acked in (("a1", "applied", old), ("a2", "superseded", old),
                                        ("a3", "parked", old),  # acknowledged, but not applied
                                        ("a4", "applied", None),  # applied, never acknowledged
                                        ("a5", "applied", NOW - timedelta(hours=1))):  # within retention
            s.add(InboxEvent(event_id=event_id, type="order", entry=event_id, mission="update", status=status,
                             received_at=old, processed_at=old, acked_at=acked))
        s.add(ParkedItem(kind="event", key="open", reason="r", created_at=old, updated_at=old))
        s.add(ParkedItem(kind="stock", key="done", reason="r", resolved_at=old, resolution="applied"))
        s.add(ParkedItem(kind="stock", key="recent", reason="r", resolved_at=NOW - timedelta(hours=1),
                         resolution="applied"))
        s.add(JobRun(run_id="old", job="pull", started_at=old, finished_at=old, outcome="ok"))
        s.add(JobRun(run_id="recent", job="pull", started_at=NOW - timedelta(hours=1), outcome="ok"))
    retention = RetentionSettings(inbox_days=1, job_run_days=1, parked_days=1, instance_days=1)
    result = HousekeepingJob(engine, retention=retention, clock=clock).run()
    assert result.outcome == "ok"
    assert result.counts["inbox_pruned"] == 2 and result.counts["parked_pruned"] == 1
    assert result.counts["job_runs_pruned"] == 1
    with Session(engine) as s:
        assert sorted(e.event_id for e in s.exec(select(InboxEvent)).scalars()) == ["a3", "a4", "a5"]  # type: ignore[call-overload]
        assert sorted(o.centra_id for o in s.exec(select(CentraOrder)).scalars()) == ["o1", "o2"]  # type: ignore[call-overload]
        assert [g.centra_id for g in s.exec(select(CentraGeneric)).scalars()] == ["m1"]  # type: ignore[call-overload]
        assert sorted(p.key for p in s.exec(select(ParkedItem)).scalars()) == ["open", "recent"]  # type: ignore[call-overload]
        assert {r.run_id for r in s.exec(select(JobRun)).scalars()} == {"recent", result.run_id}  # type: ignore[call-overload]
    # the default retention keeps all of it (400 days is older than every default, so only the
    # acknowledged-and-applied rows could go: they are gone already)
    again = HousekeepingJob(engine, clock=clock).run()
    assert again.counts.get("inbox_pruned", 0) == 0
