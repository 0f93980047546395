"""The pull job: Centra's SOAP event queue into the ERP mapping tables, exactly once.

    fetch (≤100) → store the batch in ONE transaction → commit → events_Done for all of it → again
    while a fetch returned 100.

A batch that cannot be parsed is retried like any transient fault; once the same malformed answer
has come back ``malformed_retries`` times, its events are salvaged one by one (a lenient parse finds
their ids): the readable ones are stored as usual, the unreadable ones parked with their raw bytes,
and all of them acknowledged, so one bad event never stalls the queue.

Acknowledging only after the commit means a crash anywhere re-delivers events; the unique event id
in the inbox makes a re-delivered event harmless, and the version guard keeps an older event from
overwriting a newer stored one. Events that cannot be mapped (unknown type, bad values) are parked
and acknowledged with the rest, so the queue never stalls.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import tzinfo

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from erpsync.clock import Clock
from erpsync.errors import MalformedResponse, RetryLater
from erpsync.inbound.crash import CrashPoints
from erpsync.inbound.retry import Backoff
from erpsync.inbound.transform import to_inbound_item
from erpsync.job import Job, RunContext
from erpsync.soap.client import EventSource
from erpsync.soap.models import FETCH_LIMIT, SoapEvent
from erpsync.store.engine import transaction
from erpsync.store.inbox import InboundItem, InboxRepository


class _CollectorPauses:
    """How many batches (of any thread) run with the cyclic collector paused by us."""

    lock = threading.Lock()
    count = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration of one batch (process-wide, re-entrant
    across threads: on again when the last batch ends, and only if it was on before).

    A batch allocates some 30,000 containers (the dicts and lists of 100 Centra orders, their rows)
    that are all freed by reference counting; the collector would walk them several times, and the
    whole start-up heap (zeep's WSDL, SQLAlchemy's metadata, pydantic's schemas) on each full
    collection: a fifth of the pull's CPU, measured (tests/bench/bench_pull.py --phases). Cyclic
    garbage made meanwhile is collected once the collector is back on.
    """
    state = _CollectorPauses
    with state.lock:
        paused = state.count > 0 or gc.isenabled()  # someone else turned it off: leave it alone
        if paused:
            state.count += 1
            gc.disable()
    try:
        yield
    finally:
        if paused:
            with state.lock:
                state.count -= 1
                if state.count == 0:
                    gc.enable()


COUNTS = ("fetched", "applied", "superseded", "duplicates", "parked", "acked", "batches", "drained")


class PullJob(Job):
    """``run.counts``: fetched, applied, superseded (older than what is stored), duplicates
    (already in the inbox), parked, acked, batches, drained (1 when the queue was left empty)."""

    name = "pull"

    def __init__(
        self,
        engine: Engine,
        source: EventSource,
        *,
        store_tz: tzinfo,
        clock: Clock | None = None,
        stop_event: threading.Event | None = None,
        may_write: Callable[[], bool] | None = None,
        max_batches: int = 1000,
        backoff: Backoff | None = None,
        crash: CrashPoints | None = None,
        repository: InboxRepository | None = None,
        malformed_retries: int = 3,
    ) -> None:
        super().__init__(engine, clock=clock, stop_event=stop_event, may_write=may_write)
        self.source = source
        self.store_tz = store_tz
        self.max_batches = max_batches
        self.backoff = backoff or Backoff()
        self.crash = crash if crash is not None else CrashPoints.from_env()  # no-op unless a test arms it
        self.repo = repository or InboxRepository()
        self.malformed_retries = max(1, malformed_retries)
        self._malformed: tuple[str, int] = ("", 0)  # (digest of the last malformed answer, times seen)

    def execute(self, run: RunContext) -> None:
        for name in COUNTS:
            run.counts[name] += 0
        acked: list[str] = []  # acknowledged, acked_at not yet recorded (done with the next batch)
        try:
            self._drain(run, acked)
        finally:
            if acked:
                self._record_acked(acked)

    #: a fetch returning this many events means more may be waiting: fetch again at once
    page_size = FETCH_LIMIT

    def _fetch(self) -> list[InboundItem]:
        """One page of the queue as inbox items (the GraphQL source overrides this)."""
        events = self.backoff.call(self._fetch_soap, self.clock, "events_Get")
        return [to_inbound_item(e, self.store_tz) for e in events]

    def _drain(self, run: RunContext, acked: list[str]) -> None:
        for _ in range(self.max_batches):
            run.checkpoint()
            with collector_paused():
                if not self._batch(run, acked):
                    return

    def _batch(self, run: RunContext, acked: list[str]) -> bool:
        """Fetch, store, commit and acknowledge one page. False when the queue is drained."""
        items = self._fetch()
        events = items
        self.crash.hit("after_fetch")
        run.counts["fetched"] += len(events)
        if not events:
            run.counts["drained"] = 1
            return False
        try:
            with transaction(self.engine) as session:
                now = self.clock.now()
                outcome = self.repo.store_batch(
                    session, items, now=now, mid_hook=lambda: self.crash.hit("mid_transaction"))
                # the previous batch's acknowledgement, recorded in this transaction (one commit less)
                self.repo.mark_acked(session, acked, now)
        except OperationalError as exc:  # locked, disconnected, deadlock: nothing stored, nothing acked
            raise RetryLater(f"storing the batch failed: {type(exc.orig).__name__}: {exc.orig}") from exc
        acked.clear()
        # committed: from here on a crash only causes a harmless re-delivery
        run.counts["applied"] += outcome.applied
        run.counts["superseded"] += outcome.superseded
        run.counts["duplicates"] += outcome.duplicates
        run.counts["parked"] += outcome.parked
        run.counts["batches"] += 1
        self.crash.hit("after_commit")
        ids = outcome.ack_ids
        if ids and self.crash.armed("during_ack"):
            self._ack(ids[: max(1, len(ids) // 2)])
        self.crash.hit("during_ack")
        if ids:
            self._ack(ids)
            acked.extend(ids)
        run.counts["acked"] += len(ids)
        self.log.info("events.stored", batch=run.counts["batches"], fetched=len(events),
                      applied=outcome.applied, superseded=outcome.superseded,
                      duplicates=outcome.duplicates, parked=outcome.parked)
        if len(events) < self.page_size:
            run.counts["drained"] = 1
            return False
        return True

    def _fetch_soap(self) -> list[SoapEvent]:
        """One ``events_Get``; a malformed answer seen ``malformed_retries`` times is salvaged."""
        try:
            events = self.source.fetch()
        except MalformedResponse as exc:
            digest, seen = self._malformed
            seen = seen + 1 if digest == exc.digest else 1
            self._malformed = (exc.digest, seen)
            if seen < self.malformed_retries or exc.salvage is None:
                self.log.warning("events.malformed_batch", times=seen, retries=self.malformed_retries,
                                 bytes=len(exc.body), error=str(exc)[:300])
                raise
            salvaged: list[SoapEvent] = list(exc.salvage())
            if not salvaged:  # nothing that even looks like an event (a proxy's page?): keep failing
                self.log.error("events.malformed_batch_unrecoverable", times=seen, bytes=len(exc.body),
                               error=str(exc)[:300])
                raise
            self._malformed = ("", 0)
            self.log.error("events.malformed_batch_salvaged", times=seen, bytes=len(exc.body),
                           events=len(salvaged), unreadable=sum(1 for e in salvaged if e.problem),
                           hint="unreadable events are parked with their raw bytes and acknowledged")
            return salvaged[:FETCH_LIMIT]
        self._malformed = ("", 0)
        return events

    def _record_acked(self, ids: list[str]) -> None:
        """``inbox_event.acked_at`` is informational (best effort): failing to record it is logged,
        never allowed to hide the error that ended the run."""
        try:
            with transaction(self.engine) as session:
                self.repo.mark_acked(session, ids, self.clock.now())
        except OperationalError as exc:
            self.log.warning("events.ack_not_recorded", count=len(ids), error=str(exc.orig))

    def _ack(self, ids: list[str]) -> None:
        def call() -> None:
            self.source.ack(ids)

        self.backoff.call(call, self.clock, "events_Done")
