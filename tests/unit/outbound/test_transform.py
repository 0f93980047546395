"""Pure transforms: change-detection payloads → GraphQL inputs (no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from graphql import parse, validate

from erpsync.errors import ItemRejected
from erpsync.outbound import documents as docs
from erpsync.outbound.push import wire_money
from erpsync.outbound.transform import (
    RemoteProduct,
    catalogue_ops,
    catalogue_variables,
    prices_batch,
    stock_input,
)
from erpsync.sim.gql import contract_schema

PRODUCT = {
    "externalId": "prd_P1", "productNumber": "P1", "name": "Shirt", "status": "ACTIVE",
    "addProductVariants": [
        {"externalId": "var_P1-01", "variantNumber": "P1-01", "name": "Black", "status": "ACTIVE",
         "sizeChart": {"externalId": "sc_APPAREL"},
         "productSizes": [{"size": {"name": "S"}, "EAN": "7300000000011", "isActive": True, "sizeNumber": "01"},
                          {"size": {"name": "M"}, "EAN": "7300000000028", "isActive": True, "sizeNumber": "02"}]},
        {"externalId": "var_P1-02", "variantNumber": "P1-02", "name": "White", "status": "ACTIVE",
         "sizeChart": {"externalId": "sc_APPAREL"},
         "productSizes": [{"size": {"name": "S"}, "EAN": "7300000000035", "isActive": True}]},
    ],
}


def remote_like(payload: dict, **changes: object) -> RemoteProduct:
    data = {"id": 7, "externalId": payload["externalId"], "name": payload["name"], "status": payload["status"],
            "productNumber": payload["productNumber"], "variants": [
                {"id": 70 + i, "externalId": v["externalId"], "name": v["name"], "status": v["status"],
                 "variantNumber": v["variantNumber"], "productSizes": [{"EAN": ps["EAN"]} for ps in v["productSizes"]]}
                for i, v in enumerate(payload["addProductVariants"])]}
    data.update(changes)
    return RemoteProduct.from_data(data)


def test_wire_money_is_exact_or_refuses() -> None:
    assert wire_money(Decimal("199.90")) == 199.9
    assert wire_money(Decimal("0.05")) == 0.05
    assert wire_money(Decimal("1234567.89")) == 1234567.89
    with pytest.raises(ItemRejected, match="cannot be sent exactly"):
        wire_money(Decimal("0.12345678901234567890"))


def test_stock_input_is_one_absolute_set_per_warehouse() -> None:
    wh = {"externalId": "WH-EU"}
    payloads = [{"warehouse": wh, "productSize": {"EAN": "1"}, "quantity": 5},
                {"warehouse": wh, "productSize": {"EAN": "2"}, "quantity": 0}]
    assert stock_input(wh, payloads) == {
        "warehouse": {"externalId": "WH-EU"}, "description": "erpsync: ERP physical stock",
        "stockQuantityType": "PHYSICAL",
        "productSizes": [{"productSize": {"EAN": "1"}, "quantity": 5}, {"productSize": {"EAN": "2"}, "quantity": 0}],
    }


def test_prices_group_by_pricelist_then_product_with_index() -> None:
    sek, eur = {"externalId": "PL-SEK"}, {"externalId": "PL-EUR"}

    def price(pl: dict, product: str, value: str, variant: str | None = None, rrp: str | None = None) -> dict:
        cur = "SEK" if pl is sek else "EUR"
        p: dict = {"pricelist": pl, "product": {"externalId": product},
                   "price": {"value": Decimal(value), "currencyIsoCode": cur}}
        if variant:
            p["productVariant"] = {"externalId": variant}
        if rrp:
            p["recommendedRetailPrice"] = {"value": Decimal(rrp), "currencyIsoCode": cur}
        return p

    payloads = [price(sek, "prd_1", "249.00", rrp="299.00"), price(sek, "prd_1", "149.00", "var_1-01"),
                price(sek, "prd_2", "99.50"), price(eur, "prd_1", "24.95")]
    entries, index = prices_batch(payloads)
    assert entries == [
        {"pricelist": sek, "productPrices": [
            {"product": {"externalId": "prd_1"}, "overrideIndividualVariantPrices": False,
             "price": {"value": 249.0, "currencyIsoCode": "SEK"},
             "recommendedRetailPrice": {"value": 299.0, "currencyIsoCode": "SEK"},
             "individualVariantPrices": [{"productVariant": {"externalId": "var_1-01"},
                                          "price": {"value": 149.0, "currencyIsoCode": "SEK"}}]},
            {"product": {"externalId": "prd_2"}, "overrideIndividualVariantPrices": False,
             "price": {"value": 99.5, "currencyIsoCode": "SEK"}}]},
        {"pricelist": eur, "productPrices": [
            {"product": {"externalId": "prd_1"}, "overrideIndividualVariantPrices": False,
             "price": {"value": 24.95, "currencyIsoCode": "EUR"}}]},
    ]
    assert index == {(0, 0): [0, 1], (0, 1): [2], (1, 0): [3]}


def test_absent_product_is_one_create_with_variants_and_sizes_inline() -> None:
    ops = catalogue_ops(PRODUCT, None)
    assert [op.kind for op in ops] == ["createProduct"]
    assert ops[0].input == PRODUCT and ops[0].input is not PRODUCT


def test_product_equal_in_centra_needs_nothing() -> None:
    assert catalogue_ops(PRODUCT, remote_like(PRODUCT)) == []


def test_only_what_differs_is_sent() -> None:
    remote = remote_like(PRODUCT, name="Old name")
    remote.variants["var_P1-01"].name = "Old colour"
    remote.variants["var_P1-01"].eans.discard("7300000000028")
    del remote.variants["var_P1-02"]
    ops = catalogue_ops(PRODUCT, remote)
    assert [(op.kind, op.id) for op in ops] == [
        ("updateProduct", 7), ("updateProductVariant", 70), ("createProductSize", None), ("createProductVariant", None)]
    assert ops[0].input == {"name": "Shirt"}
    assert ops[1].input == {"name": "Black"}
    assert ops[2].input["productVariant"] == {"id": 70} and ops[2].input["EAN"] == "7300000000028"
    assert ops[3].input["product"] == {"id": 7} and ops[3].input["externalId"] == "var_P1-02"
    assert len(ops[3].input["productSizes"]) == 1


def test_every_document_and_an_aliased_catalogue_request_validate_against_the_contract() -> None:
    schema = contract_schema()
    for name in dir(docs):
        value = getattr(docs, name)
        if isinstance(value, str) and value.lstrip().startswith(("query ", "mutation ")):
            assert validate(schema, parse(value)) == [], name
    remote = remote_like(PRODUCT, name="Old")
    del remote.variants["var_P1-02"]
    ops = catalogue_ops(PRODUCT, remote) + catalogue_ops(PRODUCT, None)
    document = docs.catalogue_mutation([op.kind for op in ops])
    assert validate(schema, parse(document)) == []
    variables = catalogue_variables(ops)
    assert variables["m0_id"] == 7 and set(variables) == {"m0", "m0_id", "m1", "m2"}
