"""A snapshot import writes only the staging rows whose values changed (and marks absent ones).

Writes are counted by triggers on every staging table, so the test sees what the database did,
not what the loader says it did."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine, text

from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.store.staging import STAGING_TABLES


def _count_writes(engine: Engine) -> None:
    """Every INSERT or UPDATE of a staging row adds a row to ``staging_writes``."""
    tables = [m.__table__.name for m in STAGING_TABLES.values()]  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE staging_writes (tbl VARCHAR(64) NOT NULL)"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$ "
                              "BEGIN INSERT INTO staging_writes VALUES (TG_TABLE_NAME); RETURN NULL; END $$"))
            for t in tables:
                conn.execute(text(f"CREATE TRIGGER w_{t} AFTER INSERT OR UPDATE ON {t} "
                                  "FOR EACH ROW EXECUTE FUNCTION count_write()"))
        else:
            for t in tables:
                for op in ("INSERT", "UPDATE"):
                    conn.execute(text(f"CREATE TRIGGER w_{t}_{op} AFTER {op} ON {t} "
                                      f"BEGIN INSERT INTO staging_writes VALUES ('{t}'); END"))


def _writes(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        out = {t: n for t, n in conn.execute(text("SELECT tbl, count(*) FROM staging_writes GROUP BY tbl"))}
        conn.execute(text("DELETE FROM staging_writes"))
    return out


def test_a_snapshot_import_writes_only_what_changed(
    engine: Engine, loader: StagingLoader, examples: Path, tmp_path: Path,
) -> None:
    _count_writes(engine)
    first = import_files(loader, [examples], mode="snapshot")
    assert sum(e.written for e in first.entities) == sum(e.loaded for e in first.entities) > 0
    assert sum(_writes(engine).values()) == sum(e.loaded for e in first.entities)

    # the same snapshot again: not one staging row is written
    again = import_files(loader, [examples], mode="snapshot")
    assert [e.error for e in again.entities] == [None] * len(again.entities)
    assert _writes(engine) == {}
    assert {e.entity: e.written for e in again.entities} == {e.entity: 0 for e in again.entities}

    # 10 % of the stock levels change and one row disappears: exactly those rows are written
    copy = tmp_path / "erp"
    shutil.copytree(examples, copy, ignore=shutil.ignore_patterns("*.py", "jsonl", "__pycache__"))
    lines = (copy / "stock.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    changed = 0
    for i in range(0, len(rows) - 1, 10):
        wh, ean, qty = rows[i].split(",")
        rows[i] = f"{wh},{ean},{int(qty) + 7}"
        changed += 1
    del rows[-1]
    (copy / "stock.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    third = import_files(loader, [copy], mode="snapshot")
    stock = next(e for e in third.entities if e.entity == "stock")
    assert stock.removed == 1 and stock.written == changed + 1
    assert _writes(engine) == {"staging_stock": changed + 1}

    # the removed row comes back: one write, and it is no longer marked removed
    fourth = import_files(loader, [examples], mode="snapshot")
    assert _writes(engine) == {"staging_stock": changed + 1}
    assert next(e for e in fourth.entities if e.entity == "stock").removed == 0
