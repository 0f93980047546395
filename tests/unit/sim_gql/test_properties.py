"""Property test of externalId bookkeeping over random creates and updates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.clock import FakeClock
from erpsync.sim.gql import GqlOptions, GraphqlApp

from .conftest import Caller, seed_catalogue

CREATE = """mutation($ext: String) { createProduct(input: {name: "N", status: ACTIVE, productNumber: "N",
  externalId: $ext}) { product { id } userErrors { message } } }"""
UPDATE = """mutation($id: Int!, $ext: String) { updateProduct(id: $id, input: {externalId: $ext}) {
  product { id } userErrors { message } } }"""

step = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["A", "B", "C", None])),
    st.tuples(st.just("update"), st.integers(1, 8), st.sampled_from(["A", "B", "C"])),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(step, max_size=15))
def test_external_ids_map_to_one_object_and_duplicates_count_creates(steps: list[tuple]) -> None:
    app = GraphqlApp(GqlOptions(tier="enterprise"), FakeClock())
    gql = Caller(app)
    creates: dict[str, int] = {}
    owner: dict[str, int] = {}
    products = 0
    for s in steps:
        if s[0] == "create":
            payload = gql.ok(CREATE, {"ext": s[1]})["createProduct"]
            products += 1
            if s[1] is not None:
                creates[s[1]] = creates.get(s[1], 0) + 1
                owner[s[1]] = payload["product"]["id"]
        else:
            _, pid, ext = s
            payload = gql.ok(UPDATE, {"id": pid, "ext": ext})["updateProduct"]
            if pid <= products:
                assert payload["userErrors"] == []
                # the product's previous externalId (if any) is released
                owner = {e: o for e, o in owner.items() if o != pid}
                owner[ext] = pid
            else:
                assert payload["product"] is None
    held = app.inspect()
    assert held["externalIds"]["product"] == owner
    assert held["duplicates"]["product"] == {e: n - 1 for e, n in sorted(creates.items()) if n > 1}
    listed = gql.ok("{ products(limit: 100) { id externalId } }")["products"]
    assert {p["externalId"]: p["id"] for p in listed if p["externalId"]} == owner


CHANGE = """mutation($input: StockChangeInput!) { changeStock(input: $input) {
  stockChange { id } userErrors { message path } } }"""
WAREHOUSES = ["WH-MAIN", "WH-EU", "WH-US"]
EANS = ["1001", "1002"]

line = st.tuples(st.sampled_from(EANS), st.integers(-5, 10))
change = st.tuples(
    st.sampled_from([None, *WAREHOUSES]),  # into
    st.sampled_from([None, *WAREHOUSES]),  # out
    st.lists(line, min_size=1, max_size=3),
)


def expected_after(model: dict[tuple[str, str], int], into: str | None, out: str | None, lines: list) -> bool:
    """Apply a changeStock to the model if Centra accepts it; True if accepted."""
    if (into is None and out is None) or into == out:
        return False
    trial = dict(model)
    for ean, delta in lines:
        if into and out and delta <= 0:
            return False
        if out:
            trial[(out, ean)] = trial.get((out, ean), 0) - delta
        if into:
            trial[(into, ean)] = trial.get((into, ean), 0) + delta
        if any(v < 0 for v in trial.values()):
            return False
    model.clear()
    model.update(trial)
    return True


@settings(max_examples=40, deadline=None)
@given(st.lists(change, max_size=12))
def test_change_stock_is_atomic_and_never_negative(changes: list) -> None:
    app = GraphqlApp(GqlOptions(tier="enterprise"), FakeClock())
    gql = Caller(app)
    seed_catalogue(gql)
    model: dict[tuple[str, str], int] = {}
    for into, out, lines in changes:
        body: dict = {
            "description": "p",
            "productSizes": [{"productSize": {"EAN": ean}, "deliveredQuantity": delta} for ean, delta in lines],
        }
        if into:
            body["intoWarehouse"] = {"externalId": into}
        if out:
            body["outFromWarehouse"] = {"externalId": out}
        payload = gql.ok(CHANGE, {"input": body})["changeStock"]
        accepted = expected_after(model, into, out, lines)
        assert (payload["userErrors"] == []) == accepted, (into, out, lines, payload)
        held = {(r["warehouse"], r["EAN"]): r["quantity"] for r in app.inspect()["stock"]}
        assert {k: v for k, v in held.items() if v} == {k: v for k, v in model.items() if v}
        assert all(v >= 0 for v in held.values())
