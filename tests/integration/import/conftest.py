from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from erpsync.clock import FakeClock
from erpsync.erp.loader import StagingLoader
from erpsync.sample import EXAMPLES_DIR


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def loader(engine: Engine, clock: FakeClock) -> StagingLoader:
    return StagingLoader(engine, clock=clock)


@pytest.fixture
def examples() -> Path:
    """The committed example files (4 products × 2 variants × 3 sizes, 3 pricelists, 3 warehouses)."""
    return EXAMPLES_DIR


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
