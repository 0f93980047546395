from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.outbound.changes import (
    EntityPlan,
    Plan,
    canonical_decimal,
    canonical_json,
    payload_hash,
    stock_canonical_json,
    tier_rates,
)
from erpsync.sample import COLUMNS, Catalogue, ean13, generate


def test_canonical_decimal_ignores_scale_and_never_uses_exponents() -> None:
    assert canonical_decimal(Decimal("199.00")) == "199"
    assert canonical_decimal(Decimal("199.00000000")) == "199"  # PostgreSQL NUMERIC(28, 8)
    assert canonical_decimal(Decimal("1E+3")) == "1000"
    assert canonical_decimal(Decimal("10.50")) == "10.5"
    assert canonical_decimal(Decimal("-0.00")) == "0"
    with pytest.raises(ValueError, match="finite"):
        canonical_decimal(Decimal("NaN"))


def test_payload_hash_is_canonical() -> None:
    a = {"price": {"value": Decimal("199.00"), "currencyIsoCode": "SEK"}, "product": {"externalId": "prd_1"}}
    b = {"product": {"externalId": "prd_1"}, "price": {"currencyIsoCode": "SEK", "value": Decimal("199")}}
    assert payload_hash(a) == payload_hash(b)
    assert canonical_json(a) == '{"price":{"currencyIsoCode":"SEK","value":"199"},"product":{"externalId":"prd_1"}}'
    assert payload_hash(a) == hashlib.sha256(canonical_json(a).encode()).hexdigest()
    assert len(payload_hash(a)) == 64


def test_payload_hash_changes_iff_pushed_data_changes() -> None:
    base = {"warehouse": {"externalId": "WH-MAIN"}, "productSize": {"EAN": "1"}, "quantity": 5}
    assert payload_hash(base) != payload_hash({**base, "quantity": 6})
    assert payload_hash(base) != payload_hash({**base, "warehouse": {"externalId": "WH-EU"}})
    # list order is data (sizes in size-chart order): it matters
    assert payload_hash({"l": ["S", "M"]}) != payload_hash({"l": ["M", "S"]})
    assert payload_hash({"name": "Tröja"}) == payload_hash({"name": "Tröja"})
    with pytest.raises(TypeError):
        payload_hash({"x": object()})


def test_ean13_has_a_valid_check_digit() -> None:
    assert ean13(1) == "7300000000011"
    for n in (1, 2, 99, 123456):
        code = ean13(n)
        digits = [int(c) for c in code]
        assert len(code) == 13
        assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_acceptance_catalogue_has_the_required_size() -> None:
    cat = Catalogue()
    counts = {e: sum(1 for _ in cat.rows(e)) for e in COLUMNS}
    assert counts["products"] >= 2000 and counts["variants"] == 3 * counts["products"]
    assert counts["sizes"] == 5 * counts["variants"]
    assert {r["warehouse"] for r in cat.rows("stock")} == {"WH-MAIN", "WH-EU", "WH-US"}
    assert counts["stock"] == 3 * counts["sizes"]
    assert {(r["code"], r["currency"]) for r in cat.rows("pricelists")} == {
        ("PL-SEK", "SEK"), ("PL-EUR", "EUR"), ("PL-USD", "USD")}
    eans = [r["ean"] for r in cat.rows("sizes")]
    assert len(set(eans)) == len(eans)


def test_generate_is_deterministic(tmp_path: Path) -> None:
    small = Catalogue(products=30, variants=2, sizes=4)
    for fmt in ("csv", "jsonl"):
        a = generate(tmp_path / f"a-{fmt}", small, fmt=fmt)
        b = generate(tmp_path / f"b-{fmt}", small, fmt=fmt)
        assert set(a) == set(COLUMNS)
        for entity in a:
            assert a[entity].read_bytes() == b[entity].read_bytes()
    assert generate(tmp_path / "c", Catalogue(products=30, variants=2, sizes=4, seed=1))["stock"].read_bytes() != \
        (tmp_path / "a-csv" / "stock.csv").read_bytes()


def test_plan_time_is_bound_by_the_hourly_mutation_bucket() -> None:
    mps, rps = tier_rates("growth", 0.8)
    assert mps == pytest.approx(1800 / 3600 * 0.8)
    assert rps == pytest.approx(5000 / 3600 * 0.8)
    p = Plan([EntityPlan("stock", items=10, mutations=4, requests=4)], mps, rps)
    assert p.seconds == pytest.approx(4 / 0.4)
    with pytest.raises(ValueError, match="custom"):
        tier_rates("custom", 1.0)
    assert tier_rates("custom", 1.0, (3600, 360, 1))[0] == pytest.approx(0.1)


@pytest.mark.parametrize(("warehouse", "ean", "qty"), [
    ({"externalId": "WH-MAIN"}, "7300000000011", 5),
    ({"id": 7}, 'we"ird\\ean ö', 0),
    ({"externalId": "lager-ä"}, "1", 123456789),
])
def test_stock_fast_path_is_exactly_the_canonical_json(warehouse: dict[str, object], ean: str, qty: int) -> None:
    payload = {"warehouse": warehouse, "productSize": {"EAN": ean}, "quantity": qty}
    assert stock_canonical_json(canonical_json(warehouse), ean, qty) == canonical_json(payload)


def test_plan_time_leaves_live_stock_its_budget() -> None:
    """Paced live stock changes (push.stock_mutation_share of the hourly allowance) go ahead of the
    push: the ETA counts the refill they take. Growth × 0.8: the 10 s bucket refills 1.6/s, stock's
    25 % of 1,440 an hour is 0.1/s, so 1,054 mutations take (1,054 − 16) / 1.5 s, not / 1.6."""
    from erpsync.outbound.changes import plan

    class NoRows:
        def execute(self, *_a: object, **_k: object) -> list[object]:
            return []

    mps, rps = tier_rates("growth", 0.8)
    buckets = {"mutations_10s": (16.0, 1.6), "mutations_1h": (1440.0, 0.4),
               "requests_10s": (48.0, 4.8), "requests_1h": (4000.0, 4000 / 3600)}
    plain = Plan([EntityPlan("product", mutations=1054, requests=1054)], mps, rps, buckets)
    assert plain.seconds == pytest.approx((1054 - 16) / 1.6)
    live = Plan([EntityPlan("product", mutations=1054, requests=1054)], mps, rps, buckets,
                live_stock_per_second=0.25 * mps)
    assert live.seconds == pytest.approx((1054 - 16) / 1.5)
    assert live.as_dict()["live_stock_per_second"] == pytest.approx(0.1)
    assert plan(NoRows(), entities=(), tier="growth", share=0.8,  # type: ignore[arg-type]
                live_stock_share=0.25).live_stock_per_second == pytest.approx(0.1)
