"""The simulated GraphQL events queue (PROTOCOL.md §2.4), fed by the same emissions as the SOAP queue.

Every event the generator or the order book emits (``EventQueue.listeners``) becomes a GraphQL
event when a listener for its object type (and change type) is set: SOAP ``order`` → ``Order``,
``customer`` → ``Customer``, ``account`` → ``Account``, ``invoice`` → ``Invoice`` (always
``object: null``: not in ``EventTarget``), ``pricelist``/``warehouse``/``size``/``stock`` →
``Pricelist``/``Warehouse``/``ProductSize``/``StockChange``; the rest has no GraphQL object type.
``objectReference`` is the SOAP entry (the order number for orders; non-numeric entries have no
Int64 reference and are not queued). Change type: ``DELETED`` for a delete, ``CREATED`` the first
time an object is seen, ``COMPLETED`` when an order's status becomes ``completed``, else ``UPDATED``.

``events(where, limit)``: oldest unconfirmed first, ``limit`` 1–200 (else an error), filters hide
without removing. ``object`` is the *current* state at fetch time (orders from the order book;
customers and accounts from the generator), null for ``DELETED`` and once the object is gone.
``confirmEvents``: more than 200 ids → ``userErrors`` and nothing confirmed; unknown or already
confirmed ids are ignored ([open]). ``setEventListeners`` is additive; an empty ``changeTypes``
list is [open] → ``userErrors``. ``unsetEventListeners`` also deletes the queued events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erpsync.clock import Clock

OBJECT_TYPES = {"order": "Order", "customer": "Customer", "account": "Account", "invoice": "Invoice",
                "pricelist": "Pricelist", "warehouse": "Warehouse", "size": "ProductSize",
                "stock": "StockChange"}
CHANGE_TYPES = ("CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED")
MAX_CONFIRM = 200
INTEGRATION_NAME = "erpsync"


@dataclass(frozen=True)
class GqlEvent:
    id: int
    object_type: str
    change_type: str
    reference: int
    created_at: str  # ISO-8601 with offset


class GqlEventQueue:
    """Listeners and the queue; thread-safe. ``resolve(object_type, reference)`` gives the current
    object view (or None)."""

    def __init__(self, clock: Clock, resolve: Callable[[str, int], dict[str, Any] | None],
                 first_id: int = 1) -> None:
        self.clock = clock
        self.resolve = resolve
        self._lock = threading.Lock()
        self._first_id = first_id
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._next = self._first_id
            self._events: dict[int, GqlEvent] = {}
            self._listeners: dict[str, tuple[set[str] | None, str]] = {}  # type -> (change types|None=all, created)
            self._seen: set[tuple[str, int]] = set()
            self.confirmed = 0
            self.emitted = 0

    # ------------------------------------------------------------------ feeding

    def on_soap_event(self, type_: str, entry: str, mission: str, data: Mapping[str, Any] | None,
                      at: datetime | None = None) -> None:
        """Queue the GraphQL event of one emitted change (``at``: when it happened; default now)."""
        object_type = OBJECT_TYPES.get(type_)
        if object_type is None or not entry.isdigit():
            return
        ref = int(entry)
        with self._lock:
            first = (object_type, ref) not in self._seen
            self._seen.add((object_type, ref))
            if mission == "delete":
                change = "DELETED"
            elif first:
                change = "CREATED"
            elif type_ == "order" and isinstance(data, Mapping) and data.get("status") == "completed":
                change = "COMPLETED"
            else:
                change = "UPDATED"
            listener = self._listeners.get(object_type)
            if listener is None or (listener[0] is not None and change not in listener[0]):
                return
            created = self._now() if at is None else at.astimezone(UTC).isoformat(timespec="seconds")
            ev = GqlEvent(self._next, object_type, change, ref, created)
            self._events[ev.id] = ev
            self._next += 1
            self.emitted += 1

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock.time(), UTC).isoformat(timespec="seconds")

    # ------------------------------------------------------------------ API

    def fetch(self, where: Mapping[str, Any] | None, limit: int) -> list[GqlEvent]:
        if not 1 <= limit <= 200:
            raise ValueError(f"limit must be between 1 and 200, got {limit}")
        where = where or {}
        types, changes = where.get("objectType"), where.get("changeType")
        with self._lock:
            out = []
            for eid in sorted(self._events):
                ev = self._events[eid]
                if types is not None and ev.object_type not in types:
                    continue
                if changes is not None and ev.change_type not in changes:
                    continue
                out.append(ev)
                if len(out) >= limit:
                    break
            return out

    def confirm(self, ids: list[int]) -> tuple[list[GqlEvent], list[dict[str, Any]]]:
        if len(ids) > MAX_CONFIRM:
            return [], [{"message": f"at most {MAX_CONFIRM} event ids per call, got {len(ids)}",
                         "path": ["input", "eventsIds"]}]
        with self._lock:
            done = [self._events.pop(i) for i in dict.fromkeys(ids) if i in self._events]
            self.confirmed += len(done)
        return done, []

    def set_listeners(self, inputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        errors = [{"message": "changeTypes must not be empty (omit it for all)", "path": ["input", str(i)]}
                  for i, item in enumerate(inputs) if item.get("changeTypes") == []]
        if errors:
            return errors
        with self._lock:
            for item in inputs:
                otype, changes = str(item["objectType"]), item.get("changeTypes")
                cur = self._listeners.get(otype)
                created = cur[1] if cur is not None else self._now()
                if changes is None or (cur is not None and cur[0] is None):
                    self._listeners[otype] = (None, created)
                else:
                    before: set[str] = set(cur[0]) if cur is not None and cur[0] is not None else set()
                    self._listeners[otype] = (before | set(changes), created)
        return []

    def unset_listeners(self, inputs: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            for item in inputs:
                otype, changes = str(item["objectType"]), item.get("changeTypes")
                cur = self._listeners.get(otype)
                if changes is None or cur is None or cur[0] is None:
                    self._listeners.pop(otype, None)
                    drop = set(CHANGE_TYPES)
                else:
                    left = cur[0] - set(changes)
                    if left:
                        self._listeners[otype] = (left, cur[1])
                    else:
                        self._listeners.pop(otype, None)
                    drop = set(changes)
                for eid in [e.id for e in self._events.values()
                            if e.object_type == otype and e.change_type in drop]:
                    del self._events[eid]

    def listeners(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"integrationName": INTEGRATION_NAME, "objectType": t,
                     "changeTypes": sorted(c) if c is not None else list(CHANGE_TYPES),
                     "createdAt": lambda _i, format=None, _c=created: _c,
                     "updatedAt": lambda _i, format=None, _c=created: _c}
                    for t, (c, created) in sorted(self._listeners.items())]

    def snapshot(self) -> dict[str, Any]:
        """The queue, its listeners and counters as JSON-able data (``--state-file``)."""
        with self._lock:
            return {
                "next_id": self._next,
                "events": [[e.id, e.object_type, e.change_type, e.reference, e.created_at]
                           for e in sorted(self._events.values(), key=lambda e: e.id)],
                "listeners": {t: [sorted(c) if c is not None else None, created]
                              for t, (c, created) in self._listeners.items()},
                "seen": sorted([t, r] for t, r in self._seen),
                "confirmed": self.confirmed,
                "emitted": self.emitted,
            }

    def restore(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._next = int(data.get("next_id", self._first_id))
            self._events = {int(e[0]): GqlEvent(int(e[0]), str(e[1]), str(e[2]), int(e[3]), str(e[4]))
                            for e in data.get("events", [])}
            self._listeners = {str(t): (set(c) if c is not None else None, str(created))
                               for t, (c, created) in dict(data.get("listeners", {})).items()}
            self._seen = {(str(t), int(r)) for t, r in data.get("seen", [])}
            self.confirmed = int(data.get("confirmed", 0))
            self.emitted = int(data.get("emitted", 0))

    def depth(self) -> int:
        with self._lock:
            return len(self._events)

    def inspect(self) -> dict[str, Any]:
        with self._lock:
            return {"depth": len(self._events), "emitted": self.emitted, "confirmed": self.confirmed,
                    "listeners": {t: (sorted(c) if c is not None else "all") for t, (c, _) in self._listeners.items()}}

    # ------------------------------------------------------------------ GraphQL views

    def view(self, ev: GqlEvent) -> dict[str, Any]:
        def obj(_info: Any) -> dict[str, Any] | None:
            if ev.change_type == "DELETED":
                return None
            return self.resolve(ev.object_type, ev.reference)

        return {"id": ev.id, "objectType": ev.object_type, "changeType": ev.change_type,
                "objectReference": ev.reference, "createdAt": lambda _i, format=None: ev.created_at,
                "store": None, "market": None, "object": obj}

    def query_root(self) -> dict[str, Callable[..., Any]]:
        def events(_info: Any, where: dict[str, Any] | None = None, limit: int = 20) -> list[dict[str, Any]]:
            return [self.view(e) for e in self.fetch(where, limit)]

        def event_listeners(_info: Any) -> list[dict[str, Any]]:
            return self.listeners()

        return {"events": events, "eventListeners": event_listeners}

    def mutation_root(self) -> dict[str, Callable[..., Any]]:
        def set_listeners(_info: Any, input: list[dict[str, Any]]) -> dict[str, Any]:
            errors = self.set_listeners(input)
            return {"eventListeners": self.listeners(), "userErrors": errors, "userWarnings": []}

        def unset_listeners(_info: Any, input: list[dict[str, Any]]) -> dict[str, Any]:
            self.unset_listeners(input)
            return {"eventListeners": self.listeners(), "userErrors": [], "userWarnings": []}

        def confirm(_info: Any, input: dict[str, Any]) -> dict[str, Any]:
            done, errors = self.confirm([int(i) for i in input.get("eventsIds") or []])
            return {"events": [self.view(e) for e in done], "userErrors": errors, "userWarnings": []}

        return {"setEventListeners": set_listeners, "unsetEventListeners": unset_listeners,
                "confirmEvents": confirm}


EVENT_QUERY_PERMISSIONS: dict[str, str | None] = {"events": "Event:read", "eventListeners": "Event:read"}
EVENT_MUTATION_PERMISSIONS: dict[str, str | None] = {
    "setEventListeners": "Event:write", "unsetEventListeners": "Event:write", "confirmEvents": "Event:write"}
