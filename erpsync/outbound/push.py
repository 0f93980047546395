"""What the three push jobs share: the port to Centra, retries, bisection and dry runs.

- ``CentraPort`` is the small slice of the GraphQL client the jobs use (``query`` / ``mutate``
  returning the response's ``data``); ``erpsync.outbound.port.GraphqlPort`` adapts the
  QUOTA engineer's client to it, tests pass recording fakes.
- ``Sender.call`` retries transient faults (``RetryLater``: network, 5xx, 429, unknown outcome)
  with backoff on the injected clock, up to ``push.max_attempts``; it is only used for calls that
  are safe to repeat as they are (queries, ``setStock``, ``setPrices*``, updates). Creates go
  through the catalogue job's read-back loop instead.
- ``bisect`` sends a batch and, when Centra rejects it with ``userErrors`` (which means nothing
  was applied), splits it in halves until the bad items are alone; those are parked with the
  userError message and every good item still lands.
"""

from __future__ import annotations

import os
import signal
import threading
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine

from erpsync.clock import Clock
from erpsync.config import PushSettings
from erpsync.errors import ItemRejected, OutcomeUnknown, RateLimited, RetryLater
from erpsync.job import Job, RunContext
from erpsync.logs import get_logger
from erpsync.outbound.batching import BatchSizer

T = TypeVar("T")

log = get_logger("erpsync.sync.push")

#: Longest backoff between two attempts of the same call (clock seconds).
MAX_BACKOFF = 60.0


#: Crash-safety tests: ``ERPSYNC_TEST_PUSH_CRASH_AT=after_send:3`` SIGKILLs the process the 3rd
#: time a mutation request was answered and nothing of it is recorded yet. Unset: a no-op.
CRASH_ENV = "ERPSYNC_TEST_PUSH_CRASH_AT"
_crash_seen: Counter[str] = Counter()


def crash_point(point: str) -> None:
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return
    for part in spec.split(","):
        name, _, nth = part.strip().partition(":")
        if name == point:
            _crash_seen[point] += 1
            if _crash_seen[point] == int(nth or "1"):
                os.kill(os.getpid(), signal.SIGKILL)


class CentraPort(Protocol):
    """The GraphQL calls the push jobs make. Both return the response's ``data``.

    Errors: ``RateLimited`` / ``SourceUnavailable`` (nothing applied, retry later),
    ``OutcomeUnknown`` (a mutation may or may not have been applied), ``JobFailed`` subclasses
    (authentication, permission, schema): stop the job.
    """

    def query(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]: ...

    def mutate(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]: ...


@dataclass
class Sent:
    """One call a dry run would have made (or a real run made, when recording)."""

    operation: str
    variables: Mapping[str, Any]
    lane: str


@dataclass
class DryRunSink:
    """Collects what a ``--dry-run`` would send; sends nothing."""

    calls: list[Sent] = field(default_factory=list)

    def record(self, operation: str, variables: Mapping[str, Any], lane: str) -> None:
        self.calls.append(Sent(operation, variables, lane))


def user_errors(payload: Mapping[str, Any] | None) -> list[str]:
    """The userError messages of one mutation payload (empty: accepted)."""
    if payload is None:
        return ["Centra returned no payload for the mutation"]
    return [str(e.get("message", "")) for e in payload.get("userErrors") or []]


def user_warnings(payload: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((payload or {}).get("userWarnings") or [])


def wire_money(value: Decimal) -> float:
    """A Decimal amount as the GraphQL ``Float`` the contract demands, refusing silent rounding.

    The float's shortest repr must read back as the same Decimal (true for every amount typed with
    up to 15 significant digits); otherwise the item is rejected rather than pushed wrong.
    """
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ItemRejected(f"amount {value} cannot be sent exactly as a GraphQL Float")
    return as_float


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SplitBatch(Exception):
    """The batch failed in a way a smaller one may avoid and the batch size shrank: send its lines
    again in smaller batches (raised out of ``bisect``; only for absolute, repeatable mutations)."""


class Sender:
    """Calls Centra through the port, retrying transient faults with backoff (clock-based)."""

    def __init__(self, port: CentraPort, clock: Clock, max_attempts: int, stop_event: threading.Event) -> None:
        self.port = port
        self.clock = clock
        self.max_attempts = max_attempts
        self.stop_event = stop_event
        self.retries = 0

    def backoff(self, attempt: int, exc: RetryLater, at_least: float = 0.0) -> None:
        """Wait before attempt ``attempt + 1``: Retry-After when the server said, else exponential
        (and at least ``at_least`` seconds)."""
        delay = exc.retry_after if exc.retry_after is not None else min(MAX_BACKOFF, 0.5 * 2 ** attempt)
        delay = max(delay, at_least)
        self.retries += 1
        log.warning("push.retry", attempt=attempt, error_class=type(exc).__name__, error=str(exc),
                    delay_s=round(delay, 3))
        # always wait: a 429 without Retry-After (an ungoverned client) must not be retried at once
        self.clock.sleep(delay)

    def call(self, fn: Callable[[], T], split: Callable[[RetryLater], bool] | None = None) -> T:
        """Run ``fn`` (a call that is safe to repeat as it is) until it succeeds or the attempts are
        spent; then the last ``RetryLater`` ends the job as "retry" (nothing recorded as accepted).
        When ``split(exc)`` says so, ``SplitBatch`` is raised instead of resending the same batch."""
        attempt = 1
        while True:
            try:
                return fn()
            except RetryLater as exc:
                if split is not None and split(exc):
                    raise SplitBatch(str(exc)) from exc
                if attempt >= self.max_attempts or self.stop_event.is_set():
                    raise
                self.backoff(attempt, exc)
                attempt += 1

    def answer_seconds(self, started: float) -> float:
        """How long the store took to answer the call made since ``started`` (``real_monotonic``).

        Real time, whatever the clock's scale: a store's answer takes as long as it takes, and on a
        simulator's scaled clock a 20 ms answer read in simulated seconds (5.8 s at ×288) would count
        as slow and shrink every batch to one item. And only the answer: a port that knows it (the
        GraphQL port) leaves out the time spent waiting for quota tokens, which says nothing about
        how big a batch the store can take."""
        known = getattr(self.port, "answer_seconds", None)
        seconds = known() if known is not None else None
        return seconds if seconds is not None else self.clock.real_monotonic() - started

    def query(self, document: str, variables: Mapping[str, Any], lane: str) -> Mapping[str, Any]:
        return self.call(lambda: self.port.query(document, variables, lane=lane))

    def mutate_idempotent(self, document: str, variables: Mapping[str, Any], lane: str,
                          sizer: BatchSizer | None = None, items: int = 0) -> Mapping[str, Any]:
        """Send a repeatable mutation; with ``sizer``, its answer time (or failure) for a batch of
        ``items`` adapts the batch size, and a batch now too big raises ``SplitBatch``."""
        if sizer is None:
            return self.call(lambda: self.port.mutate(document, variables, lane=lane))

        def attempt() -> Mapping[str, Any]:
            started = self.clock.real_monotonic()
            data = self.port.mutate(document, variables, lane=lane)
            sizer.answered(items, self.answer_seconds(started))
            return data

        # only a request that was sent and then failed (499, 5xx, timeout) says the batch may be too big;
        # a refused connection or a 429 says nothing about its size
        return self.call(attempt, lambda exc: isinstance(exc, OutcomeUnknown) and sizer.failed(items))


#: What one batch send returns: userError messages (non-empty: nothing applied), the items
#: Centra skipped with a warning (index in the batch → message) while applying the rest, and the
#: items the userErrors' paths point at (index → message; empty when the paths do not say).
SendResult = tuple[list[str], dict[int, str], dict[int, str]]

SKIPPED_PREFIX = "Skipped:"


def bisect(
    items: Sequence[T],
    send: Callable[[Sequence[T]], SendResult],
    on_accepted: Callable[[Sequence[T]], None],
    on_rejected: Callable[[T, str], None],
) -> int:
    """Send ``items``; when Centra rejects the batch with ``userErrors`` (nothing applied), park the
    bad items and send the rest again.

    The bad items are found from the userErrors' paths when they name batch lines (the named lines
    and the rest are sent apart: a couple of extra mutations), otherwise by bisection: halves are
    sent until each bad item is alone. An item is rejected only when Centra rejects it alone. ``send(batch)``
    returns ``(userErrors, skipped, located)``; with no userErrors the batch was applied except the
    ``skipped`` items (Centra's skip-with-warning policy), which are rejected with their warning.
    ``on_accepted`` is called per accepted sub-batch (record it durably there), ``on_rejected`` once
    per bad item. Returns how many mutations were sent.
    """
    sent = 0
    stack: list[tuple[Sequence[T], bool]] = [(items, True)]
    while stack:
        batch, trust_paths = stack.pop()
        if not batch:
            continue
        errors, skipped, located = send(batch)
        sent += 1
        if not errors:
            good = [item for i, item in enumerate(batch) if i not in skipped]
            if good:
                on_accepted(good)
            for i in sorted(skipped):
                on_rejected(batch[i], skipped[i])
            continue
        if len(batch) == 1:
            on_rejected(batch[0], "; ".join(dict.fromkeys(errors)))
            continue
        named = [i for i in located if 0 <= i < len(batch)]
        if trust_paths and 0 < len(named) < len(batch):
            # the lines the paths name apart from the rest; an item is parked only once Centra
            # rejects it on its own, so a misleading path costs mutations, never a good item
            stack.append(([item for i, item in enumerate(batch) if i not in located], False))
            stack.append(([batch[i] for i in sorted(named)], False))
            continue
        mid = len(batch) // 2
        stack.append((batch[mid:], True))
        stack.append((batch[:mid], True))  # popped first: keeps the original order
    return sent


def error_lines(errors: Sequence[Mapping[str, Any]], list_name: str) -> dict[int, str]:
    """userErrors whose path is ``input.<list_name>.<i>…`` → {i: messages}; {} if any error's path
    names no line (then the batch is bisected instead)."""
    out: dict[int, list[str]] = {}
    for e in errors:
        path = [str(p) for p in e.get("path") or []]
        if len(path) < 3 or path[:2] != ["input", list_name] or not path[2].isdigit():
            return {}
        out.setdefault(int(path[2]), []).append(str(e.get("message", "")))
    return {i: "; ".join(dict.fromkeys(msgs)) for i, msgs in out.items()}


def raw_user_errors(payload: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((payload or {}).get("userErrors") or [])


def _index(value: Any) -> int | None:
    text = str(value)
    return int(text) if text.isdigit() else None


def line_of(path: Sequence[Any], list_name: str) -> int | None:
    """The batch line a response path points at: the index after ``list_name`` (``input.productSizes.4.x``
    → 4; a leading mutation name or other prefix is tolerated). None when it names no line."""
    parts = [str(p) for p in path]
    for k in range(len(parts) - 1):
        if parts[k] == list_name:
            return _index(parts[k + 1])
    return None


def warning_text(message: str) -> str:
    """Centra's warning text for a parked reason (the simulator's ``Skipped:`` prefix dropped)."""
    text = message.strip()
    return text[len(SKIPPED_PREFIX):].strip() if text.startswith(SKIPPED_PREFIX) else text


def skipped_lines(warnings: Sequence[Mapping[str, Any]], list_name: str) -> dict[int, str]:
    """Batch lines a ``userWarning`` points at → {i: Centra's message}.

    Whatever the wording: a warning about one line of a batch means Centra did not apply that line as
    sent (skip-with-warning, or a substitution it chose itself), so it is parked with the message and
    its hash stays unaccepted; a later push corrects it once the ERP data changes.
    """
    out: dict[int, list[str]] = {}
    for w in warnings:
        i = line_of(list(w.get("path") or []), list_name)
        if i is not None:
            out.setdefault(i, []).append(warning_text(str(w.get("message", ""))))
    return {i: "; ".join(dict.fromkeys(msgs)) for i, msgs in out.items()}


class PushJob(Job):
    """Common state of the push jobs: engine, port, settings, ledger, dry-run sink."""

    lane: str = "catalogue"

    def __init__(
        self,
        engine: Engine,
        centra: CentraPort | None,
        push: PushSettings,
        *,
        clock: Clock | None = None,
        stop_event: threading.Event | None = None,
        may_write: Callable[[], bool] | None = None,
        dry_run: DryRunSink | None = None,
    ) -> None:
        super().__init__(engine, clock=clock, stop_event=stop_event, may_write=may_write)
        from erpsync.outbound.state import OutboundLedger

        if centra is None and dry_run is None:
            raise ValueError("a push job needs a Centra port unless it is a dry run")
        self.centra = centra
        self.push = push
        self.dry_run = dry_run
        self.ledger = OutboundLedger(engine, self.clock)
        self.sender = Sender(centra, self.clock, push.max_attempts, self.stop_event) if centra else None
        self._mappings_checked: set[str] = set()

    def execute(self, run: RunContext) -> None:
        try:
            self.push_once(run)
        finally:
            self.ledger.log_parked()  # push.item_parked: a few lines per run, however many were parked
            if self.dry_run is None and self.ledger.analyze_if_grown():
                self.log.info("push.analyzed", table="outbound_item")

    @abstractmethod
    def push_once(self, run: RunContext) -> None:
        """One pass: send what changed; count it in ``run.counts``; ``run.checkpoint()`` between batches."""

    def check_mappings_once(self, kind: str) -> None:
        """Before the first push of this process: check the configured ``push.<kind>s`` entries
        against Centra, keep the result for ``erpsync status`` / ``/metrics`` and log each unknown
        one (``push.mapping_unknown``). A network fault fails this run (retried); the next run checks."""
        if self.dry_run is not None or kind in self._mappings_checked:
            return
        from erpsync.outbound.mappings import announce, check_mappings, record

        sender = self.sender
        assert sender is not None
        report = check_mappings(lambda doc, variables: sender.query(doc, variables, self.lane), self.push, (kind,))
        record(self.engine, report.checked, self.clock.now(), replace_kinds=(kind,))
        announce(report.unknown, self.log)
        self._mappings_checked.add(kind)

    def requeue_retried(self, run: RunContext, *entities: str) -> None:
        """Items an operator retried with ``erpsync parked retry`` are sent again by this run."""
        if self.dry_run is not None:
            return
        for entity in entities:
            n = self.ledger.requeue_retried(entity)
            if n:
                run.counts["requeued"] += n
                self.log.info("push.requeued", entity=entity, items=n)

    def sizer(self, kind: str, start: int, maximum: int) -> BatchSizer:
        """The adaptive batch size of mutation ``kind``, learnt sizes kept by the port's governor."""
        size_store = getattr(self.centra, "size_store", None)
        store = size_store() if size_store is not None and self.dry_run is None else None
        return BatchSizer(kind, start, maximum, target_seconds=self.push.batch_target_seconds, store=store)

    def declare_backlog(self, mutations: int) -> None:
        """Tell the quota governor how many mutations this job's lane has ready (0 when done), so
        lower lanes leave it the next tokens (a port without a governor ignores it)."""
        declare = getattr(self.centra, "declare_backlog", None)
        if declare is not None and self.dry_run is None:
            declare(self.lane, mutations)

    def settle(self, exc: RetryLater) -> float:
        """How long to wait before reading back after ``exc``: a request whose outcome is unknown
        may still be running in Centra; reading back before it lands would re-create it."""
        return self.push.unknown_outcome_wait_seconds if isinstance(exc, OutcomeUnknown) else 0.0

    def summary_fields(self) -> dict[str, object]:
        return {"dry_run": self.dry_run is not None, "retries": self.sender.retries if self.sender else 0}

    def create_with_readback(
        self,
        create: Callable[[], tuple[str | None, list[str]]],
        read_back: Callable[[], str | None],
    ) -> tuple[str | None, list[str]]:
        """Create one object (``create`` returns (remote id, userErrors)) without ever duplicating it.

        After a fault that may have applied the create (anything but a 429), ``read_back`` looks
        the object up by its externalId first; only when it is absent is the create sent again.
        """
        assert self.sender is not None
        attempt = 1
        while True:
            try:
                return create()
            except RetryLater as exc:
                if attempt >= self.push.max_attempts or self.stop_event.is_set():
                    raise
                self.sender.backoff(attempt, exc, self.settle(exc))
                attempt += 1
                if not isinstance(exc, RateLimited):
                    found = self.sender.call(read_back)
                    if found is not None:
                        log.info("push.read_back_found", remote_id=found, error_class=type(exc).__name__)
                        return found, []
