"""File imports into staging, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from erpsync.clock import FakeClock
from erpsync.erp.files import import_files, plan_files
from erpsync.erp.loader import StagingLoader
from erpsync.erp.readers import ImportFileError
from erpsync.outbound.changes import ENTITIES, desired
from erpsync.store.models import ParkedItem
from erpsync.store.staging import STAGING_TABLES, StagingPrice, StagingSize, StagingStock

Write = Callable[[str, str], Path]


def _count(engine: Engine, entity: str, *, removed: bool | None = None) -> int:
    t = STAGING_TABLES[entity].__table__
    stmt = select(func.count()).select_from(t)
    if removed is not None:
        stmt = stmt.where(t.c.removed_at.is_not(None) if removed else t.c.removed_at.is_(None))
    with Session(engine) as s:
        return int(s.execute(stmt).scalar_one())


def _stock(engine: Engine) -> dict[tuple[str, str], tuple[int, bool]]:
    with Session(engine) as s:
        rows = s.execute(select(StagingStock.warehouse, StagingStock.ean, StagingStock.quantity,
                                StagingStock.removed_at)).all()
    return {(w, e): (q, r is not None) for w, e, q, r in rows}


def _parked(engine: Engine) -> list[ParkedItem]:
    with Session(engine) as s:
        return list(s.exec(select(ParkedItem).where(ParkedItem.kind == "import")  # type: ignore[call-overload]
                           .order_by(ParkedItem.key)).scalars())


def _hashes(engine: Engine) -> dict[tuple[str, str], str]:
    with Session(engine) as s:
        return {(e, i.erp_key): i.hash for e in ENTITIES for i in desired(s, e, on_absent="deactivate")}


def test_example_files_load_and_csv_and_jsonl_layouts_agree(
    engine: Engine, loader: StagingLoader, examples: Path,
) -> None:
    report = import_files(loader, [examples], mode="snapshot")
    got = {e.entity: (e.loaded, e.rejected, e.error) for e in report.entities}
    assert got == {"sizechart": (2, 0, None), "product": (4, 0, None), "variant": (8, 0, None),
                   "size": (24, 0, None), "pricelist": (3, 0, None), "price": (15, 0, None),
                   "stock": (72, 0, None)}
    with Session(engine) as s:
        price = s.get(StagingPrice, ("PL-EUR", "P000001", ""))
        assert price is not None and price.price == Decimal("24.95")
    after_csv = _hashes(engine)
    assert len(after_csv) == 2 + 3 + 4 + 15 + 72
    report = import_files(loader, [examples / "jsonl"], mode="snapshot")
    assert all(e.rejected == 0 and e.error is None and e.removed == 0 for e in report.entities)
    assert _hashes(engine) == after_csv  # the same data in the other format changes nothing


def test_bad_rows_are_reported_with_file_line_reason_parked_and_never_block_good_rows(
    engine: Engine, loader: StagingLoader, examples: Path, write: Write,
) -> None:
    import_files(loader, [examples])
    stock = write("stock.csv", "\n".join([
        "warehouse,ean,quantity",
        "WH-MAIN,7300000000011,7",        # 2 ok
        "WH-MAIN,7300000000028,many",     # 3 bad number
        ",7300000000035,1",               # 4 missing key
        "WH-MAIN,4000000000000,1",        # 5 unknown reference
        "WH-MAIN,7300000000011,8",        # 6 duplicate key
        "WH-EU,7300000000028,-1",         # 7 negative
        "WH-EU,7300000000042,9",          # 8 ok
    ]) + "\n")
    variants = write("variants.csv", "variant_number,product_number,name,size_chart\n"
                                     "VX-1,P000001,Red,APPAREL\nVX-2,NOPE,Red,APPAREL\nVX-3,P000001,Red,NOCHART\n")
    sizes = write("sizes.csv", "variant_number,size,ean\nVX-1,S,7399999999994\nVX-1,XXXL,7399999999987\n"
                               "VX-1,M,7300000000011\n")
    prices = write("prices.csv", "pricelist,product_number,variant_number,price\n"
                                 "PL-SEK,P000002,P000001-01,10\nPL-XXX,P000001,,10\nPL-SEK,P000001,,12.50\n")
    report = import_files(loader, [stock, prices, sizes, variants])
    assert [e.entity for e in report.entities] == ["variant", "size", "price", "stock"]  # dependency order
    problems = {e.entity: [str(p) for p in e.problems] for e in report.entities}
    assert problems["stock"] == [
        f"{stock}:3: bad number in quantity: 'many'",
        f"{stock}:4: missing warehouse",
        f"{stock}:5: unknown EAN '4000000000000' (no size has it)",
        f"{stock}:6: duplicate key WH-MAIN|7300000000011 (first at {stock}:2)",
        f"{stock}:7: bad number in quantity: -1 is negative",
    ]
    assert problems["variant"] == [f"{variants}:3: unknown product 'NOPE'",
                                   f"{variants}:4: unknown size chart 'NOCHART'"]
    assert problems["size"] == [
        f"{sizes}:3: size 'XXXL' is not in size chart 'APPAREL' (XS|S|M)",
        f"{sizes}:4: duplicate key: EAN 7300000000011 already belongs to P000001-01/XS",
    ]
    assert problems["price"] == [
        f"{prices}:2: variant 'P000001-01' belongs to product 'P000001', not 'P000002'",
        f"{prices}:3: unknown pricelist 'PL-XXX'",
    ]
    stock_now = _stock(engine)
    assert stock_now[("WH-MAIN", "7300000000011")] == (7, False)
    assert stock_now[("WH-EU", "7300000000042")] == (9, False)
    assert _count(engine, "variant") == 9 and _count(engine, "size") == 25
    parked = _parked(engine)
    assert len(parked) == 5 + 2 + 2 + 2
    by_key = {p.key: p for p in parked}
    assert by_key["stock:WH-MAIN|7300000000028"].reason == f"{stock}:3: bad number in quantity: 'many'"
    assert '"quantity": "many"' in (by_key["stock:WH-MAIN|7300000000028"].payload or "")
    assert f"stock:{stock}:4" in by_key  # no key: parked by file and line
    assert f"stock:{stock}:6" in by_key  # a duplicate is parked by line: its key belongs to line 2


def test_reimport_is_safe_and_a_fixed_row_resolves_its_parked_item(
    engine: Engine, loader: StagingLoader, examples: Path, write: Write, clock: FakeClock,
) -> None:
    import_files(loader, [examples])
    before = _hashes(engine)
    bad = "warehouse,ean,quantity\nWH-MAIN,7300000000011,x\nWH-MAIN,7300000000028,3\n"
    stock = write("stock.csv", bad)
    import_files(loader, [stock])
    clock.advance(60)
    import_files(loader, [stock])
    parked = _parked(engine)
    assert [(p.key, p.attempts, p.resolved_at) for p in parked] == [("stock:WH-MAIN|7300000000011", 2, None)]
    assert _count(engine, "stock") == 72
    # the same file again changes nothing
    once = _hashes(engine)
    import_files(loader, [stock])
    assert _hashes(engine) == once
    write("stock.csv", "warehouse,ean,quantity\nWH-MAIN,7300000000011,40\n")
    report = import_files(loader, [stock])
    assert report.rejected == 0
    [p] = _parked(engine)
    assert p.resolution == "applied" and p.resolved_at is not None
    assert _stock(engine)[("WH-MAIN", "7300000000011")] == (40, False)
    assert _stock(engine)[("WH-MAIN", "7300000000028")] == (3, False)
    after = _hashes(engine)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {("stock", "WH-MAIN|7300000000011"), ("stock", "WH-MAIN|7300000000028")}


def test_snapshot_marks_absent_rows_removed_and_brings_them_back(
    engine: Engine, loader: StagingLoader, examples: Path, write: Write,
) -> None:
    import_files(loader, [examples], mode="snapshot")
    partial = write("stock.csv", "warehouse,ean,quantity\nWH-MAIN,7300000000011,1\n"
                                 "WH-MAIN,7300000000028,oops\n")
    report = import_files(loader, [partial], mode="snapshot")
    [e] = report.entities
    # 72 rows before; one loaded, one present but invalid (a typo must not deactivate it)
    assert (e.loaded, e.rejected, e.removed) == (1, 1, 70)
    stock = _stock(engine)
    assert stock[("WH-MAIN", "7300000000011")] == (1, False)
    assert stock[("WH-MAIN", "7300000000028")][1] is False
    assert stock[("WH-EU", "7300000000011")][1] is True
    assert _count(engine, "stock", removed=True) == 70
    # incremental imports never mark anything removed
    import_files(loader, [write("stock.csv", "warehouse,ean,quantity\nWH-EU,7300000000011,2\n")])
    assert _count(engine, "stock", removed=True) == 69
    # the full snapshot again: everything is back
    report = import_files(loader, [examples / "stock.csv"], mode="snapshot")
    assert report.entities[0].removed == 0
    assert _count(engine, "stock", removed=True) == 0
    # an empty snapshot (header only) marks nothing
    report = import_files(loader, [write("stock.csv", "warehouse,ean,quantity\n")], mode="snapshot")
    assert report.entities[0].removed == 0 and _count(engine, "stock", removed=True) == 0


def test_incremental_feed_marks_rows_removed_with_the_removed_column(
    engine: Engine, loader: StagingLoader, examples: Path, write: Write,
) -> None:
    import_files(loader, [examples])
    f = write("products.jsonl", '{"product_number": "P000002", "name": "Gone", "removed": true}\n'
                                '{"product_number": "P000009", "name": "New"}\n')
    report = import_files(loader, [f])
    assert report.entities[0].loaded == 2
    assert _count(engine, "product") == 5 and _count(engine, "product", removed=True) == 1
    import_files(loader, [write("products.jsonl", '{"product_number": "P000002", "name": "Back"}\n')])
    assert _count(engine, "product", removed=True) == 0


def test_a_file_unreadable_half_way_loads_nothing_of_its_entity(
    engine: Engine, loader: StagingLoader, examples: Path, tmp_path: Path,
) -> None:
    import_files(loader, [examples])
    path = tmp_path / "stock.csv"
    good = "".join(f"WH-MAIN,7300000000011,{i}\n" if i == 0 else f"WH-X{i},7300000000011,{i}\n"
                   for i in range(2000))
    path.write_bytes(b"warehouse,ean,quantity\n" + good.encode() + b"WH-MAIN,73\xff\xfe,1\n")
    other = tmp_path / "products.csv"
    other.write_text("product_number,name\nP000100,New\n", encoding="utf-8")
    report = import_files(loader, [path, other])
    by = {e.entity: e for e in report.entities}
    assert by["stock"].error is not None and "not UTF-8" in by["stock"].error
    assert by["stock"].loaded == 0
    assert _count(engine, "stock") == 72  # nothing of the 2,000 good rows before the bad byte
    assert by["product"].loaded == 1 and by["product"].error is None


def test_several_files_of_one_entity_are_one_snapshot(
    engine: Engine, loader: StagingLoader, examples: Path, write: Write, tmp_path: Path,
) -> None:
    import_files(loader, [examples])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / "stock-main.csv"
    b = tmp_path / "b" / "stock-eu.csv"
    a.write_text("warehouse,ean,quantity\nWH-MAIN,7300000000011,1\n", encoding="utf-8")
    b.write_text("warehouse,ean,quantity\nWH-EU,7300000000011,2\n", encoding="utf-8")
    report = import_files(loader, [a, b], mode="snapshot")
    assert len(report.entities) == 1
    assert report.entities[0].loaded == 2 and report.entities[0].removed == 70


def test_entity_must_be_recognisable(tmp_path: Path, write: Write) -> None:
    f = write("export.csv", "a,b\n")
    with pytest.raises(ImportFileError, match="cannot tell the entity"):
        plan_files([f])
    assert plan_files([f], entity="stock") == {"stock": [f]}
    with pytest.raises(ImportFileError, match="unknown entity"):
        plan_files([f], entity="orders")


def test_sizes_keep_upc_and_size_number(engine: Engine, loader: StagingLoader, examples: Path, write: Write,
                                        ) -> None:
    import_files(loader, [examples])
    import_files(loader, [write("sizes.csv", "variant_number;size;ean;upc;size_number\n"
                                             "P000001-01;XS;7300000000011;012345678905;X1\n")])
    with Session(engine) as s:
        size = s.get(StagingSize, ("P000001-01", "XS"))
        assert size is not None and (size.upc, size.size_number) == ("012345678905", "X1")


def test_malformed_eans_are_rejected_with_file_and_line_the_rest_load(
        engine: Engine, loader: StagingLoader, examples: Path, write: Write) -> None:
    import_files(loader, [examples])
    sizes = write("sizes.csv", "variant_number,size,ean\nP000001-01,XS,7300000000011\nP000001-01,S,73ABC0000000X\n"
                               "P000001-01,M,7300000000012\nP000001-02,XS,123\n")
    report = import_files(loader, [sizes])
    problems = [str(p) for e in report.entities for p in e.problems]
    assert problems == [
        f"{sizes}:3: bad EAN in ean: '73ABC0000000X' (expected 8 or 12 or 13 digits)",
        f"{sizes}:4: bad EAN in ean: '7300000000012' has a wrong check digit (expected 1)",
        f"{sizes}:5: bad EAN in ean: '123' (expected 8 or 12 or 13 digits)",
    ]
    with Session(engine) as s:
        assert s.get(StagingSize, ("P000001-01", "XS")) is not None
