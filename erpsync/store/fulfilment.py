"""Fulfilment tables: what the ERP says shipped or cannot be delivered (docs/erp-tables.md).

The ERP fills them directly, through ``erpsync import`` (files) or ``[erp.sql]`` queries, with the
same upsert-by-key rules as the staging tables. Two kinds of columns:

- **ERP columns** (the delivery, its lines, the cancellation): written by the ERP (or an import),
  never changed by erpsync.
- **Status columns** (``state`` and everything after it): written only by erpsync's fulfilment job
  (``erpsync push fulfilment`` / the daemon's ``push_fulfilment``), for the ERP to read: Centra's
  shipment id and number, the captured / shipped flags, times and the last error. An import never
  touches them.

Status columns have server defaults, so the ERP inserts only its own columns.

Delivery ``state``: ``new`` → ``creating`` (intent stored: the resolved order lines) → ``created``
(Centra's shipment id recorded) → ``linked`` (its externalId is the delivery id) → ``capturing`` →
``captured`` / ``capture_pending`` → ``completing`` → ``shipped``. ``parked`` = a person must act
(``error`` says why; a failed capture lands here and is retried only by ``erpsync parked retry``);
``rejected`` = the row itself is wrong (over-shipping, unknown line …: fix the row, it is re-checked
when it changes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text, false, func
from sqlmodel import Field, SQLModel

from erpsync.store.models import utcnow

#: States of a delivery (see the module docstring) and of a cancellation (new | sending | done |
#: rejected | parked).
DELIVERY_STATES = ("new", "creating", "created", "linked", "capturing", "captured", "capture_pending",
                   "completing", "shipped", "parked", "rejected")
OPEN_DELIVERY_STATES = ("new", "creating", "created", "linked", "capturing", "captured", "capture_pending",
                        "completing")


class _ErpRow(SQLModel):
    """Import bookkeeping, as on the staging tables."""

    import_run: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    imported_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    removed_at: datetime | None = None


class ErpDelivery(_ErpRow, table=True):
    """One shipment the ERP made for a Centra order (several per order for partial deliveries)."""

    __tablename__ = "erp_delivery"
    # --- ERP columns
    delivery_id: str = Field(max_length=128, primary_key=True)
    order_number: str = Field(max_length=64, index=True)
    carrier: str | None = Field(default=None, max_length=128)
    service: str | None = Field(default=None, max_length=128)
    tracking_number: str | None = Field(default=None, max_length=256)
    return_tracking_number: str | None = Field(default=None, max_length=256)
    packages: int | None = None
    shipped_at: datetime | None = None
    # capture the payment in Centra (DTC) before completing; paid outside Centra: isPaid, no capture
    capture: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    paid_outside: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    send_email: bool | None = None  # None = [fulfilment] send_email
    # --- status columns (erpsync)
    state: str = Field(default="new", max_length=16, index=True, sa_column_kwargs={"server_default": "new"})
    intent: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    shipment_id: int | None = Field(default=None, sa_type=BigInteger)
    shipment_number: str | None = Field(default=None, max_length=64)
    is_captured: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    is_shipped: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    captured_at: datetime | None = None
    completed_at: datetime | None = None
    capture_pending_since: datetime | None = None
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status_at: datetime | None = None
    row_hash: str | None = Field(default=None, max_length=64)  # the ERP row a ``rejected`` state judged


class ErpDeliveryLine(_ErpRow, table=True):
    """A line of a delivery: a Centra order line id, or a SKU / EAN the job resolves on the order."""

    __tablename__ = "erp_delivery_line"
    delivery_id: str = Field(max_length=128, primary_key=True)
    line_no: int = Field(primary_key=True)
    order_line_id: int | None = Field(default=None, sa_type=BigInteger)
    sku: str | None = Field(default=None, max_length=128)
    ean: str | None = Field(default=None, max_length=64)
    quantity: int


class ErpLineCancellation(_ErpRow, table=True):
    """Units of an order line the ERP cannot deliver: cancelled in Centra (a delta)."""

    __tablename__ = "erp_line_cancellation"
    # --- ERP columns
    cancellation_id: str = Field(max_length=128, primary_key=True)
    order_number: str = Field(max_length=64, index=True)
    order_line_id: int | None = Field(default=None, sa_type=BigInteger)
    sku: str | None = Field(default=None, max_length=128)
    ean: str | None = Field(default=None, max_length=64)
    quantity: int
    # release | remove | warehouse
    stock_policy: str = Field(default="release", max_length=16, sa_column_kwargs={"server_default": "release"})
    warehouse: str | None = Field(default=None, max_length=128)  # with stock_policy = warehouse
    # --- status columns (erpsync)
    state: str = Field(default="new", max_length=16, index=True, sa_column_kwargs={"server_default": "new"})
    line_id: int | None = Field(default=None, sa_type=BigInteger)  # the resolved Centra order line
    cancelled_before: int | None = None  # cancelledQuantity read before sending (the intent)
    cancelled_after: int | None = None
    done_at: datetime | None = None
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status_at: datetime | None = None
    row_hash: str | None = Field(default=None, max_length=64)
