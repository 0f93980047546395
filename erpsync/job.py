"""The one template every job follows (pull events, push stock/prices/products, housekeeping).

``Job.run()`` is final: it binds the log context (``job``, ``run_id``), records a ``job_run`` row,
times the run, applies the error policy and logs exactly one summary line (``job.finished``).
Subclasses fill in ``execute(run)`` and count what they did in ``run.counts``. Long jobs call
``run.checkpoint()`` between batches: it raises ``StopRequested`` when the daemon is shutting down
or this process is no longer the leader, so a batch is never cut in half.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, final

import structlog
from sqlalchemy import Engine, update
from sqlmodel import col

from erpsync.clock import Clock, SystemClock
from erpsync.errors import ErpsyncError, JobFailed, RetryLater
from erpsync.logs import get_logger, scrub
from erpsync.store.engine import transaction
from erpsync.store.models import JobRun


class StopRequested(ErpsyncError):
    """The run should end after the current batch (shutdown, or leadership lost)."""


@dataclass
class RunContext:
    job: str
    run_id: str
    stop_event: threading.Event
    may_write: Callable[[], bool] = lambda: True
    counts: Counter[str] = field(default_factory=Counter)

    def checkpoint(self) -> None:
        """Call between batches: stop cleanly on shutdown or lost leadership."""
        if self.stop_event.is_set():
            raise StopRequested("shutdown requested")
        if not self.may_write():
            raise StopRequested("this process is not the leader any more")


@dataclass(frozen=True)
class JobResult:
    job: str
    run_id: str
    outcome: str  # ok | stopped | retry | failed
    counts: dict[str, int]
    duration_s: float
    error: str | None = None
    error_class: str | None = None


class Job(ABC):
    name: ClassVar[str]

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        stop_event: threading.Event | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.stop_event = stop_event or threading.Event()
        self.may_write = may_write or (lambda: True)
        self.log = get_logger(f"erpsync.sync.{self.name}")

    @abstractmethod
    def execute(self, run: RunContext) -> None:
        """Do the work; count it in ``run.counts``; call ``run.checkpoint()`` between batches."""

    def summary_fields(self) -> dict[str, object]:
        """Extra fields for the summary line (e.g. quota left); override when useful."""
        return {}

    @final
    def run(self) -> JobResult:
        run_id = uuid.uuid4().hex[:16]
        structlog.contextvars.clear_contextvars()  # pool threads are reused: never inherit a context
        structlog.contextvars.bind_contextvars(job=self.name, run_id=run_id)
        started, t0 = self.clock.now(), self.clock.monotonic()
        with transaction(self.engine) as s:
            s.add(JobRun(run_id=run_id, job=self.name, started_at=started))
        ctx = RunContext(self.name, run_id, self.stop_event, self.may_write)
        outcome, error, error_class = "ok", None, None
        try:
            self.execute(ctx)
        except StopRequested as exc:
            outcome, error = "stopped", str(exc)
        except RetryLater as exc:
            outcome, error, error_class = "retry", str(exc), type(exc).__name__
        except Exception as exc:
            # JobFailed (an operator must act) or a bug: record the run, then let the caller see it
            self._finish(run_id, ctx, "failed", str(exc) or repr(exc), t0, type(exc).__name__)
            if not isinstance(exc, JobFailed):
                self.log.exception("job.crashed", error_class=type(exc).__name__)
            structlog.contextvars.clear_contextvars()
            raise
        result = self._finish(run_id, ctx, outcome, error, t0, error_class)
        structlog.contextvars.clear_contextvars()
        return result

    def _finish(
        self, run_id: str, ctx: RunContext, outcome: str, error: str | None, t0: float,
        error_class: str | None = None,
    ) -> JobResult:
        duration = self.clock.monotonic() - t0
        counts = dict(ctx.counts)
        error = None if error is None else scrub(error)  # a server may echo a token back
        with transaction(self.engine) as s:
            s.exec(update(JobRun).where(col(JobRun.run_id) == run_id).values(  # type: ignore[call-overload]
                finished_at=self.clock.now(), outcome=outcome, counts=counts, error=error))
        level = "info" if outcome in ("ok", "stopped") else ("warning" if outcome == "retry" else "error")
        getattr(self.log, level)(
            "job.finished", outcome=outcome, duration_s=round(duration, 3), error=error,
            error_class=error_class, **counts, **self.summary_fields())
        return JobResult(self.name, run_id, outcome, counts, duration, error, error_class)
