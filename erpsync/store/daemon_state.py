"""The daemon's own table: one row per ``erpsync run`` process, refreshed by its loop.

``erpsync status`` reads it to show which process leads, which stand by, when each job runs next and
whether a job was disabled by a fatal error. A row whose ``heartbeat_at`` is old belongs to a
process that is gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from erpsync.store.models import utcnow


class DaemonInstance(SQLModel, table=True):
    __tablename__ = "daemon_instance"
    instance_id: str = Field(max_length=128, primary_key=True)
    host: str = Field(max_length=255)
    pid: int
    role: str = Field(max_length=16)  # leader | standby | single
    state: str = Field(max_length=16)  # starting | running | unhealthy | stopping | stopped
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)
    status_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # per job: {"next_run": iso|None, "enabled": bool, "failures": int, "disabled_reason": str|None}
    jobs: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
