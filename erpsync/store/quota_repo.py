"""The quota governor's state in the database, shared by every erpsync process on it.

One short transaction per governor call: lock the single ``quota_state`` row (PostgreSQL
``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` from ``make_engine`` takes the write lock),
read the six ``quota_bucket`` rows, let the governor decide, write back only what it changed.
Every writer takes the state-row lock first, so the buckets need no lock of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from erpsync.graphql.quota import (
    BUCKETS,
    BucketState,
    BucketView,
    LaneDemand,
    QuotaSnapshot,
    bucket_views,
    learnt_batch_sizes,
    quota_left_pct,
)
from erpsync.store.models import QuotaBucket, QuotaState

__all__ = ["SqlQuotaStore", "learnt_batch_sizes", "read_quota"]  # learnt_batch_sizes: for the daemon's figures

_buckets: Table = QuotaBucket.__table__  # type: ignore[attr-defined]
_state: Table = QuotaState.__table__  # type: ignore[attr-defined]

#: the refill rates learnt from ``rateLimits`` ride in ``quota_state.estimates`` under this key
LEARNED_KEY = "~learned"
#: the lanes' demand (backlog, waiting calls, measured rates) rides there under this key
LANES_KEY = "~lanes"

_update_bucket = (
    update(_buckets)
    .where(_buckets.c.name == bindparam("b_name"))
    .values(capacity=bindparam("b_capacity"), tokens=bindparam("b_tokens"), updated_at=bindparam("b_updated_at"))
)


class SqlQuotaStore:
    """``QuotaStore`` over SQLite or PostgreSQL (tables ``quota_state`` and ``quota_bucket``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.transactions = 0

    @contextmanager
    def transaction(self, initial_factory: Callable[[], QuotaSnapshot]) -> Iterator[QuotaSnapshot]:
        with self.engine.begin() as conn:
            self.transactions += 1
            lock = select(_state).where(_state.c.id == 1).with_for_update()
            state = conn.execute(lock).mappings().first()
            initial: QuotaSnapshot | None = None
            if state is None:
                initial = initial_factory()
                self._create(conn, initial)
                state = conn.execute(lock).mappings().one()
            rows = conn.execute(select(_buckets)).mappings().all()
            estimates = dict(state["estimates"] or {})
            lanes = {k: LaneDemand.from_json(v) for k, v in (estimates.pop(LANES_KEY, None) or {}).items()}
            buckets = _bucket_states(rows, estimates)
            if len(buckets) < len(BUCKETS):  # a bucket row deleted by hand: recreate it full
                initial = initial or initial_factory()
                missing = {n: b for n, b in initial.buckets.items() if n not in buckets}
                conn.execute(_insert(conn, _buckets).values([
                    {"name": n, "capacity": b.capacity, "tokens": b.tokens, "updated_at": b.updated_at}
                    for n, b in missing.items()
                ]).on_conflict_do_nothing(index_elements=["name"]))
                buckets.update(missing)
            snap = QuotaSnapshot(
                buckets=buckets,
                blocked_until=state["blocked_until"],
                rate_limited_count=state["rate_limited_count"],
                last_refresh_at=state["last_refresh_at"],
                estimates=estimates,
                lanes=lanes,
            )
            yield snap
            if snap.dirty_buckets:
                conn.execute(_update_bucket, [
                    {"b_name": n, "b_capacity": b.capacity, "b_tokens": b.tokens, "b_updated_at": b.updated_at}
                    for n, b in snap.buckets.items()
                ])
            if snap.dirty_state:
                conn.execute(update(_state).where(_state.c.id == 1).values(
                    blocked_until=snap.blocked_until,
                    rate_limited_count=snap.rate_limited_count,
                    last_refresh_at=snap.last_refresh_at,
                    estimates={**snap.estimates, LEARNED_KEY: {
                        n: [b.rate, b.learn_gap, b.learn_at] for n, b in snap.buckets.items() if b.learn_at},
                        LANES_KEY: {k: v.to_json() for k, v in snap.lanes.items()}},
                ))

    @staticmethod
    def _create(conn: Any, initial: QuotaSnapshot) -> None:
        """First use of this database: insert the rows (a concurrent first use does nothing)."""
        conn.execute(_insert(conn, _state).values(
            id=1, blocked_until=initial.blocked_until, rate_limited_count=initial.rate_limited_count,
            last_refresh_at=initial.last_refresh_at, estimates=initial.estimates,
        ).on_conflict_do_nothing(index_elements=["id"]))
        conn.execute(_insert(conn, _buckets).values([
            {"name": n, "capacity": b.capacity, "tokens": b.tokens, "updated_at": b.updated_at}
            for n, b in initial.buckets.items()
        ]).on_conflict_do_nothing(index_elements=["name"]))


def _bucket_states(rows: Any, estimates: dict[str, Any]) -> dict[str, BucketState]:
    """Bucket rows (+ the learnt rates, popped from ``estimates``) as the governor's ``BucketState``."""
    learned = estimates.pop(LEARNED_KEY, None) or {}
    buckets = {}
    for r in rows:
        rate, gap, at = learned.get(r["name"], (None, 0.0, 0.0))
        buckets[r["name"]] = BucketState(r["capacity"], r["tokens"], r["updated_at"], rate, gap, at)
    return buckets


def read_quota(engine: Engine, share: float, now: float) -> tuple[list[BucketView], float | None]:
    """The governor's view of the stored quota at clock time ``now`` (read-only, no lock): the
    buckets topped up to now and ``quota_left_pct`` — the figure ``erpsync status`` and ``/metrics``
    show, computed as the governor computes it. ``([], None)`` before the governor's first use."""
    with engine.connect() as conn:
        state = conn.execute(select(_state.c.estimates).where(_state.c.id == 1)).mappings().first()
        rows = conn.execute(select(_buckets)).mappings().all()
    if not rows:
        return [], None
    estimates = dict((state["estimates"] if state is not None else None) or {})
    views = bucket_views(QuotaSnapshot(buckets=_bucket_states(rows, estimates)), share, now)
    return views, quota_left_pct(views)


def _insert(conn: Any, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
