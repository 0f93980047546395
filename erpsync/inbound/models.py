"""Typed validation of every Centra object, declared once (pydantic), independent of the source.

Each Centra object type has a model that says which fields are required and which are Decimal,
int, yes/no, date or a list; unknown fields are ignored by the model (they stay in the raw payload
stored beside the typed columns). The input is what any event source produces: plain dicts whose
leaves are strings (``None`` for an empty element) and whose repeated elements are lists — the
SOAP parser's ``element_to_dict`` output, or a GraphQL object mapped onto the same names.

How to use (a SOAP event, or a GraphQL events-queue order mapped to the SOAP names)::

    from erpsync.inbound.models import object_change
    change = object_change("order", "1311", data, store_tz=ZoneInfo("Europe/Stockholm"))
    # -> store.inbox.ObjectChange("order", "1311", columns={...}, lines=[...], shipments=[...])
    # or raises ItemRejected("order 1311: products/product[0]/qty: missing; ...")

``object_change`` validates with the type's model (``MODELS``) and returns the rows the pull job
writes (``centra_order`` + ``centra_order_line`` + ``centra_order_shipment``, ``centra_customer``,
``centra_account``, ``centra_invoice``, ``centra_generic``). Every problem in the object is named
by its path in one ``ItemRejected`` reason: the caller parks the event and goes on. A stored order
is always complete: every line has a quantity, a price and a subtotal.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from erpsync.errors import ItemRejected
from erpsync.soap.models import is_ambiguous_local, parse_centra_date
from erpsync.store.inbox import ObjectChange

_INTEGER = re.compile(r"\s*-?[0-9]+\s*")

# ------------------------------------------------------------------ value parsers (ValueError = bad)


_DECIMALS: dict[str, Decimal] = {}  # text -> parsed: quantities, tax rates and prices repeat a lot


def parse_decimal(value: Any) -> Decimal | None:
    """A Centra decimal string (``1135.00``, ``25.000``) as an exact ``Decimal``; empty -> None.
    Raises ``ValueError`` for anything else (never a float, never rounded)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected a decimal string, got a nested element")
    known = _DECIMALS.get(value)
    if known is not None:
        return known
    dec = _parse_decimal(value)
    if len(_DECIMALS) >= 4096:
        _DECIMALS.clear()
    _DECIMALS[value] = dec
    return dec


def _parse_decimal(value: str) -> Decimal:
    try:
        dec = Decimal(value.strip().replace(" ", ""))
    except InvalidOperation:
        raise ValueError(f"{value[:40]!r} is not a decimal number") from None
    if not dec.is_finite():
        raise ValueError(f"{value[:40]!r} is not a finite number")
    # the columns hold NUMERIC(28,8): reject what would overflow or be rounded, never store it inexactly
    if dec.adjusted() >= 20:
        raise ValueError(f"{value[:40]!r} is too large (at most 20 integer digits)")
    exponent = dec.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8 and dec != dec.quantize(Decimal("1e-8")):
        raise ValueError(f"{value[:40]!r} has more than 8 decimal places")
    return dec


def parse_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _INTEGER.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not an integer")
    number = int(value)
    if abs(number) > 2**31 - 1:
        raise ValueError(f"{value[:40]!r} is out of range")
    return number


def yes(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("yes", "true", "1")


def clip(value: Any, limit: int | None) -> str | None:
    """A text leaf cut to its column's width; a nested element or an empty one is None."""
    if not isinstance(value, str) or value == "":
        return None
    return value if limit is None else value[:limit]


def ref_id(value: Any) -> str | None:
    """``<customer><id>88</id>…</customer>`` or ``<customer>88</customer>`` -> ``"88"``."""
    if isinstance(value, dict):
        return value.get("id") if isinstance(value.get("id"), str) else None
    return value if isinstance(value, str) else None


def _required(parse: Any) -> Any:
    def check(value: Any) -> Any:
        parsed = parse(value)
        if parsed is None:
            raise PydanticCustomError("missing", "missing")
        return parsed
    return check


def _date(value: Any, info: ValidationInfo) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected a date string")
    tz = (info.context or {}).get("store_tz")
    if tz is None:  # a date without offset is in the store's zone: never guess it
        raise RuntimeError("validate Centra objects with context={'store_tz': …} (object_change does)")
    try:
        return parse_centra_date(value, tz)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a date") from None


def _listed(value: Any) -> Any:
    """A repeated element as a list, whatever shape arrived (one item, none, empty element)."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _container(item: str) -> Any:
    """A container element (``<products>``) as a dict: an empty one is empty; a bare list (a
    source that has no container level) is its items."""
    def wrap(value: Any) -> Any:
        if value is None or value == "":
            return {}
        return {item: value} if isinstance(value, list) else value
    return wrap


def _clipper(limit: int | None) -> BeforeValidator:
    return BeforeValidator(lambda v: clip(v, limit))


Text8 = Annotated[str | None, _clipper(8)]
Text32 = Annotated[str | None, _clipper(32)]
Text64 = Annotated[str | None, _clipper(64)]
Text128 = Annotated[str | None, _clipper(128)]
Text256 = Annotated[str | None, _clipper(256)]
LongText = Annotated[str | None, _clipper(None)]
Money = Annotated[Decimal | None, BeforeValidator(parse_decimal)]
RequiredMoney = Annotated[Decimal, BeforeValidator(_required(parse_decimal))]
Int = Annotated[int | None, BeforeValidator(parse_int)]
YesNo = Annotated[bool, BeforeValidator(yes)]
Date = Annotated[datetime | None, BeforeValidator(_date)]
Ref = Annotated[str | None, BeforeValidator(lambda v: clip(ref_id(v), 128))]


class _Model(BaseModel):
    # unknown elements are ignored here: they stay in the raw payload stored with the row
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)


# ------------------------------------------------------------------ order


class Size(_Model):
    id: Text64 = None
    sku: Text128 = None
    orderitem: Annotated[str | None, BeforeValidator(lambda v: clip(ref_id(v), 64))] = None


class Sizes(_Model):
    # a bare ``<size>M</size>`` names the size
    size: Annotated[list[Size], BeforeValidator(lambda v: [{"id": x} if isinstance(x, str) else x
                                                           for x in _listed(v)])] = []


class BundleInfo(_Model):
    isbundle: YesNo = False


class OrderLine(_Model):
    """One ``products > product`` of an order: quantity, price and subtotal are required."""

    id: Text128 = None
    variation: Ref = None
    sku: Text128 = None
    sizes: Annotated[Sizes, BeforeValidator(_container("size"))] = Sizes()
    qty: RequiredMoney
    price: RequiredMoney
    origprice: Money = None
    discount: Money = None
    subtotal: RequiredMoney
    tax: Money = None
    description: LongText = None
    bundleinfo: Annotated[BundleInfo, BeforeValidator(lambda v: v if isinstance(v, dict) else {})] = BundleInfo()

    def row(self, order_id: str, line_no: int, payload: Any) -> dict[str, Any]:
        size = self.sizes.size[0] if len(self.sizes.size) == 1 else None
        return {
            "order_id": order_id, "line_no": line_no, "product_id": self.id, "variant_id": self.variation,
            "sku": self.sku, "size": size.id if size else None, "size_sku": size.sku if size else None,
            "order_item_id": size.orderitem if size else None,
            "qty": self.qty, "price": self.price, "origprice": self.origprice, "discount": self.discount,
            "subtotal": self.subtotal, "tax": self.tax, "description": self.description,
            "is_bundle_virtual": self.bundleinfo.isbundle, "payload": payload,
        }


class OrderLines(_Model):
    product: Annotated[list[OrderLine], BeforeValidator(_listed)] = []


class Shipment(_Model):
    id: Text128 = Field(None, validation_alias=AliasChoices("id", "shipment", "shipmentid"))

    def row(self, order_id: str, shipment_no: int, payload: Any) -> dict[str, Any]:
        return {"order_id": order_id, "shipment_no": shipment_no, "shipment_id": self.id, "payload": payload}


class Shipments(_Model):
    shipment: Annotated[list[Shipment], BeforeValidator(_listed)] = []


class Order(_Model):
    """An order (``orders_Update``-style ``<order>``): the total is required, and every line
    complete (``OrderLine``)."""

    ordernumber: Text64 = None
    status: Text32 = None
    store: Int = None
    currency: Text8 = None
    ordertotal: RequiredMoney
    customer: Ref = None
    market: Ref = None
    pricelist: Ref = None
    created: Date = None
    products: Annotated[OrderLines, BeforeValidator(_container("product"))] = OrderLines()
    shipments: Annotated[Shipments, BeforeValidator(_container("shipment"))] = Shipments()

    def change(self, key: str, data: dict[str, Any]) -> ObjectChange:
        columns = {
            "order_number": self.ordernumber or key[:64], "status": self.status, "store": self.store,
            "currency": self.currency, "order_total": self.ordertotal, "customer_id": self.customer,
            "market": self.market, "pricelist": self.pricelist, "created": self.created, "payload": data,
        }
        raw_lines = _listed(_container("product")(data.get("products")).get("product"))
        raw_shipments = _listed(_container("shipment")(data.get("shipments")).get("shipment"))
        lines = [line.row(key, no, raw) for no, (line, raw) in
                 enumerate(zip(self.products.product, raw_lines, strict=True), start=1)]
        shipments = [s.row(key, no, raw) for no, (s, raw) in
                     enumerate(zip(self.shipments.shipment, raw_shipments, strict=True), start=1)]
        return ObjectChange("order", key, columns=columns, lines=lines, shipments=shipments)


# ------------------------------------------------------------------ customer, account, invoice, the rest


class Customer(_Model):
    store: Int = None
    email: Text256 = None
    firstname: Text128 = None
    lastname: Text128 = None
    country: Text8 = None
    status: Text32 = None

    def change(self, key: str, data: dict[str, Any]) -> ObjectChange:
        return ObjectChange("customer", key, columns={
            "email": self.email, "firstname": self.firstname, "lastname": self.lastname,
            "country": self.country, "status": self.status, "payload": data})


class Account(_Model):
    store: Int = None
    name: Text256 = None
    company: Text256 = None
    description: Text256 = None
    status: Text32 = None

    def change(self, key: str, data: dict[str, Any]) -> ObjectChange:
        return ObjectChange("account", key, columns={
            "name": self.name or self.company or self.description, "status": self.status, "payload": data})


class Invoice(_Model):
    order: Ref = Field(None, validation_alias=AliasChoices("order", "orderid", "order_id"))
    total: Money = Field(None, validation_alias=AliasChoices("total", "invoicetotal", "grandtotal", "amount"))
    currency: Text8 = None

    def change(self, key: str, data: dict[str, Any]) -> ObjectChange:
        return ObjectChange("invoice", key, columns={
            "order_id": self.order, "total": self.total, "currency": self.currency, "payload": data})


class Generic(_Model):
    """Every other type (market, pricelist, warehouse, paymentterm, …): kept as its payload."""

    def change(self, key: str, data: dict[str, Any], generic_type: str) -> ObjectChange:
        return ObjectChange("generic", key, generic_type=generic_type, columns={"payload": data})


MODELS: dict[str, type[_Model]] = {"order": Order, "customer": Customer, "account": Account, "invoice": Invoice}


def object_change(etype: str, key: str, data: dict[str, Any], *, store_tz: tzinfo) -> ObjectChange:
    """Validate ``data`` (an object of type ``etype`` with entry ``key``) and return its rows.

    Raises ``ItemRejected`` whose reason names every bad path:
    ``order 1311: products/product[0]/qty: missing``.
    """
    model = MODELS.get(etype, Generic)
    try:
        obj = model.model_validate(data, context={"store_tz": store_tz})
    except ValidationError as exc:
        raise ItemRejected(f"{etype} {key}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    if isinstance(obj, Generic):
        return obj.change(key, data, etype)
    change: ObjectChange = obj.change(key, data)  # type: ignore[attr-defined]
    if etype == "order" and is_ambiguous_local(data.get("created"), store_tz):
        # read as the first pass of the repeated hour; it may be the second (the inbox compares both)
        change = replace(change, ambiguous=frozenset({"created"}))
    return change


def _describe(error: Any) -> str:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f"/{part}" if path else str(part))
    kind = error["type"]
    if kind == "missing":
        message = "missing"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = "not an object"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path or '(object)'}: {message}"
