"""``erpsync run`` as systemd runs it: NOTIFY_SOCKET/WATCHDOG_USEC in the environment, SIGHUP reload."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.integration.daemon.helpers import NotifySocket
from tests.integration.daemon.procs import Proc, base_env, prepare_db, write_config


def test_notify_protocol_and_sighup_reload(tmp_path: Path, sqlite_url: str) -> None:
    prepare_db(sqlite_url)
    sock = NotifySocket(tmp_path / "notify.sock")
    config = write_config(tmp_path / "erpsync.toml")
    env = base_env(sqlite_url, NOTIFY_SOCKET=str(sock.path), WATCHDOG_USEC="2000000")
    p = Proc(["--config", str(config), "run", "--only", "housekeeping"], env)
    try:
        p.wait_event("daemon.started", timeout=30)
        deadline = time.monotonic() + 10
        while sum(1 for m in sock.drain() if m.get("WATCHDOG") == "1") < 2:
            assert time.monotonic() < deadline, sock.messages
            time.sleep(0.1)
        ready = next(m for m in sock.messages if m.get("READY") == "1")
        assert ready["MAINPID"] == str(p.p.pid) and ready["STATUS"].startswith("single: pulled 0 events")

        # SIGHUP: a new cron applies live; a changed URL is reported as needing a restart
        text = config.read_text()
        text = text.replace('url = "http://127.0.0.1:9/soap"', 'url = "http://127.0.0.1:9/x"')
        config.write_text(text.replace("[daemon]\n", '[daemon]\nhousekeeping_cron = "1 2 * * *"\n'))
        p.p.send_signal(signal.SIGHUP)
        reloaded = p.wait_event("daemon.reloaded", timeout=10)
        assert reloaded["rescheduled"] == ["housekeeping"]
        restart = p.wait_event("daemon.reload_needs_restart", timeout=10)
        assert restart["keys"] == ["centra.soap.url"]

        # a broken config on reload is refused; the daemon keeps running
        config.write_text(config.read_text() + "\nnot valid toml [[[\n")
        p.p.send_signal(signal.SIGHUP)
        p.wait_event("daemon.reload_failed", timeout=10)
        assert p.p.poll() is None

        p.p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
        assert sock.drain()[-1].get("STOPPING") == "1"
    finally:
        p.kill()
        sock.close()
