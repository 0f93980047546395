"""The simulator's webhook plugin (PROTOCOL.md §2.3): signed POSTs to a configured URL.

When events are emitted, a background thread POSTs ``application/x-www-form-urlencoded`` with one
field ``payload=<JSON>`` (Integration-API mode: ``{"events":[{"type","action","date","id"}]}``) and
``X-Centra-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. Events emitted
while a POST is on its way go out together in the next one. Delivery is best-effort like Centra's
(no retries): a failed POST is counted and dropped.

``send(kind)`` sends one now, good or deliberately bad, for tests of the receiving side:
``good``, ``bad_signature``, ``wrong_secret``, ``stale`` (timestamp 10 minutes old), ``future``,
``no_signature``, ``not_form`` (a JSON body), ``oversized`` (``size`` bytes, signed), ``replay``
(the last good body and header again, unchanged).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from erpsync.clock import Clock
from erpsync.logs import get_logger

log = get_logger("erpsync.sim.webhooks")

KINDS = ("good", "bad_signature", "wrong_secret", "stale", "future", "no_signature", "not_form",
         "oversized", "replay")


def _signature(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, url: str, secret: str, clock: Clock, *, timeout: float = 5.0,
                 max_events_per_post: int = 100) -> None:
        self.url = url
        self.secret = secret
        self.clock = clock
        self.timeout = timeout
        self.max_events = max_events_per_post
        self.statuses: Counter[str] = Counter()
        self._pending: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._last: tuple[bytes, dict[str, str]] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ emitting

    def notify(self, type_: str, entry: str, mission: str, date: str) -> None:
        """An event was emitted: announce it (asynchronously)."""
        ident: Any = int(entry) if entry.isdigit() else entry
        self._pending.put({"type": type_, "action": "delete" if mission == "delete" else "update",
                           "date": date, "id": ident})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sim-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_events:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._post_events(batch)
                    return
                batch.append(more)
            self._post_events(batch)

    def _post_events(self, events: list[dict[str, Any]]) -> None:
        self.send("good", events)

    # ------------------------------------------------------------------ one POST

    def body_for(self, events: Iterable[dict[str, Any]]) -> bytes:
        payload = json.dumps({"events": list(events)}, separators=(",", ":"))
        return b"payload=" + quote(payload, safe="").encode()

    def send(self, kind: str = "good", events: list[dict[str, Any]] | None = None, *,
             size: int = 1_000_000) -> int:
        """POST one webhook of ``kind`` now; returns the HTTP status (0: no answer)."""
        if kind not in KINDS:
            raise ValueError(f"unknown webhook kind {kind!r}; kinds: {', '.join(KINDS)}")
        events = events if events is not None else [
            {"type": "order", "action": "update", "date": self.clock.now().isoformat(), "id": 1}]
        t = int(self.clock.time())
        body = self.body_for(events)
        ctype = "application/x-www-form-urlencoded"
        secret = self.secret
        if kind == "stale":
            t -= 600
        elif kind == "future":
            t += 600
        elif kind == "wrong_secret":
            secret = self.secret + "-not"
        elif kind == "not_form":
            body, ctype = json.dumps({"events": events}).encode(), "application/json"
        elif kind == "oversized":
            body = b"payload=" + b"x" * max(0, size - 8)
        sig = _signature(secret, t, body)
        if kind == "bad_signature":
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        headers = {"Content-Type": ctype, "X-Centra-Signature": f"t={t},v1={sig}"}
        if kind == "no_signature":
            del headers["X-Centra-Signature"]
        if kind == "replay":
            with self._lock:
                if self._last is None:
                    raise ValueError("nothing to replay yet: send a good webhook first")
                body, headers = self._last
        status = self._post(body, headers)
        if kind == "good":
            with self._lock:
                self._last = (body, headers)
        return status

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 - a configured http(s) URL
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("sim.webhook_failed", url=self.url, error=str(exc))
            status = 0
        with self._lock:
            self.statuses[str(status)] += 1
        return status

    def inspect(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self.url, "statuses": dict(self.statuses), "pending": self._pending.qsize()}
