"""Change detection: what Centra would receive for every staged item, and what differs from what
Centra last accepted.

Contract (used by the push jobs, ``erpsync plan`` and ``erpsync resync``):

- ``desired(session, entity)`` streams every item of ``entity`` as Centra would receive it, in a
  stable order (by ERP key), each with the ``payload_hash`` of its canonical payload.
- ``pending(session, entity)`` streams only the items whose hash differs from
  ``OutboundItem.accepted_hash`` (new items, changed items, items whose hash was forgotten by
  ``resync``), leaving out a payload Centra already rejected (``OutboundItem.rejected_hash``)
  until it changes. A push job sends those and calls ``record_accepted`` **only after Centra
  accepted them**; a no-op run therefore sends nothing. Items are plain (slotted) dataclasses
  built per row: treat them as read-only.
- Entities, in push order: ``sizechart``, ``pricelist``, ``product``, ``price``, ``stock``.
- Item keys (``OutboundItem.erp_key``): size chart name; pricelist code; product number;
  ``"<pricelist>|<product>"`` or ``"<pricelist>|<product>|<variant>"`` for a price;
  ``"<warehouse>|<EAN>"`` for stock.
- Payloads use the GraphQL input shapes of ``contract/centra.graphql`` with deterministic
  externalIds (``prd_<product number>``, ``var_<variant number>``, ``sc_<size chart name>``;
  warehouses and pricelists by their ERP code unless ``push.warehouses`` / ``push.pricelists``
  map them). Money stays ``Decimal`` in the payload (the client converts it for the wire):
    sizechart  SizeChartCreateInput {externalId name horizontalLabels}
    pricelist  PricelistCreateInput {externalId|id name status currencyIsoCode store{id}}
    product    ProductCreateInput {externalId productNumber name status addProductVariants[
                 {externalId variantNumber name status sizeChart{externalId}
                  productSizes[{size{name} isActive EAN UPC? sizeNumber?}]}]}
    price      {pricelist{..} product{externalId} productVariant{externalId}? price{value
                 currencyIsoCode} recommendedRetailPrice{..}?}  (one ProductPriceInput entry)
    stock      {warehouse{..} productSize{EAN} quantity}     (one setStock productSizes entry)
- Items removed from the ERP (a full snapshot without them, see ``store/staging.py``): with
  ``on_absent="ignore"`` they are left alone (not desired, never pending); with ``"deactivate"``
  products/variants/pricelists become ``INACTIVE``, sizes ``isActive: false`` and stock
  ``quantity: 0``. Removed prices and size charts are never pushed (Centra has no removal for
  them in the Integration API subset erpsync uses).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Select, and_, case, literal, select, update
from sqlalchemy.orm import Session as OrmSession

from erpsync.graphql.quota import TIERS
from erpsync.store.models import OutboundItem
from erpsync.store.staging import (
    StagingPrice,
    StagingPricelist,
    StagingProduct,
    StagingSize,
    StagingSizeChart,
    StagingStock,
    StagingVariant,
)
from erpsync.store.upsert import upsert

ENTITIES: tuple[str, ...] = ("sizechart", "pricelist", "product", "price", "stock")
OnAbsent = Literal["deactivate", "ignore"]

_FETCH = 10_000  # rows per fetch when streaming
_PRODUCT_CHUNK = 500  # products assembled per round trip


# ---------------------------------------------------------------- canonical hashing


def canonical_decimal(value: Decimal) -> str:
    """``Decimal("199.00")``, ``Decimal("199")`` and PostgreSQL's ``199.00000000`` -> ``"199"``."""
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    norm = value.normalize()
    return "0" if norm == 0 else format(norm, "f")


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return canonical_decimal(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, (tuple, set, frozenset)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    raise TypeError(f"cannot hash {type(obj).__name__}")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)
_encode_str = json.encoder.encode_basestring  # the C implementation when available


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 text, Decimals as normalized strings (never floats)."""
    return _ENCODER.encode(payload)


def stock_canonical_json(warehouse_json: str, ean: str, quantity: int) -> str:
    """``canonical_json`` of a stock payload, built without the generic encoder (the 1M-row path).

    ``warehouse_json`` is ``canonical_json`` of the warehouse reference. A test pins the equality.
    """
    return f'{{"productSize":{{"EAN":{_encode_str(ean)}}},"quantity":{quantity:d},"warehouse":{warehouse_json}}}'


def payload_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex, 64 chars) of ``canonical_json(payload)``."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- references


def product_external_id(product_number: str) -> str:
    return f"prd_{product_number}"


def variant_external_id(variant_number: str) -> str:
    return f"var_{variant_number}"


def size_chart_external_id(name: str) -> str:
    return f"sc_{name}"


def _ref(value: str) -> dict[str, Any]:
    if value.startswith("id:") and value[3:].isdigit():
        return {"id": int(value[3:])}
    return {"externalId": value}


@dataclass(frozen=True)
class Refs:
    """How ERP warehouse and pricelist codes are addressed in Centra (``push.warehouses`` /
    ``push.pricelists``: code -> externalId, or ``"id:<n>"``); unmapped codes are used as is."""

    warehouses: Mapping[str, str] = field(default_factory=dict)
    pricelists: Mapping[str, str] = field(default_factory=dict)

    def warehouse(self, code: str) -> dict[str, Any]:
        return _ref(self.warehouses.get(code, code))

    def pricelist(self, code: str) -> dict[str, Any]:
        return _ref(self.pricelists.get(code, code))

    @classmethod
    def from_settings(cls, push: Any) -> Refs:
        return cls(dict(push.warehouses), dict(push.pricelists))


# ---------------------------------------------------------------- items


@dataclass(slots=True)
class OutboundRef:
    """The part of an ``OutboundItem`` row change detection reads (no ORM object per item)."""

    id: int
    external_id: str | None
    remote_id: str | None
    accepted_hash: str | None
    status: str
    attempts: int
    rejected_hash: str | None = None


@dataclass(slots=True)
class PendingItem:
    """One item as Centra would receive it.

    ``depends_on`` is the product number a price or stock item needs in Centra first (None when
    unknown). ``removed`` is True for an item absent from the last full snapshot (then the payload
    is the deactivating one). ``outbound`` is None when nothing was ever recorded for it.
    """

    entity: str
    erp_key: str
    payload: Mapping[str, Any]
    hash: str
    outbound: OutboundRef | None
    removed: bool = False
    depends_on: str | None = None

    @property
    def changed(self) -> bool:
        """The payload differs from what Centra last accepted (or nothing was accepted yet)."""
        return self.outbound is None or self.outbound.accepted_hash != self.hash

    @property
    def rejected(self) -> bool:
        """Centra rejected exactly this payload before (parked): not re-sent until it changes."""
        return self.outbound is not None and self.outbound.rejected_hash == self.hash

    @property
    def operation(self) -> str:
        """create | update | deactivate | set (prices and stock are absolute sets)."""
        if self.entity in ("price", "stock"):
            return "set"
        if self.removed:
            return "deactivate"
        if self.outbound is None or (self.outbound.accepted_hash is None and self.outbound.remote_id is None):
            return "create"
        return "update"


def _outbound_cols(entity: str, key_expr: Any) -> tuple[Any, Any]:
    o = OutboundItem.__table__.alias("o")  # type: ignore[attr-defined]
    onclause = and_(o.c.entity == entity, o.c.erp_key == key_expr)
    cols = (o.c.id, o.c.external_id, o.c.remote_id, o.c.accepted_hash, o.c.status, o.c.attempts,
            o.c.rejected_hash)
    return o, (onclause, cols)


def _oref(row: Sequence[Any], start: int) -> OutboundRef | None:
    if row[start] is None:
        return None
    return OutboundRef(row[start], row[start + 1], row[start + 2], row[start + 3], row[start + 4],
                       row[start + 5], row[start + 6])


def _stream(session: OrmSession, stmt: Select[Any]) -> Iterator[Sequence[Any]]:
    # Core connection, not Session.execute: the ORM's yield_per path costs ~10 µs per row
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # a server-side cursor is planned for its first 10 % of rows (nested loops); every row is read
        conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
    result = conn.execute(stmt, execution_options={"yield_per": _FETCH, "stream_results": True})
    try:
        for part in result.partitions():
            yield from part
    finally:
        result.close()


def _keys_filter(stmt: Select[Any], key_expr: Any, keys: Iterable[str] | None) -> Select[Any]:
    if keys is None:
        return stmt
    return stmt.where(key_expr.in_(list(keys)))


# ---------------------------------------------------------------- desired state per entity


def desired(
    session: OrmSession,
    entity: str,
    *,
    refs: Refs | None = None,
    on_absent: OnAbsent = "ignore",
    keys: Iterable[str] | None = None,
) -> Iterator[PendingItem]:
    """Every item of ``entity`` as Centra should have it, in erp_key-stable order, streaming.

    ``keys`` restricts to those erp_keys. ``PendingItem.changed`` tells whether it needs a push.
    """
    refs = refs or Refs()
    if entity == "stock":
        return _stock(session, refs, on_absent, keys)
    if entity == "price":
        return _prices(session, refs, keys)
    if entity == "product":
        return _products(session, on_absent, keys)
    if entity == "sizechart":
        return _size_charts(session, keys)
    if entity == "pricelist":
        return _pricelists(session, refs, on_absent, keys)
    raise ValueError(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")


def pending(
    session: OrmSession,
    entity: str,
    *,
    refs: Refs | None = None,
    on_absent: OnAbsent = "ignore",
    keys: Iterable[str] | None = None,
    include_rejected: bool = False,
) -> Iterator[PendingItem]:
    """The items whose desired hash differs from the hash Centra last accepted (streaming).

    Items whose exact payload Centra rejected before (``OutboundItem.rejected_hash``, parked) are
    left out unless ``include_rejected``: they wait for the ERP data to change or an operator.
    """
    if entity == "stock":  # the big one (a push_stock run every window): skip unchanged rows before building them
        return _stock(session, refs or Refs(), on_absent, keys, changed_only=True, include_rejected=include_rejected)
    return (item for item in desired(session, entity, refs=refs, on_absent=on_absent, keys=keys)
            if item.changed and (include_rejected or not item.rejected))


def _stock_scan(session: OrmSession, refs: Refs, on_absent: OnAbsent, keys: Iterable[str] | None,
                ) -> Iterator[tuple[Sequence[Any], int, bool, str, dict[str, Any]]]:
    """(row, quantity, removed, hash, warehouse ref) per stock row: the one stock diff, shared by
    ``desired`` and ``plan``'s lean count. Row: warehouse, ean, quantity, removed, product, outbound…"""
    s = StagingStock.__table__  # type: ignore[attr-defined]
    z = StagingSize.__table__  # type: ignore[attr-defined]
    v = StagingVariant.__table__  # type: ignore[attr-defined]
    key = s.c.warehouse + literal("|") + s.c.ean
    o, (onclause, ocols) = _outbound_cols("stock", key)
    stmt = (
        select(s.c.warehouse, s.c.ean, s.c.quantity, s.c.removed_at.is_not(None), v.c.product_number, *ocols)
        .select_from(s.outerjoin(z, z.c.ean == s.c.ean)
                     .outerjoin(v, v.c.variant_number == z.c.variant_number)
                     .outerjoin(o, onclause))
        .order_by(s.c.warehouse, s.c.ean)
    )
    if on_absent == "ignore":
        stmt = stmt.where(s.c.removed_at.is_(None))
    stmt = _keys_filter(stmt, key, keys)
    wh_refs: dict[str, tuple[dict[str, Any], str]] = {}
    sha = hashlib.sha256
    for row in _stream(session, stmt):
        wh, removed = row[0], bool(row[3])
        qty = 0 if removed else row[2]
        cached = wh_refs.get(wh)
        if cached is None:
            ref = refs.warehouse(wh)
            cached = wh_refs[wh] = (ref, canonical_json(ref))
        yield row, qty, removed, sha(stock_canonical_json(cached[1], row[1], qty).encode()).hexdigest(), cached[0]


def _stock(session: OrmSession, refs: Refs, on_absent: OnAbsent, keys: Iterable[str] | None, *,
           changed_only: bool = False, include_rejected: bool = False) -> Iterator[PendingItem]:
    for row, qty, removed, digest, ref in _stock_scan(session, refs, on_absent, keys):
        # row[5..11]: the outbound row (id, …, accepted_hash at 8, rejected_hash at 11), as plan reads it
        if changed_only and row[5] is not None and (row[8] == digest or (row[11] == digest and not include_rejected)):
            continue
        wh, ean = row[0], row[1]
        payload = {"warehouse": ref, "productSize": {"EAN": ean}, "quantity": qty}
        yield PendingItem("stock", f"{wh}|{ean}", payload, digest, _oref(row, 5) if row[5] is not None else None,
                          removed, row[4])


def _price_key(p: Any) -> Any:
    base = p.c.pricelist + literal("|") + p.c.product_number
    return case((p.c.variant_number == "", base), else_=base + literal("|") + p.c.variant_number)


def _prices(session: OrmSession, refs: Refs, keys: Iterable[str] | None) -> Iterator[PendingItem]:
    p = StagingPrice.__table__  # type: ignore[attr-defined]
    pl = StagingPricelist.__table__  # type: ignore[attr-defined]
    key = _price_key(p)
    o, (onclause, ocols) = _outbound_cols("price", key)
    stmt = (
        select(p.c.pricelist, p.c.product_number, p.c.variant_number, p.c.price, p.c.rrp, pl.c.currency,
               *ocols)
        .select_from(p.outerjoin(pl, pl.c.code == p.c.pricelist).outerjoin(o, onclause))
        .where(p.c.removed_at.is_(None))
        .order_by(p.c.pricelist, p.c.product_number, p.c.variant_number)
    )
    stmt = _keys_filter(stmt, key, keys)
    for row in _stream(session, stmt):
        plc, pn, vn, price, rrp, currency = row[:6]
        payload: dict[str, Any] = {
            "pricelist": refs.pricelist(plc),
            "product": {"externalId": product_external_id(pn)},
            "price": {"value": price, "currencyIsoCode": currency},
        }
        if vn:
            payload["productVariant"] = {"externalId": variant_external_id(vn)}
        if rrp is not None:
            payload["recommendedRetailPrice"] = {"value": rrp, "currencyIsoCode": currency}
        erp_key = f"{plc}|{pn}|{vn}" if vn else f"{plc}|{pn}"
        yield PendingItem("price", erp_key, payload, payload_hash(payload), _oref(row, 6), False, pn)


def _size_charts(session: OrmSession, keys: Iterable[str] | None) -> Iterator[PendingItem]:
    c = StagingSizeChart.__table__  # type: ignore[attr-defined]
    o, (onclause, ocols) = _outbound_cols("sizechart", c.c.name)
    stmt = (select(c.c.name, c.c.sizes, *ocols).select_from(c.outerjoin(o, onclause))
            .where(c.c.removed_at.is_(None)).order_by(c.c.name))
    stmt = _keys_filter(stmt, c.c.name, keys)
    for row in _stream(session, stmt):
        payload = {"externalId": size_chart_external_id(row[0]), "name": row[0],
                   "horizontalLabels": list(row[1] or [])}
        yield PendingItem("sizechart", row[0], payload, payload_hash(payload), _oref(row, 2))


def _pricelists(session: OrmSession, refs: Refs, on_absent: OnAbsent, keys: Iterable[str] | None,
                ) -> Iterator[PendingItem]:
    t = StagingPricelist.__table__  # type: ignore[attr-defined]
    o, (onclause, ocols) = _outbound_cols("pricelist", t.c.code)
    stmt = (select(t.c.code, t.c.name, t.c.currency, t.c.store, t.c.status, t.c.removed_at, *ocols)
            .select_from(t.outerjoin(o, onclause)).order_by(t.c.code))
    if on_absent == "ignore":
        stmt = stmt.where(t.c.removed_at.is_(None))
    stmt = _keys_filter(stmt, t.c.code, keys)
    for row in _stream(session, stmt):
        code, name, currency, store, status, removed_at = row[:6]
        removed = removed_at is not None
        payload: dict[str, Any] = {**refs.pricelist(code), "name": name,
                                   "status": "INACTIVE" if removed else status,
                                   "currencyIsoCode": currency, "store": {"id": int(store)}}
        yield PendingItem("pricelist", code, payload, payload_hash(payload), _oref(row, 6), removed)


def _products(session: OrmSession, on_absent: OnAbsent, keys: Iterable[str] | None) -> Iterator[PendingItem]:
    p = StagingProduct.__table__  # type: ignore[attr-defined]
    v = StagingVariant.__table__  # type: ignore[attr-defined]
    z = StagingSize.__table__  # type: ignore[attr-defined]
    c = StagingSizeChart.__table__  # type: ignore[attr-defined]
    o, (onclause, ocols) = _outbound_cols("product", p.c.product_number)
    base = select(p.c.product_number, p.c.name, p.c.status, p.c.removed_at, *ocols).select_from(
        p.outerjoin(o, onclause))
    if on_absent == "ignore":
        base = base.where(p.c.removed_at.is_(None))
    base = _keys_filter(base, p.c.product_number, keys)
    charts = {name: list(sizes or []) for name, sizes in session.execute(select(c.c.name, c.c.sizes))}
    after: str | None = None
    while True:
        stmt = base.order_by(p.c.product_number).limit(_PRODUCT_CHUNK)
        if after is not None:
            stmt = stmt.where(p.c.product_number > after)
        products = list(session.execute(stmt))
        if not products:
            return
        after = products[-1][0]
        numbers = [r[0] for r in products]
        variants: dict[str, list[Any]] = defaultdict(list)
        for vr in session.execute(
            select(v.c.product_number, v.c.variant_number, v.c.name, v.c.status, v.c.size_chart,
                   v.c.removed_at).where(v.c.product_number.in_(numbers)).order_by(v.c.variant_number)
        ):
            variants[vr[0]].append(vr)
        var_numbers = [vr[1] for vrs in variants.values() for vr in vrs]
        sizes: dict[str, list[Any]] = defaultdict(list)
        for i in range(0, len(var_numbers), _PRODUCT_CHUNK):
            for sr in session.execute(
                select(z.c.variant_number, z.c.size, z.c.ean, z.c.upc, z.c.size_number, z.c.removed_at)
                .where(z.c.variant_number.in_(var_numbers[i:i + _PRODUCT_CHUNK]))
            ):
                sizes[sr[0]].append(sr)
        for row in products:
            pn, name, status, removed_at = row[:4]
            removed = removed_at is not None
            payload = _product_payload(pn, name, status, removed, variants.get(pn, []), sizes, charts,
                                       on_absent)
            yield PendingItem("product", pn, payload, payload_hash(payload), _oref(row, 4), removed)


def _product_payload(
    pn: str, name: str, status: str, removed: bool, variants: list[Any], sizes: Mapping[str, list[Any]],
    charts: Mapping[str, list[str]], on_absent: OnAbsent,
) -> dict[str, Any]:
    out_variants = []
    for _pn, vn, vname, vstatus, chart, v_removed_at in variants:
        v_removed = removed or v_removed_at is not None
        if v_removed_at is not None and on_absent == "ignore":
            continue
        order = {s: i for i, s in enumerate(charts.get(chart or "", []))}
        product_sizes = []
        for _vn, size, ean, upc, size_number, s_removed_at in sorted(
            sizes.get(vn, []), key=lambda r: (order.get(r[1], len(order)), r[1])
        ):
            if s_removed_at is not None and on_absent == "ignore":
                continue
            ps: dict[str, Any] = {"size": {"name": size}, "EAN": ean,
                                  "isActive": not (v_removed or s_removed_at is not None)}
            if upc:
                ps["UPC"] = upc
            if size_number:
                ps["sizeNumber"] = size_number
            product_sizes.append(ps)
        var: dict[str, Any] = {"externalId": variant_external_id(vn), "variantNumber": vn, "name": vname,
                               "status": "INACTIVE" if v_removed else vstatus, "productSizes": product_sizes}
        if chart:
            var["sizeChart"] = {"externalId": size_chart_external_id(chart)}
        out_variants.append(var)
    return {"externalId": product_external_id(pn), "productNumber": pn, "name": name,
            "status": "INACTIVE" if removed else status, "addProductVariants": out_variants}


# ---------------------------------------------------------------- recording and forgetting


def record_accepted(
    session: OrmSession,
    items: Iterable[PendingItem],
    *,
    now: datetime,
    remote_ids: Mapping[str, str] | None = None,
) -> int:
    """Record that Centra accepted these items (call only after acceptance, in the same
    transaction that stores anything else learned from the response). Returns the row count."""
    remote_ids = remote_ids or {}
    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        ext = item.payload.get("externalId") if isinstance(item.payload, Mapping) else None
        row: dict[str, Any] = {
            "entity": item.entity, "erp_key": item.erp_key, "accepted_hash": item.hash, "rejected_hash": None,
            "status": "accepted", "attempts": 0, "last_error": None, "accepted_at": now, "updated_at": now,
            "external_id": ext if isinstance(ext, str) else None,
            "remote_id": remote_ids.get(item.erp_key) or (item.outbound.remote_id if item.outbound else None),
        }
        by_entity[item.entity].append(row)
    table = OutboundItem.__table__  # type: ignore[attr-defined]
    n = 0
    for rows in by_entity.values():
        for i in range(0, len(rows), 1000):
            upsert(session, table, rows[i:i + 1000], key=("entity", "erp_key"))  # type: ignore[arg-type]
        n += len(rows)
    return n


def resync(session: OrmSession, entity: str, keys: Iterable[str] | None = None) -> int:
    """Forget the accepted hashes of ``entity`` (all, or the given erp_keys) so the next push
    re-sends them. Remote ids are kept (items are updated, never re-created). Returns the count."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    t = OutboundItem.__table__  # type: ignore[attr-defined]
    stmt = update(t).where(t.c.entity == entity, t.c.accepted_hash.is_not(None)).values(accepted_hash=None)
    if keys is not None:
        key_list = list(keys)
        total = 0
        for i in range(0, len(key_list), 500):
            total += session.execute(stmt.where(t.c.erp_key.in_(key_list[i:i + 500]))).rowcount  # type: ignore[attr-defined]
        return total
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- plan


@dataclass
class EntityPlan:
    entity: str
    items: int = 0  # desired items
    operations: Counter[str] = field(default_factory=Counter)  # changed items by operation
    parked: int = 0  # changed, but Centra rejected exactly this payload before: not sent
    mutations: int = 0
    requests: int = 0

    @property
    def changed(self) -> int:
        return sum(self.operations.values())


@dataclass
class Plan:
    entities: list[EntityPlan]
    mutations_per_second: float
    requests_per_second: float
    #: (allowance at the start, refill per second) of erpsync's mutation and request buckets, 10 s and 1 h
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: mutations per second live stock changes may take meanwhile (``push.stock_mutation_share`` of the
    #: hourly allowance: the stock lane is ahead of the catalogue and paced to that budget)
    live_stock_per_second: float = 0.0

    @property
    def mutations(self) -> int:
        return sum(e.mutations for e in self.entities)

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.entities)

    @property
    def seconds(self) -> float:
        """The push's time under the quota, as the governor's work-conserving lanes spend it: every
        bucket of erpsync's share starts full and refills continuously, so ``n`` tokens take
        ``(n − allowance) / refill`` (the slowest bucket rules). Without bucket figures: the
        sustained time under the hourly buckets × share. Live stock changes, paced to their budget,
        take ``live_stock_per_second`` of every mutation and request bucket's refill meanwhile (one
        request per ``setStock``): the higher lane goes first, the push gets the rest."""
        live = self.live_stock_per_second
        if not self.buckets:
            return max(self.mutations / max(1e-9, self.mutations_per_second - live),
                       self.requests / max(1e-9, self.requests_per_second - live))
        worst = 0.0
        for name, (allowance, refill) in self.buckets.items():
            n = self.mutations if name.startswith("mutations") else self.requests
            left = refill - live
            worst = max(worst, max(0.0, n - allowance) / left if left > 0 else 0.0)
        return worst

    def as_dict(self) -> dict[str, Any]:
        return {
            "entities": {e.entity: {"items": e.items, "changed": e.changed, "operations": dict(e.operations),
                                    "parked": e.parked,
                                    "mutations": e.mutations, "requests": e.requests} for e in self.entities},
            "mutations": self.mutations, "requests": self.requests,
            "mutations_per_second": round(self.mutations_per_second, 6),
            "live_stock_per_second": round(self.live_stock_per_second, 6),
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class Batching:
    """Batch sizes as the push jobs start them; stock and prices grow as ``BatchSizer`` does on a
    store that answers fast (``stock_max`` / ``prices_max`` are their caps)."""

    stock: int = 500
    prices: int = 100
    products: int = 20
    stock_max: int = 0  # 0: fixed at ``stock``
    prices_max: int = 0  # 0: fixed at ``prices``

    @classmethod
    def from_settings(cls, push: Any, learnt: dict[str, int] | None = None) -> Batching:
        """From ``[push]``; ``learnt`` (the governor's learnt sizes) replaces the first sizes."""
        learnt = learnt or {}
        return cls(learnt.get("setStock", push.stock_batch_size), learnt.get("setPricesBatch", push.prices_batch_size),
                   push.products_batch_size, push.stock_batch_max, 100)


def _adaptive_batches(groups: Sequence[int], start: int, maximum: int) -> int:
    """Batches the push sends for ``groups`` (items per group, in order) with one sizer that starts at
    ``start`` and grows on every full batch up to ``maximum`` (a store answering fast)."""
    from erpsync.outbound.batching import BatchSizer

    if maximum <= 0:
        return sum(math.ceil(n / start) for n in groups)
    sizer = BatchSizer("plan", start, max(start, maximum), log_changes=False)
    batches = 0
    for group in groups:
        left = group
        while left > 0:
            size = min(left, sizer.size)
            sizer.answered(size, 0.0)
            left -= size
            batches += 1
    return batches


def tier_rates(tier: str, share: float, limits_1h: tuple[int, int, int] | None = None) -> tuple[float, float]:
    """(mutations/s, requests/s) sustained for erpsync's ``share`` of the tier's hourly buckets."""
    if tier == "custom":
        if limits_1h is None:
            raise ValueError("quota.tier = custom needs quota.limits_1h")
        hour = limits_1h
    else:
        hour = TIERS[tier][1]
    return hour[1] / 3600 * share, hour[0] / 3600 * share


def plan(
    session: OrmSession,
    *,
    refs: Refs | None = None,
    on_absent: OnAbsent = "ignore",
    batching: Batching | None = None,
    tier: str = "growth",
    share: float = 1.0,
    limits_1h: tuple[int, int, int] | None = None,
    entities: Sequence[str] = ENTITIES,
    limits_10s: tuple[int, int, int] | None = None,
    live_stock_share: float = 0.0,
) -> Plan:
    """Count what a push would send, without sending anything.

    Mutations: one ``createSizeChart`` / ``createPricelist`` per new one; one ``createProduct``
    (variants and sizes inline) per new product, and for a changed product ``updateProduct`` plus
    one ``updateProductVariant`` per variant (an upper bound); one ``setPricesBatch`` per batch of
    ``prices`` product prices across every pricelist; one ``setStock`` per warehouse per batch of
    sizes (batches grow as the push's adaptive sizes do on a fast store).
    Requests: one per mutation plus one externalId lookup per ``products`` batch of creates.
    With ``limits_10s`` (and the hourly limits) ``Plan.seconds`` follows the quota buckets;
    ``live_stock_share`` (``push.stock_mutation_share``) is the part of the hourly mutation allowance
    live stock changes take meanwhile (the paced ``push_stock``, ahead of the catalogue).
    """
    batching = batching or Batching()
    mps, rps = tier_rates(tier, share, limits_1h)
    out = []
    for entity in entities:
        ep = EntityPlan(entity)
        groups: Counter[str] = Counter()
        price_products: dict[str, set[str]] = defaultdict(set)
        creates = 0
        items = parked = 0
        if entity == "stock":
            # the 1M-row path: no PendingItem per row, same SQL and hashes as desired()
            for row, _qty, _removed, digest, _ref in _stock_scan(session, refs or Refs(), on_absent, None):
                items += 1
                if row[5] is not None:  # outbound id: compare with accepted_hash / rejected_hash
                    if row[8] == digest:
                        continue
                    if row[11] == digest:
                        parked += 1
                        continue
                groups[row[0]] += 1
        for item in () if entity == "stock" else desired(session, entity, refs=refs, on_absent=on_absent):
            items += 1
            o = item.outbound
            if o is not None:  # inlined item.changed / item.rejected: this loop sees every row
                if o.accepted_hash == item.hash:
                    continue
                if o.rejected_hash == item.hash:
                    parked += 1
                    continue
            op = item.operation
            ep.operations[op] += 1
            if entity == "price":
                plc, pn = item.erp_key.split("|", 2)[:2]
                price_products[plc].add(pn)
            elif entity == "product":
                if op == "create":
                    ep.mutations += 1
                    creates += 1
                else:
                    ep.mutations += 1 + len(item.payload.get("addProductVariants", []))
            elif op in ("create", "update", "deactivate"):
                ep.mutations += 1
                creates += op == "create"
        ep.items, ep.parked = items, parked
        if entity == "stock":
            ep.operations["set"] = sum(groups.values())
            ep.mutations = _adaptive_batches([groups[k] for k in sorted(groups)], batching.stock, batching.stock_max)
        elif entity == "price":
            ep.mutations = _adaptive_batches([sum(len(ps) for ps in price_products.values())], batching.prices,
                                             batching.prices_max)
        ep.requests = ep.mutations + math.ceil(creates / batching.products)
        out.append(ep)
    buckets: dict[str, tuple[float, float]] = {}
    if limits_10s is not None:
        hour = limits_1h if limits_1h is not None else TIERS[tier][1]
        for window, seconds, lim in (("10s", 10.0, limits_10s), ("1h", 3600.0, hour)):
            buckets[f"requests_{window}"] = (lim[0] * share, lim[0] * share / seconds)
            buckets[f"mutations_{window}"] = (lim[1] * share, lim[1] * share / seconds)
    return Plan(out, mps, rps, buckets, live_stock_per_second=max(0.0, live_stock_share) * mps)
