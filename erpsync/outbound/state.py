"""The push jobs' durable state: ``OutboundItem`` rows (what Centra accepted) and parked items.

Rules (STYLE principle 3): a hash is recorded only after Centra accepted the payload that hashes
to it; a rejected item is parked with the userError message and is not sent again until its
payload changes or an operator retries it; an item whose product Centra does not have yet waits,
and is parked with a clear reason after ``max_waits`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, select, update
from sqlmodel import col

from erpsync.clock import Clock
from erpsync.store.engine import transaction
from erpsync.store.models import OutboundItem, ParkedItem
from erpsync.store.upsert import insert_stmt

#: OutboundItem.entity values and the ParkedItem.kind each parks as.
PARK_KIND = {
    "sizechart": "product",
    "product": "product",
    "variant": "product",
    "size": "product",
    "pricelist": "price",
    "price": "price",
    "stock": "stock",
}

_CHUNK = 500


@dataclass(frozen=True)
class Known:
    """What erpsync knows about one pushed item."""

    remote_id: str | None
    accepted_hash: str | None
    status: str
    attempts: int
    rejected_hash: str | None


@dataclass(frozen=True)
class Accepted:
    erp_key: str
    hash: str
    external_id: str | None = None
    remote_id: str | None = None


@dataclass(frozen=True)
class Rejected:
    erp_key: str
    hash: str
    reason: str
    payload: Any = None


class OutboundLedger:
    """Reads and advances ``OutboundItem`` rows; parks items as ``ParkedItem`` rows."""

    #: rows written in one run after which PostgreSQL's statistics are refreshed (ANALYZE)
    ANALYZE_AFTER_ROWS = 5_000

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.written = 0

    def analyze_if_grown(self) -> bool:
        """After a run that wrote many rows, refresh PostgreSQL's statistics of ``outbound_item``.

        Change detection joins the staging tables to ``outbound_item``; with statistics taken while
        the table was (nearly) empty the planner expects one row and nests a scan of the whole table
        inside the join — the next run's diff of 90,000 stock rows then takes minutes instead of a
        second. Autovacuum would catch up, but only after the next run may have started.
        """
        if self.written < self.ANALYZE_AFTER_ROWS or self.engine.dialect.name != "postgresql":
            return False
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE outbound_item")
        self.written = 0
        return True

    def load(self, entity: str) -> dict[str, Known]:
        """Every recorded item of ``entity`` by ERP key."""
        stmt = select(
            OutboundItem.erp_key, OutboundItem.remote_id, OutboundItem.accepted_hash,  # type: ignore[call-overload]
            OutboundItem.status, OutboundItem.attempts, OutboundItem.rejected_hash,
        ).where(col(OutboundItem.entity) == entity)
        with self.engine.connect() as conn:
            return {r[0]: Known(r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(stmt)}

    def accept(self, entity: str, items: Sequence[Accepted]) -> None:
        """Centra accepted these payloads: record their hashes (and remote ids when known)."""
        if not items:
            return
        now = self.clock.now()
        base = {"entity": entity, "status": "accepted", "attempts": 0, "last_error": None, "rejected_hash": None,
                "accepted_at": now, "updated_at": now}
        cols = ["accepted_hash", "status", "attempts", "last_error", "rejected_hash", "accepted_at", "updated_at"]
        with transaction(self.engine) as s:
            with_remote = [{**base, "erp_key": i.erp_key, "external_id": i.external_id, "remote_id": i.remote_id,
                            "accepted_hash": i.hash} for i in items if i.remote_id is not None]
            without_remote = [{**base, "erp_key": i.erp_key, "external_id": i.external_id, "accepted_hash": i.hash}
                              for i in items if i.remote_id is None]
            _upsert_many(s, with_remote, [*cols, "external_id", "remote_id"])
            _upsert_many(s, without_remote, cols)
            self._resolve_parked(s, entity, [i.erp_key for i in items], now)
        self.written += len(items)

    def remember_remote(self, entity: str, items: Sequence[Accepted]) -> None:
        """Record remote ids found by a lookup without claiming any payload was accepted."""
        if not items:
            return
        now = self.clock.now()
        with transaction(self.engine) as s:
            _upsert_many(s, [{"entity": entity, "erp_key": i.erp_key, "external_id": i.external_id,
                              "remote_id": i.remote_id, "status": "pending", "attempts": 0, "updated_at": now}
                             for i in items], ["external_id", "remote_id", "updated_at"])

    def reject(self, entity: str, items: Sequence[Rejected]) -> None:
        """Centra refused these payloads: park each with its reason; not re-sent until changed."""
        if not items:
            return
        now = self.clock.now()
        with transaction(self.engine) as s:
            _upsert_many(s, [{"entity": entity, "erp_key": i.erp_key, "status": "parked", "attempts": 0,
                              "rejected_hash": i.hash, "last_error": i.reason, "updated_at": now} for i in items],
                         ["status", "rejected_hash", "last_error", "updated_at"])
            for item in items:
                self._park(s, PARK_KIND[entity], f"{entity}:{item.erp_key}", item.reason, item.payload, now)

    def wait(self, entity: str, items: Sequence[Rejected], max_waits: int) -> list[Rejected]:
        """These items cannot be sent yet (their product is not in Centra). Count the wait; park and
        return those that have now waited ``max_waits`` runs."""
        if not items:
            return []
        now = self.clock.now()
        parked: list[Rejected] = []
        with transaction(self.engine) as s:
            keys = [i.erp_key for i in items]
            attempts: dict[str, int] = {}
            for start in range(0, len(keys), _CHUNK):
                rows = s.exec(select(OutboundItem.erp_key, OutboundItem.attempts).where(  # type: ignore[call-overload]
                    col(OutboundItem.entity) == entity, col(OutboundItem.erp_key).in_(keys[start:start + _CHUNK])))
                attempts.update({k: a for k, a in rows})
            waiting, to_park = [], []
            for item in items:
                n = attempts.get(item.erp_key, 0) + 1
                if n >= max_waits:
                    to_park.append(item)
                else:
                    waiting.append({"entity": entity, "erp_key": item.erp_key, "status": "waiting", "attempts": n,
                                    "last_error": item.reason, "updated_at": now})
            _upsert_many(s, waiting, ["status", "attempts", "last_error", "updated_at"])
            for item in to_park:
                reason = f"{item.reason} (still missing after {max_waits} runs)"
                parked.append(Rejected(item.erp_key, item.hash, reason, item.payload))
        if parked:
            self.reject(entity, parked)
        return parked

    def unpark(self, entity: str, keys: Iterable[str] | None = None) -> int:
        """Make parked items of ``entity`` eligible again (all, or ``keys``); returns how many."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            cond = and_(col(OutboundItem.entity) == entity, col(OutboundItem.status).in_(("parked", "waiting")))
            if keys is not None:
                cond = and_(cond, col(OutboundItem.erp_key).in_(list(keys)))
            result = s.exec(update(OutboundItem).where(cond).values(  # type: ignore[call-overload]
                status="pending", rejected_hash=None, attempts=0, updated_at=now))
            return int(result.rowcount or 0)

    def forget(self, entity: str, keys: Iterable[str] | None = None) -> int:
        """Forget accepted hashes so the next push re-sends (remote ids are kept)."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            cond = col(OutboundItem.entity) == entity
            if keys is not None:
                cond = and_(cond, col(OutboundItem.erp_key).in_(list(keys)))
            result = s.exec(update(OutboundItem).where(cond).values(  # type: ignore[call-overload]
                accepted_hash=None, rejected_hash=None, status="pending", attempts=0, updated_at=now))
            return int(result.rowcount or 0)

    def requeue_retried(self, entity: str) -> int:
        """Items an operator retried (``erpsync parked retry``: the ParkedItem is resolved as
        ``retried`` after the item was parked) become pending again; returns how many."""
        kind, prefix = PARK_KIND[entity], f"{entity}:"
        retried = select(ParkedItem.key, ParkedItem.resolved_at).where(  # type: ignore[call-overload]
            col(ParkedItem.kind) == kind, col(ParkedItem.resolution) == "retried",
            col(ParkedItem.key).startswith(prefix))
        with self.engine.connect() as conn:
            when: dict[str, datetime] = {}
            for key, resolved_at in conn.execute(retried):
                if resolved_at is not None:
                    erp_key = key[len(prefix):]
                    when[erp_key] = max(_naive_utc(resolved_at), when.get(erp_key, _naive_utc(resolved_at)))
            if not when:
                return 0
            stuck: list[str] = []
            keys = list(when)
            for start in range(0, len(keys), _CHUNK):
                rows = conn.execute(select(OutboundItem.erp_key, OutboundItem.updated_at).where(  # type: ignore[call-overload]
                    col(OutboundItem.entity) == entity, col(OutboundItem.status).in_(("parked", "waiting")),
                    col(OutboundItem.erp_key).in_(keys[start:start + _CHUNK])))
                stuck.extend(k for k, updated in rows if _naive_utc(updated) <= when[k])
        return self.unpark(entity, stuck) if stuck else 0

    # ------------------------------------------------------------------ parked items

    def _park(self, s: Any, kind: str, key: str, reason: str, payload: Any, now: Any) -> None:
        text = None if payload is None else json.dumps(payload, sort_keys=True, default=str)
        existing = s.exec(select(ParkedItem).where(  # type: ignore[call-overload]
            col(ParkedItem.kind) == kind, col(ParkedItem.key) == key, col(ParkedItem.resolved_at).is_(None))).first()
        if existing is not None:
            row = existing[0]
            row.reason, row.payload, row.attempts, row.updated_at = reason, text, row.attempts + 1, now
        else:
            s.add(ParkedItem(kind=kind, key=key, reason=reason, payload=text, created_at=now, updated_at=now))

    def _resolve_parked(self, s: Any, entity: str, keys: list[str], now: Any) -> None:
        """An accepted item's open parked row (if any) is resolved as applied."""
        kind = PARK_KIND[entity]
        open_rows = select(ParkedItem.id).where(  # type: ignore[call-overload]
            col(ParkedItem.kind) == kind, col(ParkedItem.key).startswith(f"{entity}:"),
            col(ParkedItem.resolved_at).is_(None)).limit(1)
        if s.exec(open_rows).first() is None:
            return
        full = [f"{entity}:{k}" for k in keys]
        for start in range(0, len(full), _CHUNK):
            s.exec(update(ParkedItem).where(  # type: ignore[call-overload]
                col(ParkedItem.kind) == kind, col(ParkedItem.key).in_(full[start:start + _CHUNK]),
                col(ParkedItem.resolved_at).is_(None),
            ).values(resolved_at=now, resolution="applied", updated_at=now))


def _naive_utc(value: datetime) -> datetime:
    """SQLite returns stored datetimes without their offset: compare everything as naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _upsert_many(s: Any, rows: list[dict[str, Any]], update_cols: Sequence[str]) -> None:
    """INSERT … ON CONFLICT (entity, erp_key) DO UPDATE as one cached statement run with
    executemany (a multi-VALUES statement would be compiled anew for every batch size)."""
    if not rows:
        return
    table = OutboundItem.__table__  # type: ignore[attr-defined]
    stmt = insert_stmt(s, table)
    stmt = stmt.on_conflict_do_update(index_elements=["entity", "erp_key"],
                                      set_={c: stmt.excluded[c] for c in update_cols})
    s.execute(stmt, rows)


__all__ = ["PARK_KIND", "Accepted", "Known", "OutboundLedger", "Rejected"]
