"""Load ERP rows into the staging tables: validate, report, park, upsert, mark absent rows removed.

``StagingLoader.load(entity, sources, mode=...)`` is the one entry point the file importer and the
SQL source share. Per entity it runs in **one transaction**: either every valid row of every
source is loaded (and every invalid row parked), or nothing is (a file that turns out unreadable
half-way rolls the entity back). Re-importing the same data is harmless: rows are upserted by key.

Invalid rows (missing key, bad number, unknown reference, duplicate key) never block the valid
ones: each is reported as ``Problem(source, line, reason)`` and parked as a ``ParkedItem`` with
``kind="import"``, ``key="<entity>:<row key>"`` (or ``"<entity>:<source>:<line>"`` when the key is
missing). Parking the same key again updates the open item; loading the key successfully later
resolves it (``resolution="applied"``).

Modes: ``incremental`` upserts what it gets (a ``removed`` column marks rows gone); ``snapshot``
also marks every row of the entity that the sources did not mention as removed (rows that were
present but invalid count as mentioned: a typo must not deactivate a product). An empty snapshot
marks nothing.

Only what changed is written: the upsert updates an existing row only when one of its values
(or its removed mark) differs, so re-importing a 1M-row snapshot with 1 % changes writes 1 % of
the rows (no dead tuples, no WAL for the rest). ``EntityReport.written`` counts the rows inserted,
updated or marked removed; ``import_run`` / ``imported_at`` are those of the import that last
changed the row.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Engine, Text, and_, bindparam, cast, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from erpsync.clock import Clock, SystemClock
from erpsync.erp.layouts import LAYOUTS, Layout, RowError, convert, is_removed, raw_key
from erpsync.erp.readers import ImportFileError, SourceRow
from erpsync.logs import get_logger
from erpsync.store.engine import transaction
from erpsync.store.models import ParkedItem
from erpsync.store.staging import STAGING_TABLES, StagingProduct, StagingSize, StagingSizeChart, StagingVariant
from erpsync.store.upsert import insert_stmt

Mode = Literal["incremental", "snapshot"]
Progress = Callable[[str, str, int], None]  # (entity, source, rows so far)

log = get_logger("erpsync.erp.loader")
_LINE_MASK = (1 << 40) - 1
#: rows written by one import after which PostgreSQL's statistics of the table are refreshed
ANALYZE_AFTER_ROWS = 5_000


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    reason: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class EntityReport:
    entity: str
    mode: str
    sources: list[str] = field(default_factory=list)
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    removed: int = 0
    written: int = 0  # rows inserted, updated (values differed) or marked removed
    problems: list[Problem] = field(default_factory=list)  # the first ``max_problems``
    error: str | None = None  # set when nothing of this entity was loaded

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "mode": self.mode, "sources": self.sources, "rows": self.rows,
                "loaded": self.loaded, "rejected": self.rejected, "removed": self.removed,
                "written": self.written, "error": self.error, "problems": [str(p) for p in self.problems]}


@dataclass
class ImportReport:
    entities: list[EntityReport] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(e.rejected for e in self.entities)

    @property
    def failed(self) -> list[EntityReport]:
        return [e for e in self.entities if e.error]

    def as_dict(self) -> dict[str, Any]:
        return {"entities": [e.as_dict() for e in self.entities], "rejected": self.rejected,
                "failed": [e.entity for e in self.failed]}


class _References:
    """What rows may refer to, read once per entity load (earlier entities are committed)."""

    def __init__(self, session: OrmSession, entity: str) -> None:
        self.products: set[str] = set()
        self.charts: dict[str, list[str]] = {}
        self.variants: dict[str, tuple[str, str | None]] = {}  # variant -> (product, size chart)
        self.ean_owner: dict[str, tuple[str, str]] = {}  # ean -> (variant, size)
        self.pricelists: set[str] = set()
        if entity in ("variant", "price"):
            p = StagingProduct.__table__  # type: ignore[attr-defined]
            self.products = set(session.execute(select(p.c.product_number)).scalars())
        if entity in ("variant", "size"):
            c = StagingSizeChart.__table__  # type: ignore[attr-defined]
            self.charts = {n: list(s or []) for n, s in session.execute(select(c.c.name, c.c.sizes))}
        if entity in ("size", "price"):
            v = StagingVariant.__table__  # type: ignore[attr-defined]
            self.variants = {r[0]: (r[1], r[2]) for r in session.execute(
                select(v.c.variant_number, v.c.product_number, v.c.size_chart))}
        self.eans: set[str] = set()
        z = StagingSize.__table__  # type: ignore[attr-defined]
        if entity == "size":
            self.ean_owner = {r[0]: (r[1], r[2]) for r in session.execute(
                select(z.c.ean, z.c.variant_number, z.c.size))}
        elif entity == "stock":
            self.eans = set(session.execute(select(z.c.ean)).scalars())
        if entity == "price":
            pl = STAGING_TABLES["pricelist"].__table__
            self.pricelists = set(session.execute(select(pl.c.code)).scalars())

    def check(self, entity: str, row: dict[str, Any]) -> None:
        """Raise ``RowError`` for a reference to something the staging tables do not hold."""
        if entity == "variant":
            if row["product_number"] not in self.products:
                raise RowError(f"unknown product {row['product_number']!r}")
            if row["size_chart"] and row["size_chart"] not in self.charts:
                raise RowError(f"unknown size chart {row['size_chart']!r}")
        elif entity == "size":
            variant = self.variants.get(row["variant_number"])
            if variant is None:
                raise RowError(f"unknown variant {row['variant_number']!r}")
            chart = self.charts.get(variant[1] or "")
            if chart and row["size"] not in chart:
                raise RowError(f"size {row['size']!r} is not in size chart {variant[1]!r} ({'|'.join(chart)})")
            owner = self.ean_owner.get(row["ean"])
            if owner is not None and owner != (row["variant_number"], row["size"]):
                raise RowError(f"duplicate key: EAN {row['ean']} already belongs to {owner[0]}/{owner[1]}")
        elif entity == "price":
            if row["pricelist"] not in self.pricelists:
                raise RowError(f"unknown pricelist {row['pricelist']!r}")
            if row["product_number"] not in self.products:
                raise RowError(f"unknown product {row['product_number']!r}")
            if row["variant_number"]:
                variant = self.variants.get(row["variant_number"])
                if variant is None:
                    raise RowError(f"unknown variant {row['variant_number']!r}")
                if variant[0] != row["product_number"]:
                    raise RowError(f"variant {row['variant_number']!r} belongs to product {variant[0]!r}, "
                                   f"not {row['product_number']!r}")
        elif entity == "stock" and row["ean"] not in self.eans:
            raise RowError(f"unknown EAN {row['ean']!r} (no size has it)")


class StagingLoader:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        progress: Progress | None = None,
        progress_every: int = 10_000,
        log_every: int = 100_000,
        chunk_size: int = 1_000,
        max_problems: int = 1_000,
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.progress = progress
        self.progress_every = progress_every
        self.log_every = log_every
        self.chunk_size = chunk_size
        self.max_problems = max_problems

    def load(
        self, entity: str, sources: Sequence[tuple[str, Iterable[SourceRow]]], *, mode: Mode = "incremental",
    ) -> EntityReport:
        """Load every source of ``entity`` in one transaction; see the module docstring."""
        if entity not in LAYOUTS:
            raise ValueError(f"unknown entity {entity!r}")
        if mode not in ("incremental", "snapshot"):
            raise ValueError(f"unknown mode {mode!r}")
        report = EntityReport(entity, mode, [name for name, _ in sources])
        try:
            with transaction(self.engine) as session:
                self._load(session, LAYOUTS[entity], sources, mode, report)
        except ImportFileError as exc:
            report.error = str(exc)
            report.loaded = report.removed = report.written = 0
            log.error("import.failed", entity=entity, error=str(exc))
            return report
        if report.written >= ANALYZE_AFTER_ROWS and self.engine.dialect.name == "postgresql":
            # fresh statistics before the next push diffs this table (autovacuum may come later)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {STAGING_TABLES[entity].__table__.name}")  # type: ignore[attr-defined]
        log.info("import.loaded", entity=entity, mode=mode, sources=report.sources, rows=report.rows,
                 loaded=report.loaded, rejected=report.rejected, removed=report.removed, written=report.written)
        return report

    def reimport_parked(self, park_id: int) -> tuple[bool | None, str]:
        """Re-import one parked import row from the raw row kept with it (``erpsync parked retry``).

        ``(True, "loaded")``: it loads now (the parked item is resolved ``applied``); ``(False,
        reason)``: still invalid (the item stays open, with the new reason); ``(None, why)``: it
        cannot be re-imported from what was kept — an unreadable line (nothing kept), a row parked by
        its line (a duplicate key, a missing key) — and nothing changed.
        """
        t = ParkedItem.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            item = conn.execute(select(t.c.kind, t.c.key, t.c.reason, t.c.payload, t.c.resolved_at).where(
                t.c.id == park_id)).first()
        if item is None or item.kind != "import" or item.resolved_at is not None:
            return None, "not an open parked import row"
        entity, _, key = item.key.partition(":")
        layout = LAYOUTS.get(entity)
        if layout is None:
            return None, f"unknown entity {entity!r}"
        if not item.payload:
            return None, "the line could not be read, so no row was kept: fix the file and import it again"
        raw = json.loads(item.payload)
        if not isinstance(raw, dict) or raw_key(layout, raw) != key:
            return None, ("parked by its line (a duplicate key, or no key): fix the file and import it again")
        where = re.match(r"(.*):(\d+): ", item.reason or "")
        source, line = (where.group(1), int(where.group(2))) if where else (f"parked #{park_id}", 0)
        report = self.load(entity, [(source, [(line, raw)])], mode="incremental")
        if report.error:
            return False, report.error
        if report.loaded:
            return True, "loaded"
        return False, str(report.problems[0]) if report.problems else "rejected"

    def _load(
        self, session: OrmSession, layout: Layout, sources: Sequence[tuple[str, Iterable[SourceRow]]],
        mode: Mode, report: EntityReport,
    ) -> None:
        entity = layout.entity
        table = STAGING_TABLES[entity].__table__
        now = self.clock.now()
        run = uuid.uuid4().hex[:16]
        refs = _References(session, entity)
        open_parked = self._open_parked(session, entity)
        stmt = self._upsert_stmt(session, table, layout)
        # key -> where it was first loaded, packed as source index << 40 | line (memory: 1M keys)
        seen: dict[str, int] = {}
        names = [name for name, _ in sources]
        seen_invalid: set[str] = set()  # keys of present-but-invalid rows (snapshot)
        buffer: list[dict[str, Any]] = []
        parked: list[tuple[str, str, str]] = []  # (key, reason, payload)
        resolved: list[int] = []

        def reject(source: str, line: int, reason: str, raw: Any, key: str | None, *, by_line: bool = False,
                   ) -> None:
            report.rejected += 1
            problem = Problem(source, line, reason, key)
            if len(report.problems) < self.max_problems:
                report.problems.append(problem)
            # a duplicate is parked by its line: its key belongs to the row that was loaded
            by_key = key is not None and not by_line
            park_key = f"{entity}:{key}" if by_key else f"{entity}:{source}:{line}"
            payload = json.dumps(raw, default=str, ensure_ascii=False) if raw is not None else None
            parked.append((park_key, str(problem), payload or ""))

        for source_idx, (source, rows) in enumerate(sources):
            count = 0
            for line, raw in rows:
                count += 1
                report.rows += 1
                if self.progress and count % self.progress_every == 0:
                    self.progress(entity, source, count)
                if self.log_every and count % self.log_every == 0:
                    log.info("import.progress", entity=entity, source=source, rows=count)
                if isinstance(raw, RowError):
                    reject(source, line, str(raw), None, None)
                    continue
                key = raw_key(layout, raw)
                try:
                    row = convert(layout, raw)
                    removed = is_removed(raw)
                    assert key is not None  # convert() rejects missing key columns
                    first = seen.get(key)
                    if first is not None:
                        where = f"{names[first >> 40]}:{first & _LINE_MASK}"
                        reject(source, line, f"duplicate key {key} (first at {where})", dict(raw), key, by_line=True)
                        continue
                    refs.check(entity, row)
                except RowError as exc:
                    if key is not None and mode == "snapshot" and key not in seen:
                        seen_invalid.add(key)
                    reject(source, line, str(exc), dict(raw), key)
                    continue
                seen[key] = source_idx << 40 | line
                if entity == "size":
                    refs.ean_owner[row["ean"]] = (row["variant_number"], row["size"])
                row.update(import_run=run, imported_at=now, removed_at=now if removed else None)
                buffer.append(row)
                park_id = open_parked.get(f"{entity}:{key}")
                if park_id is not None:
                    resolved.append(park_id)
                if len(buffer) >= self.chunk_size:
                    report.written += _rowcount(session.execute(stmt, buffer))
                    report.loaded += len(buffer)
                    buffer = []
            if self.progress:
                self.progress(entity, source, count)
        if buffer:
            report.written += _rowcount(session.execute(stmt, buffer))
            report.loaded += len(buffer)
        if mode == "snapshot":
            report.removed = self._mark_absent(session, table, layout, now, seen, seen_invalid)
            report.written += report.removed
        self._park(session, entity, parked, open_parked, resolved, now)

    @staticmethod
    def _upsert_stmt(session: OrmSession, table: Any, layout: Layout) -> Any:
        ins = insert_stmt(session, table)  # type: ignore[arg-type]
        values = [c for c in layout.names if c not in layout.key]
        cols = [*values, "import_run", "imported_at", "removed_at"]
        # an unchanged row is not written at all (the WHERE of ON CONFLICT DO UPDATE)
        differs = or_(*(_comparable(table.c[c]).is_distinct_from(_comparable(ins.excluded[c])) for c in values),
                      table.c.removed_at.is_(None) != ins.excluded.removed_at.is_(None))
        return ins.on_conflict_do_update(
            index_elements=list(layout.key),
            set_={c: ins.excluded[c] for c in cols},
            where=differs,
        ).returning(table.c[layout.key[0]])  # the rows written: neither driver's executemany rowcount says

    def _mark_absent(
        self, session: OrmSession, table: Any, layout: Layout, now: datetime,
        seen: dict[str, Any], seen_invalid: set[str],
    ) -> int:
        if not seen and not seen_invalid:
            log.warning("import.empty_snapshot", entity=layout.entity,
                        detail="an empty snapshot marks nothing removed")
            return 0
        keys = [table.c[k] for k in layout.key]
        price = layout.entity == "price"
        absent: list[dict[str, Any]] = []
        result = session.connection().execute(
            select(*keys).where(table.c.removed_at.is_(None)),
            execution_options={"yield_per": 10_000, "stream_results": True})
        for row in result:
            parts = ["" if v is None else str(v) for v in row]
            if price and not parts[-1]:
                parts.pop()
            key = "|".join(parts)
            if key not in seen and key not in seen_invalid:
                absent.append({f"k_{k}": v for k, v in zip(layout.key, row, strict=True)})
        if not absent:
            return 0
        mark = update(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in layout.key))).values(
            removed_at=now)
        for i in range(0, len(absent), 1_000):
            session.execute(mark, absent[i:i + 1_000])
        return len(absent)

    @staticmethod
    def _open_parked(session: OrmSession, entity: str) -> dict[str, int]:
        t = ParkedItem.__table__  # type: ignore[attr-defined]
        rows = session.execute(select(t.c.key, t.c.id).where(
            t.c.kind == "import", t.c.resolved_at.is_(None), t.c.key.like(f"{entity}:%")))
        return {k: i for k, i in rows}

    @staticmethod
    def _park(
        session: OrmSession, entity: str, parked: list[tuple[str, str, str]], open_parked: dict[str, int],
        resolved: list[int], now: datetime,
    ) -> None:
        t = ParkedItem.__table__  # type: ignore[attr-defined]
        new: dict[str, dict[str, Any]] = {}
        for key, reason, payload in parked:
            park_id = open_parked.get(key)
            if park_id is not None:
                session.execute(update(t).where(t.c.id == park_id).values(
                    reason=reason, payload=payload or None, attempts=t.c.attempts + 1, updated_at=now))
            else:
                new[key] = {"kind": "import", "key": key, "reason": reason, "payload": payload or None,
                            "attempts": 1, "created_at": now, "updated_at": now}
        if new:
            session.execute(t.insert(), list(new.values()))
        for i in range(0, len(resolved), 500):
            session.execute(update(t).where(t.c.id.in_(resolved[i:i + 500])).values(
                resolved_at=now, resolution="applied", updated_at=now))
        if parked:
            log.warning("import.parked", entity=entity, count=len(parked))


def _comparable(column: Any) -> Any:
    """JSON has no equality operator in PostgreSQL: compare its text."""
    return cast(column, Text) if isinstance(column.type, JSON) else column


def _rowcount(result: Any) -> int:
    """Rows an executemany upsert inserted or updated (an unchanged row returns nothing)."""
    return len(result.all())
