"""Pure transforms: change-detection payloads (``erpsync.outbound.changes``) → GraphQL mutation inputs.

No I/O here. Payload shapes are documented in ``erpsync/outbound/changes.py``; the inputs produced are
those of ``contract/centra.graphql``. Money leaves as an exact GraphQL Float (``wire_money``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync.outbound.push import wire_money

STOCK_DESCRIPTION = "erpsync: ERP physical stock"


def ref_key(ref: Mapping[str, Any]) -> str:
    """A stable string for a reference input (``{"externalId": "WH-1"}`` → ``externalId:WH-1``)."""
    (name, value), = ref.items()
    return f"{name}:{value}"


# ---------------------------------------------------------------- stock


def stock_line(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One ``StockSetProductSizeInput`` from a stock payload."""
    return {"productSize": dict(payload["productSize"]), "quantity": int(payload["quantity"])}


def stock_input(warehouse: Mapping[str, Any], payloads: Sequence[Mapping[str, Any]],
                description: str = STOCK_DESCRIPTION) -> dict[str, Any]:
    """One ``setStock`` input (absolute physical levels) for many sizes of one warehouse."""
    return {
        "warehouse": dict(warehouse),
        "description": description,
        "stockQuantityType": "PHYSICAL",
        "productSizes": [stock_line(p) for p in payloads],
    }


# ---------------------------------------------------------------- prices


def _money(amount: Mapping[str, Any]) -> dict[str, Any]:
    value = amount["value"]
    return {"value": wire_money(value if isinstance(value, Decimal) else Decimal(str(value))),
            "currencyIsoCode": amount["currencyIsoCode"]}


def check_price(payload: Mapping[str, Any]) -> None:
    """Raise ``ItemRejected`` when the payload's amounts cannot be sent exactly."""
    _money(payload["price"])
    if payload.get("recommendedRetailPrice") is not None:
        _money(payload["recommendedRetailPrice"])


def prices_batch_input(payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``setPricesBatch`` input for price payloads (see ``prices_batch``)."""
    return prices_batch(payloads)[0]


def prices_batch(
    payloads: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[tuple[int, int], list[int]]]:
    """The ``setPricesBatch`` input for price payloads (one per pricelist × product × variant), and
    which payloads (by index) each ``input.<i>.productPrices.<j>`` entry carries.

    Grouped by pricelist, then product (first-seen order): a product-level payload sets the
    product's ``price``; variant payloads become ``individualVariantPrices``.
    ``overrideIndividualVariantPrices`` is always false, so a product price never wipes variant
    prices the ERP also sets.
    """
    lists: dict[str, tuple[int, dict[str, Any]]] = {}
    products: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    index: dict[tuple[int, int], list[int]] = {}
    for n, p in enumerate(payloads):
        pl = ref_key(p["pricelist"])
        if pl not in lists:
            lists[pl] = (len(lists), {"pricelist": dict(p["pricelist"]), "productPrices": []})
        i, entry = lists[pl]
        pkey = (pl, ref_key(p["product"]))
        if pkey not in products:
            pp_new: dict[str, Any] = {"product": dict(p["product"]), "overrideIndividualVariantPrices": False}
            products[pkey] = (len(entry["productPrices"]), pp_new)
            entry["productPrices"].append(pp_new)
        j, pp = products[pkey]
        index.setdefault((i, j), []).append(n)
        if p.get("productVariant") is None:
            pp["price"] = _money(p["price"])
            if p.get("recommendedRetailPrice") is not None:
                pp["recommendedRetailPrice"] = _money(p["recommendedRetailPrice"])
        else:
            vp: dict[str, Any] = {"productVariant": dict(p["productVariant"]), "price": _money(p["price"])}
            if p.get("recommendedRetailPrice") is not None:
                vp["recommendedRetailPrice"] = _money(p["recommendedRetailPrice"])
            pp.setdefault("individualVariantPrices", []).append(vp)
    return [entry for _, entry in lists.values()], index


def price_products(payloads: Sequence[Mapping[str, Any]]) -> int:
    """How many ``ProductPriceInput`` entries ``prices_batch_input`` would make."""
    return len({(ref_key(p["pricelist"]), ref_key(p["product"])) for p in payloads})


# ---------------------------------------------------------------- catalogue


@dataclass
class RemoteVariant:
    id: int
    external_id: str | None
    name: str
    status: str
    variant_number: str | None
    eans: set[str] = field(default_factory=set)


@dataclass
class RemoteProduct:
    """A product as Centra has it (from a lookup by externalId)."""

    id: int
    external_id: str | None
    name: str
    status: str
    product_number: str
    variants: dict[str, RemoteVariant] = field(default_factory=dict)  # by externalId

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RemoteProduct:
        product = cls(int(data["id"]), data.get("externalId"), data.get("name", ""), data.get("status", ""),
                      data.get("productNumber", ""))
        product.add_variants(data.get("variants") or [])
        return product

    def add_variants(self, variants: Sequence[Mapping[str, Any]]) -> None:
        for v in variants:
            if v.get("externalId") is None:
                continue
            self.variants[v["externalId"]] = RemoteVariant(
                int(v["id"]), v["externalId"], v.get("name", ""), v.get("status", ""), v.get("variantNumber"),
                {ps["EAN"] for ps in v.get("productSizes") or [] if ps.get("EAN")})


@dataclass(frozen=True)
class CatalogueOp:
    """One catalogue mutation: ``kind`` names a field of ``outbound_documents.catalogue_mutation``."""

    kind: str
    input: Mapping[str, Any]
    id: int | None = None  # for updates
    label: str = ""

    @property
    def creates(self) -> bool:
        return self.kind.startswith("create")


def product_create_input(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``ProductCreateInput`` with every variant and size inline (one mutation per product)."""
    return json.loads(json.dumps(payload))  # a deep, plain copy (payloads hold only JSON types)


_HEAD = (("name", "name"), ("status", "status"), ("productNumber", "product_number"))
_VARIANT_HEAD = (("name", "name"), ("status", "status"), ("variantNumber", "variant_number"))


def catalogue_ops(payload: Mapping[str, Any], remote: RemoteProduct | None) -> list[CatalogueOp]:
    """What to send so Centra's product equals ``payload``.

    Absent product: one ``createProduct`` carrying the variants and sizes. Existing product: an
    ``updateProduct`` when a product field differs, a ``createProductVariant`` (sizes inline) per
    missing variant, an ``updateProductVariant`` per variant whose fields differ, and a
    ``createProductSize`` per missing size (by EAN). Nothing when Centra already matches — which is
    also what makes re-running after an unknown outcome safe. Size-level changes other than new
    sizes have no mutation in the contract and are left alone.
    """
    ext = payload["externalId"]
    if remote is None:
        return [CatalogueOp("createProduct", product_create_input(payload), label=ext)]
    ops: list[CatalogueOp] = []
    head = {k: payload[k] for k, attr in _HEAD if getattr(remote, attr) != payload[k]}
    if head:
        ops.append(CatalogueOp("updateProduct", head, remote.id, ext))
    for variant in payload.get("addProductVariants") or []:
        vext = variant["externalId"]
        rv = remote.variants.get(vext)
        if rv is None:
            ops.append(CatalogueOp("createProductVariant", {"product": {"id": remote.id},
                                                            **product_create_input(variant)}, label=vext))
            continue
        vhead = {k: variant[k] for k, attr in _VARIANT_HEAD if k in variant and getattr(rv, attr) != variant[k]}
        if vhead:
            ops.append(CatalogueOp("updateProductVariant", vhead, rv.id, vext))
        for ps in variant.get("productSizes") or []:
            if ps.get("EAN") and ps["EAN"] not in rv.eans:
                ops.append(CatalogueOp("createProductSize", {"productVariant": {"id": rv.id}, **ps},
                                       label=f"{vext}/{ps['EAN']}"))
    return ops


def catalogue_variables(ops: Sequence[CatalogueOp]) -> dict[str, Any]:
    """Variables for ``catalogue_mutation([op.kind …])``."""
    out: dict[str, Any] = {}
    for i, op in enumerate(ops):
        out[f"m{i}"] = dict(op.input)
        if op.id is not None:
            out[f"m{i}_id"] = op.id
    return out


def payload_eans(payload: Mapping[str, Any]) -> list[str]:
    """Every EAN of a product payload (what stock can address once the product is accepted)."""
    return [ps["EAN"] for v in payload.get("addProductVariants") or [] for ps in v.get("productSizes") or []
            if ps.get("EAN")]


def payload_variants(payload: Mapping[str, Any]) -> list[str]:
    """Variant numbers of a product payload."""
    return [v["variantNumber"] for v in payload.get("addProductVariants") or [] if v.get("variantNumber")]
