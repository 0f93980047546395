"""erpsync's tables. The ERP reads the mapping tables (see docs/erp-tables.md); everything else is
erpsync's own state. Every change here needs a migration (``erpsync db revision``); a test checks
that the migrations match this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from erpsync.store.types import ExactDecimal, ScrubbedText


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _money() -> Any:
    return Field(default=None, sa_column=Column(ExactDecimal(), nullable=True))


# ---------------------------------------------------------------- inbound: the event inbox


class InboxEvent(SQLModel, table=True):
    """One row per Centra event id ever received. The unique ``event_id`` is what makes a
    re-delivered event harmless."""

    __tablename__ = "inbox_event"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    event_seq: int | None = Field(default=None, sa_type=BigInteger, index=True)
    type: str = Field(max_length=40, index=True)
    entry: str = Field(max_length=128)
    mission: str = Field(max_length=16)
    event_date: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    acked_at: datetime | None = None
    # applied | superseded (an older version than what is stored) | parked
    status: str = Field(max_length=16, index=True)


# ---------------------------------------------------------------- the ERP's mapping tables


class IdMap(SQLModel, table=True):
    """Centra id <-> ERP id. erpsync fills ``centra_id``; the ERP writes its own ``erp_id``."""

    __tablename__ = "id_map"
    __table_args__ = (UniqueConstraint("entity", "centra_id"), Index("ix_id_map_erp", "entity", "erp_id"))
    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=40)
    centra_id: str = Field(max_length=128)
    erp_id: str | None = Field(default=None, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)


class _CentraObject(SQLModel):
    """Columns every mapped Centra object has."""

    centra_id: str = Field(max_length=128, primary_key=True)
    last_event_id: str = Field(max_length=64)
    last_event_seq: int | None = Field(default=None, sa_type=BigInteger)
    last_event_date: datetime | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    version: int = 1
    changed_at: datetime = Field(default_factory=utcnow)
    # the ERP's side: when it took this version, and which version it took
    erp_taken_at: datetime | None = None
    erp_taken_version: int | None = None


class _SoapGapMark(SQLModel):
    """Tables with columns only the SOAP queue carries (the GraphQL shape's gaps, docs/operations.md):
    the SOAP event that last wrote them. With ``source = "both"`` those columns follow SOAP's own
    event order, whichever queue's version the other columns show."""

    soap_event_seq: int | None = Field(default=None, sa_type=BigInteger)
    soap_event_date: datetime | None = None
    # last_event_date is a store-local SOAP date in the hour a DST fall-back repeats (read as the first
    # pass; it may be the second): compared with GraphQL's times as either reading
    last_event_date_ambiguous: bool | None = None


class CentraOrder(_CentraObject, _SoapGapMark, table=True):
    __tablename__ = "centra_order"
    order_number: str | None = Field(default=None, max_length=64, index=True)
    status: str | None = Field(default=None, max_length=32, index=True)
    store: int | None = None
    currency: str | None = Field(default=None, max_length=8)
    order_total: Decimal | None = _money()
    customer_id: str | None = Field(default=None, max_length=128)
    market: str | None = Field(default=None, max_length=128)
    pricelist: str | None = Field(default=None, max_length=128)
    created: datetime | None = None
    # `created` is SOAP's store-local reading of a repeated DST hour (the first pass; may be the second)
    created_ambiguous: bool | None = None
    payload: dict[str, Any] | None = _json()
    # `erpsync export`'s cursor: the version last written to an export file
    exported_version: int | None = None
    exported_at: datetime | None = None


class CentraOrderLine(SQLModel, table=True):
    """Order lines of the order's latest version (replaced whole with each new version)."""

    __tablename__ = "centra_order_line"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=128, foreign_key="centra_order.centra_id", index=True)
    line_no: int
    product_id: str | None = Field(default=None, max_length=128)
    variant_id: str | None = Field(default=None, max_length=128)
    sku: str | None = Field(default=None, max_length=128)
    size: str | None = Field(default=None, max_length=64)
    size_sku: str | None = Field(default=None, max_length=128)
    order_item_id: str | None = Field(default=None, max_length=64)
    qty: Decimal | None = _money()
    price: Decimal | None = _money()
    origprice: Decimal | None = _money()
    discount: Decimal | None = _money()
    subtotal: Decimal | None = _money()
    tax: Decimal | None = _money()
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    is_bundle_virtual: bool = False
    payload: dict[str, Any] | None = _json()


class CentraOrderShipment(SQLModel, table=True):
    __tablename__ = "centra_order_shipment"
    __table_args__ = (UniqueConstraint("order_id", "shipment_no"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=128, foreign_key="centra_order.centra_id", index=True)
    shipment_no: int
    shipment_id: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] | None = _json()


class CentraCustomer(_CentraObject, _SoapGapMark, table=True):
    __tablename__ = "centra_customer"
    email: str | None = Field(default=None, max_length=256, index=True)
    firstname: str | None = Field(default=None, max_length=128)
    lastname: str | None = Field(default=None, max_length=128)
    country: str | None = Field(default=None, max_length=8)
    status: str | None = Field(default=None, max_length=32)
    payload: dict[str, Any] | None = _json()


class CentraAccount(_CentraObject, _SoapGapMark, table=True):
    __tablename__ = "centra_account"
    name: str | None = Field(default=None, max_length=256)
    status: str | None = Field(default=None, max_length=32)
    payload: dict[str, Any] | None = _json()


class CentraInvoice(_CentraObject, table=True):
    __tablename__ = "centra_invoice"
    order_id: str | None = Field(default=None, max_length=128, index=True)
    total: Decimal | None = _money()
    currency: str | None = Field(default=None, max_length=8)
    payload: dict[str, Any] | None = _json()


class CentraGeneric(_CentraObject, table=True):
    """Any other event type (market, pricelist, size, warehouse, paymentterm, …)."""

    __tablename__ = "centra_generic"
    type: str = Field(max_length=40, primary_key=True)
    payload: dict[str, Any] | None = _json()


# ---------------------------------------------------------------- outbound state


class OutboundItem(SQLModel, table=True):
    """Per pushed item: what Centra last accepted. An unchanged hash sends nothing.

    ``entity``: sizechart | product | variant | pricelist | price | stock. ``status``: pending |
    accepted | waiting (its product is not in Centra yet; ``attempts`` counts the runs) | parked
    (Centra rejected the payload hashing to ``rejected_hash``; not re-sent until it changes).
    """

    __tablename__ = "outbound_item"
    __table_args__ = (UniqueConstraint("entity", "erp_key"),)
    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=40)
    erp_key: str = Field(max_length=256)
    external_id: str | None = Field(default=None, max_length=256)
    remote_id: str | None = Field(default=None, max_length=128)
    accepted_hash: str | None = Field(default=None, max_length=64)
    rejected_hash: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(ScrubbedText, nullable=True))
    accepted_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- dead letters, runs, quota


class ParkedItem(SQLModel, table=True):
    """Something that could not be processed, kept with its reason until retried or dropped."""

    __tablename__ = "parked_item"
    __table_args__ = (Index("ix_parked_open", "kind", "resolved_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # event | stock | price | product | import
    key: str = Field(max_length=256)
    reason: str = Field(sa_column=Column(ScrubbedText, nullable=False))
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    resolution: str | None = Field(default=None, max_length=16)  # retried | dropped | applied


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=64, unique=True)
    job: str = Field(max_length=40)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    outcome: str = Field(default="running", max_length=16)  # running | ok | retry | failed
    counts: dict[str, Any] | None = _json()
    error: str | None = Field(default=None, sa_column=Column(ScrubbedText, nullable=True))


class QuotaBucket(SQLModel, table=True):
    """The governor's view of one of Centra's six buckets, shared by every erpsync process."""

    __tablename__ = "quota_bucket"
    name: str = Field(max_length=40, primary_key=True)  # e.g. "mutations_1h"
    capacity: float  # Centra's quota for the bucket (configured tier, or as rateLimits last said)
    tokens: float  # erpsync's tokens (at most capacity × share) at updated_at; negative = in debt
    updated_at: float  # clock seconds (Unix epoch, possibly scaled) of the last refill


class QuotaState(SQLModel, table=True):
    """The governor's shared counters (one row, id 1; locked by every governor transaction).

    ``estimates``: per-operation complexity estimates (``"mutation:setStock": 142.0``) and, under
    ``"~learned"``, the refill rates learnt from ``rateLimits`` (``{bucket: [rate, gap, at]}``).
    """

    __tablename__ = "quota_state"
    id: int = Field(default=1, primary_key=True)
    blocked_until: float = 0.0
    rate_limited_count: int = 0
    last_refresh_at: float = 0.0
    estimates: dict[str, Any] | None = _json()


class MappingCheck(SQLModel, table=True):
    """The last check of one ``push.warehouses`` / ``push.pricelists`` entry (or of an unmapped ERP
    code the push met) against Centra: ``known`` False when Centra has no such warehouse/pricelist."""

    __tablename__ = "mapping_check"
    kind: str = Field(max_length=16, primary_key=True)  # warehouse | pricelist
    code: str = Field(max_length=128, primary_key=True)  # the ERP code (the mapping key)
    ref: str = Field(max_length=256)  # what it addresses in Centra: externalId:<x> or id:<n>
    mapped: bool = True  # False: the ERP code was used as is (not in push.<kind>s)
    known: bool
    checked_at: datetime = Field(default_factory=utcnow)
