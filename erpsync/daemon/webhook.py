"""The webhook trigger: Centra's webhook POST makes the pull run now instead of at its next tick.

Centra's webhook plugin (PROTOCOL.md §2.3) POSTs ``application/x-www-form-urlencoded`` with one
field ``payload=<JSON>`` and the header ``X-Centra-Signature: t=<unix>,v1=<hex>``, where ``v1`` is
HMAC-SHA256(secret, ``"<t>.<raw body>"``). This listener verifies that signature in constant time,
refuses a timestamp further than ``tolerance`` seconds from now (an old or replayed body), caps the
body size, and then only *triggers* a pull: it never acts on the payload's content (whether ``id``
is an object or an event id is [open]), so a forged or lost webhook can at worst cost one pull and a
webhook that never arrives changes nothing — the scheduled pull stays the safety net.

Answers: 204 accepted; 400 not a form body / no ``payload`` / malformed signature header; 401 bad
signature or timestamp outside the tolerance; 404 another path; 405 another method; 411 no length;
413 too large. Every refusal is one ``webhook.rejected`` log line with the reason, never the secret.

It listens on its own address (default ``127.0.0.1``): Centra calls only ports 80/443 over HTTPS,
so production puts it behind a TLS reverse proxy (docs/operations.md).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter

from erpsync.clock import Clock, SystemClock
from erpsync.logs import get_logger, register_secret

log = get_logger("erpsync.daemon.webhook")

SIGNATURE_HEADER = "X-Centra-Signature"
DEFAULT_TOLERANCE_S = 300.0
DEFAULT_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class WebhookConfig:
    """What the daemon needs to open the listener (from ``[centra.webhook]``)."""

    host: str
    port: int
    secret: str
    jobs: tuple[str, ...] = ("pull",)  # the jobs an accepted webhook brings forward
    path: str = "/centra/webhook"
    tolerance_s: float = DEFAULT_TOLERANCE_S
    max_body: int = DEFAULT_MAX_BODY

    def __repr__(self) -> str:  # never the secret
        return f"WebhookConfig(host={self.host!r}, port={self.port}, path={self.path!r}, jobs={self.jobs})"


class WebhookRejected(Exception):
    """A request that must not trigger anything: ``status`` is the HTTP answer, ``reason`` a stable word."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{status} {reason}: {detail}" if detail else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.detail = detail


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 Centra sends as ``v1``: over ``"<t>.<raw body>"``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """``t=<unix>,v1=<hex>[,v1=<hex>…]`` → (t, [v1 …]). ``WebhookRejected(400)`` when malformed."""
    if not header:
        raise WebhookRejected(400, "signature_missing", f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value.strip())
            except ValueError:
                raise WebhookRejected(400, "signature_malformed", "t is not a Unix time") from None
        elif key == "v1":
            sigs.append(value.strip().lower())
    if timestamp is None or not sigs:
        raise WebhookRejected(400, "signature_malformed", "expected t=<unix>,v1=<hex>")
    return timestamp, sigs


def verify(secret: str | bytes, header: str | None, body: bytes, *, now: float,
           tolerance_s: float = DEFAULT_TOLERANCE_S) -> int:
    """Check the signature of ``body``; returns its timestamp or raises ``WebhookRejected``.

    A timestamp outside ``now ± tolerance_s`` is refused even when the signature is right: that is
    what makes a captured body useless for a replay later."""
    timestamp, sigs = parse_signature_header(header)
    expected = sign(secret, timestamp, body)
    # compare every candidate (no early exit that would time the position of a match)
    matched = False
    for candidate in sigs:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookRejected(401, "signature_mismatch")
    if abs(now - timestamp) > tolerance_s:
        raise WebhookRejected(401, "timestamp_outside_tolerance",
                              f"t is {round(now - timestamp)} s from now, tolerance {tolerance_s:g} s")
    return timestamp


def check_form(content_type: str | None, body: bytes) -> None:
    """The body must be Centra's form: ``payload=<something>``. ``WebhookRejected(400)`` otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise WebhookRejected(400, "not_form", f"content type {media or 'missing'}")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(400, "not_form", "body is not form-encoded") from None
    if not fields.get("payload") or not fields["payload"][0].strip():
        raise WebhookRejected(400, "payload_missing", "no payload field")


class WebhookListener:
    """The HTTP listener. ``on_trigger`` is called (on the request thread) for every accepted webhook;
    the daemon coalesces those calls into at most one extra run at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        secret: str,
        on_trigger: Callable[[], Any],
        *,
        path: str = "/centra/webhook",
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        max_body: int = DEFAULT_MAX_BODY,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook listener needs its secret")
        register_secret(secret)
        self.secret = secret.encode()
        self.on_trigger = on_trigger
        self.path = path
        self.tolerance_s = tolerance_s
        self.max_body = max_body
        self.clock = clock or SystemClock()
        self.requests = Counter("erpsync_webhook_requests", "Webhook requests by outcome "
                                "(accepted or the rejection reason).", ["outcome"],
                                registry=registry or CollectorRegistry())
        self._httpd = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="erpsync-webhook", daemon=True)
        self._thread.start()
        log.info("webhook.listening", address="{}:{}".format(*self.address), path=self.path)

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def handle(self, method: str, path: str, headers: Any, read: Callable[[int], bytes]) -> int:
        """Decide one request; returns the HTTP status. (The handler class only does the I/O.)"""
        try:
            if path.split("?", 1)[0] != self.path:
                raise WebhookRejected(404, "unknown_path")
            if method != "POST":
                raise WebhookRejected(405, "method_not_allowed", method)
            length_header = headers.get("Content-Length")
            if length_header is None:
                raise WebhookRejected(411, "length_required")
            try:
                length = int(length_header)
            except ValueError:
                raise WebhookRejected(400, "bad_length") from None
            if length < 0:
                raise WebhookRejected(400, "bad_length")
            if length > self.max_body:
                raise WebhookRejected(413, "body_too_large", f"{length} bytes, limit {self.max_body}")
            body = read(length)
            check_form(headers.get("Content-Type"), body)
            verify(self.secret, headers.get(SIGNATURE_HEADER), body, now=self.clock.time(),
                   tolerance_s=self.tolerance_s)
        except WebhookRejected as exc:
            self.requests.labels(exc.reason).inc()
            log.warning("webhook.rejected", status=exc.status, reason=exc.reason, detail=exc.detail or None)
            return exc.status
        self.requests.labels("accepted").inc()
        outcome = self.on_trigger()
        log.info("webhook.accepted", trigger=outcome)
        return 204


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of webhooks must not be refused by a backlog of 5

    def __init__(self, address: tuple[str, int], listener: WebhookListener) -> None:
        self.listener = listener
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # a slow client cannot hold a thread for long

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one structured line per request comes from WebhookListener.handle

    def _answer(self) -> None:
        status = self.server.listener.handle(self.command, self.path, self.headers, self.rfile.read)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if status >= 400:
            self.send_header("Connection", "close")  # an unread body must not be taken for a request
            self.close_connection = True
        self.end_headers()

    do_POST = _answer
    do_GET = _answer
    do_PUT = _answer
    do_DELETE = _answer
