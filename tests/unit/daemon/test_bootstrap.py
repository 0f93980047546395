"""The composition root builds every job from settings without connecting anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import SQLModel

from erpsync.app import ALL_JOBS, UnknownJob, _changed_keys, build_app, triggers
from erpsync.config import Settings
from erpsync.daemon.leader import AlreadyRunning, AlwaysLeader
from erpsync.demo.verify import differences
from erpsync.store.engine import make_engine, transaction
from erpsync.store.staging import StagingPrice, StagingPricelist, StagingProduct, StagingStock, StagingVariant


def settings(tmp_path: Path, **daemon: Any) -> Settings:
    return Settings.model_validate({
        "centra": {"soap": {"url": "http://127.0.0.1:9/soap", "username": "u", "password": "pw-123"},
                   "graphql": {"url": "http://127.0.0.1:9/graphql", "token": "tok-123"}},
        "paths": {"state_dir": str(tmp_path)},
        "pull": {"interval_seconds": 42},
        "daemon": {"metrics_port": 0, **daemon},
    })


class FakeSource:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def fetch(self) -> list[Any]:
        self.calls.append("fetch")
        return []

    def ack(self, ids: list[str]) -> None:
        self.calls.append("ack")


class FakePort:
    def __init__(self) -> None:
        self.client = self
        self.calls: list[str] = []

    def query(self, *_a: Any, **_k: Any) -> Any:
        self.calls.append("query")
        return {}

    def mutate(self, *_a: Any, **_k: Any) -> Any:
        self.calls.append("mutate")
        return {}

    def rate_limits(self, *, reseed: bool = True) -> list[Any]:
        self.calls.append("rate_limits")
        return []


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def test_build_app_wires_every_job_without_io(tmp_path: Path, engine: Engine) -> None:
    source, port = FakeSource(), FakePort()
    app = build_app(settings(tmp_path), engine=engine, leadership=AlwaysLeader(), environ={},
                    soap=source, graphql=port)
    try:
        assert list(app.jobs) == list(ALL_JOBS)
        assert source.calls == [] and port.calls == []  # built, nothing called
        assert app.jobs["pull"].source is source
        assert app.jobs["push_stock"].centra is port and app.jobs["push_prices"].centra is port
        assert app.jobs["quota_refresh"].client is port
        assert app.daemon.metrics_address is None  # port 0: no listener
        specs = app.daemon.specs
        assert specs["pull"].trigger.interval == timedelta(seconds=42)
        assert isinstance(specs["housekeeping"].trigger, CronTrigger) and not specs["housekeeping"].run_at_start
        assert specs["push_stock"].entity == "stock" and specs["push_products"].entity == "product"
        stop = app.daemon.stop_event
        assert all(job.stop_event is stop for job in app.jobs.values())
    finally:
        app.close()


def test_every_summary_line_carries_quota_left(tmp_path: Path, engine: Engine) -> None:
    from erpsync.graphql.quota import BucketView

    class FakeGovernor:
        def snapshot(self) -> tuple[list[BucketView], dict[str, float]]:
            return [BucketView("requests_1h", 1000, 800.0, 200.0, 0.2),
                    BucketView("mutations_1h", 100, 80.0, 60.0, 0.02)], {}

    app = build_app(settings(tmp_path), engine=engine, leadership=AlwaysLeader(), environ={},
                    soap=FakeSource(), graphql=FakePort(), governor=FakeGovernor())
    try:
        assert app.jobs["pull"].summary_fields()["quota_left_pct"] == 25.0
        fields = app.jobs["push_stock"].summary_fields()
        assert fields["quota_left_pct"] == 25.0 and "retries" in fields  # the job's own fields stay
    finally:
        app.close()


def test_import_sql_is_scheduled_only_when_the_erp_database_is_configured(tmp_path: Path, engine: Engine) -> None:
    from erpsync.errors import ConfigError

    with pytest.raises(ConfigError, match=r"erp\.sql\.url"):
        build_app(settings(tmp_path), jobs=["import_sql"], engine=engine, leadership=AlwaysLeader())
    s = Settings.model_validate({**settings(tmp_path).model_dump(mode="json", exclude={"centra"}),
                                 "centra": settings(tmp_path).centra,
                                 "erp": {"sql": {"url": f"sqlite:///{tmp_path / 'erp.db'}", "interval_seconds": 120,
                                                 "queries": {"product": "SELECT 1"}}}})
    app = build_app(s, engine=engine, leadership=AlwaysLeader(), environ={}, soap=FakeSource(), graphql=FakePort())
    try:
        assert list(app.jobs)[-1] == "import_sql"
        assert app.daemon.specs["import_sql"].trigger.interval == timedelta(seconds=120)
    finally:
        app.close()


def test_unknown_job_is_refused(tmp_path: Path, engine: Engine) -> None:
    with pytest.raises(UnknownJob, match="unknown job"):
        build_app(settings(tmp_path), jobs=["pul"], engine=engine, leadership=AlwaysLeader())


def test_sqlite_second_app_on_the_same_database_is_refused(tmp_path: Path, engine: Engine) -> None:
    s = settings(tmp_path)
    first = build_app(s, jobs=["housekeeping"], engine=engine, environ={})
    try:
        with pytest.raises(AlreadyRunning):
            build_app(s, jobs=["housekeeping"], engine=engine, environ={})
    finally:
        first.close()
    again = build_app(s, jobs=["housekeeping"], engine=engine, environ={})
    again.close()


def test_triggers_follow_the_config(tmp_path: Path) -> None:
    t = triggers(settings(tmp_path, housekeeping_cron="5 4 * * *", quota_refresh_seconds=77))
    assert isinstance(t["quota_refresh"], IntervalTrigger) and t["quota_refresh"].interval == timedelta(seconds=77)
    assert "hour='4'" in str(t["housekeeping"]) and "minute='5'" in str(t["housekeeping"])


def test_changed_keys_for_reload() -> None:
    a = {"pull": {"interval_seconds": 60}, "centra": {"soap": {"url": "x"}}, "logging": {"level": "INFO"}}
    b = {"pull": {"interval_seconds": 30}, "centra": {"soap": {"url": "y"}}, "logging": {"level": "INFO"}}
    assert _changed_keys(a, b) == ["centra.soap.url", "pull.interval_seconds"]


def test_differences_between_centra_and_the_erp(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add(StagingProduct(product_number="P1", name="Shirt"))
        s.add(StagingVariant(variant_number="V1", product_number="P1", name="Black"))
        s.add(StagingPricelist(code="PL-SEK", name="SE", currency="SEK"))
        s.add(StagingPrice(pricelist="PL-SEK", product_number="P1", price=Decimal("199.00")))
        s.add(StagingStock(warehouse="01", ean="7300000000017", quantity=5))
    centra: dict[str, Any] = {
        "stock": [{"warehouse": "WH-MAIN", "EAN": "7300000000017", "quantity": 5}],
        "prices": [{"pricelist": "PL-SEK", "externalId": "prd_P1", "price": "199.0"}],
        "externalIds": {"product": {"prd_P1": 1}, "variant": {"var_V1": 2}, "pricelist": {"PL-SEK": 3}},
    }
    assert differences(engine, centra, warehouses={"01": "WH-MAIN"}) == []
    centra["stock"][0]["quantity"] = 4
    centra["prices"][0]["price"] = "189.00"
    centra["externalIds"]["variant"] = {}
    assert differences(engine, centra, warehouses={"01": "WH-MAIN"}) == [
        "stock WH-MAIN/7300000000017: ERP 5, Centra 4",
        "price PL-SEK/prd_P1: ERP 199.00, Centra 189.00",
        "variant var_V1: in the ERP, absent from Centra",
    ]


def test_differences_read_a_float_price_exactly(engine: Engine) -> None:
    # Centra's MonetaryValue.value is a GraphQL Float: 199.99 read back as a float is the ERP's
    # 199.99 (its shortest repr), not Decimal(199.99) = 199.9899999999999948840923025272786617279052734375
    with transaction(engine) as s:
        s.add(StagingPricelist(code="PL-SEK", name="SE", currency="SEK"))
        s.add(StagingPrice(pricelist="PL-SEK", product_number="P1", price=Decimal("199.99")))
    centra: dict[str, Any] = {
        "prices": [{"pricelist": "PL-SEK", "externalId": "prd_P1", "price": 199.99}],
        "externalIds": {"pricelist": {"PL-SEK": 3}},
    }
    assert differences(engine, centra) == []
