"""The GraphQL events queue as an event source (PROTOCOL.md §2.4), and its pull job.

    ensure listeners (once per process: eventListeners, then setEventListeners for what is missing;
    never unsetEventListeners, which deletes queued events) → events(limit: 200) oldest first,
    references only → the orders of the page by number (≤ 100 per request) → the page stored in ONE
    transaction (the same inbox and tables as SOAP) → commit → confirmEvents (≤ 200 ids per call)
    → again while a page came back full.

Every fetched event is confirmed after the commit, including unusable ones (parked first) and types
erpsync does not map (stored generically): an unconfirmed event would stay at the head of the queue
forever. A crash before the confirm re-delivers the page; the inbox key ``gql:<id>`` makes that
harmless. Requests and complexity are spent from the governor's ``events`` lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from erpsync.errors import ProtocolError
from erpsync.inbound.gql_documents import (
    ALL_CHANGE_TYPES,
    CONFIRM_EVENTS,
    CONFIRM_MAX,
    EVENT_LISTENERS,
    EVENTS,
    LISTEN_TO,
    ORDERS_BY_NUMBER,
    ORDERS_PAGE,
    PAGE_LIMIT,
    SET_EVENT_LISTENERS,
)
from erpsync.inbound.gql_transform import SOURCE_PREFIX, is_digits, safe_date, to_inbound_item
from erpsync.inbound.pull import PullJob
from erpsync.job import RunContext
from erpsync.logs import get_logger
from erpsync.store.inbox import InboundItem

log = get_logger("erpsync.inbound.gql_source")
LANE = "events"


class GraphqlEventSource:
    """Over a ``CentraGraphql`` client (built with ``decimal_floats=True``: money as Decimal)."""

    def __init__(self, client: Any, *, listen_to: Sequence[str] = LISTEN_TO, page_limit: int = PAGE_LIMIT) -> None:
        self.client = client
        self.listen_to = tuple(listen_to)
        self.page_limit = page_limit

    def ensure_listeners(self) -> list[str]:
        """Set the listeners erpsync needs that are missing (or limited to some change types);
        returns the object types set. Additive and idempotent; never unsets anything."""
        current = self.client.query(EVENT_LISTENERS, lane=LANE).data.get("eventListeners") or []
        have = {str(x.get("objectType")): x.get("changeTypes") for x in current if isinstance(x, dict)}
        missing = [t for t in self.listen_to
                   if t not in have or not set(ALL_CHANGE_TYPES) <= set(have[t] or ())]
        if missing:
            # no changeTypes = all (an empty list is [open]: never sent)
            result = self.client.mutate(SET_EVENT_LISTENERS, {"input": [{"objectType": t} for t in missing]},
                                        lane=LANE)
            if result.user_errors:
                raise ProtocolError("setEventListeners: " + "; ".join(e.message for e in result.user_errors))
            log.info("events.listeners_set", object_types=missing)
        return missing

    def fetch_items(self) -> list[InboundItem]:
        """One page, oldest first, as inbox items (orders read by number, current state)."""
        events = self.client.query(EVENTS, {"limit": self.page_limit}, lane=LANE).data.get("events") or []
        numbers: list[int] = []
        for ev in events:
            ref = ev.get("objectReference") if isinstance(ev, dict) else None
            if (isinstance(ev, dict) and ev.get("objectType") == "Order" and ev.get("changeType") != "DELETED"
                    and is_digits(str(ref)) and int(str(ref)) not in numbers):
                numbers.append(int(str(ref)))
        orders: dict[str, dict[str, Any]] = {}
        for start in range(0, len(numbers), ORDERS_PAGE):
            chunk = numbers[start:start + ORDERS_PAGE]
            data = self.client.query(ORDERS_BY_NUMBER, {"numbers": chunk, "limit": len(chunk)}, lane=LANE).data
            for order in data.get("orders") or []:
                if isinstance(order, dict) and order.get("number") is not None:
                    orders[str(order["number"])] = order
        # the object shown is its current state: at least as new as the newest of its events in the page
        newest: dict[tuple[str, str], datetime] = {}
        for ev in events:
            if isinstance(ev, dict) and ev.get("changeType") != "DELETED":
                when = safe_date(ev.get("createdAt"))
                ident = (str(ev.get("objectType")), str(ev.get("objectReference")))
                if when is not None and (ident not in newest or when > newest[ident]):
                    newest[ident] = when
        items = []
        for ev in events:
            if not isinstance(ev, dict):
                continue
            order = orders.get(str(ev.get("objectReference"))) if ev.get("objectType") == "Order" else None
            items.append(to_inbound_item(ev, order, newest.get((str(ev.get("objectType")),
                                                                 str(ev.get("objectReference"))))))
        log.info("events.fetched", count=len(events), source="graphql", orders_read=len(orders))
        return items

    def ack(self, ids: Sequence[str]) -> None:
        """confirmEvents for inbox ids ``gql:<n>``, at most 200 per call."""
        numbers = [int(i.removeprefix(SOURCE_PREFIX)) for i in ids]
        for start in range(0, len(numbers), CONFIRM_MAX):
            chunk = numbers[start:start + CONFIRM_MAX]
            result = self.client.mutate(CONFIRM_EVENTS, {"ids": chunk}, lane=LANE)
            if result.user_errors:
                raise ProtocolError("confirmEvents: " + "; ".join(e.message for e in result.user_errors))
        log.info("events.acked", count=len(numbers), source="graphql")


class GraphqlPullJob(PullJob):
    """The pull job over the GraphQL events queue: same counts, same inbox, same guarantees."""

    name = "pull_graphql"
    page_size = PAGE_LIMIT

    def __init__(self, engine: Engine, source: GraphqlEventSource, **options: Any) -> None:
        """``options`` as ``PullJob``'s (clock, stop_event, may_write, max_batches, backoff, crash,
        repository); GraphQL dates carry their offset, so no store time zone."""
        from datetime import UTC

        super().__init__(engine, source, store_tz=UTC, **options)  # type: ignore[arg-type]
        self.gql_source = source
        self.page_size = source.page_limit
        self._listeners_ok = False

    def execute(self, run: RunContext) -> None:
        if not self._listeners_ok:
            self.backoff.call(self.gql_source.ensure_listeners, self.clock, "setEventListeners")
            self._listeners_ok = True
        super().execute(run)

    def _fetch(self) -> list[InboundItem]:
        def read() -> list[InboundItem]:
            read_at = self.clock.now()  # the objects of this page are the state current from now on
            return [replace(i, meta=replace(i.meta, read_at=read_at)) for i in self.gql_source.fetch_items()]

        return self.backoff.call(read, self.clock, "events")
