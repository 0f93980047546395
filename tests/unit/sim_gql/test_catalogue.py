"""Catalogue mutations and lookups, externalId semantics, validate-then-apply."""

from __future__ import annotations

from .conftest import CREATE_CHART, CREATE_PRODUCT, PAYLOAD, Caller, boot, seed_catalogue

LOOKUP = """query($where: ProductFilter, $limit: Int, $page: Int) {
  products(where: $where, limit: $limit, page: $page) { id externalId productNumber status name }
}"""

UPDATE_PRODUCT = f"""mutation($id: Int!, $input: ProductUpdateInput!) {{
  updateProduct(id: $id, input: $input) {{ product {{ id name status productNumber externalId }} {PAYLOAD} }}
}}"""

CREATE_VARIANT = f"""mutation($input: ProductVariantCreateInput!) {{
  createProductVariant(input: $input) {{
    productVariant {{ id name variantNumber externalId product {{ id externalId }} productSizes {{ id SKU EAN }} }}
    {PAYLOAD}
  }}
}}"""

UPDATE_VARIANT = f"""mutation($id: Int!, $input: ProductVariantUpdateInput!) {{
  updateProductVariant(id: $id, input: $input) {{
    productVariant {{ id name status variantNumber externalId }} {PAYLOAD}
  }}
}}"""

CREATE_SIZE = f"""mutation($input: ProductSizeCreateInput!) {{
  createProductSize(input: $input) {{
    productSize {{ id SKU EAN UPC sizeNumber isActive size {{ id name }} }} {PAYLOAD}
  }}
}}"""


def test_size_chart_creates_sizes_and_two_dimensional_labels(gql: Caller) -> None:
    chart = gql.mutate(
        "createSizeChart",
        CREATE_CHART,
        {
            "input": {
                "name": "Jeans",
                "horizontalLabels": ["30", "32"],
                "verticalLabels": ["32", "34"],
                "dividerSymbol": "/",
            }
        },
    )
    assert chart["userErrors"] == []
    assert [s["name"] for s in chart["sizeChart"]["sizes"]] == ["30/32", "30/34", "32/32", "32/34"]
    data = gql.ok("{ sizeCharts { name sizes { name } } }")
    assert data["sizeCharts"][0]["name"] == "Jeans"


def test_size_chart_validation(gql: Caller) -> None:
    bad = gql.mutate("createSizeChart", CREATE_CHART, {"input": {"name": " ", "horizontalLabels": ["S", "S"]}})
    assert bad["sizeChart"] is None
    assert {tuple(e["path"]) for e in bad["userErrors"]} == {("input", "name"), ("input", "horizontalLabels")}
    assert gql.app.inspect()["counts"]["sizeCharts"] == 0


def test_create_product_with_variant_and_sizes(gql: Caller) -> None:
    [product] = seed_catalogue(gql)
    assert product["externalId"] == "P-1"
    [variant] = product["variants"]
    assert variant["externalId"] == "P-1-BLK"
    sizes = variant["productSizes"]
    assert [s["SKU"] for s in sizes] == ["B1-BLK38", "B1-BLK39"]
    assert [s["EAN"] for s in sizes] == ["1001", "1002"]
    assert [s["size"]["name"] for s in sizes] == ["38", "39"]
    counts = gql.app.inspect()["counts"]
    assert (counts["products"], counts["variants"], counts["productSizes"]) == (1, 1, 2)


def test_lookups_by_id_external_id_number_status_and_paging(gql: Caller) -> None:
    products = seed_catalogue(gql, products=5)
    by_ext = gql.ok(LOOKUP, {"where": {"externalId": ["P-2", "P-4", "nope"]}})["products"]
    assert [p["externalId"] for p in by_ext] == ["P-2", "P-4"]
    by_id = gql.ok(LOOKUP, {"where": {"id": [products[0]["id"]]}})["products"]
    assert [p["externalId"] for p in by_id] == ["P-1"]
    assert [p["productNumber"] for p in gql.ok(LOOKUP, {"where": {"productNumber": {"equals": "B3"}}})["products"]] == [
        "B3"
    ]
    assert len(gql.ok(LOOKUP, {"where": {"productNumber": {"contains": "B"}}})["products"]) == 5
    assert gql.ok(LOOKUP, {"where": {"status": ["INACTIVE"]}})["products"] == []
    page2 = gql.ok(LOOKUP, {"limit": 2, "page": 2})["products"]
    assert [p["externalId"] for p in page2] == ["P-3", "P-4"]
    assert gql.ok(LOOKUP, {"limit": 2, "page": 4})["products"] == []


def test_second_create_with_same_external_id_makes_a_duplicate_and_moves_the_mapping(gql: Caller) -> None:
    [first] = seed_catalogue(gql)
    again = gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-1", "B1", ("1001", "1002"))})
    assert again["userErrors"] == []
    second = again["product"]
    assert second["id"] != first["id"]
    found = gql.ok(LOOKUP, {"where": {"externalId": ["P-1"]}})["products"]
    assert [p["id"] for p in found] == [second["id"]]
    old = gql.ok(LOOKUP, {"where": {"id": [first["id"]]}})["products"][0]
    assert old["externalId"] is None
    state = gql.app.inspect()
    assert state["counts"]["products"] == 2
    assert state["duplicates"]["product"] == {"P-1": 1}
    assert state["duplicates"]["variant"] == {"P-1-BLK": 1}
    assert state["externalIds"]["product"]["P-1"] == second["id"]
    # a third create: two duplicates of the same externalId
    gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-1", "B1")})
    assert gql.app.inspect()["duplicates"]["product"] == {"P-1": 2}


def test_failed_create_changes_nothing(gql: Caller) -> None:
    seed_catalogue(gql)
    before = gql.app.inspect()
    bad = boot("P-2", "B2")
    bad["addProductVariants"].append(
        {"name": "Red", "status": "ACTIVE", "productSizes": [{"size": {"name": "XXL"}, "isActive": True}]}
    )
    payload = gql.mutate("createProduct", CREATE_PRODUCT, {"input": bad})
    assert payload["product"] is None
    assert payload["userErrors"] == [
        {
            "message": "Size 'XXL' not found",
            "path": ["input", "addProductVariants", "1", "productSizes", "0", "size", "name"],
        }
    ]
    after = gql.app.inspect()
    assert after["counts"] == before["counts"]
    assert after["externalIds"] == before["externalIds"]
    # ids are not consumed by a failed mutation
    ok = gql.mutate("createProduct", CREATE_PRODUCT, {"input": boot("P-2", "B2", ("2001", "2002"))})
    assert ok["product"]["id"] == 2


def test_create_product_validation_errors(gql: Caller) -> None:
    seed_catalogue(gql)
    cases = [
        ({"name": "", "status": "ACTIVE", "productNumber": "X"}, ["input", "name"]),
        ({"name": "X", "status": "ACTIVE", "productNumber": " "}, ["input", "productNumber"]),
        (
            {
                "name": "X",
                "status": "ACTIVE",
                "productNumber": "X",
                "addProductVariants": [{"name": "V", "status": "ACTIVE", "sizeChart": {"externalId": "missing"}}],
            },
            ["input", "addProductVariants", "0", "sizeChart", "externalId"],
        ),
        (
            {
                "name": "X",
                "status": "ACTIVE",
                "productNumber": "X",
                "addProductVariants": [
                    {"name": "V", "status": "ACTIVE", "sizeChart": {"id": 1, "externalId": "SC-SHOES"}}
                ],
            },
            ["input", "addProductVariants", "0", "sizeChart"],
        ),
        (
            {
                "name": "X",
                "status": "ACTIVE",
                "productNumber": "X",
                "addProductVariants": [
                    {
                        "name": "V",
                        "status": "ACTIVE",
                        "productSizes": [
                            {"size": {"name": "38"}, "isActive": True},
                            {"size": {"id": 1}, "isActive": True},
                        ],
                    }
                ],
            },
            ["input", "addProductVariants", "0", "productSizes", "1", "size"],
        ),
    ]
    for product_input, path in cases:
        payload = gql.mutate("createProduct", CREATE_PRODUCT, {"input": product_input})
        assert payload["product"] is None
        assert [e["path"] for e in payload["userErrors"]] == [path], payload
    assert gql.app.inspect()["counts"]["products"] == 1


def test_ambiguous_plain_size_name_needs_the_chart(gql: Caller) -> None:
    seed_catalogue(gql)
    gql.mutate("createSizeChart", CREATE_CHART, {"input": {"name": "Boots", "horizontalLabels": ["38"]}})
    base = {"name": "X", "status": "ACTIVE", "productNumber": "X"}
    variant = {"name": "V", "status": "ACTIVE", "productSizes": [{"size": {"name": "38"}, "isActive": True}]}
    payload = gql.mutate("createProduct", CREATE_PRODUCT, {"input": {**base, "addProductVariants": [variant]}})
    assert "ambiguous" in payload["userErrors"][0]["message"]
    variant["productSizes"] = [{"size": {"name": "Boots|38"}, "isActive": True}]
    payload = gql.mutate("createProduct", CREATE_PRODUCT, {"input": {**base, "addProductVariants": [variant]}})
    assert payload["userErrors"] == []
    assert payload["product"]["variants"][0]["productSizes"][0]["size"]["name"] == "38"


def test_update_product_and_external_id_move(gql: Caller) -> None:
    products = seed_catalogue(gql, products=2)
    p1, p2 = products[0]["id"], products[1]["id"]
    payload = gql.mutate(
        "updateProduct", UPDATE_PRODUCT, {"id": p1, "input": {"name": "Boot II", "status": "INACTIVE"}}
    )
    assert payload["product"] == {
        "id": p1,
        "name": "Boot II",
        "status": "INACTIVE",
        "productNumber": "B1",
        "externalId": "P-1",
    }
    payload = gql.mutate("updateProduct", UPDATE_PRODUCT, {"id": p1, "input": {"externalId": "P-2"}})
    assert payload["product"]["externalId"] == "P-2"
    found = gql.ok(LOOKUP, {"where": {"id": [p1, p2]}})["products"]
    assert [(p["id"], p["externalId"]) for p in found] == [(p1, "P-2"), (p2, None)]
    assert gql.app.inspect()["duplicates"]["product"] == {}  # an update is not a create
    missing = gql.mutate("updateProduct", UPDATE_PRODUCT, {"id": 999, "input": {"name": "x"}})
    assert missing["product"] is None
    assert missing["userErrors"][0]["path"] == ["id"]
    blank = gql.mutate("updateProduct", UPDATE_PRODUCT, {"id": p1, "input": {"name": ""}})
    assert blank["userErrors"][0]["path"] == ["input", "name"]
    assert gql.ok(LOOKUP, {"where": {"id": [p1]}})["products"][0]["name"] == "Boot II"


def test_create_and_update_variant(gql: Caller) -> None:
    seed_catalogue(gql)
    payload = gql.mutate(
        "createProductVariant",
        CREATE_VARIANT,
        {
            "input": {
                "product": {"externalId": "P-1"},
                "name": "Brown",
                "status": "ACTIVE",
                "variantNumber": "-BRN",
                "externalId": "P-1-BRN",
                "sizeChart": {"externalId": "SC-SHOES"},
                "unitCost": {"value": 12.5, "currencyIsoCode": "EUR"},
                "productSizes": [{"size": {"name": "40"}, "isActive": True, "EAN": "1003", "sizeNumber": "40"}],
            }
        },
    )
    assert payload["userErrors"] == []
    variant = payload["productVariant"]
    assert variant["product"]["externalId"] == "P-1"
    assert variant["productSizes"][0]["SKU"] == "B1-BRN40"
    updated = gql.mutate(
        "updateProductVariant",
        UPDATE_VARIANT,
        {"id": variant["id"], "input": {"name": "Dark brown", "status": "INACTIVE", "externalId": "V-NEW"}},
    )
    assert updated["productVariant"] == {
        "id": variant["id"],
        "name": "Dark brown",
        "status": "INACTIVE",
        "variantNumber": "-BRN",
        "externalId": "V-NEW",
    }
    assert gql.app.inspect()["externalIds"]["variant"]["V-NEW"] == variant["id"]
    unknown_product = gql.mutate(
        "createProductVariant",
        CREATE_VARIANT,
        {"input": {"product": {"externalId": "nope"}, "name": "X", "status": "ACTIVE"}},
    )
    assert unknown_product["userErrors"][0]["path"] == ["input", "product", "externalId"]
    assert gql.app.inspect()["counts"]["variants"] == 2


def test_product_variants_paging(gql: Caller) -> None:
    seed_catalogue(gql)
    for n in range(3):
        gql.mutate(
            "createProductVariant",
            CREATE_VARIANT,
            {"input": {"product": {"externalId": "P-1"}, "name": f"V{n}", "status": "ACTIVE"}},
        )
    data = gql.ok("{ products { variants(limit: 2, page: 2) { name } } }")
    assert [v["name"] for v in data["products"][0]["variants"]] == ["V1", "V2"]


def test_create_product_size(gql: Caller) -> None:
    seed_catalogue(gql)
    payload = gql.mutate(
        "createProductSize",
        CREATE_SIZE,
        {
            "input": {
                "productVariant": {"externalId": "P-1-BLK"},
                "size": {"name": "40"},
                "isActive": False,
                "EAN": "1003",
                "UPC": "U1003",
                "sizeNumber": "40",
            }
        },
    )
    assert payload["userErrors"] == []
    assert payload["productSize"]["SKU"] == "B1-BLK40"
    assert payload["productSize"]["isActive"] is False
    again = gql.mutate(
        "createProductSize",
        CREATE_SIZE,
        {"input": {"productVariant": {"externalId": "P-1-BLK"}, "size": {"name": "40"}, "isActive": True}},
    )
    assert "already has size" in again["userErrors"][0]["message"]
    gql.mutate("createSizeChart", CREATE_CHART, {"input": {"name": "Tops", "horizontalLabels": ["M"]}})
    foreign = gql.mutate(
        "createProductSize",
        CREATE_SIZE,
        {"input": {"productVariant": {"externalId": "P-1-BLK"}, "size": {"name": "Tops|M"}, "isActive": True}},
    )
    assert "not found in size chart 'Shoes'" in foreign["userErrors"][0]["message"]
    assert gql.app.inspect()["counts"]["productSizes"] == 3


def test_renaming_an_external_id_releases_the_old_one(gql: Caller) -> None:
    [product] = seed_catalogue(gql)
    gql.mutate("updateProduct", UPDATE_PRODUCT, {"id": product["id"], "input": {"externalId": "P-RENAMED"}})
    assert gql.ok(LOOKUP, {"where": {"externalId": ["P-1"]}})["products"] == []
    assert [p["id"] for p in gql.ok(LOOKUP, {"where": {"externalId": ["P-RENAMED"]}})["products"]] == [product["id"]]
    assert gql.app.inspect()["externalIds"]["product"] == {"P-RENAMED": product["id"]}
