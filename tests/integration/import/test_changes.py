"""Change detection against OutboundItem, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.outbound.changes import (
    ENTITIES,
    Batching,
    Refs,
    desired,
    payload_hash,
    pending,
    plan,
    record_accepted,
    resync,
)
from erpsync.store.engine import transaction
from erpsync.store.models import OutboundItem

Write = Callable[[str, str], Path]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _accept_all(engine: Engine, entities: tuple[str, ...] = ENTITIES, on_absent: str = "ignore") -> int:
    n = 0
    with transaction(engine) as s:
        for e in entities:
            n += record_accepted(s, list(pending(s, e, on_absent=on_absent)), now=NOW,  # type: ignore[arg-type]
                                 remote_ids=None)
    return n


def _pending(engine: Engine, entity: str, **kw: object) -> list:  # type: ignore[type-arg]
    with Session(engine) as s:
        return list(pending(s, entity, **kw))  # type: ignore[arg-type]


@pytest.fixture
def loaded(engine: Engine, loader: StagingLoader, examples: Path) -> Engine:
    report = import_files(loader, [examples], mode="snapshot")
    assert report.rejected == 0
    return engine


def test_payloads_are_what_centra_receives(loaded: Engine) -> None:
    with Session(loaded) as s:
        [product] = list(desired(s, "product", keys=["P000001"]))
        [stock] = list(desired(s, "stock", keys=["WH-EU|7300000000011"]))
        prices = {i.erp_key: i for i in desired(s, "price", keys=["PL-SEK|P000001", "PL-SEK|P000001|P000001-01"])}
        [chart] = list(desired(s, "sizechart", keys=["APPAREL"]))
        [pl] = list(desired(s, "pricelist", keys=["PL-USD"]))
    assert product.payload["externalId"] == "prd_P000001" and product.payload["status"] == "ACTIVE"
    [v1, v2] = product.payload["addProductVariants"]
    assert (v1["externalId"], v2["externalId"]) == ("var_P000001-01", "var_P000001-02")
    assert v1["sizeChart"] == {"externalId": "sc_APPAREL"}
    assert [ps["size"]["name"] for ps in v1["productSizes"]] == ["XS", "S", "M"]  # size-chart order
    assert v1["productSizes"][0] == {"size": {"name": "XS"}, "EAN": "7300000000011", "isActive": True,
                                     "sizeNumber": "01"}
    assert stock.payload == {"warehouse": {"externalId": "WH-EU"}, "productSize": {"EAN": "7300000000011"},
                             "quantity": stock.payload["quantity"]}
    assert stock.depends_on == "P000001" and stock.operation == "set"
    assert prices["PL-SEK|P000001"].payload == {
        "pricelist": {"externalId": "PL-SEK"}, "product": {"externalId": "prd_P000001"},
        "price": {"value": Decimal("249.00"), "currencyIsoCode": "SEK"}}
    assert prices["PL-SEK|P000001|P000001-01"].payload["productVariant"] == {"externalId": "var_P000001-01"}
    assert chart.payload == {"externalId": "sc_APPAREL", "name": "APPAREL", "horizontalLabels": ["XS", "S", "M"]}
    assert pl.payload == {"externalId": "PL-USD", "name": "US retail", "status": "ACTIVE",
                          "currencyIsoCode": "USD", "store": {"id": 1}}
    # the hash is the canonical hash of the payload, whichever database the Decimal came from
    assert prices["PL-SEK|P000001"].hash == payload_hash(
        {"pricelist": {"externalId": "PL-SEK"}, "product": {"externalId": "prd_P000001"},
         "price": {"value": Decimal("249"), "currencyIsoCode": "SEK"}})


def test_mapped_warehouses_and_pricelists(loaded: Engine) -> None:
    refs = Refs(warehouses={"WH-EU": "centra-eu", "WH-US": "id:7"}, pricelists={"PL-SEK": "sek-retail"})
    with Session(loaded) as s:
        wh = {i.erp_key.split("|")[0]: i.payload["warehouse"] for i in desired(s, "stock", refs=refs)}
        pl = {i.erp_key: i.payload for i in desired(s, "pricelist", refs=refs)}
    assert wh == {"WH-EU": {"externalId": "centra-eu"}, "WH-MAIN": {"externalId": "WH-MAIN"}, "WH-US": {"id": 7}}
    assert pl["PL-SEK"]["externalId"] == "sek-retail"


def test_accepted_items_are_not_pending_and_a_noop_plan_needs_zero_mutations(loaded: Engine) -> None:
    with Session(loaded) as s:
        first = plan(s)
    assert first.mutations > 0
    assert {e.entity: e.changed for e in first.entities} == {
        "sizechart": 2, "pricelist": 3, "product": 4, "price": 15, "stock": 72}
    assert _accept_all(loaded) == 2 + 3 + 4 + 15 + 72
    for e in ENTITIES:
        assert _pending(loaded, e) == []
    with Session(loaded) as s:
        again = plan(s)
    assert again.mutations == 0 and again.requests == 0 and again.seconds == 0
    assert sum(e.items for e in again.entities) == 96


def test_ten_changed_stock_rows_are_ten_items_and_one_set_stock_per_warehouse(
    loaded: Engine, loader: StagingLoader, write: Write,
) -> None:
    _accept_all(loaded)
    eans = [f"73000000000{n}" for n in ("11", "28", "35", "42", "59", "66")]
    rows = [f"WH-MAIN,{e},{100 + i}" for i, e in enumerate(eans)]
    rows += [f"WH-US,{e},{200 + i}" for i, e in enumerate(eans[:4])]
    import_files(loader, [write("stock.csv", "warehouse,ean,quantity\n" + "\n".join(rows) + "\n")])
    items = _pending(loaded, "stock")
    assert len(items) == 10
    assert [i.erp_key for i in items] == sorted(i.erp_key for i in items)  # stable order
    assert {i.erp_key.split("|")[0] for i in items} == {"WH-MAIN", "WH-US"}
    with Session(loaded) as s:
        p = plan(s, entities=["stock"])
    assert p.entities[0].mutations == 2 and p.entities[0].operations == {"set": 10}
    with Session(loaded) as s:
        small = plan(s, entities=["stock"], batching=Batching(stock=3))
    assert small.entities[0].mutations == 2 + 2  # ceil(6/3) + ceil(4/3)


def test_resync_forgets_hashes_but_keeps_remote_ids(loaded: Engine) -> None:
    with transaction(loaded) as s:
        items = list(pending(s, "product"))
        record_accepted(s, items, now=NOW, remote_ids={i.erp_key: str(n) for n, i in enumerate(items, 1)})
    assert _pending(loaded, "product") == []
    with transaction(loaded) as s:
        assert resync(s, "product", ["P000002", "P000004", "P999999"]) == 2
    again = _pending(loaded, "product")
    assert [i.erp_key for i in again] == ["P000002", "P000004"]
    assert [i.operation for i in again] == ["update", "update"]  # never re-created
    assert again[0].outbound is not None and again[0].outbound.remote_id == "2"
    with transaction(loaded) as s:
        assert resync(s, "product") == 2
    assert len(_pending(loaded, "product")) == 4
    with transaction(loaded) as s, pytest.raises(ValueError, match="unknown entity"):
        resync(s, "orders")


def test_a_rejected_payload_waits_until_it_changes(loaded: Engine, loader: StagingLoader, write: Write) -> None:
    [item] = [i for i in _pending(loaded, "stock") if i.erp_key == "WH-MAIN|7300000000011"]
    with transaction(loaded) as s:
        s.add(OutboundItem(entity="stock", erp_key=item.erp_key, rejected_hash=item.hash, status="parked"))
    assert item.erp_key not in {i.erp_key for i in _pending(loaded, "stock")}
    assert item.erp_key in {i.erp_key for i in _pending(loaded, "stock", include_rejected=True)}
    with Session(loaded) as s:
        assert plan(s, entities=["stock"]).entities[0].parked == 1
    import_files(loader, [write("stock.csv", "warehouse,ean,quantity\nWH-MAIN,7300000000011,99\n")])
    assert item.erp_key in {i.erp_key for i in _pending(loaded, "stock")}


def test_price_scale_is_not_a_change_but_a_new_value_is(loaded: Engine, loader: StagingLoader, write: Write) -> None:
    _accept_all(loaded)
    import_files(loader, [write("prices.csv", "pricelist,product_number,price\nPL-SEK,P000001,249.0000\n")])
    assert _pending(loaded, "price") == []
    import_files(loader, [write("prices.csv", "pricelist,product_number,price\nPL-SEK,P000001,249.01\n")])
    [item] = _pending(loaded, "price")
    assert item.erp_key == "PL-SEK|P000001" and item.payload["price"]["value"] == Decimal("249.01")


def test_removed_items_follow_on_absent(
    loaded: Engine, loader: StagingLoader, write: Write, examples: Path,
) -> None:
    _accept_all(loaded, on_absent="deactivate")
    import_files(loader, [
        write("products.csv", "product_number,name,removed\nP000002,Shirt 2,yes\n"),
        write("sizes.csv", "variant_number,size,ean,removed\nP000001-01,XS,7300000000011,true\n"),
    ])
    kept = {(w, e) for w in ("WH-MAIN", "WH-EU", "WH-US") for e in ("7300000000011", "7300000000028")}
    import_files(loader, [write("stock.csv", "warehouse,ean,quantity\n" + "\n".join(
        f"{w},{e},1" for w, e in sorted(kept)) + "\n")], mode="snapshot")
    before = {}
    for line in (examples / "stock.csv").read_text().splitlines()[1:]:
        w, e, q = line.split(",")
        before[(w, e)] = int(q)

    # ignore: removed things are left alone in Centra
    assert [i.erp_key for i in _pending(loaded, "product")] == ["P000001"]  # its XS size left the payload
    with Session(loaded) as s:
        assert "P000002" not in {i.erp_key for i in desired(s, "product")}
    ignored = {i.erp_key for i in _pending(loaded, "stock")}
    assert ignored == {f"{w}|{e}" for w, e in kept if before[(w, e)] != 1}

    # deactivate: the product goes INACTIVE with its variants and sizes, absent stock goes to 0
    by_key = {i.erp_key: i for i in _pending(loaded, "product", on_absent="deactivate")}
    assert set(by_key) == {"P000001", "P000002"}
    p2 = by_key["P000002"]
    assert p2.removed and p2.operation == "deactivate" and p2.payload["status"] == "INACTIVE"
    assert all(v["status"] == "INACTIVE" for v in p2.payload["addProductVariants"])
    assert all(not ps["isActive"] for v in p2.payload["addProductVariants"] for ps in v["productSizes"])
    xs = by_key["P000001"].payload["addProductVariants"][0]["productSizes"][0]
    assert xs["EAN"] == "7300000000011" and xs["isActive"] is False
    stock = {i.erp_key: i for i in _pending(loaded, "stock", on_absent="deactivate")}
    zeroed = {f"{w}|{e}" for (w, e), q in before.items() if (w, e) not in kept and q != 0}
    assert set(stock) == ignored | zeroed
    assert all(stock[k].removed and stock[k].payload["quantity"] == 0 for k in zeroed)
