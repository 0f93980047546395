"""JSON columns are written by ``store.engine.json_text`` (orjson, with the json module as the
fallback): every value the json module could store still stores and reads back equal, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, select

from erpsync.store.engine import json_text, transaction
from erpsync.store.inbox import table_of
from erpsync.store.models import JobRun

VALUES: list[Any] = [
    {"order": {"products": {"product": [{"qty": "2", "price": "10.43100", "note": "åäö \"q\" \\ \n\t"}]}}},
    {"big": 2**70, "negative": -(2**64)},  # orjson refuses integers beyond 64 bits: json writes them
    {"1": "numeric-looking key", "empty": {}, "list": [], "none": None, "flag": True, "float": 0.1},
]


@pytest.mark.parametrize("value", VALUES, ids=["payload", "huge-ints", "plain"])
def test_json_text_is_json_the_json_module_reads_back_equal(value: Any) -> None:
    assert json.loads(json_text(value)) == value


def test_json_text_falls_back_for_keys_orjson_refuses() -> None:
    assert json.loads(json_text({1: "int key"})) == {"1": "int key"}  # what json.dumps does


@pytest.mark.parametrize("value", VALUES, ids=["payload", "huge-ints", "plain"])
def test_a_json_column_round_trips(engine: Engine, value: Any) -> None:
    t = table_of(JobRun)
    with transaction(engine) as s:
        s.connection().execute(t.insert(), [{"run_id": "r1", "job": "pull", "outcome": "ok", "counts": value}])
    with engine.connect() as conn:
        assert conn.execute(select(t.c.counts).where(t.c.run_id == "r1")).scalar_one() == value
