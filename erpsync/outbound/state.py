"""The push jobs' durable state: ``OutboundItem`` rows (what Centra accepted) and parked items.

Rules (STYLE principle 3): a hash is recorded only after Centra accepted the payload that hashes
to it; a rejected item is parked with the userError message and is not sent again until its
payload changes or an operator retries it; an item whose product Centra does not have yet waits,
and is parked with a clear reason after ``max_waits`` runs.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, select, update
from sqlmodel import col

from erpsync.clock import Clock
from erpsync.logs import get_logger
from erpsync.store.engine import transaction
from erpsync.store.models import OutboundItem, ParkedItem
from erpsync.store.staging import StagingProduct, StagingVariant
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

#: sample keys per aggregated ``push.item_parked`` line
PARKED_SAMPLES = 5

log = get_logger("erpsync.sync.push")


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
    #: what kind of parking this is (the aggregation key of ``push.item_parked``): ``rejected``
    #: (Centra refused it), ``missing_after_runs``, ``dependency_parked``, ``dependency_absent``
    cause: str = "rejected"


@dataclass
class _ParkedGroup:
    count: int = 0
    samples: list[str] | None = None
    reason: str = ""


#: what a row waiting for a missing dependency should do: wait (no attempt spent), wait counting
#: attempts (the dependency is in Centra and in sync, yet the row's part of it is not), or park
WAIT, WAIT_COUNTED, PARK = "wait", "wait_counted", "park"


_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def read_engine_for(engine: Engine) -> Engine:
    """The engine for long read-only scans (the push diffs). On SQLite every transaction of the main
    engine begins IMMEDIATE, i.e. takes the write lock: a 90,000-row stock diff holding it for seconds
    made the catalogue push's writes fail with "database is locked". PostgreSQL: ``engine`` itself."""
    if engine.dialect.name != "sqlite":
        return engine
    with _READERS_LOCK:
        reader = _READERS.get(engine)
        if reader is None:
            from erpsync.store.engine import make_read_engine

            reader = _READERS[engine] = make_read_engine(engine.url.render_as_string(hide_password=False))
        return reader


class Dependencies:
    """Where the products (and variants) that price and stock rows need stand, read once per run.

    ``verdict(product, variant)`` for a row whose product, variant or size Centra does not have:
    - product (or variant) absent from the ERP's staging → ``PARK`` (cause ``dependency_absent``);
    - product parked → ``PARK`` (cause ``dependency_parked``, its reason quoted);
    - product never pushed, pending, waiting, or accepted but changed since (in flight) → ``WAIT``;
    - product accepted and in sync, yet the row's variant/size is not in Centra → ``WAIT_COUNTED``
      (spends an attempt per run: something else is wrong, and it is parked after max_attempts).
    """

    def __init__(self, engine: Engine, on_absent: str = "ignore") -> None:
        self.engine = engine
        self.on_absent = on_absent
        o = OutboundItem.__table__  # type: ignore[attr-defined]
        p = StagingProduct.__table__  # type: ignore[attr-defined]
        v = StagingVariant.__table__  # type: ignore[attr-defined]
        with engine.connect() as conn:
            self.products = {k: (st, err) for k, st, err in conn.execute(
                select(o.c.erp_key, o.c.status, o.c.last_error).where(o.c.entity == "product"))}
            self.in_erp = {k for (k,) in conn.execute(select(p.c.product_number).where(p.c.removed_at.is_(None)))}
            self.variants_in_erp = {k for (k,) in conn.execute(
                select(v.c.variant_number).where(v.c.removed_at.is_(None)))}
        self._changed: dict[str, bool] = {}

    def prepare(self, products: Iterable[str | None]) -> None:
        """Find out at once which of these accepted products changed since (one diff query)."""
        todo = {pn for pn in products if pn is not None and pn not in self._changed
                and self.products.get(pn, ("", None))[0] == "accepted"}
        if todo:
            from sqlmodel import Session

            from erpsync.outbound.changes import pending

            with Session(read_engine_for(self.engine)) as session:
                changed = {i.erp_key for i in pending(session, "product", on_absent=self.on_absent,  # type: ignore[arg-type]
                                                      keys=sorted(todo), include_rejected=True)}
            self._changed.update({pn: pn in changed for pn in todo})

    def verdict(self, product: str | None, variant: str | None = None) -> tuple[str, str, str | None]:
        """(``WAIT`` | ``WAIT_COUNTED`` | ``PARK``, cause, reason for PARK or None)."""
        if product is None or product not in self.in_erp:
            return PARK, "dependency_absent", f"product {product or '(none)'} is not in the ERP's products"
        if variant is not None and variant not in self.variants_in_erp:
            return PARK, "dependency_absent", f"variant {variant} is not in the ERP's variants"
        status, error = self.products.get(product, ("pending", None))
        if status == "parked":
            return PARK, "dependency_parked", f"product {product} is parked: {error or 'see erpsync parked list'}"
        if status == "accepted":
            if product not in self._changed:
                self.prepare([product])
            if not self._changed[product]:
                return WAIT_COUNTED, "missing_after_runs", None
        return WAIT, "waiting", None


class OutboundLedger:
    """Reads and advances ``OutboundItem`` rows; parks items as ``ParkedItem`` rows."""

    #: rows written in one run after which PostgreSQL's statistics are refreshed (ANALYZE)
    ANALYZE_AFTER_ROWS = 5_000

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.written = 0
        self._parked_now: dict[tuple[str, str], _ParkedGroup] = {}

    def _note_parked(self, entity: str, items: Sequence[Rejected]) -> None:
        for item in items:
            group = self._parked_now.setdefault((entity, item.cause), _ParkedGroup(samples=[], reason=item.reason))
            group.count += 1
            if group.samples is not None and len(group.samples) < PARKED_SAMPLES:
                group.samples.append(item.erp_key)

    def log_parked(self) -> int:
        """One ``push.item_parked`` warning per (entity, cause) parked since the last call, with
        the count, sample keys and the first reason; returns how many items were parked."""
        total = 0
        for (entity, cause), group in sorted(self._parked_now.items()):
            total += group.count
            log.warning("push.item_parked", entity=entity, cause=cause, items=group.count,
                        sample_keys=group.samples, reason=group.reason)
        self._parked_now.clear()
        return total

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
        self._note_parked(entity, items)

    def hold(self, entity: str, items: Sequence[Rejected]) -> None:
        """These items wait for a dependency that is pending or in flight: ``waiting`` with no
        attempt spent (their ``attempts`` restart at 0); a parked one's open parked row is resolved
        as ``requeued``."""
        if not items:
            return
        now = self.clock.now()
        with transaction(self.engine) as s:
            _upsert_many(s, [{"entity": entity, "erp_key": i.erp_key, "status": "waiting", "attempts": 0,
                              "rejected_hash": None, "last_error": i.reason, "updated_at": now} for i in items],
                         ["status", "attempts", "rejected_hash", "last_error", "updated_at"])
            self._resolve_parked(s, entity, [i.erp_key for i in items], now, resolution="requeued")
        self.written += len(items)  # a first stock run holds every level of a new catalogue: 45,000 rows

    def park_dependency(self, entity: str, items: Sequence[Rejected]) -> None:
        """Park items whose dependency is itself parked or absent from the ERP. No ``rejected_hash``
        is kept: every run looks at them again, and sends them once the dependency is accepted."""
        if not items:
            return
        now = self.clock.now()
        with transaction(self.engine) as s:
            _upsert_many(s, [{"entity": entity, "erp_key": i.erp_key, "status": "parked", "attempts": 0,
                              "rejected_hash": None, "last_error": i.reason, "updated_at": now} for i in items],
                         ["status", "attempts", "rejected_hash", "last_error", "updated_at"])
            for item in items:
                self._park(s, PARK_KIND[entity], f"{entity}:{item.erp_key}", item.reason, item.payload, now)
        self._note_parked(entity, items)
        self.written += len(items)

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
            self.written += len(waiting)
            for item in to_park:
                reason = f"{item.reason} (still missing after {max_waits} runs)"
                parked.append(Rejected(item.erp_key, item.hash, reason, item.payload, "missing_after_runs"))
        if parked:
            self.reject(entity, parked)
        return parked

    def wait_for(self, entity: str, items: Sequence[tuple[Rejected, str | None, str | None, Any]],
                 deps: Dependencies, max_waits: int) -> Counter[str]:
        """Rows whose product, variant or size Centra does not have yet: each ``(row, product,
        variant, outbound)`` (``outbound``: the row's ``OutboundRef`` or None) waits or is parked
        per ``deps.verdict``. Only changes are written. Returns counts (waiting, parked, still_parked)."""
        counts: Counter[str] = Counter()
        deps.prepare(p for _, p, _, _ in items)
        hold: list[Rejected] = []
        park: list[Rejected] = []
        counted: list[Rejected] = []
        for row, product, variant, out in items:
            verdict, cause, why = deps.verdict(product, variant)
            status = None if out is None else out.status
            if verdict == PARK:
                if status == "parked" and out.rejected_hash is None:
                    counts["still_parked"] += 1
                else:
                    park.append(Rejected(row.erp_key, row.hash, f"{row.reason}: {why}", row.payload, cause))
            elif verdict == WAIT:
                counts["waiting"] += 1
                if status != "waiting" or out.attempts != 0:
                    hold.append(row)
            else:
                counted.append(Rejected(row.erp_key, row.hash, f"{row.reason}, though product {product} is",
                                        row.payload))
        self.hold(entity, hold)
        self.park_dependency(entity, park)
        counts["parked"] += len(park)
        parked_now = self.wait(entity, counted, max_waits)
        counts["waiting"] += len(counted) - len(parked_now)
        counts["parked"] += len(parked_now)
        return counts

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
        if entity in ("stock", "price"):
            self._requeue_legacy_waits(entity)
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

    def _requeue_legacy_waits(self, entity: str) -> None:
        """Rows an earlier version parked after ``max_attempts`` runs of waiting for their product
        (with a ``rejected_hash``, so never looked at again) are re-evaluated by the dependency rules."""
        legacy = and_(col(OutboundItem.entity) == entity, col(OutboundItem.status) == "parked",
                      col(OutboundItem.rejected_hash).is_not(None),
                      col(OutboundItem.last_error).like("%is not in Centra yet (still missing after%")
                      | col(OutboundItem.last_error).like("%not pushed) (still missing after%"))
        with self.engine.connect() as conn:
            if conn.execute(select(OutboundItem.id).where(legacy).limit(1)).first() is None:  # type: ignore[call-overload]
                return
        with transaction(self.engine) as s:
            s.exec(update(OutboundItem).where(legacy).values(rejected_hash=None))  # type: ignore[call-overload]

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

    def _resolve_parked(self, s: Any, entity: str, keys: list[str], now: Any, resolution: str = "applied") -> None:
        """An accepted item's open parked row (if any) is resolved as applied (or ``resolution``)."""
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
            ).values(resolved_at=now, resolution=resolution, updated_at=now))


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


__all__ = ["PARK_KIND", "Accepted", "Known", "OutboundLedger", "Rejected", "read_engine_for"]
