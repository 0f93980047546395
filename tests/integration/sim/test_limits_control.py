"""Centra lowering the limits at runtime, driven over /_sim/limits (also for a simulator in another process)."""

from __future__ import annotations

import requests

from erpsync.sim.control import SimControl
from erpsync.sim.server import SimServer

RATE_LIMITS = {"query": "{ rateLimits { type intervalSeconds quota usedQuota remainingQuota } }"}


def _quota(sim: SimServer, type_: str, interval: str) -> int:
    reply = requests.post(sim.graphql_url, json=RATE_LIMITS, timeout=10,
                          headers={"Authorization": f"Bearer {sim.token}"})
    rows = reply.json()["data"]["rateLimits"]
    return int(next(r["quota"] for r in rows if r["type"] == type_ and r["intervalSeconds"] == interval))


def test_limits_lowered_over_http_show_in_rate_limits_and_reset_restores(sim: SimServer) -> None:
    assert _quota(sim, "MUTATION_COUNT", "ONE_HOUR") == 1800
    with SimControl(sim.base_url) as control:
        quota = control.set_limits({"MUTATION_COUNT:ONE_HOUR": 900})
        assert quota["limits"]["MUTATION_COUNT:ONE_HOUR"] == 900
        assert _quota(sim, "MUTATION_COUNT", "ONE_HOUR") == 900
        bad = requests.post(f"{sim.base_url}/_sim/limits", json={"limits": {"NOPE": 1}}, timeout=10)
        assert bad.status_code == 400
        control.reset()
    assert _quota(sim, "MUTATION_COUNT", "ONE_HOUR") == 1800
