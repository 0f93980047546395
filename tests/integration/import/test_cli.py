"""``erpsync sample | import | plan | resync`` as an operator runs them: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from erpsync.outbound.changes import pending
from erpsync.sample import EXAMPLES_DIR
from erpsync.store.engine import make_engine, transaction
from erpsync.store.models import OutboundItem

ROOT = Path(__file__).parents[3]


def erpsync(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    return subprocess.run([sys.executable, "-m", "erpsync", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "erpsync.db"
    erp = tmp_path / "erp.db"
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra.soap]
url = "http://127.0.0.1:9/soap"
username = "erp"
[centra.graphql]
url = "http://127.0.0.1:9/graphql"
[database]
url = "sqlite:///{db}"
busy_timeout_ms = 300
[logging]
level = "WARNING"
[quota]
tier = "growth"
share = 0.5
[push]
stock_batch_size = 1000
[erp.sql]
url = "sqlite:///{erp}"
chunk_size = 3
[erp.sql.queries]
products = "SELECT artno AS product_number, descr AS name FROM art"
""", encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(erp)
    con.execute("CREATE TABLE art (artno TEXT, descr TEXT)")
    con.executemany("INSERT INTO art VALUES (?, ?)", [("P000001", "Renamed in the ERP"), ("P000002", None)])
    con.commit()
    con.close()
    return tmp_path, str(cfg)


def test_generate_import_plan_resync(setup: tuple[Path, str]) -> None:
    tmp, cfg = setup
    r = erpsync("sample", "generate", str(tmp / "cat"), "--products", "20")
    assert r.returncode == 0, r.stderr
    assert (tmp / "cat" / "stock.csv").read_text().count("\n") == 1 + 20 * 3 * 5 * 3

    r = erpsync("import", str(tmp / "cat"), "--snapshot", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "stock: 900 loaded, 0 rejected, 0 marked removed" in r.stdout
    assert "product: 20 loaded" in r.stdout

    bad = tmp / "stock-fix.csv"
    bad.write_text("warehouse,ean,quantity\nWH-MAIN,7300000000011,7\nWH-MAIN,7300000000028,seven\n")
    r = erpsync("import", str(bad), "--config", cfg)
    assert r.returncode == 65, r.stderr
    assert "stock: 1 loaded, 1 rejected" in r.stdout
    assert f"{bad}:3: bad number in quantity: 'seven'" in r.stdout

    r = erpsync("plan", "--json", "--config", cfg)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["entities"]["stock"]["changed"] == 900 and p["entities"]["stock"]["mutations"] == 3
    assert p["entities"]["product"]["operations"] == {"create": 20}
    assert p["mutations_per_second"] == pytest.approx(1800 / 3600 * 0.5)
    # the ETA follows the buckets from full (erpsync.outbound.changes.plan): never slower than the hour's rate
    assert 0 < p["seconds"] <= p["mutations"] / 0.25

    r = erpsync("plan", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "total:" in r.stdout and "mutations/s" in r.stdout

    engine = make_engine(f"sqlite:///{tmp / 'erpsync.db'}")
    try:
        from erpsync.outbound.changes import record_accepted

        with transaction(engine) as s:
            record_accepted(s, list(pending(s, "stock")), now=datetime.now(UTC))
        r = erpsync("resync", "stock", "--ids", "WH-MAIN|7300000000011,WH-EU|7300000000011", "--config", cfg)
        assert r.returncode == 0, r.stderr
        assert "stock: 2 item(s) will be re-sent" in r.stdout
        with transaction(engine) as s:
            assert sorted(i.erp_key for i in pending(s, "stock")) == ["WH-EU|7300000000011", "WH-MAIN|7300000000011"]
            assert s.execute(select(func.count()).select_from(OutboundItem)).scalar_one() == 900

        r = erpsync("import", "--from-sql", "--incremental", "--config", cfg)
        assert r.returncode == 65, r.stderr
        assert "product: 1 loaded, 1 rejected" in r.stdout
        assert "sql:product:2: missing name" in r.stdout
    finally:
        engine.dispose()


def test_usage_errors(setup: tuple[Path, str]) -> None:
    tmp, cfg = setup
    r = erpsync("import", "--config", cfg)
    assert r.returncode == 2 and "give PATH" in r.stderr
    (tmp / "export.csv").write_text("a\n1\n")
    r = erpsync("import", str(tmp / "export.csv"), "--config", cfg)
    assert r.returncode == 2 and "cannot tell the entity" in r.stderr
    r = erpsync("sample", "path")
    assert r.returncode == 0 and Path(r.stdout.strip(), "products.csv").is_file()


def test_plan_reads_without_taking_the_sqlite_write_lock(setup: tuple[Path, str]) -> None:
    tmp, cfg = setup
    assert erpsync("import", str(EXAMPLES_DIR), "--config", cfg).returncode == 0
    writer = sqlite3.connect(tmp / "erpsync.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the daemon in the middle of a write
        r = erpsync("plan", "--json", "--config", cfg)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["entities"]["stock"]["items"] == 72
        blocked = erpsync("import", str(EXAMPLES_DIR / "stock.csv"), "--config", cfg)
        assert blocked.returncode != 0 and "locked" in blocked.stderr  # writers do wait for it
    finally:
        writer.execute("ROLLBACK")
        writer.close()
