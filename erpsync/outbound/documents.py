"""GraphQL documents the push jobs send (validated against ``erpsync/contract/centra.graphql``).

Selections are kept small on purpose: the complexity of a list field multiplies by its ``limit``,
and every mutation's selection is charged to the same complexity bucket.
"""

from __future__ import annotations

#: Selection every mutation payload carries: failure (userErrors) and success-with-notes (warnings).
PAYLOAD_NOTES = "userErrors { message path } userWarnings { message path }"

#: How many variants of a product one lookup reads. A product with more variants than this is read
#: again page by page (``LOOKUP_PRODUCT_VARIANTS``).
VARIANTS_PAGE = 20

_VARIANT_FIELDS = "id externalId name status variantNumber productSizes { EAN }"

LOOKUP_PRODUCTS = f"""
query LookupProducts($externalIds: [String!]!, $limit: Int!) {{
  products(where: {{externalId: $externalIds}}, limit: $limit) {{
    id externalId name status productNumber
    variants(limit: {VARIANTS_PAGE}) {{ {_VARIANT_FIELDS} }}
  }}
}}
"""

LOOKUP_PRODUCT_VARIANTS = f"""
query LookupProductVariants($ids: [Int!]!, $page: Int!) {{
  products(where: {{id: $ids}}, limit: 1) {{
    id
    variants(limit: {VARIANTS_PAGE}, page: $page) {{ {_VARIANT_FIELDS} }}
  }}
}}
"""

LOOKUP_SIZE_CHARTS = """
query LookupSizeCharts($limit: Int!, $page: Int!) {
  sizeCharts(limit: $limit, page: $page) { id name externalId sizes { id name } }
}
"""

LOOKUP_PRICELISTS = """
query LookupPricelists($externalIds: [String!]!, $limit: Int!) {
  pricelists(where: {externalId: $externalIds}, limit: $limit) { id externalId currencyIsoCode }
}
"""

LOOKUP_PRICELISTS_BY_ID = """
query LookupPricelistsById($ids: [Int!]!, $limit: Int!) {
  pricelists(where: {id: $ids}, limit: $limit) { id externalId currencyIsoCode }
}
"""

LOOKUP_WAREHOUSES = """
query LookupWarehouses($externalIds: [String!]!, $limit: Int!) {
  warehouses(where: {externalId: $externalIds}, limit: $limit) { id externalId }
}
"""

LOOKUP_WAREHOUSES_BY_ID = """
query LookupWarehousesById($ids: [Int!]!, $limit: Int!) {
  warehouses(where: {id: $ids}, limit: $limit) { id externalId }
}
"""

SET_STOCK = f"""
mutation SetStock($input: StockSetInput!) {{
  setStock(input: $input) {{ {PAYLOAD_NOTES} }}
}}
"""

SET_PRICES_BATCH = f"""
mutation SetPricesBatch($input: [ProductPricesSetInput!]!) {{
  setPricesBatch(input: $input) {{ {PAYLOAD_NOTES} }}
}}
"""

CREATE_SIZE_CHART = f"""
mutation CreateSizeChart($input: SizeChartCreateInput!) {{
  createSizeChart(input: $input) {{ sizeChart {{ id externalId }} {PAYLOAD_NOTES} }}
}}
"""

CREATE_PRICELIST = f"""
mutation CreatePricelist($input: PricelistCreateInput!) {{
  createPricelist(input: $input) {{ pricelist {{ id externalId }} {PAYLOAD_NOTES} }}
}}
"""

_PRODUCT_RESULT = (
    f"product {{ id externalId variants(limit: {VARIANTS_PAGE}) {{ id externalId }} }} {PAYLOAD_NOTES}"
)
_VARIANT_RESULT = f"productVariant {{ id externalId }} {PAYLOAD_NOTES}"
_SIZE_RESULT = f"productSize {{ id EAN }} {PAYLOAD_NOTES}"

#: Catalogue mutations by kind: (field, argument declarations, argument use, result selection).
_CATALOGUE: dict[str, tuple[str, str, str, str]] = {
    "createProduct": ("createProduct", "$%s: ProductCreateInput!", "input: $%s", _PRODUCT_RESULT),
    "updateProduct": ("updateProduct", "$%s_id: Int!, $%s: ProductUpdateInput!", "id: $%s_id, input: $%s",
                      f"product {{ id }} {PAYLOAD_NOTES}"),
    "createProductVariant": ("createProductVariant", "$%s: ProductVariantCreateInput!", "input: $%s",
                             _VARIANT_RESULT),
    "updateProductVariant": ("updateProductVariant", "$%s_id: Int!, $%s: ProductVariantUpdateInput!",
                             "id: $%s_id, input: $%s", _VARIANT_RESULT),
    "createProductSize": ("createProductSize", "$%s: ProductSizeCreateInput!", "input: $%s", _SIZE_RESULT),
}


def catalogue_mutation(kinds: list[str]) -> str:
    """One request carrying several aliased catalogue mutations (``m0``, ``m1`` …), in order.

    Variables: ``m<i>`` is the input, ``m<i>_id`` the id for updates. Each alias has its own
    ``userErrors``, so one bad item never hides the others' results.
    """
    decls: list[str] = []
    fields: list[str] = []
    for i, kind in enumerate(kinds):
        field, decl, use, result = _CATALOGUE[kind]
        alias = f"m{i}"
        decls.append(decl.replace("%s", alias))
        fields.append(f"  {alias}: {field}({use.replace('%s', alias)}) {{ {result} }}")
    return "mutation Catalogue(" + ", ".join(decls) + ") {\n" + "\n".join(fields) + "\n}\n"
