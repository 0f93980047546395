"""The inbox repository: the only code that writes ``inbox_event``, ``id_map`` (erpsync's side)
and the ``centra_*`` mapping tables.

``store_batch`` is the exactly-once step of the pull job. Called inside ONE transaction per
batch, it

- recognises event ids already in the inbox (a re-delivery after a crash between commit and
  ``events_Done``) and applies nothing for them. The inbox rows are claimed first (``INSERT … ON
  CONFLICT DO NOTHING``): a second puller that fetched the same batch waits for the first one's
  commit and counts them as duplicates, instead of failing on the unique key;
- keeps only the newest version of every object: an event older than what is stored (by event
  id when both are numeric, else by event date) is recorded as ``superseded`` and changes nothing;
- replaces an order's lines and shipments together with the order row;
- marks ``mission=delete`` objects ``deleted`` and keeps the row and its last payload (history);
- parks what could not be mapped (``parked_item`` kind ``event``, raw XML + reason).

Every event given to it ends up in the inbox, so the caller may acknowledge all of them once the
transaction has committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import JSON, String, Table, bindparam, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, col
from sqlmodel import select as sm_select

from erpsync.store.models import (
    CentraAccount,
    CentraCustomer,
    CentraGeneric,
    CentraInvoice,
    CentraOrder,
    CentraOrderLine,
    CentraOrderShipment,
    IdMap,
    InboxEvent,
    ParkedItem,
)
from erpsync.store.upsert import insert_stmt

OBJECT_TABLES: dict[str, type[SQLModel]] = {
    "order": CentraOrder,
    "customer": CentraCustomer,
    "account": CentraAccount,
    "invoice": CentraInvoice,
    "generic": CentraGeneric,
}

# statuses of inbox_event rows
APPLIED, SUPERSEDED, PARKED = "applied", "superseded", "parked"
MAX_EVENT_ID = 64  # inbox_event.event_id


@dataclass(frozen=True)
class EventMeta:
    event_id: str
    seq: int | None
    type: str
    entry: str
    mission: str
    date: datetime | None
    # the date is store-local in the hour a DST fall-back repeats: it may be up to an hour later
    date_ambiguous: bool = False
    # GraphQL: when the page was read (its objects are the state current then); None for SOAP
    read_at: datetime | None = None


@dataclass(frozen=True)
class ObjectChange:
    """What one event does to one mapped object. ``table`` is a key of ``OBJECT_TABLES``;
    ``columns`` are that table's typed columns (without the bookkeeping ones); ``lines`` and
    ``shipments`` (orders only) replace the stored ones."""

    table: str
    key: str
    delete: bool = False
    columns: dict[str, Any] = field(default_factory=dict)
    lines: list[dict[str, Any]] | None = None
    shipments: list[dict[str, Any]] | None = None
    generic_type: str | None = None
    #: columns holding a store-local date in the hour a DST fall-back repeats, read as the first pass
    #: (it may be the second, an hour later): compared as either reading, never written over the
    #: other queue's unambiguous value
    ambiguous: frozenset[str] = frozenset()

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.table, self.generic_type or "", self.key)


@dataclass
class _GapMark:
    """The SOAP event that last wrote an object's SOAP-only columns, and their values."""

    seq: int | None
    date: datetime | None
    values: dict[str, Any]
    dirty: bool = False
    bumped: bool = False

    def take(self, item: InboundItem, columns: tuple[str, ...], *, whole: bool = False) -> bool:
        """Record ``item`` (a SOAP event newer than this mark) as the last writer of ``columns``.
        Returns whether a value the ERP sees changed (not counted for a ``whole`` write: that one is
        a version of its own)."""
        change = item.change
        assert change is not None
        values = {c: change.columns[c] for c in columns if c in change.columns}
        changed = any(_comparable(c, v, True) != _comparable(c, self.values.get(c), True) for c, v in values.items())
        self.values.update(values)
        self.seq, self.date, self.dirty = item.meta.seq, item.meta.date, True
        if changed and not whole:
            self.bumped = True
        return changed and not whole


def _soap_only(table: str, stored: Content | None) -> tuple[str, ...]:
    """The SOAP-only columns of ``table``; an order's buyer too when the stored order is GraphQL's
    WholesaleOrder (its shape has no buyer), or for a version SOAP writes whole (``stored`` None)."""
    cols = SOAP_ONLY.get(table, ())
    if table == "order":
        payload = stored.columns.get("payload") if stored is not None else None
        if stored is None or (isinstance(payload, dict) and payload.get("__typename") == "WholesaleOrder"):
            cols = (*cols, "customer_id")
    return cols


@dataclass(frozen=True)
class InboundItem:
    """One received event: either a change to apply or the reason it must be parked."""

    meta: EventMeta
    change: ObjectChange | None
    park_reason: str | None
    raw_xml: str


@dataclass
class BatchOutcome:
    applied: int = 0
    superseded: int = 0
    duplicates: int = 0
    parked: int = 0
    ack_ids: list[str] = field(default_factory=list)


def _newer(seq: int | None, date: datetime | None, cur_seq: int | None, cur_date: datetime | None,
           date_ambiguous: bool = False) -> bool:
    """Is (seq, date) a newer version than (cur_seq, cur_date)? Ties and unknowns go to the
    later arrival (events arrive oldest first): so does a store-local date in the repeated DST
    hour, which may be the second pass (an hour later than it reads)."""
    if seq is not None and cur_seq is not None:
        return seq > cur_seq
    if date is not None and cur_date is not None:
        return date + (_DST_REPEAT if date_ambiguous else timedelta(0)) >= _aware(cur_date)
    return True


_DST_REPEAT = timedelta(hours=1)
#: columns only the SOAP queue carries (the GraphQL shape's gaps, gql_transform.GAPS): they follow
#: SOAP's own event order (``soap_event_seq`` / ``soap_event_date``), not the both-queues decision.
#: An order's ``customer_id`` is one of them when the stored GraphQL order is a WholesaleOrder.
SOAP_ONLY: dict[str, tuple[str, ...]] = {"order": ("market",), "customer": ("country", "status"),
                                         "account": ("status",)}
_NOT_CONTENT = frozenset({"id", "centra_id", "type", "version", "last_event_id", "last_event_seq", "last_event_date",
                          "deleted", "deleted_at", "changed_at", "erp_taken_at", "erp_taken_version", "exported_at",
                          "exported_version", "order_id", "line_no", "soap_event_seq", "soap_event_date",
                          "last_event_date_ambiguous", "created_ambiguous"})
#: SOAP order statuses GraphQL cannot tell apart from another (its OrderStatus has no REFUNDED)
_SAME_STATUS = {"refunded": "completed"}


def _second(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value).replace(microsecond=0)


def _comparable(name: str, value: Any, payload: bool) -> Any:
    if isinstance(value, datetime):
        return _aware(value)
    if name == "status" and not payload and isinstance(value, str):
        return _SAME_STATUS.get(value, value)
    return value


def _canonical(value: Any) -> Any:
    """One spelling per value, so equal values sort alike (``25.000`` and ``25.0``)."""
    if isinstance(value, Decimal):
        return value.normalize()
    return value


@dataclass(frozen=True)
class Content:
    """What the ERP sees of one version: its columns (payload included), deleted flag, order lines."""

    columns: dict[str, Any]
    deleted: bool
    lines: list[dict[str, Any]] | None
    #: columns read in a repeated DST hour (``ObjectChange.ambiguous``)
    ambiguous: frozenset[str] = frozenset()

    @classmethod
    def of(cls, change: ObjectChange) -> Content:
        return cls(dict(change.columns), change.delete, list(change.lines) if change.lines is not None else None,
                   change.ambiguous)

    def same(self, change: ObjectChange, *, payload: bool) -> bool:
        """Is ``change`` this version? Compared on the columns ``change`` carries (a source leaves out
        what it cannot know) and the order lines; the payload only when ``payload`` (the same source
        wrote both: the two queues shape it differently). Decimals compare by value (``25.000`` is
        ``25.00000000``)."""
        if change.delete != self.deleted:
            return False
        if change.delete:
            return True
        for name, value in change.columns.items():
            if name in _NOT_CONTENT or (name == "payload" and not payload):
                continue
            if _comparable(name, value, payload) != _comparable(name, self.columns.get(name), payload) and not (
                    _either_reading(value, self.columns.get(name), name in change.ambiguous, name in self.ambiguous)):
                return False
        if change.lines is None:
            return True
        mine, theirs = change.lines, self.lines or []
        if len(mine) != len(theirs):
            return False
        if not mine:
            return True
        if not payload:
            # the other queue's lines: matched by content, not position or line id (PROTOCOL.md §2.4: the
            # GraphQL order of lines and OrderLine.id need not be SOAP's; the stored ids are kept on write)
            names = [n for n in mine[0] if n not in _NOT_CONTENT and n not in ("payload", "order_item_id")]
            def canon(line: dict[str, Any]) -> tuple[Any, ...]:
                return tuple(_canonical(_comparable(n, line.get(n), payload)) for n in names)
            return sorted(map(canon, mine), key=repr) == sorted(map(canon, theirs), key=repr)
        for a, b in zip(mine, theirs, strict=True):
            for name, value in a.items():
                if name in _NOT_CONTENT:
                    continue
                if _comparable(name, value, payload) != _comparable(name, b.get(name), payload):
                    return False
        return True


def _either_reading(mine: Any, theirs: Any, mine_ambiguous: bool, theirs_ambiguous: bool) -> bool:
    """Are two datetimes the same instant when an ambiguous one (a store-local reading of the repeated
    DST hour, taken as the first pass) may be the second pass, an hour later?"""
    if not isinstance(mine, datetime) or not isinstance(theirs, datetime):
        return False
    mine, theirs = _aware(mine), _aware(theirs)
    return (mine_ambiguous and mine + _DST_REPEAT == theirs) or (theirs_ambiguous and theirs + _DST_REPEAT == mine)


def source_of(event_id: str | None) -> str:
    """The queue an inbox event id came from: ``gql:<n>`` the GraphQL events queue, else SOAP."""
    return "graphql" if event_id and event_id.startswith("gql:") else "soap"


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything erpsync stores is UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: tables whose GraphQL object has no time of its own: its version time (the newest createdAt of its
#: events in the page) is only a lower bound of the state it shows (gql_transform.to_inbound_item)
LOWER_BOUND_TIMES = frozenset({"customer", "account"})


class InboxRepository:
    def __init__(self, *, graphql_queue_read: bool = True) -> None:
        """``graphql_queue_read``: the GraphQL events queue is being read (``[centra.events] source``
        ``graphql`` or ``both``), so every change of an object has a GraphQL event still to come. False
        (source ``soap``, e.g. after a roll-back) lets SOAP's snapshots move objects GraphQL stored."""
        self.graphql_queue_read = graphql_queue_read
        # during one ``_apply``: which queue delivered the stored version of an object, and the objects
        # whose stored date is a SOAP date read in a repeated DST hour; keyed (table, type, key)
        self._sources: dict[tuple[str, str, str], str] = {}
        self._ambiguous_dates: set[tuple[str, str, str]] = set()

    def store_batch(
        self,
        session: Session,
        items: Sequence[InboundItem],
        *,
        now: datetime,
        mid_hook: Callable[[], None] | None = None,
    ) -> BatchOutcome:
        """Store one fetched batch (see the module docstring). Call inside a transaction."""
        out = BatchOutcome()
        seen: set[str] = set()
        fresh: list[InboundItem] = []
        for item in items:
            eid = item.meta.event_id
            if not eid:
                # nothing to acknowledge it by: keep it for a human (once: Centra re-delivers it every run)
                self._park_once(session, item, item.park_reason or "event without id", now)
                out.parked += 1
                continue
            if len(eid) > MAX_EVENT_ID:
                # cannot be kept in the inbox (no dedupe possible): park it, and ack it like any other
                self._park(session, replace(item, change=None), f"event id longer than {MAX_EVENT_ID} characters", now)
                out.parked += 1
                out.ack_ids.append(eid)
                continue
            if eid in seen:  # twice in one batch: acknowledged once
                out.duplicates += 1
                continue
            seen.add(eid)
            out.ack_ids.append(eid)
            fresh.append(item)
        # claim the events first: a concurrent puller that fetched the same batch (nobody has
        # acknowledged it yet) waits here for our commit, then finds them taken (duplicates)
        claimed = self._claim(session, fresh, now)
        out.duplicates += len(fresh) - len(claimed)
        fresh = [i for i in fresh if i.meta.event_id in claimed]

        statuses = self._apply(session, fresh, now=now)
        if mid_hook is not None:
            mid_hook()  # inbox rows and objects written, not committed: the middle of the transaction
        superseded: list[str] = []
        for item in fresh:
            status = statuses[item.meta.event_id]
            if status == APPLIED:
                out.applied += 1
            elif status == SUPERSEDED:
                out.superseded += 1
                superseded.append(item.meta.event_id)
            else:
                out.parked += 1
                self._park(session, item, item.park_reason or "unknown", now)
        t = table_of(InboxEvent)
        for start in range(0, len(superseded), 500):
            session.connection().execute(
                update(t).where(t.c.event_id.in_(superseded[start:start + 500])).values(status=SUPERSEDED))
        return out

    def _claim(self, session: Session, items: Sequence[InboundItem], now: datetime) -> set[str]:
        """Insert the inbox rows of ``items`` unless their event id is already there (committed, or
        being stored by another transaction: then this waits for it). Returns the ids inserted:
        only those may be applied. Status ``applied`` (``parked`` when unmappable) until ``_apply``
        says ``superseded``."""
        if not items:
            return set()
        t = table_of(InboxEvent)
        claimed: set[str] = set()
        for start in range(0, len(items), 500):
            rows = []
            for item in items[start:start + 500]:
                m = item.meta
                parked = item.change is None
                rows.append({
                    "event_id": m.event_id, "event_seq": m.seq, "type": m.type[:40], "entry": m.entry[:128],
                    "mission": m.mission[:16], "event_date": m.date, "received_at": now,
                    "processed_at": None if parked else now, "acked_at": None,
                    "status": PARKED if parked else APPLIED,
                })
            if session.get_bind().dialect.name == "postgresql":
                claimed.update(r[0] for r in pg_bulk_insert(session, t, rows, key=["event_id"], update_cols=[],
                                                            returning="event_id"))
                continue
            # one cached statement, executed for many rows (SQLAlchemy batches it into multi-row
            # VALUES … RETURNING: "insertmanyvalues"); a statement built with .values(rows) is
            # compiled anew for every batch, which cost more than the insert itself
            claimed.update(session.connection().execute(_claim_stmt(session, t), rows).scalars())
        return claimed

    def _apply(self, session: Session, items: Sequence[InboundItem], *, now: datetime) -> dict[str, str]:
        """Decide and write the object changes of ``items``; returns event_id -> status."""
        self._sources.clear()
        self._ambiguous_dates.clear()
        statuses: dict[str, str] = {}
        by_table: dict[tuple[str, str], list[InboundItem]] = {}
        for item in items:
            if item.change is None:
                statuses[item.meta.event_id] = PARKED
            else:
                by_table.setdefault((item.change.table, item.change.generic_type or ""), []).append(item)
        # tables in one order, keys sorted: two transactions lock what they share in the same order
        for (table_name, generic_type), group in sorted(by_table.items(), key=lambda kv: kv[0]):
            model = OBJECT_TABLES[table_name]
            keys = sorted({i.change.key for i in group if i.change is not None})
            self._claim_objects(session, generic_type or table_name, keys, now)
            current = self._current_versions(session, model, keys, generic_type)
            name = str(model.__table__.name)  # type: ignore[attr-defined]
            # what is stored for the objects the GraphQL queue brings (a tie in time is decided by content)
            contents: dict[str, Content] = {}
            gql_keys = [i.change.key for i in group
                        if i.change is not None and source_of(i.meta.event_id) == "graphql" and i.change.key in current]
            # the SOAP-only columns of objects both queues write (loaded only then: SOAP alone never needs them)
            gql_in_group = {i.change.key for i in group if i.change is not None
                            and source_of(i.meta.event_id) == "graphql"}
            gap_keys = [i.change.key for i in group if i.change is not None and table_name in SOAP_ONLY
                        and source_of(i.meta.event_id) == "soap"
                        and (i.change.key in gql_in_group
                             or self._sources.get((name, generic_type, i.change.key)) == "graphql")]
            gap_keys = list(dict.fromkeys(gap_keys))
            if gql_keys or (gap_keys and table_name == "order"):
                contents = self._stored_contents(
                    session, model, list(dict.fromkeys(gql_keys + (gap_keys if table_name == "order" else []))),
                    generic_type)
            marks = self._gap_marks(session, model, table_name, [k for k in gap_keys if k in current])
            marks.update({k: _GapMark(None, None, {}) for k in gap_keys if k not in current})
            winners: dict[str, tuple[InboundItem, int]] = {}
            for item in group:
                ch = item.change
                assert ch is not None
                cur = current.get(ch.key)
                ident = (name, generic_type, ch.key)
                src = source_of(item.meta.event_id)
                newer = cur is None or self._is_newer(item, src, cur, self._sources.get(ident, "soap"),
                                                      contents.get(ch.key), ident in self._ambiguous_dates)
                mark = marks.get(ch.key)
                if not newer:
                    statuses[item.meta.event_id] = SUPERSEDED
                    if (src == "soap" and mark is not None and cur is not None and not ch.delete
                            and _newer(item.meta.seq, item.meta.date, mark.seq, mark.date,
                                       item.meta.date_ambiguous)):
                        # its version is superseded, not its SOAP-only columns: they follow SOAP's order
                        bumped = mark.take(item, _soap_only(table_name, contents.get(ch.key)))
                        if bumped:
                            current[ch.key] = (cur[0], cur[1], cur[2] + 1)  # the ERP must take the row again
                        if bumped and ch.key in winners:
                            winners[ch.key] = (winners[ch.key][0], cur[2] + 1)
                    continue
                self._sources[ident] = src
                if item.meta.date_ambiguous:
                    self._ambiguous_dates.add(ident)
                else:
                    self._ambiguous_dates.discard(ident)
                contents[ch.key] = Content.of(ch)
                if src == "soap" and mark is not None and not ch.delete:
                    mark.take(item, _soap_only(table_name, None), whole=True)
                version = (cur[2] if cur is not None else 0) + 1
                if ch.key in winners:
                    prev = winners[ch.key][0]
                    prev_ch = prev.change
                    assert prev_ch is not None
                    # the earlier event of this batch stays "applied" (as if batches held one event
                    # each: statuses must not depend on where a batch boundary fell)
                    if ch.delete and not prev_ch.delete:
                        # deleted later in this batch: keep the version it had (history), flagged deleted
                        winners[ch.key] = (replace(item, change=replace(prev_ch, delete=True)), version)
                    else:
                        winners[ch.key] = (item, version)
                else:
                    winners[ch.key] = (item, version)
                current[ch.key] = (item.meta.seq, item.meta.date, version)
                statuses[item.meta.event_id] = APPLIED
            self._write(session, model, table_name, generic_type, list(winners.values()), now, marks, current)
        return statuses

    @staticmethod
    def _claim_objects(session: Session, entity: str, keys: list[str], now: datetime) -> None:
        """Insert the objects' ``id_map`` rows (nothing if there) before reading their versions. An
        object the other queue's puller is creating right now (its row not committed, so invisible to
        ``SELECT … FOR UPDATE``) makes this wait for that commit; the versions read next then include
        it, instead of both transactions taking the object for new and the later commit overwriting the
        earlier one whatever their times (PostgreSQL; SQLite writers are serialised anyway)."""
        t = table_of(IdMap)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            # only the missing ones: on PostgreSQL every INSERT attempt, conflicting or not, takes a
            # value of id_map's (32-bit) id sequence
            known = set(session.connection().execute(
                select(t.c.centra_id).where(t.c.entity == entity, t.c.centra_id.in_(chunk))).scalars())
            rows = [{"entity": entity, "centra_id": key, "erp_id": None, "updated_at": now}
                    for key in chunk if key not in known]
            upsert_many(session, t, rows, ["entity", "centra_id"], [])

    def _is_newer(self, item: InboundItem, src: str, cur: tuple[int | None, datetime | None, int], cur_src: str,
                  stored: Content | None, cur_ambiguous: bool = False) -> bool:
        """Does ``item`` (from queue ``src``) carry a newer version than the stored one (written by
        ``cur_src``)? Each version is applied once whichever queue brings it first (docs/erp-tables.md).

        - SOAP after SOAP: by event id, else date (the SOAP rule, unchanged).
        - SOAP after a customer or account GraphQL stored (while the GraphQL queue is read): superseded,
          whatever the times. GraphQL's time of them is only a lower bound of the state it shows;
          every later change has its own GraphQL event still queued. (SOAP-only columns: ``_GapMark``.)
        - Otherwise by the object's time in whole seconds (both queues give seconds: a SOAP event's
          date is the time of the change its snapshot shows, GraphQL's ``updatedAt`` the time of the
          current state it shows): later is newer, earlier is older.
        - The same second (several changes of one object within a second are common: an order placed
          and confirmed): GraphQL shows the *current* state, SOAP a snapshot. A GraphQL object equal
          to the stored version (the ERP-visible columns and lines; with the payload when GraphQL
          wrote it too) is that version again: superseded; a different one is the newer state of the
          second: applied. A SOAP snapshot of a second whose current state GraphQL already stored is
          superseded (a change after GraphQL read it has its own GraphQL event still to come); a
          SOAP snapshot of the second stored after GraphQL read its page wins the tie the same way.
        - GraphQL after GraphQL with identical content (payload included) is the same state: superseded,
          whatever the times say (customers and accounts carry no time of their own: see gql_transform).
        """
        if src == "soap" and cur_src == "soap":
            return _newer(item.meta.seq, item.meta.date, cur[0], cur[1], item.meta.date_ambiguous)
        change = item.change
        assert change is not None
        if src == "soap" and cur_src == "graphql" and change.table in LOWER_BOUND_TIMES and self.graphql_queue_read:
            # GraphQL stored the customer's (account's) state current when it read it, stamped with a
            # time that is only a lower bound (events of it may sit on a later page): a SOAP snapshot
            # of a later time may still be older. Every change after that read has a GraphQL event
            # still queued, which brings it: the snapshot never moves the row (its SOAP-only columns do)
            return False
        if src == "graphql" and cur_src == "graphql" and stored is not None and stored.same(change, payload=True):
            return False
        mine, theirs = _second(item.meta.date), _second(cur[1])
        if mine is None or theirs is None:
            return True  # unknowns go to the later arrival, as in the SOAP rule
        if src == "graphql" and cur_src == "soap" and cur_ambiguous and mine == theirs + _DST_REPEAT:
            theirs = mine  # the stored SOAP date's other reading (the second pass): the same second
        if mine != theirs:
            return mine > theirs
        if src == "soap":
            return False
        if stored is None:
            return True
        if stored.same(change, payload=cur_src == "graphql"):
            return False
        stored_at = stored.columns.get("changed_at")
        if cur_src == "soap" and item.meta.read_at is not None and isinstance(stored_at, datetime):
            # SOAP stored its snapshot after GraphQL read the object (the two pulls raced): that
            # snapshot may be the newer state of the second; GraphQL's own later event settles it
            return _aware(stored_at) <= item.meta.read_at
        return True

    @staticmethod
    def _gap_marks(session: Session, model: type[SQLModel], table_name: str, keys: list[str]) -> dict[str, _GapMark]:
        """The SOAP-only columns of ``keys`` (rows locked by ``_current_versions``) and the SOAP event that
        wrote them: ``soap_event_*``, else the row's last event when SOAP wrote it (rows stored before
        migration 0004), else unknown (a SOAP event then counts as newer, as in the SOAP rule)."""
        if not keys:
            return {}
        t = table_of(model)
        cols = _soap_only(table_name, None)
        found: dict[str, _GapMark] = {}
        for start in range(0, len(keys), 500):
            stmt = select(t.c.centra_id, t.c.soap_event_seq, t.c.soap_event_date, t.c.last_event_id,
                          t.c.last_event_seq, t.c.last_event_date, *(t.c[c] for c in cols)).where(
                t.c.centra_id.in_(keys[start:start + 500]))
            for r in session.connection().execute(stmt):
                seq, date = r.soap_event_seq, r.soap_event_date
                if seq is None and date is None and source_of(r.last_event_id) == "soap":
                    seq, date = r.last_event_seq, r.last_event_date
                found[r.centra_id] = _GapMark(seq, date, {c: r._mapping[c] for c in cols})
        return found

    def _stored_contents(self, session: Session, model: type[SQLModel], keys: list[str],
                         generic_type: str) -> dict[str, Content]:
        """The stored version of ``keys`` as ``Content`` (columns, deleted flag, order lines)."""
        t = model.__table__  # type: ignore[attr-defined]
        out: dict[str, Content] = {}
        lines: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            stmt = select(t).where(t.c.centra_id.in_(chunk))
            if generic_type:
                stmt = stmt.where(t.c.type == generic_type)
            rows = [dict(r._mapping) for r in session.connection().execute(stmt)]
            if t.name == "centra_order":
                lt = table_of(CentraOrderLine)
                for r in session.connection().execute(
                        select(lt).where(lt.c.order_id.in_(chunk)).order_by(lt.c.order_id, lt.c.line_no)):
                    lines.setdefault(r._mapping["order_id"], []).append(dict(r._mapping))
            for row in rows:
                out[row["centra_id"]] = Content(row, bool(row.get("deleted")),
                                                lines.get(row["centra_id"], []) if t.name == "centra_order" else None,
                                                frozenset({"created"}) if row.get("created_ambiguous") else frozenset())
        return out

    def _current_versions(
        self, session: Session, model: type[SQLModel], keys: list[str], generic_type: str,
    ) -> dict[str, tuple[int | None, datetime | None, int]]:
        t = model.__table__  # type: ignore[attr-defined]
        found: dict[str, tuple[int | None, datetime | None, int]] = {}
        for start in range(0, len(keys), 500):
            flag = t.c.last_event_date_ambiguous if "last_event_date_ambiguous" in t.c else literal(None)
            stmt = select(t.c.centra_id, t.c.last_event_seq, t.c.last_event_date, t.c.version,
                          t.c.last_event_id, flag).where(t.c.centra_id.in_(keys[start:start + 500]))
            if generic_type:
                stmt = stmt.where(t.c.type == generic_type)
            stmt = stmt.with_for_update()
            for cid, seq, date, version, last_id, ambiguous in session.connection().execute(stmt):
                found[cid] = (seq, date, version)
                if source_of(last_id) != "soap":
                    self._sources[(str(t.name), generic_type, cid)] = source_of(last_id)
                if ambiguous:
                    self._ambiguous_dates.add((str(t.name), generic_type, cid))
        return found

    def _write(
        self, session: Session, model: type[SQLModel], table_name: str, generic_type: str,
        winners: list[tuple[InboundItem, int]], now: datetime, marks: dict[str, _GapMark] | None = None,
        current: dict[str, tuple[int | None, datetime | None, int]] | None = None,
    ) -> None:
        table = model.__table__  # type: ignore[attr-defined]
        marks = marks or {}
        won = {item.change.key for item, _v in winners if item.change is not None}
        for key, mark in marks.items():
            if mark.dirty and key not in won:
                # only the SOAP-only columns of a superseded SOAP event (its version came from GraphQL)
                values: dict[str, Any] = {**mark.values, "soap_event_seq": mark.seq, "soap_event_date": mark.date}
                if mark.bumped and current is not None:
                    values.update(version=current[key][2], changed_at=now)
                session.connection().execute(update(table).where(table.c.centra_id == key).values(**values))
        if not winners:
            return
        key_cols = ["centra_id", "type"] if generic_type else ["centra_id"]
        updates: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        kept_created = self._unambiguous_created(session, table_name, winners)
        for item, version in winners:
            ch = item.change
            assert ch is not None
            columns = ch.columns
            if table_name == "order" and "created" in columns:
                columns = {**columns, "created_ambiguous": "created" in ch.ambiguous}
                if ch.key in kept_created:
                    # the other queue's unambiguous value of the same instant: never flipped by an hour
                    columns.update(created=kept_created[ch.key], created_ambiguous=False)
            base: dict[str, Any] = {
                "centra_id": ch.key, "last_event_id": item.meta.event_id, "last_event_seq": item.meta.seq,
                "last_event_date": item.meta.date, "version": version, "changed_at": now,
            }
            if generic_type:
                base["type"] = generic_type
            if table_name in SOAP_ONLY:
                gap = marks.get(ch.key)
                if gap is not None and gap.dirty:
                    base.update(gap.values, soap_event_seq=gap.seq, soap_event_date=gap.date)
                elif source_of(item.meta.event_id) == "soap":
                    base.update(soap_event_seq=item.meta.seq, soap_event_date=item.meta.date)
                base["last_event_date_ambiguous"] = item.meta.date_ambiguous
            if ch.delete and not ch.columns:
                deletes.append({**base, "deleted": True, "deleted_at": item.meta.date or now})
            else:
                deleted_at = (item.meta.date or now) if ch.delete else None
                updates.append({**base, "deleted": ch.delete, "deleted_at": deleted_at, **columns})
        # rows of one statement must share their columns: group by column set
        for rows in (updates, deletes):
            for group in _group_by_columns(rows):
                upsert_many(session, table, group, key_cols)
        # the id_map rows: inserted by _claim_objects before the versions were read
        if table_name == "order":
            replaced = [item.change.key for item, _v in winners
                        if item.change is not None and item.change.lines is not None]
            if replaced:
                stored = self._stored_lines(session, winners)
                for start in range(0, len(replaced), 500):
                    chunk = replaced[start:start + 500]
                    conn = session.connection()
                    conn.execute(delete(CentraOrderLine).where(col(CentraOrderLine.order_id).in_(chunk)))
                    conn.execute(delete(CentraOrderShipment).where(col(CentraOrderShipment.order_id).in_(chunk)))
                lines = []
                for item, _v in winners:
                    if item.change is None or not item.change.lines:
                        continue
                    new_lines = item.change.lines
                    if stored.get(item.change.key) and any("is_bundle_virtual" not in ln for ln in new_lines):
                        new_lines = _keep_from_stored(new_lines, stored[item.change.key])
                    lines.extend(new_lines)
                shipments = [sh for item, _v in winners if item.change is not None
                             for sh in (item.change.shipments or [])]
                for rows, tbl in ((lines, CentraOrderLine), (shipments, CentraOrderShipment)):
                    for group in _group_by_columns(rows):
                        insert_rows(session, table_of(tbl), group)

    @staticmethod
    def _unambiguous_created(session: Session, table_name: str,
                             winners: list[tuple[InboundItem, int]]) -> dict[str, datetime]:
        """Orders whose new ``created`` is an ambiguous SOAP reading while the stored one is the other
        reading, unambiguous (GraphQL's): that stored value, to keep."""
        if table_name != "order":
            return {}
        mine = {item.change.key: item.change.columns["created"] for item, _v in winners
                if item.change is not None and "created" in item.change.ambiguous
                and isinstance(item.change.columns.get("created"), datetime)}
        if not mine:
            return {}
        t = table_of(CentraOrder)
        keys = sorted(mine)
        kept: dict[str, datetime] = {}
        for start in range(0, len(keys), 500):
            for cid, created, ambiguous in session.connection().execute(
                    select(t.c.centra_id, t.c.created, t.c.created_ambiguous)
                    .where(t.c.centra_id.in_(keys[start:start + 500]))):
                if created is not None and not ambiguous and _either_reading(mine[cid], created, True, False):
                    kept[cid] = _aware(created)
        return kept

    @staticmethod
    def _stored_lines(session: Session, winners: list[tuple[InboundItem, int]]) -> dict[str, list[dict[str, Any]]]:
        """The stored lines (line_no order) of orders whose new lines come from the GraphQL shape (no
        ``is_bundle_virtual``): what the other queue knew of them is kept (``_keep_from_stored``)."""
        keys = [item.change.key for item, _v in winners if item.change is not None and item.change.lines
                and any("is_bundle_virtual" not in ln for ln in item.change.lines)]
        found: dict[str, list[dict[str, Any]]] = {}
        t = table_of(CentraOrderLine)
        for start in range(0, len(keys), 500):
            for r in session.connection().execute(
                    select(t.c.order_id, t.c.line_no, t.c.sku, t.c.size_sku, t.c.price, t.c.order_item_id,
                           t.c.is_bundle_virtual).where(t.c.order_id.in_(keys[start:start + 500]))
                    .order_by(t.c.order_id, t.c.line_no)):
                found.setdefault(r.order_id, []).append(dict(r._mapping))
        return found

    def _park_once(self, session: Session, item: InboundItem, reason: str, now: datetime) -> None:
        """Park ``item`` unless the same event (key and raw XML) is parked and open: then count the
        attempt. For events that cannot be acknowledged and so come back on every run."""
        key = (item.meta.event_id or f"entry:{item.meta.entry}")[:256]
        t = table_of(ParkedItem)
        found = session.connection().execute(
            select(t.c.id).where(t.c.kind == "event", t.c.key == key, t.c.resolved_at.is_(None),
                                 t.c.payload == item.raw_xml).limit(1)).first()
        if found is None:
            self._park(session, item, reason, now)
            return
        session.connection().execute(update(t).where(t.c.id == found[0]).values(
            attempts=t.c.attempts + 1, updated_at=now, reason=reason))

    def _park(self, session: Session, item: InboundItem, reason: str, now: datetime) -> None:
        key = (item.meta.event_id or f"entry:{item.meta.entry}")[:256]
        session.add(ParkedItem(kind="event", key=key, reason=reason,
                               payload=item.raw_xml, created_at=now, updated_at=now))

    # ------------------------------------------------------------- acks, replay, stats

    def mark_acked(self, session: Session, event_ids: Iterable[str], now: datetime) -> None:
        ids = list(event_ids)
        for start in range(0, len(ids), 500):
            session.connection().execute(
                update(InboxEvent).where(col(InboxEvent.event_id).in_(ids[start:start + 500])).values(acked_at=now))

    def replay(self, session: Session, parked: ParkedItem, item: InboundItem, now: datetime) -> str:
        """Apply a parked event again. Returns its new status; a still-failing event stays parked
        with the new reason and one more attempt."""
        if item.change is None:
            parked.attempts += 1
            parked.reason = item.park_reason or parked.reason
            parked.updated_at = now
            session.add(parked)
            return PARKED
        status = self._apply(session, [item], now=now)[item.meta.event_id]
        session.connection().execute(update(InboxEvent).where(col(InboxEvent.event_id) == item.meta.event_id)
                                     .values(status=status, processed_at=now))
        parked.resolved_at = now
        parked.resolution = "applied"
        parked.updated_at = now
        parked.attempts += 1
        session.add(parked)
        return status

    def parked(self, session: Session, *, kind: str | None = None, include_resolved: bool = False,
               ids: Sequence[int] = ()) -> list[ParkedItem]:
        stmt = sm_select(ParkedItem).order_by(col(ParkedItem.id))
        if kind:
            stmt = stmt.where(col(ParkedItem.kind) == kind)
        if not include_resolved:
            stmt = stmt.where(col(ParkedItem.resolved_at).is_(None))
        if ids:
            stmt = stmt.where(col(ParkedItem.id).in_(list(ids)))
        return list(session.exec(stmt).all())

    def resolve_parked(self, session: Session, item: ParkedItem, resolution: str, now: datetime) -> None:
        """Close a parked row: ``dropped`` (given up) or ``retried`` (its owner re-sends it)."""
        item.resolved_at = now
        item.resolution = resolution
        item.updated_at = now
        session.add(item)

    # ------------------------------------------------------------- export cursor

    def orders_to_export(
        self, session: Session, *, since: datetime | None, statuses: Sequence[str], include_deleted: bool,
    ) -> tuple[list[CentraOrder], list[CentraOrderLine]]:
        """Orders whose current version was not exported yet (locked until the caller commits),
        with their lines."""
        stmt = sm_select(CentraOrder).where(or_(col(CentraOrder.exported_version).is_(None),
                                                col(CentraOrder.exported_version) < col(CentraOrder.version)))
        if since is not None:
            stmt = stmt.where(col(CentraOrder.changed_at) >= since)
        if statuses:
            stmt = stmt.where(col(CentraOrder.status).in_(list(statuses)))
        if not include_deleted:
            stmt = stmt.where(col(CentraOrder.deleted).is_(False))
        orders = list(session.exec(stmt.order_by(col(CentraOrder.centra_id)).with_for_update()).all())
        ids = [o.centra_id for o in orders]
        lines: list[CentraOrderLine] = []
        for start in range(0, len(ids), 500):
            lines.extend(session.exec(
                sm_select(CentraOrderLine).where(col(CentraOrderLine.order_id).in_(ids[start:start + 500]))
                .order_by(col(CentraOrderLine.order_id), col(CentraOrderLine.line_no))).all())
        return orders, lines

    def mark_exported(self, session: Session, versions: dict[str, int], now: datetime) -> None:
        t = table_of(CentraOrder)
        rows = [{"cid": cid, "v": v, "at": now} for cid, v in versions.items()]
        if rows:
            session.connection().execute(
                update(t).where(t.c.centra_id == bindparam("cid")).values(exported_version=bindparam("v"),
                                                                          exported_at=bindparam("at")), rows)

    def stats(self, session: Session) -> list[dict[str, Any]]:
        """Counts by source (``soap`` | ``graphql``, from the event id), type and status."""
        t = table_of(InboxEvent)
        source = case((t.c.event_id.like("gql:%"), "graphql"), else_="soap").label("source")
        stmt = (select(source, t.c.type, t.c.status, func.count(), func.count(t.c.acked_at))
                .group_by(source, t.c.type, t.c.status).order_by(source, t.c.type, t.c.status))
        return [{"source": src, "type": t, "status": s, "count": n, "acked": a}
                for src, t, s, n, a in session.connection().execute(stmt)]


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _claim_stmt(session: Session, t: Table) -> Any:
    key = (session.get_bind().dialect.name, t.name, ("event_id",), ("<claim>",))
    stmt = _UPSERTS.get(key)
    if stmt is None:
        stmt = (insert_stmt(session, t).on_conflict_do_nothing(index_elements=["event_id"])
                .returning(t.c.event_id))
        _UPSERTS[key] = stmt
    return stmt


def upsert_many(session: Session, table: Table, rows: list[dict[str, Any]], key: list[str],
                update_cols: list[str] | None = None) -> None:
    """INSERT … ON CONFLICT as one executemany (rows share their columns). The statement is built
    once per table/columns/dialect and reused. ``update_cols`` empty: do nothing on conflict;
    None: update every non-key column given."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        pg_bulk_insert(session, table, rows, key=key, update_cols=update_cols)
        return
    cols = tuple(c for c in rows[0] if c not in key) if update_cols is None else tuple(update_cols)
    cache_key = (session.get_bind().dialect.name, table.name, tuple(key), cols)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        base = insert_stmt(session, table)
        if cols:
            stmt = base.on_conflict_do_update(index_elements=key, set_={c: base.excluded[c] for c in cols})
        else:
            stmt = base.on_conflict_do_nothing(index_elements=key)
        _UPSERTS[cache_key] = stmt
    session.connection().execute(stmt, rows)


_PG_BULK: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...] | None, str | None], str] = {}


def pg_bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]], *, key: list[str],
                   update_cols: list[str] | None, returning: str | None = None) -> list[tuple[Any, ...]]:
    """PostgreSQL: INSERT … ON CONFLICT of ``rows`` (sharing their columns) as ONE statement whose
    parameters are one array per column (``SELECT … FROM unnest(…)``), instead of a statement per
    row. Same ON CONFLICT rules as ``upsert_many``; values go through the columns' own bind
    processing; the arrays are cast to the columns' types without length (the assignment to the
    column checks lengths, as a plain INSERT does)."""
    conn = session.connection()
    dialect = conn.dialect
    names = tuple(rows[0])
    cols = tuple(c for c in names if c not in key) if update_cols is None else tuple(update_cols)
    cache_key = (table.name, names, tuple(key), cols, returning)
    sql = _PG_BULK.get(cache_key)
    if sql is None:
        quote = dialect.identifier_preparer.quote
        casts = []
        for n in names:
            column_type = table.c[n].type.dialect_impl(dialect)
            impl = getattr(column_type, "impl_instance", column_type)
            if isinstance(impl, JSON):  # serialised here, sent as a binary text[] (no array escaping)
                casts.append("CAST(CAST(%b AS TEXT[]) AS JSON[])")
                continue
            type_sql = "TEXT" if isinstance(impl, String) else impl.compile(dialect=dialect)
            casts.append(f"CAST(%b AS {type_sql}[])")
        conflict = ", ".join(quote(k) for k in key)
        action = ("DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in cols)) if cols \
            else "DO NOTHING"
        sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
               f"({', '.join(quote(n) for n in names)}) SELECT * FROM unnest({', '.join(casts)}) "
               f"ON CONFLICT ({conflict}) {action}" + (f" RETURNING {quote(returning)}" if returning else ""))
        _PG_BULK[cache_key] = sql
    procs = _bind_processors(dialect, table, names, json_text=True)
    arrays = tuple([v if p is None or v is None else p(v) for v in (row[n] for row in rows)]
                   for n, p in zip(names, procs, strict=True))
    result = conn.exec_driver_sql(sql, arrays)  # through SQLAlchemy: its errors, its disconnect handling
    return [tuple(r) for r in result] if returning else []


_PROCESSORS: dict[tuple[str, str, tuple[str, ...], bool], list[Any]] = {}


def _bind_processors(dialect: Any, table: Table, names: tuple[str, ...], *, json_text: bool = False) -> list[Any]:
    """The columns' bind processors; ``json_text``: JSON columns serialised to text with the
    engine's serializer (what the dialect's own JSON binding sends)."""
    key = (dialect.name, table.name, names, json_text)
    found = _PROCESSORS.get(key)
    if found is None:
        serialize = getattr(dialect, "_json_serializer", None) or json.dumps
        found = [serialize if json_text and isinstance(table.c[n].type, JSON)
                 else table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
        _PROCESSORS[key] = found
    return found


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Plain INSERT of ``rows`` (sharing their columns) in the session's transaction. On PostgreSQL
    one ``COPY … FROM STDIN`` (an executemany sends and executes one statement per row: most of
    the time of storing an order's lines); elsewhere one executemany. Values go through the
    columns' own bind processing either way (JSON, exact decimals), so both store the same."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    # COPY applies only the server's defaults: fill the columns' Python-side scalar defaults (an
    # INSERT through SQLAlchemy would) for columns the rows leave out
    defaults = {c.name: c.default.arg for c in table.columns  # type: ignore[attr-defined]
                if c.name not in rows[0] and c.default is not None and getattr(c.default, "is_scalar", False)}
    if defaults:
        rows = [{**row, **defaults} for row in rows]
    names = tuple(rows[0])
    procs = _bind_processors(dialect, table, names)
    columns = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN"
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([v if p is None or v is None else p(v)
                                for p, v in zip(procs, (row[n] for n in names), strict=True)])
    except dialect.loaded_dbapi.Error as exc:
        # what SQLAlchemy does for its own statements: its exception classes (the pull job retries
        # an OperationalError), and a connection that broke is not handed out again
        disconnect = dialect.is_disconnect(exc, driver, None)
        if disconnect:
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                  connection_invalidated=disconnect, dialect=dialect) from exc


def table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _keep_from_stored(lines: list[dict[str, Any]], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GraphQL-shaped ``lines`` with what only the stored lines know: ``is_bundle_virtual`` (not in
    the GraphQL shape) and, when the line ids are not the stored ones ([open]: ``OrderLine.id`` may
    not be SOAP's ``orderitem`` id), the stored ``order_item_id``. A line is matched by its id first
    (all lines), then the rest by SKU (product number and size SKU), then unit price, then position
    (PROTOCOL.md §2.4: one SKU can sit on two lines); each stored line matches once."""
    free = list(stored)
    ids = {s["order_item_id"] for s in stored if s["order_item_id"] is not None}
    matches: list[dict[str, Any] | None] = [None] * len(lines)
    for i, ln in enumerate(lines):
        if ln.get("order_item_id") is not None and ln["order_item_id"] in ids:
            found = next((s for s in free if s["order_item_id"] == ln["order_item_id"]), None)
            if found is not None:
                free.remove(found)
                matches[i] = found
    for i, ln in enumerate(lines):
        if matches[i] is not None or ln.get("order_item_id") in ids:
            continue
        same_sku = [s for s in free if (s["sku"], s["size_sku"]) == (ln.get("sku"), ln.get("size_sku"))]
        same_price = [s for s in same_sku if s["price"] is not None and ln.get("price") is not None
                      and Decimal(s["price"]) == Decimal(ln["price"])]
        candidates = same_price or same_sku
        if candidates:
            free.remove(candidates[0])
            matches[i] = candidates[0]
    out = []
    for ln, match in zip(lines, matches, strict=True):
        row = dict(ln)
        if match is not None and ln.get("order_item_id") not in ids and match["order_item_id"] is not None:
            row["order_item_id"] = match["order_item_id"]
        row.setdefault("is_bundle_virtual", bool(match["is_bundle_virtual"]) if match is not None else False)
        out.append(row)
    return out


def _group_by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


__all__ = [
    "APPLIED", "OBJECT_TABLES", "PARKED", "SUPERSEDED", "BatchOutcome", "EventMeta", "InboundItem",
    "InboxRepository", "ObjectChange",
]
