"""Housekeeping: prune what only grows (old job runs, dead instance rows, resolved parked items,
long-acknowledged inbox rows) per ``[retention]``, and close job runs left ``running`` by a process
that died.

What is never pruned: an object's row (erpsync keeps only the latest version of every Centra object;
an older version is replaced, not kept, so there is no superseded version to prune), an inbox row
whose event is not acknowledged or not applied (parked events stay until resolved), an open parked
item, a running job run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col

from erpsync.config import RetentionSettings
from erpsync.job import Job, RunContext
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.engine import transaction
from erpsync.store.models import InboxEvent, JobRun, ParkedItem

# no run lasts this long: a row still "running" after it belongs to a process that was killed
ABANDONED_AFTER = timedelta(hours=24)
#: inbox statuses whose row may go once acknowledged: the event's data is in its object's row
#: (applied), or a newer version of it is (superseded)
DONE = ("applied", "superseded")


class HousekeepingJob(Job):
    name = "housekeeping"

    def __init__(self, engine: Any, *, retention: RetentionSettings | None = None, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.retention = retention or RetentionSettings()

    def execute(self, run: RunContext) -> None:
        now = self.clock.now()
        keep = self.retention
        steps = [
            ("job_runs_abandoned", update(JobRun).where(
                col(JobRun.outcome) == "running", col(JobRun.started_at) < now - ABANDONED_AFTER,
                col(JobRun.run_id) != run.run_id).values(
                    outcome="abandoned", finished_at=now, error="process ended during the run")),
            ("job_runs_pruned", delete(JobRun).where(
                col(JobRun.started_at) < now - timedelta(days=keep.job_run_days), col(JobRun.outcome) != "running")),
            ("instances_pruned", delete(DaemonInstance).where(
                col(DaemonInstance.heartbeat_at) < now - timedelta(days=keep.instance_days))),
            ("parked_pruned", delete(ParkedItem).where(
                col(ParkedItem.resolved_at).is_not(None),
                col(ParkedItem.resolved_at) < now - timedelta(days=keep.parked_days))),
            ("inbox_pruned", delete(InboxEvent).where(
                col(InboxEvent.acked_at).is_not(None), col(InboxEvent.acked_at) < now - timedelta(days=keep.inbox_days),
                col(InboxEvent.status).in_(DONE))),
        ]
        for key, stmt in steps:
            run.checkpoint()
            with transaction(self.engine) as s:
                result = s.exec(stmt)  # type: ignore[call-overload]
                run.counts[key] += int(result.rowcount or 0)
