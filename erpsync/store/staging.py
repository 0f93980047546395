"""Staging tables: the ERP's master data as erpsync last received it (files or the SQL source).

Contract (read by the push jobs through ``erpsync.outbound.changes``):

- One table per entity, keyed by the ERP's own keys (never Centra ids):
  size charts (``name``), products (``product_number``), variants (``variant_number``, unique
  across products), sizes (``variant_number`` + ``size``; ``ean`` unique), pricelists (``code``),
  prices (``pricelist`` + ``product_number`` + ``variant_number``; ``variant_number`` is ``""``
  for a product-level price), stock (``warehouse`` + ``ean``).
- Rows are upserted by the importers; they are never deleted. A full snapshot that no longer
  contains a row sets its ``removed_at``; a later import that contains it again clears it.
  What a removed row means for Centra (deactivate or ignore) is decided by change detection
  from ``push.on_absent``.
- ``import_run`` is the id of the import that last changed the row (an import writes only rows
  whose values differ; a full snapshot marks the rows of that entity it did not mention as removed).
- Money is ``Decimal`` (``ExactDecimal``), quantities are integers, times are aware UTC.
- Nothing here knows about Centra: the Centra-facing payloads are built in ``outbound/changes.py``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from erpsync.store.fulfilment import ErpDelivery, ErpDeliveryLine, ErpLineCancellation
from erpsync.store.models import utcnow
from erpsync.store.types import ExactDecimal


class _Staged(SQLModel):
    import_run: str = Field(default="", max_length=32)
    imported_at: datetime = Field(default_factory=utcnow)
    removed_at: datetime | None = None


class StagingSizeChart(_Staged, table=True):
    """A size chart: its ordered size names (``["XS", "S", "M"]``)."""

    __tablename__ = "staging_size_chart"
    name: str = Field(max_length=128, primary_key=True)
    sizes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class StagingProduct(_Staged, table=True):
    __tablename__ = "staging_product"
    product_number: str = Field(max_length=128, primary_key=True)
    name: str = Field(max_length=512)
    status: str = Field(default="ACTIVE", max_length=16)  # ACTIVE | INACTIVE | CANCELLED


class StagingVariant(_Staged, table=True):
    __tablename__ = "staging_variant"
    variant_number: str = Field(max_length=128, primary_key=True)
    product_number: str = Field(max_length=128, index=True)
    name: str = Field(max_length=512)
    status: str = Field(default="ACTIVE", max_length=16)  # ACTIVE | INACTIVE
    size_chart: str | None = Field(default=None, max_length=128)


class StagingSize(_Staged, table=True):
    """One size of a variant (a Centra product size); ``ean`` addresses it for stock."""

    __tablename__ = "staging_size"
    variant_number: str = Field(max_length=128, primary_key=True)
    size: str = Field(max_length=64, primary_key=True)
    ean: str = Field(max_length=64, unique=True)
    upc: str | None = Field(default=None, max_length=64)
    size_number: str | None = Field(default=None, max_length=64)


class StagingPricelist(_Staged, table=True):
    __tablename__ = "staging_pricelist"
    code: str = Field(max_length=128, primary_key=True)
    name: str = Field(max_length=256)
    currency: str = Field(max_length=8)
    store: int = 1
    status: str = Field(default="ACTIVE", max_length=16)


class StagingPrice(_Staged, table=True):
    """A price per pricelist for a product (``variant_number == ""``) or for one variant."""

    __tablename__ = "staging_price"
    pricelist: str = Field(max_length=128, primary_key=True)
    product_number: str = Field(max_length=128, primary_key=True)
    variant_number: str = Field(default="", max_length=128, primary_key=True)
    price: Decimal = Field(sa_column=Column(ExactDecimal(), nullable=False))
    rrp: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal(), nullable=True))


class StagingStock(_Staged, table=True):
    """Physical stock of one size (by EAN) in one ERP warehouse."""

    __tablename__ = "staging_stock"
    warehouse: str = Field(max_length=64, primary_key=True)
    ean: str = Field(max_length=64, primary_key=True)
    quantity: int


#: entity name (as used by importers, ``erpsync import --entity`` and change detection) -> table
STAGING_TABLES: dict[str, Any] = {
    "sizechart": StagingSizeChart,
    "product": StagingProduct,
    "variant": StagingVariant,
    "size": StagingSize,
    "pricelist": StagingPricelist,
    "price": StagingPrice,
    "stock": StagingStock,
    # fulfilment (erpsync.store.fulfilment): the ERP's deliveries and line cancellations
    "delivery_line": ErpDeliveryLine,
    "delivery": ErpDelivery,
    "cancellation": ErpLineCancellation,
}
