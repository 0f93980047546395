"""`erpsync run` with both event sources and the webhook listener, against `erpsync sim` sending
signed webhooks: with a pull interval of an hour, new orders still arrive within seconds, each
event stored once per queue and each order version applied once; SIGTERM exits 0; the webhook
secret never appears in the output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from erpsync.store.engine import make_engine
from erpsync.store.models import CentraOrder, InboxEvent
from tests.integration.daemon.procs import (
    ROOT,
    SIM_SECRETS,
    Proc,
    SimProc,
    base_env,
    free_port,
    prepare_db,
    write_config,
)

SECRET = "whsec-e2e-51f0"
EXTRA = """
[pull]
interval_seconds = 3600.0
[centra.events]
source = "both"
interval_seconds = 3600.0
[centra.webhook]
port = {port}
"""


def test_webhook_brings_both_pulls_forward(tmp_path: Path, sqlite_url: str) -> None:
    hook_port = free_port()
    sim = SimProc("--webhook-url", f"http://127.0.0.1:{hook_port}/centra/webhook", "--webhook-secret", SECRET)
    daemon: Proc | None = None
    try:
        prepare_db(sqlite_url)
        config = write_config(tmp_path / "erpsync.toml", soap_url=sim.soap_url, graphql_url=sim.graphql_url,
                              extra=EXTRA.format(port=hook_port))
        env = base_env(sqlite_url, **SIM_SECRETS, ERPSYNC_CENTRA_WEBHOOK_SECRET=SECRET)
        daemon = Proc(["--config", str(config), "run", "--only", "pull", "--only", "pull_graphql"], env)
        daemon.wait_event("webhook.listening", timeout=30)
        daemon.wait_event("job.finished", timeout=30, job="pull_graphql")  # at start: listeners set
        daemon.wait_event("job.finished", timeout=30, job="pull")
        sim.generate(40)  # the hourly pulls have run; only the webhook can bring these in now
        engine = make_engine(sqlite_url)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                state = sim.get("/_sim/state")
                if state["soap"]["queue_depth"] == 0 and state["graphql"]["events"]["depth"] == 0:
                    break
                time.sleep(0.2)
            state = sim.get("/_sim/state")
            assert state["soap"]["queue_depth"] == 0 and state["graphql"]["events"]["depth"] == 0, state["soap"]
            with Session(engine) as s:
                orders = {r[0] for r in s.exec(select(CentraOrder.centra_id)).all()}  # type: ignore[call-overload]
                stored = s.exec(select(func.count()).select_from(InboxEvent)).one()[0]  # type: ignore[call-overload]
        finally:
            engine.dispose()
        assert orders and stored == 40 + state["graphql"]["events"]["emitted"]
        assert state["webhooks"]["statuses"].get("204", 0) >= 1
        assert any(e.get("event") == "webhook.accepted" for e in daemon.events())
        daemon.p.send_signal(signal.SIGTERM)
        assert daemon.wait(40) == 0
        out = "\n".join(daemon.lines)
        assert SECRET not in out
        stats = subprocess.run([sys.executable, "-m", "erpsync", "--config", str(config), "events", "stats",
                                "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        rows = json.loads(stats.stdout)["rows"]
        assert {r["source"] for r in rows} == {"soap", "graphql"}
        # the GraphQL queue brought versions SOAP had already applied: superseded, never applied twice
        assert any(r["source"] == "graphql" and r["status"] == "superseded" for r in rows)
    finally:
        if daemon is not None:
            daemon.kill()
        sim.stop()
