"""Import edge cases: an oversized CSV field rejects its row (not the file), a ``.json`` array
loads, a missing file is named as missing, and ``parked retry`` re-imports parked import rows from
the raw row kept with them (or says why it cannot)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from erpsync.erp.files import import_files, plan_files
from erpsync.erp.loader import StagingLoader
from erpsync.erp.readers import ImportFileError
from erpsync.store.engine import make_engine
from erpsync.store.models import ParkedItem
from erpsync.store.staging import StagingProduct, StagingVariant

Write = Callable[[str, str], Path]
ROOT = Path(__file__).parents[3]


def _products(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {p.product_number: p.name for p in s.exec(select(StagingProduct)).scalars()}  # type: ignore[call-overload]


def test_an_oversized_csv_field_rejects_its_row_not_the_file(engine: Engine, loader: StagingLoader,
                                                             write: Write) -> None:
    huge = "x" * 200_000
    multi = "a\n" * 75_000  # 150,000 bytes over 75,001 lines, quoted: the next row must still be found
    path = write("products.csv", f'product_number,name\nP1,One\nP2,{huge}\nP3,"{multi}"\nP4,Four\n')
    report = import_files(loader, [path])
    (entity,) = report.entities
    assert entity.error is None, entity.error
    assert [str(p) for p in entity.problems] == [
        f"{path}:3: name: field of 200,000 bytes is longer than the 131,072-byte limit",
        f"{path}:4: name: field of 150,000 bytes is longer than the 131,072-byte limit",
    ]
    assert entity.loaded == 2 and entity.rejected == 2
    assert _products(engine) == {"P1": "One", "P4": "Four"}


def test_a_json_file_holding_an_array_is_read_like_json_lines(engine: Engine, loader: StagingLoader,
                                                              write: Write) -> None:
    path = write("products.json", '\ufeff[\n  {"product_number": "P1", "name": "One"},\n'
                                  '  {"product_number": "P2",\n   "name": "Two"},\n  5,\n'
                                  '  {"product_number": "P3"}\n]\n')
    (entity,) = import_files(loader, [path]).entities
    assert entity.error is None and entity.loaded == 2
    assert [str(p) for p in entity.problems] == [f"{path}:5: expected a JSON object, got int",
                                                 f"{path}:6: missing name"]
    assert _products(engine) == {"P1": "One", "P2": "Two"}
    broken = write("variants.json", '[{"variant_number": "V1"},\n {"variant_number": ]\n')
    (entity,) = import_files(loader, [broken]).entities
    assert entity.error == f"{broken}: invalid JSON at line 2 column 21: Expecting value"


def test_a_missing_file_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file or directory"):
        plan_files([tmp_path / "missing.csv"])
    with pytest.raises(ImportFileError, match="no such file or directory"):
        plan_files([tmp_path / "products.csv"])


def _erpsync(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    return subprocess.run([sys.executable, "-m", "erpsync", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_cli_import_of_a_missing_file_and_parked_retry_reimports_import_rows(tmp_path: Path) -> None:
    db = tmp_path / "erpsync.db"
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra.soap]
url = "http://127.0.0.1:9/soap"
username = "erp"
[centra.graphql]
url = "http://127.0.0.1:9/graphql"
[database]
url = "sqlite:///{db}"
[logging]
level = "WARNING"
""", encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    SQLModel.metadata.create_all(engine)
    try:
        r = _erpsync("import", str(tmp_path / "missing.csv"), "--config", str(cfg))
        assert r.returncode == 2 and f"{tmp_path / 'missing.csv'}: no such file or directory" in r.stderr, r.stderr
        assert "cannot tell the entity" not in r.stderr

        (tmp_path / "sizecharts.csv").write_text("name,sizes\nONE,S|M\n", encoding="utf-8")
        (tmp_path / "variants.csv").write_text(
            "variant_number,product_number,name,size_chart\n"
            "V1,P-LATE,Red,ONE\n"      # 2: its product comes later: re-importable
            "V2,P-LATE,Blue,NOPE\n"    # 3: unknown size chart: still parked after the retry
            ",P-LATE,Green,ONE\n",     # 4: no key: parked by its line, cannot be re-imported
            encoding="utf-8")
        r = _erpsync("import", str(tmp_path / "sizecharts.csv"), str(tmp_path / "variants.csv"), "--config", str(cfg))
        assert r.returncode == 65 and "3 rejected" in r.stdout, r.stdout + r.stderr
        (tmp_path / "products.csv").write_text("product_number,name\nP-LATE,Late\n", encoding="utf-8")
        assert _erpsync("import", str(tmp_path / "products.csv"), "--config", str(cfg)).returncode == 0

        r = _erpsync("parked", "retry", "--all", "--kind", "import", "--config", str(cfg))
        assert r.returncode == 1, r.stdout + r.stderr  # some stay parked
        lines = sorted(r.stdout.splitlines())
        assert len(lines) == 3
        assert lines[0].endswith("import variant:V1: re-imported"), lines
        assert lines[1].endswith(f"import variant:V2: still parked: {tmp_path / 'variants.csv'}:3: "
                                 "unknown size chart 'NOPE'"), lines
        assert lines[2].endswith(f"import variant:{tmp_path / 'variants.csv'}:4: not retried: parked by its line "
                                 "(a duplicate key, or no key): fix the file and import it again"), lines
        with Session(engine) as s:
            variants = {v.variant_number for v in s.exec(select(StagingVariant)).scalars()}  # type: ignore[call-overload]
            parked = {p.key: (p.resolution, p.attempts) for p in s.exec(select(ParkedItem)).scalars()}  # type: ignore[call-overload]
        assert variants == {"V1"}
        assert parked["variant:V1"] == ("applied", 1)  # resolved by the re-import, not merely "retried"
        assert parked["variant:V2"] == (None, 2)  # still open, tried again
        assert parked[f"variant:{tmp_path / 'variants.csv'}:4"] == (None, 1)  # untouched
    finally:
        engine.dispose()


def test_a_field_beyond_what_the_reader_reads_rejects_its_row_too(engine: Engine, loader: StagingLoader,
                                                                  write: Write, monkeypatch: pytest.MonkeyPatch,
                                                                  ) -> None:
    import csv

    from erpsync.erp import readers

    before = csv.field_size_limit()
    monkeypatch.setattr(readers, "_READ_LIMIT", 1_000)
    csv.field_size_limit(1_000)  # the reader gives up on a field this long (64 MiB in production)
    try:
        path = write("products.csv", f"product_number,name\nP1,One\nP2,{'y' * 5_000}\nP3,Three\n")
        (entity,) = import_files(loader, [path]).entities
    finally:
        csv.field_size_limit(before)
    assert entity.error is None
    assert [str(p) for p in entity.problems] == [
        f"{path}:3: a field is longer than 1,000 characters (limit 131,072 bytes)"]
    assert _products(engine) == {"P1": "One", "P3": "Three"}
