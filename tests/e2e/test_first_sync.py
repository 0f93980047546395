"""A first sync finishes: ``erpsync run`` on a time-scaled simulator at Growth, from an empty Centra,
until Centra equals the ERP — with stock and price runs far more frequent than the catalogue push,
so rows wait for their products for many more runs than ``push.max_attempts``, and none is parked."""

from __future__ import annotations

from pathlib import Path

from erpsync.sample import Catalogue
from erpsync.store.engine import make_engine
from tests.integration.daemon.procs import prepare_db
from tests.integration.daemon.scenario import ScaledSim, load_sample, run_until_synced, start_daemon

FREQUENT = """
[push]
stock_interval_seconds = 10.0
prices_interval_seconds = 15.0
max_attempts = 2
"""


def test_first_sync_from_an_empty_centra_finishes_with_nothing_parked(tmp_path: Path, sqlite_url: str) -> None:
    prepare_db(sqlite_url)
    load_sample(sqlite_url, tmp_path / "erp", Catalogue(products=120))
    sim = ScaledSim(40.0)
    engine = make_engine(sqlite_url)
    daemon = None
    try:
        daemon = start_daemon(tmp_path, sim, sqlite_url, extra=FREQUENT)
        result = run_until_synced(sim, daemon, engine, timeout_real=90)
        waited = [e for e in daemon.events() if e.get("event") == "job.finished" and e.get("job") == "push_stock"
                  and e.get("waiting", 0) > 0]
        assert len(waited) > 2  # more waiting runs than max_attempts: without spending them
        assert result.differences == [] and result.parked == {}
        assert all(not d for d in result.duplicates.values())
        assert not [e for e in daemon.events() if e.get("event") == "push.item_parked"]
        assert any(e.get("event") == "daemon.time_scaled" for e in daemon.events())
    finally:
        if daemon is not None:
            daemon.p.terminate()
            daemon.wait(30)
        sim.stop()
        engine.dispose()
