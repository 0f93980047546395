"""Housekeeping: prune what only grows (old job runs, dead instance rows, resolved parked items,
long-acknowledged inbox rows) and close job runs left ``running`` by a process that died."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import col

from erpsync.job import Job, RunContext
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.engine import transaction
from erpsync.store.models import InboxEvent, JobRun, ParkedItem

JOB_RUN_RETENTION = timedelta(days=30)
INSTANCE_RETENTION = timedelta(days=7)
PARKED_RETENTION = timedelta(days=90)
# an acked event is never re-delivered by Centra; its inbox row only guards against a replay within
# the same queue, so it can go long after the ack
INBOX_RETENTION = timedelta(days=90)
# no run lasts this long: a row still "running" after it belongs to a process that was killed
ABANDONED_AFTER = timedelta(hours=24)


class HousekeepingJob(Job):
    name = "housekeeping"

    def execute(self, run: RunContext) -> None:
        now = self.clock.now()
        steps = [
            ("job_runs_abandoned", update(JobRun).where(
                col(JobRun.outcome) == "running", col(JobRun.started_at) < now - ABANDONED_AFTER,
                col(JobRun.run_id) != run.run_id).values(
                    outcome="abandoned", finished_at=now, error="process ended during the run")),
            ("job_runs_pruned", delete(JobRun).where(
                col(JobRun.started_at) < now - JOB_RUN_RETENTION, col(JobRun.outcome) != "running")),
            ("instances_pruned", delete(DaemonInstance).where(
                col(DaemonInstance.heartbeat_at) < now - INSTANCE_RETENTION)),
            ("parked_pruned", delete(ParkedItem).where(
                col(ParkedItem.resolved_at).is_not(None), col(ParkedItem.resolved_at) < now - PARKED_RETENTION)),
            ("inbox_pruned", delete(InboxEvent).where(
                col(InboxEvent.acked_at).is_not(None), col(InboxEvent.acked_at) < now - INBOX_RETENTION)),
        ]
        for key, stmt in steps:
            run.checkpoint()
            with transaction(self.engine) as s:
                result = s.exec(stmt)  # type: ignore[call-overload]
                run.counts[key] += int(result.rowcount or 0)
