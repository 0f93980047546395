"""The SQL source against a real ERP database: a SQLite file and a PostgreSQL schema, read through
views whose columns use the documented layout names."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlmodel import Session

from erpsync.erp.loader import StagingLoader
from erpsync.erp.sql import SqlSource
from erpsync.errors import JobFailed, SourceUnavailable
from erpsync.outbound.changes import desired
from erpsync.sample import Catalogue
from erpsync.store.staging import StagingPrice, StagingStock

CAT = Catalogue(products=12, variants=2, sizes=3)

ERP_DDL = [
    "CREATE TABLE art (artno VARCHAR(20) PRIMARY KEY, descr VARCHAR(100), active INTEGER)",
    "CREATE TABLE art_var (varno VARCHAR(20) PRIMARY KEY, artno VARCHAR(20), colour VARCHAR(40), chart VARCHAR(20))",
    "CREATE TABLE art_size (varno VARCHAR(20), sz VARCHAR(10), gtin VARCHAR(14), pos VARCHAR(4))",
    "CREATE TABLE charts (name VARCHAR(20), sizes VARCHAR(100))",
    "CREATE TABLE plists (code VARCHAR(20), descr VARCHAR(40), cur VARCHAR(3))",
    "CREATE TABLE plist_price (code VARCHAR(20), artno VARCHAR(20), varno VARCHAR(20), amount NUMERIC(12, 2))",
    "CREATE TABLE inventory (whs VARCHAR(20), gtin VARCHAR(14), qty INTEGER)",
    "CREATE VIEW v_sizecharts AS SELECT name, sizes FROM charts",
    "CREATE VIEW v_products AS SELECT artno AS product_number, descr AS name, "
    "CASE WHEN active = 1 THEN 'ACTIVE' ELSE 'INACTIVE' END AS status FROM art",
    "CREATE VIEW v_variants AS SELECT varno AS variant_number, artno AS product_number, colour AS name, "
    "chart AS size_chart FROM art_var",
    "CREATE VIEW v_sizes AS SELECT varno AS variant_number, sz AS size, gtin AS ean, pos AS size_number FROM art_size",
    "CREATE VIEW v_pricelists AS SELECT code, descr AS name, cur AS currency FROM plists",
    "CREATE VIEW v_prices AS SELECT code AS pricelist, artno AS product_number, varno AS variant_number, "
    "amount AS price FROM plist_price",
    "CREATE VIEW v_stock AS SELECT whs AS warehouse, gtin AS ean, qty AS quantity FROM inventory",
]

QUERIES = {
    "sizecharts": "SELECT * FROM v_sizecharts",
    "products": "SELECT * FROM v_products ORDER BY product_number",
    "variants": "SELECT * FROM v_variants",
    "sizes": "SELECT * FROM v_sizes",
    "pricelists": "SELECT * FROM v_pricelists",
    "prices": "SELECT * FROM v_prices",
    "stock": "SELECT * FROM v_stock ORDER BY warehouse, ean",
}


def _fill_erp(url: str) -> None:
    erp = create_engine(url)
    # SQLite has no decimal: its NUMERIC column hands back floats, which the layout reads via repr
    money = Decimal if erp.dialect.name == "postgresql" else str
    try:
        with erp.begin() as conn:
            for ddl in ERP_DDL:
                conn.execute(text(ddl))
            conn.execute(text("INSERT INTO charts VALUES (:name, :sizes)"), list(CAT.rows("sizecharts")))
            conn.execute(text("INSERT INTO art VALUES (:product_number, :name, :a)"),
                         [{**r, "a": int(r["status"] == "ACTIVE")} for r in CAT.rows("products")])
            conn.execute(text("INSERT INTO art_var VALUES (:variant_number, :product_number, :name, :size_chart)"),
                         list(CAT.rows("variants")))
            conn.execute(text("INSERT INTO art_size VALUES (:variant_number, :size, :ean, :size_number)"),
                         list(CAT.rows("sizes")))
            conn.execute(text("INSERT INTO plists VALUES (:code, :name, :currency)"), list(CAT.rows("pricelists")))
            conn.execute(text("INSERT INTO plist_price VALUES (:pricelist, :product_number, :v, :price)"),
                         [{**r, "v": r["variant_number"] or None, "price": money(r["price"])}
                          for r in CAT.rows("prices")])
            conn.execute(text("INSERT INTO inventory VALUES (:warehouse, :ean, :quantity)"), list(CAT.rows("stock")))
            # two bad rows in the ERP: a NULL quantity, a barcode no size has
            conn.execute(text("INSERT INTO inventory VALUES ('WH-XX', '7300000000011', NULL)"))
            conn.execute(text("INSERT INTO inventory VALUES ('WH-EU', '4000000000006', 3)"))
    finally:
        erp.dispose()


def _expected(entity: str) -> int:
    return sum(1 for _ in CAT.rows(entity))


def _check_loaded(engine: Engine, source: SqlSource, loader: StagingLoader) -> None:
    report = source.import_all(loader)  # snapshot by default
    got = {e.entity: (e.loaded, e.rejected) for e in report.entities}
    assert got == {
        "sizechart": (2, 0), "product": (12, 0), "variant": (24, 0), "size": (72, 0), "pricelist": (3, 0),
        "price": (_expected("prices"), 0), "stock": (_expected("stock"), 2),
    }
    problems = [str(p) for p in report.entities[-1].problems]
    assert len(problems) == 2
    assert any(p.startswith("sql:stock:") and "missing quantity" in p for p in problems)
    assert any("unknown EAN '4000000000006'" in p for p in problems)
    with Session(engine) as s:
        price = s.get(StagingPrice, ("PL-EUR", "P000003", ""))
        assert price is not None and price.price == Decimal("34.95")
        n = s.execute(select(func.count()).select_from(StagingStock)).scalar_one()
        assert n == _expected("stock")
        assert len(list(desired(s, "product"))) == 12
    # re-reading the same ERP state changes nothing and marks nothing removed
    again = source.import_all(loader)
    assert all(e.removed == 0 for e in again.entities)


def test_sqlite_file_as_erp(engine: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _fill_erp(url)
    source = SqlSource(url, QUERIES, chunk_size=7)  # many chunks
    _check_loaded(engine, source, StagingLoader(engine))


@pytest.mark.postgres
def test_postgresql_schema_as_erp(engine: Engine, pg_url: str) -> None:
    _fill_erp(pg_url)
    source = SqlSource(pg_url, QUERIES, chunk_size=50)
    _check_loaded(engine, source, StagingLoader(engine))


def test_snapshot_from_sql_marks_rows_gone_from_the_view(engine: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _fill_erp(url)
    loader = StagingLoader(engine)
    SqlSource(url, QUERIES).import_all(loader)
    erp = create_engine(url)
    with erp.begin() as conn:
        conn.execute(text("DELETE FROM inventory WHERE whs = 'WH-US'"))
    erp.dispose()
    report = SqlSource(url, {"stock": QUERIES["stock"]}).import_all(loader)
    assert report.entities[0].removed == 72
    incremental = SqlSource(url, {"stock": QUERIES["stock"]}).import_all(loader, mode="incremental")
    assert incremental.entities[0].removed == 0


def test_failures_are_classified_and_leave_staging_untouched(engine: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _fill_erp(url)
    loader = StagingLoader(engine)
    with pytest.raises(JobFailed, match=r"erp.sql.queries.stock failed: .*no such table"):
        SqlSource(url, {"stock": "SELECT * FROM v_nope"}).import_all(loader)
    with pytest.raises(SourceUnavailable, match="unreachable"):
        SqlSource("postgresql://erp:s3cret@127.0.0.1:1/erp", QUERIES).import_all(loader)
    with pytest.raises(JobFailed, match="unknown entity"):
        SqlSource(url, {"orders": "SELECT 1"})
    with pytest.raises(JobFailed, match="not configured"):
        SqlSource("", QUERIES)
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(StagingStock)).scalar_one() == 0


def test_unreachable_source_message_hides_the_password(engine: Engine) -> None:
    with pytest.raises(SourceUnavailable) as info:
        SqlSource("postgresql://erp:s3cret@127.0.0.1:1/erp", QUERIES).import_all(StagingLoader(engine))
    assert "s3cret" not in str(info.value)


def test_scheduled_sql_import_job(engine: Engine, tmp_path: Path) -> None:
    from erpsync.clock import FakeClock
    from erpsync.config import ErpSqlSettings
    from erpsync.erp.job import SqlImportJob

    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _fill_erp(url)
    job = SqlImportJob(engine, ErpSqlSettings(url=url, chunk_size=10, queries=QUERIES), clock=FakeClock())
    result = job.run()
    assert result.outcome == "ok"
    assert result.counts["stock_loaded"] == _expected("stock") and result.counts["stock_rejected"] == 2
    assert result.counts["product_loaded"] == 12 and result.counts["stock_removed"] == 0
    down = SqlImportJob(engine, ErpSqlSettings(url="postgresql://erp@127.0.0.1:1/erp", queries=QUERIES),
                        clock=FakeClock())
    assert down.run().outcome == "retry"
    stopping = SqlImportJob(engine, ErpSqlSettings(url=url, queries=QUERIES), clock=FakeClock())
    stopping.stop_event.set()
    stopped = stopping.run()
    assert stopped.outcome == "stopped" and stopped.counts == {}
