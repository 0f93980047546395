"""The simulator's webhook plugin: emitted events are announced by signed POSTs erpsync accepts."""

from __future__ import annotations

import threading

from erpsync.config import load_settings
from erpsync.daemon.webhook import WebhookListener
from tests.fixtures.sim import SimFactory
from tests.integration.daemon.helpers import wait_for


def test_emitted_events_are_announced_by_signed_webhooks(sim_factory: SimFactory) -> None:
    triggers: list[int] = []
    lock = threading.Lock()

    def on_trigger() -> str:
        with lock:
            triggers.append(1)
        return "scheduled"

    listener = WebhookListener("127.0.0.1", 0, "shared-secret", on_trigger)
    listener.start()
    try:
        host, port = listener.address
        sim = sim_factory(webhook_url=f"http://{host}:{port}/centra/webhook", webhook_secret="shared-secret")
        sim.enqueue_event("order", "1207", data={"id": "1207"})
        wait_for(lambda: triggers, 10, "a webhook")
        sim.generate(30)
        wait_for(lambda: sim.webhooks is not None and sim.webhooks.inspect()["pending"] == 0, 10, "sent")
        assert sim.webhooks is not None
        assert sim.webhooks.send("bad_signature") == 401
        assert sim.webhooks.send("stale") == 401
        assert set(sim.state()["webhooks"]["statuses"]) == {"204", "401"}
    finally:
        listener.close()


def test_webhook_secret_is_required_only_with_a_listener(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[centra.soap]\nurl = "http://x/soap"\nusername = "u"\n[centra.graphql]\nurl = "http://x/g"\n')
    env = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "p", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "t"}
    assert load_settings(cfg, env).centra.webhook.port == 0
    from erpsync.errors import ConfigError

    try:
        load_settings(cfg, {**env, "ERPSYNC_CENTRA_WEBHOOK_PORT": "8787"})
    except ConfigError as exc:
        assert [p.key for p in exc.problems] == ["centra.webhook.secret"]
    else:
        raise AssertionError("a listener without its secret was accepted")
    s = load_settings(cfg, {**env, "ERPSYNC_CENTRA_WEBHOOK_PORT": "8787", "ERPSYNC_CENTRA_WEBHOOK_SECRET": "abc"})
    assert s.centra.webhook.secret is not None and s.centra.webhook.secret.get_secret_value() == "abc"
