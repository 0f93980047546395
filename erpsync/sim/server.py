"""The simulator's HTTP server: one stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, one thread per
connection) serving

* ``POST {soap_path}`` — the SOAP API (``GET {soap_path}?wsdl`` serves erpsync's WSDL with the
  service address pointing at this server),
* ``POST /graphql`` — the GraphQL Integration API (``erpsync.sim.gql.GraphqlApp``),
* ``/_sim/…`` — control and inspection for tests and operators (JSON):

  ====================================  ==========================================================
  ``GET /_sim/health``                  ``{"ok": true}``
  ``GET /_sim/state``                   everything the simulator holds (see :meth:`SimServer.state`)
  ``GET /_sim/faults``                  active fault rules and how often each kind fired
  ``POST /_sim/faults``                 add a rule ``{"endpoint","kind","count"|"probability",…}``
                                        or ``{"rules": [...]}``; see ``erpsync.sim.faults``
  ``DELETE /_sim/faults[?endpoint=]``   remove rules
  ``POST /_sim/events``                 enqueue exact events ``{"events": [{"type","entry",
                                        "mission","date","data"|"data_xml"}]}`` → ``{"ids": [...]}``
  ``POST /_sim/generate``               ``{"count": N}`` generated events → ``{"ids": [...]}``
  ``POST /_sim/orders/<id>/advance``    move a generated order one lifecycle step (emits an event)
  ``POST /_sim/orders/<n>/capture``     ``{"outcome": "success"|"pending"|"failed"|null}``: how
                                        captures of that order's shipments end
  ``POST /_sim/expire-token``           ``{"token": T}``: T gets 403 from now on
  ``POST /_sim/limits``                 ``{"limits": {"MUTATION_COUNT:ONE_HOUR": 900, …}}``: Centra
                                        lowers (or raises) bucket capacities now → the quota
  ``POST /_sim/reset``                  empty queue, generated objects, GraphQL state, faults
  ``POST /_sim/save``                   write the ``state_file`` now
  ``POST /_sim/webhook``                ``{"kind": "good"|"bad_signature"|"stale"|…, "size": N}``:
                                        send one webhook to ``webhook_url`` now → ``{"status": N}``
  ====================================  ==========================================================

Every response carries ``X-Centra-Request-ID`` and ``X-Correlation-ID`` (echoed when the request sent
one). Start it with ``SimServer(SimOptions(...)).start()`` → ``(host, port)``; ``stop()`` shuts the
listener, wakes hanging fault handlers, closes open keep-alive connections and joins every thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from erpsync.clock import Clock, ScaledClock, SystemClock
from erpsync.logs import get_logger
from erpsync.sim.events import EVENT_TYPES, Event, EventQueue
from erpsync.sim.faults import FaultInjector, FaultRule
from erpsync.sim.generator import EDGE_CASES, EventGenerator, generate_edge_cases
from erpsync.sim.gql import ALL_PERMISSIONS, DEFAULT_TOKEN, GqlOptions, GraphqlApp
from erpsync.sim.orderbook import OrderBook
from erpsync.sim.soap import SoapEndpoint, fault_body, operation_of
from erpsync.sim.webhooks import WebhookSender

log = get_logger("erpsync.sim")

WSDL_PATH = Path(__file__).resolve().parent.parent / "contract" / "centra.wsdl"
DEFAULT_SOAP_PATH = "/ams/system/service/module/soap/api"
DEFAULT_PORT = 8765
DEFAULT_SOAP_USER = "erp-user"
DEFAULT_SOAP_PASSWORD = "s3cret"  # noqa: S105 - the documented quick-start login of a local simulator
STATE_VERSION = 1

Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class SimOptions:
    """Everything ``erpsync sim`` can be told. Defaults = the documented quick start.

    ``token`` gets every permission; ``tokens`` adds more tokens with chosen permissions (e.g.
    ``{"read-only": frozenset({"Product:read"})}``). ``time_scale`` > 1 runs the simulator's clock
    faster (``ScaledClock(time_scale, time_epoch)``); clients must build the same clock from
    ``time_epoch``/``time_scale`` (published in ``/_sim/state`` and on :class:`SimServer`).
    ``generate_rate`` is generated events per real second in the background (0 = off);
    ``initial_events`` are generated at start. ``state_file`` is loaded at start when it exists and
    written at stop, every ``autosave_seconds`` and on ``POST /_sim/save`` (atomically: temp + rename).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    soap_path: str = DEFAULT_SOAP_PATH
    soap_user: str = DEFAULT_SOAP_USER
    soap_password: str = DEFAULT_SOAP_PASSWORD
    token: str = DEFAULT_TOKEN
    tokens: Mapping[str, frozenset[str]] = field(default_factory=dict)
    expired_tokens: frozenset[str] = frozenset()
    token_ttl_seconds: float | None = None  # tokens expire this long (sim clock) after start; None = never
    tier: str = "growth"
    limits: Mapping[str, int] | None = None
    retry_after_format: str = "seconds"
    other_integration_share: float = 0.0
    batch_failure: str = "reject"
    prices_batch_limit: str = "total"  # [open] setPricesBatch's 100 product prices: "total" or "per_entry"
    latency_base_seconds: float = 0.0  # latency model: base + per item × batch items (real seconds)
    latency_per_item_seconds: float = 0.0
    timeout_items: int | None = None  # a mutation with more batch items: 499, nothing applied
    warehouses: tuple[str, ...] = ("WH-MAIN", "WH-EU", "WH-US")
    pricelists: tuple[tuple[str, str], ...] = (("PL-SEK", "SEK"), ("PL-EUR", "EUR"), ("PL-USD", "USD"))
    seed: int = 1
    time_scale: float = 1.0
    time_epoch: float | None = None
    generate_rate: float = 0.0
    initial_events: int = 0
    first_event_id: int = 1000
    gql_first_event_id: int = 1  # the GraphQL events queue's own sequence; > 2**31 for 64-bit ids
    state_file: str | None = None
    autosave_seconds: float = 5.0  # with a state_file: also save this often (a crash loses at most this much)
    hang_seconds: float = 60.0
    keepalive_timeout: float = 30.0
    soap_action_check: bool = True  # a missing / wrong SOAPAction header is a Client fault
    unknown_ack: str = "ignore"  # [open] events_Done with an unknown/acked id: "ignore" or "fault"
    update_response: str = "result"  # [open] *_Update answer: "result" or "ok" (<ordersUpdateResponse>OK)
    store_timezone: str = "Europe/Stockholm"  # the Centra store's zone: dates without an offset are in it
    schema_renames: tuple[str, ...] = ()  # serve a changed schema: ("Type.field=newName", …)
    webhook_url: str | None = None  # POST signed webhooks here when events are emitted (§2.3)
    webhook_secret: str = "sim-webhook-secret"  # noqa: S105 - the documented default of a local simulator
    # fulfilment (§2.5): how captures end; per order also POST /_sim/orders/<number>/capture {"outcome"}
    capture_outcome: str = "success"  # success | pending | failed
    capture_failed_probability: float = 0.0
    capture_pending_probability: float = 0.0
    capture_pending_seconds: float = 5.0  # a PENDING capture settles (isCaptured) this long after

    def gql_options(self) -> GqlOptions:
        tokens = {self.token: ALL_PERMISSIONS, **dict(self.tokens)}
        return GqlOptions(
            tokens=tokens, expired_tokens=self.expired_tokens, token_ttl_seconds=self.token_ttl_seconds,
            tier=self.tier, limits=self.limits,
            retry_after_format=self.retry_after_format, other_integration_share=self.other_integration_share,
            batch_failure=self.batch_failure, prices_batch_limit=self.prices_batch_limit,
            latency_base_seconds=self.latency_base_seconds, latency_per_item_seconds=self.latency_per_item_seconds,
            timeout_items=self.timeout_items,
            warehouses=self.warehouses, pricelists=self.pricelists,
            schema_renames=tuple(self.schema_renames),
            capture_outcome=self.capture_outcome, capture_failed_probability=self.capture_failed_probability,
            capture_pending_probability=self.capture_pending_probability,
            capture_pending_seconds=self.capture_pending_seconds,
            first_event_id=self.gql_first_event_id,
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # stop() joins every handler thread
    block_on_close = True
    request_queue_size = 128  # socketserver's default backlog of 5 refuses bursts of concurrent clients

    def __init__(self, address: tuple[str, int], sim: SimServer) -> None:
        self.sim = sim
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sim.connection_error", client=str(client_address), exc_info=True)


class SimServer:
    """The simulator, startable from Python (tests, ``erpsync demo``) and by ``erpsync sim``.

    Control API (also over HTTP, see the module docstring): :meth:`enqueue_event`, :meth:`generate`,
    :meth:`set_fault`, :meth:`clear_faults`, :meth:`state`, :meth:`reset`, :meth:`save_state`.
    Components are public for white-box tests: ``queue``, ``generator``, ``soap``, ``gql``, ``faults``,
    ``clock``.
    """

    def __init__(self, options: SimOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or SimOptions()
        o = self.options
        if clock is None:
            clock = ScaledClock(o.time_scale, o.time_epoch) if o.time_scale != 1.0 else SystemClock()
        self.clock = clock
        self.queue = EventQueue(first_id=o.first_event_id)
        self.store_tz = ZoneInfo(o.store_timezone)
        self.generator = EventGenerator(self.queue, clock, seed=o.seed, store_tz=self.store_tz)
        self.soap = SoapEndpoint(self.queue, self.generator, o.soap_user, o.soap_password,
                                 check_soap_action=o.soap_action_check, unknown_ack=o.unknown_ack,
                                 update_response=o.update_response)
        self.orders = OrderBook(self.generator, clock)  # one order book for SOAP and GraphQL
        self.gql = GraphqlApp(o.gql_options(), clock, orders=self.orders)
        self.faults = FaultInjector(seed=o.seed)
        self.webhooks: WebhookSender | None = None
        if o.webhook_url:
            self.webhooks = WebhookSender(o.webhook_url, o.webhook_secret, clock)
            sender = self.webhooks
            self.queue.listeners.append(lambda e: sender.notify(e.type, e.entry, e.mission, e.date))
        self.stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._save_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> tuple[str, int]:
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        self.stopping.clear()
        if self.options.state_file and Path(self.options.state_file).exists():
            self.load_state(self.options.state_file)
        self._httpd = _HTTPServer((self.options.host, self.options.port), self)
        if self.options.initial_events:
            self.generator.generate(self.options.initial_events)
        serve = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="sim-http", daemon=True)
        serve.start()
        self._threads.append(serve)
        if self.webhooks is not None:
            self.webhooks.start()
        if self.options.generate_rate > 0:
            gen = threading.Thread(target=self._generate_loop, name="sim-generator", daemon=True)
            gen.start()
            self._threads.append(gen)
        if self.options.state_file and self.options.autosave_seconds > 0:
            saver = threading.Thread(target=self._autosave_loop, name="sim-autosave", daemon=True)
            saver.start()
            self._threads.append(saver)
        log.info("sim.started", base_url=self.base_url, soap_url=self.soap_url, graphql_url=self.graphql_url,
                 tier=self.options.tier, time_scale=self.time_factor)
        return self.host, self.port

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        with httpd.conn_lock:
            conns = list(httpd.open_connections)
        for conn in conns:  # wake threads blocked reading an idle keep-alive connection
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()  # joins the handler threads
        if self.webhooks is not None:
            self.webhooks.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self.options.state_file:
            self.save_state(self.options.state_file)
        log.info("sim.stopped")

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _autosave_loop(self) -> None:
        while not self.stopping.wait(self.options.autosave_seconds):
            try:
                self.save_state()
            except OSError as exc:
                log.warning("sim.autosave_failed", path=self.options.state_file, error=str(exc))

    def _generate_loop(self) -> None:
        rate = self.options.generate_rate
        interval = max(1.0 / rate, 0.05)
        owed = 0.0
        while not self.stopping.wait(interval):
            owed += rate * interval
            n = int(owed)
            if n:
                owed -= n
                self.generator.generate(n)

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def soap_url(self) -> str:
        return self.base_url + self.options.soap_path

    @property
    def wsdl_url(self) -> str:
        return self.soap_url + "?wsdl"

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    @property
    def token(self) -> str:
        return self.options.token

    @property
    def soap_user(self) -> str:
        return self.options.soap_user

    @property
    def soap_password(self) -> str:
        return self.options.soap_password

    @property
    def time_factor(self) -> float:
        return float(getattr(self.clock, "factor", 1.0))

    @property
    def time_epoch(self) -> float | None:
        epoch = getattr(self.clock, "epoch", None)
        return None if epoch is None else float(epoch)

    def client_clock(self) -> Clock:
        """A clock reading the same (possibly scaled) time as this simulator, for clients."""
        if isinstance(self.clock, ScaledClock):
            return ScaledClock(self.clock.factor, self.clock.epoch)
        return self.clock

    # ------------------------------------------------------------------ control API

    def enqueue_event(self, type_: str, entry: str | int, *, mission: str = "update", data: Any = None,
                      data_xml: str | None = None, date: str | None = None, broken: bool = False) -> Event:
        """Put one exact event at the end of the queue (``data``: nested dict payload, see
        ``erpsync.sim.events``; or ``data_xml``: the object element as XML). ``date`` defaults to now
        in the store format ``YYYY-MM-DD hh:mm:ss``. ``broken``: the event is rendered not
        well-formed, so every events_Get batch holding it is malformed (the same bytes each time)."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}; one of {list(EVENT_TYPES)}")
        if date is None:
            date = self.clock.now().astimezone(self.store_tz).strftime("%Y-%m-%d %H:%M:%S")
        return self.queue.enqueue(type_, str(entry), date=date, mission=mission, data=data, data_xml=data_xml,
                                  broken=broken)

    def generate(self, count: int) -> list[Event]:
        """Generate ``count`` seeded events now (orders, their updates, customers, accounts, …)."""
        return self.generator.generate(count)

    def generate_edge_cases(self, cases: tuple[str, ...] = EDGE_CASES) -> dict[str, list[Event]]:
        """Enqueue what a real queue also sends (``erpsync.sim.generator.generate_edge_cases``):
        empty-data updates, incomplete order lines, single-item lists, a duplicated id, DST dates,
        a malformed batch. Returns the events by case."""
        return generate_edge_cases(self.generator, cases)

    def set_fault(self, endpoint: str, kind: str, *, count: int | None = None, probability: float | None = None,
                  seconds: float | None = None, status: int | None = None, only: str | None = None) -> FaultRule:
        """Add a fault rule (see ``erpsync.sim.faults``); with neither count nor probability: next call only."""
        if count is None and probability is None:
            count = 1
        return self.faults.set(endpoint, kind, count=count, probability=probability, seconds=seconds,
                               status=status, only=only)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.faults.clear(endpoint)

    def expire_token(self, token: str) -> None:
        self.gql.expire_token(token)

    def set_limits(self, limits: Mapping[str, int]) -> None:
        """Change GraphQL bucket capacities now (Centra may lower limits temporarily); ``reset`` restores
        the configured ones."""
        self.gql.set_limits(limits)

    def set_capture_outcome(self, order_number: str, outcome: str | None) -> None:
        """Captures of shipments of ``order_number`` end ``success``, ``pending`` or ``failed`` (None:
        back to the configured default / probabilities)."""
        if outcome is not None and outcome not in ("success", "pending", "failed"):
            raise ValueError("outcome must be success, pending, failed or null")
        with self.orders.lock:
            if outcome is None:
                self.orders.capture.per_order.pop(str(order_number), None)
            else:
                self.orders.capture.per_order[str(order_number)] = outcome

    def reset(self) -> None:
        self.queue.reset()
        self.generator.reset()
        self.gql.reset()
        self.faults.clear()

    def state(self) -> dict[str, Any]:
        """What the simulator holds: SOAP queue (depth, acked ids, pending/emitted by type), generated
        objects, GraphQL state (objects, duplicates per externalId, stock, prices, quota buckets, 429
        count — from ``GraphqlApp.inspect``), faults, request counts and the clock."""
        with self._counter_lock:
            requests = dict(sorted(self.requests.items()))
        return {
            "clock": {"factor": self.time_factor, "epoch": self.time_epoch, "now": self.clock.now().isoformat(),
                      "time": self.clock.time(), "store_timezone": self.options.store_timezone},
            "urls": {"soap": self.soap_url, "wsdl": self.wsdl_url, "graphql": self.graphql_url}
            if self._httpd is not None else {},
            "soap": {**self.queue.inspect(), "objects": self.generator.counts()},
            "graphql": self.gql.inspect(),
            "faults": self.faults.inspect(),
            "requests": requests,
            "webhooks": self.webhooks.inspect() if self.webhooks is not None else None,
        }

    def snapshot(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "queue": self.queue.snapshot(), "generator": self.generator.snapshot(),
                "graphql": self.gql.snapshot()}

    def restore(self, data: Mapping[str, Any]) -> None:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported simulator state version {data.get('version')!r}")
        self.queue.restore(data["queue"])
        self.generator.restore(data["generator"])
        self.gql.restore(data["graphql"])

    def save_state(self, path: str | os.PathLike[str] | None = None) -> Path:
        raw = path or self.options.state_file
        if not raw:
            raise ValueError("no state file configured (--state-file)")
        target = Path(raw)
        with self._save_lock:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(self.snapshot(), default=str), encoding="utf-8")
            os.replace(tmp, target)
        return target

    def load_state(self, path: str | os.PathLike[str]) -> None:
        self.restore(json.loads(Path(path).read_text(encoding="utf-8")))

    # ------------------------------------------------------------------ request plumbing

    def count(self, key: str) -> None:
        with self._counter_lock:
            self.requests[key] += 1

    def wsdl(self) -> bytes:
        text = WSDL_PATH.read_text(encoding="utf-8")
        text = text.replace("http://127.0.0.1:8765/ams/system/service/module/soap/api", self.soap_url)
        return text.encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: _HTTPServer
    server_version = "CentraSim/1"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.sim.options.keepalive_timeout)  # idle keep-alive limit

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sim.http", line=format % args)

    # ---------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        sim = self.server.sim
        if url.path == sim.options.soap_path and "wsdl" in url.query.lower():
            self._send(200, {"Content-Type": "text/xml; charset=utf-8"}, sim.wsdl())
        elif url.path == "/_sim/health":
            self._json(200, {"ok": True})
        elif url.path == "/_sim/state":
            self._json(200, sim.state())
        elif url.path == "/_sim/faults":
            self._json(200, sim.faults.inspect())
        else:
            self._json(404, {"error": f"no such resource: {url.path}"})

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        sim = self.server.sim
        if url.path == sim.options.soap_path:
            self._soap(body)
        elif url.path == "/graphql":
            self._graphql(body)
        elif url.path.startswith("/_sim/"):
            self._control(url.path, body)
        else:
            self._json(404, {"error": f"no such resource: {url.path}"})

    def do_DELETE(self) -> None:
        if self._read_body() is None:
            return
        url = urlsplit(self.path)
        if url.path == "/_sim/faults":
            endpoint = parse_qs(url.query).get("endpoint", [None])[0]
            self.server.sim.clear_faults(endpoint)
            self._json(200, self.server.sim.faults.inspect())
        else:
            self._json(404, {"error": f"no such resource: {url.path}"})

    # ---------------------------------------------------------------- endpoints

    def _soap(self, body: bytes) -> None:
        sim = self.server.sim
        operation = operation_of(body)
        sim.count(f"soap:{operation}")

        def execute() -> Response:
            try:
                reply = sim.soap.handle(body, self.headers.get("SOAPAction"))
            except Exception:  # a simulator bug must still answer like a server: a Fault, not a dropped socket
                log.exception("sim.soap_error", operation=operation)
                return 500, {"Content-Type": "text/xml; charset=utf-8"}, fault_body("Server", "Internal error")
            return reply.status, {"Content-Type": "text/xml; charset=utf-8"}, reply.body

        self._with_faults("soap", operation, execute)

    def _graphql(self, body: bytes) -> None:
        sim = self.server.sim
        operation = "mutation" if _is_mutation(body) else "query"
        sim.count(f"graphql:{operation}")
        headers = {k: v for k, v in self.headers.items()}

        def execute() -> Response:
            try:
                status, out_headers, out = sim.gql.handle(headers, body)
            except Exception:  # a simulator bug must still answer like a server: 500, not a dropped socket
                log.exception("sim.graphql_error", operation=operation)
                return 500, {"Content-Type": "application/json"}, json.dumps(
                    {"errors": [{"message": "Internal server error", "extensions": {"category": "internal"}}]}
                ).encode()
            return status, dict(out_headers), out

        self._with_faults("graphql", operation, execute)

    def _with_faults(self, endpoint: str, operation: str, execute: Callable[[], Response]) -> None:
        sim = self.server.sim
        rule = sim.faults.decide(endpoint, operation)
        if rule is None:
            self._send(*execute())
            return
        log.info("sim.fault", endpoint=endpoint, operation=operation, kind=rule.kind)
        kind = rule.kind
        soap = endpoint == "soap"
        if kind == "latency":
            sim.stopping.wait(1.0 if rule.seconds is None else rule.seconds)
            self._send(*execute())
        elif kind == "hang":
            sim.stopping.wait(sim.options.hang_seconds if rule.seconds is None else rule.seconds)
            self.close_connection = True  # no response at all
        elif kind == "http":
            status = rule.status or 500
            if status in (502, 503, 504):
                page = f"<html><body><h1>{status} {self.responses.get(status, ('',))[0]}</h1></body></html>"
                self._send(status, {"Content-Type": "text/html"}, page.encode())
            elif soap:
                self._send(status, {"Content-Type": "text/html"}, b"<html><body>Internal Server Error</body></html>")
            else:
                self._json(status, {"errors": [{"message": "Internal server error"}]})
        elif kind == "apply_then_499":
            _status, headers, _body = execute()
            self._send(499, {k: v for k, v in headers.items() if k.lower().startswith("x-")}, b"")
        elif kind == "reset":
            self._reset()
        elif kind == "truncate":
            status, headers, out = execute()
            self._send(status, headers, out, cut=max(1, len(out) // 2))
        elif kind == "malformed":
            execute()
            if soap:
                broken = (b'<?xml version="1.0"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/'
                          b'soap/envelope/"><SOAP-ENV:Body><ns1:events_Get><ns1:events><ns1:event>')
                self._send(200, {"Content-Type": "text/xml; charset=utf-8"}, broken)
            else:
                self._send(200, {"Content-Type": "application/json"}, b'{"data": {"products": [{"id": 1,')
        elif kind == "soap_fault":
            self._send(500, {"Content-Type": "text/xml; charset=utf-8"}, fault_body("Server", "Internal error"))
        elif kind == "expired_token":
            if soap:
                self._send(500, {"Content-Type": "text/xml; charset=utf-8"}, fault_body("Client", "Login failed"))
            else:
                self._json(403, {"errors": [{"message": "Token expired",
                                             "extensions": {"category": "authentication"}}]})

    def _control(self, path: str, body: bytes) -> None:
        sim = self.server.sim
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            if path == "/_sim/faults":
                for rule in payload.get("rules", [payload]):
                    sim.faults.add(FaultRule(**_rule_fields(rule)))
                self._json(200, sim.faults.inspect())
            elif path == "/_sim/events":
                events = [sim.enqueue_event(e["type"], e["entry"], mission=e.get("mission", "update"),
                                            data=e.get("data"), data_xml=e.get("data_xml"), date=e.get("date"),
                                            broken=bool(e.get("broken", False)))
                          for e in payload.get("events", [])]
                self._json(200, {"ids": [e.id for e in events]})
            elif path == "/_sim/generate" and "edge_cases" in payload:
                cases = payload["edge_cases"] or list(EDGE_CASES)
                made = sim.generate_edge_cases(tuple(cases))
                self._json(200, {"ids": {case: [e.id for e in evs] for case, evs in made.items()}})
            elif path == "/_sim/generate":
                self._json(200, {"ids": [e.id for e in sim.generate(int(payload.get("count", 1)))]})
            elif path.startswith("/_sim/orders/") and path.endswith("/advance"):
                order_id = path.removeprefix("/_sim/orders/").removesuffix("/advance")
                if order_id not in sim.generator.orders:
                    self._json(404, {"error": f"no such order {order_id}"})
                    return
                self._json(200, {"id": sim.generator.advance_order(order_id).id})
            elif path.startswith("/_sim/orders/") and path.endswith("/capture"):
                number = path.removeprefix("/_sim/orders/").removesuffix("/capture")
                sim.set_capture_outcome(number, payload.get("outcome"))
                self._json(200, {"order": number, "outcome": payload.get("outcome")})
            elif path == "/_sim/limits":
                limits = payload.get("limits")
                if not isinstance(limits, dict):
                    raise ValueError('the body must be {"limits": {"<TYPE>:<INTERVAL>": capacity, ...}}')
                sim.set_limits({str(k): int(v) for k, v in limits.items()})
                self._json(200, sim.gql.inspect()["quota"])
            elif path == "/_sim/expire-token":
                sim.expire_token(str(payload["token"]))
                self._json(200, {"ok": True})
            elif path == "/_sim/reset":
                sim.reset()
                self._json(200, {"ok": True})
            elif path == "/_sim/webhook":
                if sim.webhooks is None:
                    raise ValueError("no webhook URL configured (--webhook-url)")
                self._json(200, {"status": sim.webhooks.send(str(payload.get("kind", "good")),
                                                            size=int(payload.get("size", 1_000_000)))})
            elif path == "/_sim/save":
                self._json(200, {"saved": str(sim.save_state())})
            else:
                self._json(404, {"error": f"no such resource: {path}"})
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:  # answer, never drop the connection
            log.exception("sim.control_error", path=path)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    # ---------------------------------------------------------------- low level

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None after answering 400 to a bad framing."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            try:
                while True:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)
                    if size == 0:
                        while self.rfile.readline(1024).strip():  # trailers up to the blank line
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(1024)  # the CRLF after each chunk
            except ValueError:
                self._bad_framing("Malformed chunked request body")
                return None
        raw = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self._bad_framing(f"Invalid Content-Length: {raw!r}")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _bad_framing(self, message: str) -> None:
        self.close_connection = True  # the rest of the stream cannot be trusted
        self._json(400, {"error": message})

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(payload, default=str).encode())

    def _send(self, status: int, headers: Mapping[str, str], body: bytes, cut: int | None = None) -> None:
        out = dict(headers)
        lower = {k.lower() for k in out}
        if "x-centra-request-id" not in lower:
            out["X-Centra-Request-ID"] = uuid.uuid4().hex
        if "x-correlation-id" not in lower:
            out["X-Correlation-ID"] = self.headers.get("X-Correlation-ID") or uuid.uuid4().hex
        self.send_response(status, "Client Closed Request" if status == 499 else None)
        for key, value in out.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if cut is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        if cut is not None:
            self.close_connection = True
        self.server.sim.count(f"status:{status}")

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0 + close)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _is_mutation(body: bytes) -> bool:
    """Whether a GraphQL request body holds a mutation (for ``only="mutation"`` fault rules)."""
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    try:
        query = json.loads(body or b"{}").get("query", "")
        document = parse(query)
    except (ValueError, AttributeError, TypeError, GraphQLError):
        return False
    return any(isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
               for d in document.definitions)


def _rule_fields(rule: Any) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise ValueError("a fault rule must be a JSON object")
    allowed = {"endpoint", "kind", "count", "probability", "seconds", "status", "only"}
    unknown = set(rule) - allowed
    if unknown:
        raise ValueError(f"unknown fault rule fields {sorted(unknown)}")
    fields = dict(rule)
    if fields.get("count") is None and fields.get("probability") is None:
        fields["count"] = 1
    return fields
