"""Adaptive batch sizes per mutation kind (AIMD), within Centra's per-call limits.

Big batches spend fewer mutation tokens, but a store that is slow or overloaded answers them with
499/5xx or not at all (PROTOCOL.md §2.2). ``BatchSizer`` learns the largest size the store answers
quickly:

- after a *full* batch answered within ``target_seconds``: grow by ``step`` (additive), up to
  ``maximum`` (the contract's per-call limit, or the configured cap where none is stated); below a
  size that failed lately, close in on it by halves without reaching it (``PROBE_AFTER`` good
  batches later it is probed again);
- after a batch answered slower than the target, a 499, a 5xx, a timeout or a lost connection: at
  once back to the last size answered well since the previous failure, else halve; a batch larger
  than the new size is split and sent again (``setStock`` / ``setPrices*`` are absolute: safe to
  resend). So a store that slows down sees a few failures, not a storm.

A batch's answer time is the store's: real seconds of the request alone (``Sender.answer_seconds``),
never the time spent waiting for quota tokens, and never stretched by a simulator's scaled clock.

The learnt size is kept by ``store`` (the quota governor's shared state in the database), so a
restart, and every process, starts from it; ``erpsync quota`` and ``/metrics`` show it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from erpsync.logs import get_logger

log = get_logger("erpsync.outbound.batching")

#: full batches answered well below an old failure before the size probes above it again
PROBE_AFTER = 50


class SizeStore(Protocol):
    def batch_size(self, kind: str) -> int | None: ...

    def learn_batch_size(self, kind: str, size: int) -> None: ...


@dataclass
class BatchSizer:
    kind: str
    size: int
    maximum: int
    minimum: int = 1
    target_seconds: float = 5.0
    step: int = 0  # 0: 5 % of the maximum (at least 1)
    store: SizeStore | None = None
    #: every change, for benchmarks and logs: (kind, old, new, why)
    changes: list[tuple[str, int, int, str]] = field(default_factory=list)
    on_change: Callable[[str, int], None] | None = None
    log_changes: bool = True  # False for a plan's simulation
    _ceiling: int | None = field(default=None, repr=False)  # the smallest size that failed lately
    _good: int = field(default=0, repr=False)  # the largest full batch answered well since then
    _streak: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.step <= 0:
            self.step = max(1, math.ceil(self.maximum * 0.05))
        learnt = self.store.batch_size(self.kind) if self.store is not None else None
        if learnt is not None:
            self.size = learnt
        self.size = max(self.minimum, min(self.maximum, self.size))

    def answered(self, items: int, seconds: float) -> None:
        """A batch of ``items`` was answered (accepted or with userErrors) after ``seconds``."""
        if seconds > self.target_seconds:
            self._shrink(items, f"slow answer {seconds:.1f} s")
            return
        if items < self.size:
            return  # a short (last) batch says nothing about bigger ones
        self._good = max(self._good, items)
        if self._ceiling is None:
            self._set(min(self.maximum, self.size + self.step), "fast answer")
            return
        # below a size that failed: close in on it by halves, never reaching it
        self._set(min(self._ceiling - 1, self.size + max(1, (self._ceiling - items) // 2)), "fast answer")
        self._streak += 1
        if self._streak >= PROBE_AFTER:  # conditions change: probe above the old failure again
            self._ceiling, self._streak = None, 0

    def failed(self, items: int) -> bool:
        """A batch of ``items`` failed in a way a smaller batch may avoid (499, 5xx, timeout).
        Returns True when the batch is now bigger than the size: split it instead of resending."""
        self._shrink(items, "server gave up")
        return items > self.size

    def _shrink(self, items: int, why: str) -> None:
        """Back to the last size answered well since the previous failure, else halve."""
        self._ceiling = items if self._ceiling is None else min(self._ceiling, items)
        new = self._good if 0 < self._good < items else min(self.size, items) // 2
        self._good, self._streak = 0, 0
        self._set(max(self.minimum, new), why)

    def _set(self, new: int, why: str) -> None:
        # never below the minimum: a one-item batch that failed leaves a ceiling of 1, and a batch
        # size of 0 would send nothing, for ever
        new = max(self.minimum, min(self.maximum, new))
        if new == self.size:
            return
        old, self.size = self.size, new
        self.changes.append((self.kind, old, new, why))
        if self.log_changes:
            log.info("push.batch_size", mutation=self.kind, old=old, new=new, reason=why)
        if self.store is not None:
            self.store.learn_batch_size(self.kind, new)
