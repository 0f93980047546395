"""One quota figure everywhere: STATUS=, ``job.finished``'s ``quota_left_pct``, ``erpsync status``
(text and ``--json``) and ``/metrics`` show the governor's view of erpsync's share, topped up to now,
and agree at one instant (injected clock). Before, STATUS/status/metrics showed the stored tokens as
of their last update over the full capacity."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import generate_latest
from sqlalchemy import Engine, update

from erpsync.app import build_app
from erpsync.clock import FakeClock
from erpsync.daemon.leader import AlwaysLeader
from erpsync.daemon.status import collect_status, render_status
from erpsync.graphql.quota import QuotaGovernor
from erpsync.store.engine import transaction
from erpsync.store.models import QuotaBucket
from erpsync.store.quota_repo import SqlQuotaStore
from tests.unit.daemon.test_bootstrap import FakePort, FakeSource, settings


def test_status_line_summary_status_json_and_metrics_show_the_same_figure(tmp_path: Path, engine: Engine) -> None:
    clock = FakeClock()
    cfg = settings(tmp_path)
    assert cfg.quota.share == 0.8 and cfg.quota.tier == "growth"  # mutations_1h: 1,800 → 1,440 for erpsync
    governor = QuotaGovernor.from_settings(cfg.quota, clock=clock, store=SqlQuotaStore(engine))
    governor.snapshot()  # first use: the rows exist, every allowance full
    # erpsync spent mutations down to 100 tokens ten minutes ago; the refill (1,440 / h) has run since
    with transaction(engine) as s:
        s.exec(update(QuotaBucket).where(QuotaBucket.name == "mutations_1h").values(  # type: ignore[call-overload, arg-type]
            tokens=100.0, updated_at=clock.time() - 600))
    expected = round(100 * (100 + 600 * 1440 / 3600) / 1440, 1)  # 23.6 (the stored figure said 100/1800 = 5.6)
    assert expected == 23.6

    app = build_app(cfg, engine=engine, clock=clock, leadership=AlwaysLeader(), environ={},
                    soap=FakeSource(), graphql=FakePort(), governor=governor)
    try:
        summary = app.jobs["pull"].summary_fields()["quota_left_pct"]  # job.finished
        app.daemon._write_instance()
        status_line = app.daemon.status_text()  # STATUS=
        st = collect_status(engine, clock.now(), ["pull"], quota_share=cfg.quota.share)
        as_json = json.loads(json.dumps(st))  # erpsync status --json
        text = render_status(st)  # erpsync status
        metrics = generate_latest(app.daemon.metrics.registry).decode()  # /metrics
    finally:
        app.close()

    assert summary == expected
    assert f"quota {expected:g} % left" in status_line
    assert as_json["quota_left_pct"] == expected
    assert as_json["quota"]["mutations_1h"] == {"remaining": 340.0, "capacity": 1800.0, "allowance": 1440.0,
                                               "left_pct": expected}
    assert f"quota: {expected:g} % left;" in text
    assert f"erpsync_quota_left_pct {expected}" in metrics
    assert 'erpsync_quota_remaining{bucket="mutations_1h"} 340.0' in metrics
    assert 'erpsync_quota_allowance{bucket="mutations_1h"} 1440.0' in metrics

    # a minute later every channel moves together (24 more tokens)
    clock.advance(60)
    later = collect_status(engine, clock.now(), ["pull"], quota_share=cfg.quota.share)["quota_left_pct"]
    assert later == round(100 * 364 / 1440, 1)
    assert app.jobs["pull"].summary_fields()["quota_left_pct"] == later
