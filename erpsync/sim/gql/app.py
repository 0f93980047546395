"""``GraphqlApp``: one HTTP POST /graphql in, (status, headers, body) out. Thread-safe.

Order of checks for a request: Bearer token (missing, unknown or expired → 403, free) → JSON body
(→ 400, free) → parse and validate the document against the contract SDL and coerce variables
(→ 400, free) → complexity and mutation count (see ``erpsync.sim.gql.complexity``) → the quota,
charged all-or-nothing (→ 429 + ``Retry-After``, free; a cost no bucket can ever hold → 400) →
per-token permissions of the root fields (missing → 200 with an ``authorization`` error, charged) →
execution. Every 200 carries ``extensions.complexity`` and ``extensions.permissionsUsed``; every
response carries ``X-Centra-Request-ID`` and ``X-Correlation-ID``.

Time is read from the injected clock. With a ``ScaledClock`` the ``Retry-After`` seconds are scaled
seconds and the Unix / HTTP-date forms are instants on the scaled clock, so a client sharing the same
epoch and factor waits exactly as long as the simulator needs.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLFormattedError,
    GraphQLSchema,
    OperationType,
    build_ast_schema,
    build_schema,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from erpsync.clock import Clock
from erpsync.sim.gql.complexity import measure
from erpsync.sim.gql.eventqueue import EVENT_MUTATION_PERMISSIONS, EVENT_QUERY_PERMISSIONS, GqlEventQueue
from erpsync.sim.gql.mutations import MUTATION_PERMISSIONS, Mutations
from erpsync.sim.gql.options import BUCKET_KEYS, GqlOptions
from erpsync.sim.gql.orders import (
    FULFILMENT_MUTATION_PERMISSIONS,
    ORDER_QUERY_PERMISSIONS,
    Fulfilment,
    OrderViews,
    order_query_root,
)
from erpsync.sim.gql.queries import query_root
from erpsync.sim.gql.quota import CostExceedsCapacity, Quota
from erpsync.sim.gql.state import State, seeded
from erpsync.sim.orderbook import CaptureSettings, OrderBook

#: Permission needed by each root query field (``rateLimits`` needs none).
QUERY_PERMISSIONS: dict[str, str | None] = {
    "rateLimits": None,
    "products": "Product:read",
    "pricelists": "Pricelist:read",
    "warehouses": "Warehouse:read",
    "sizeCharts": "SizeChart:read",
    "stores": "Store:read",
    **ORDER_QUERY_PERMISSIONS,
    **EVENT_QUERY_PERMISSIONS,
}

_schema_cache: GraphQLSchema | None = None
_schema_lock = threading.Lock()
INT64 = (-(2**63), 2**63 - 1)


def _allow_64bit_ints() -> None:
    """The simulated store's ``Int`` holds 64 bits (a long-lived store's event ids outgrow 32 bits,
    PROTOCOL.md §2.4 [open]); graphql-core's ``Int`` is 32-bit. Values inside 32 bits behave exactly
    as before; larger integers pass where graphql-core would raise. Installed once per process (the
    scalar is graphql-core's one ``Int``; erpsync's client never lets it coerce values)."""
    from graphql import GraphQLInt, IntValueNode

    if getattr(GraphQLInt, "_erpsync_int64", False):
        return

    def wide(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and INT64[0] <= value <= INT64[1]

    def widen(coerce: Callable[..., Any]) -> Callable[..., Any]:
        return lambda value, *rest: value if wide(value) else coerce(value, *rest)

    literal: Any = getattr(GraphQLInt, "coerce_input_literal", None) or GraphQLInt.parse_literal

    def literal64(node: Any, variables: Any = None) -> Any:
        if isinstance(node, IntValueNode) and wide(int(node.value)):
            return int(node.value)
        return literal(node, variables)

    # graphql-core 3.3 reads coerce_*; serialize / parse_value / parse_literal are its older names
    for name in ("serialize", "parse_value", "coerce_output_value", "coerce_input_value"):
        if hasattr(GraphQLInt, name):
            setattr(GraphQLInt, name, widen(getattr(GraphQLInt, name)))
    for name in ("parse_literal", "coerce_input_literal"):
        if hasattr(GraphQLInt, name):
            setattr(GraphQLInt, name, literal64)
    GraphQLInt._erpsync_int64 = True  # type: ignore[attr-defined]


def contract_sdl() -> str:
    """The GraphQL SDL shared with erpsync's client (erpsync/contract/centra.graphql)."""
    return resources.files("erpsync.contract").joinpath("centra.graphql").read_text(encoding="utf-8")


def contract_schema() -> GraphQLSchema:
    global _schema_cache  # noqa: PLW0603 - built once per process, it is immutable
    with _schema_lock:
        if _schema_cache is None:
            _schema_cache = build_schema(contract_sdl())
        return _schema_cache


def renamed_schema(renames: tuple[str, ...]) -> GraphQLSchema:
    """The contract schema with fields renamed, ``("Type.field=newName", …)``: a store whose schema
    differs from the contract (for ``erpsync check`` to name). Resolvers are unchanged, so a renamed
    field answers null."""
    sdl = contract_sdl()
    document = parse(sdl)
    wanted: dict[tuple[str, str], str] = {}
    for item in renames:
        coord, sep, new = item.partition("=")
        typ, dot, fld = coord.strip().partition(".")
        if not sep or not dot or not new.strip():
            raise ValueError(f"schema rename {item!r}: expected Type.field=newName")
        wanted[(typ, fld)] = new.strip()
    done = set()
    spans: list[tuple[int, int, str]] = []  # AST nodes are frozen: edit the SDL text at their locations
    for definition in document.definitions:
        type_name = getattr(getattr(definition, "name", None), "value", None)
        for fld_node in getattr(definition, "fields", None) or ():
            key = (str(type_name), fld_node.name.value)
            if key in wanted and fld_node.name.loc is not None:
                spans.append((fld_node.name.loc.start, fld_node.name.loc.end, wanted[key]))
                done.add(key)
    missing = sorted(f"{t}.{f}" for t, f in set(wanted) - done)
    if missing:
        raise ValueError(f"schema rename: no such field(s) {missing} in the contract")
    for start, end, new in sorted(spans, reverse=True):
        sdl = sdl[:start] + new + sdl[end:]
    return build_ast_schema(parse(sdl))


Response = tuple[int, dict[str, str], bytes]


def _list_items(value: Any) -> int:
    """List elements in a mutation's variables, counted recursively (a batch's lines)."""
    if isinstance(value, list):
        return len(value) + sum(_list_items(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_list_items(v) for v in value.values())
    return 0


class GraphqlApp:
    """The simulated Centra GraphQL Integration API (see the module docstring for the pipeline)."""

    def __init__(self, options: GqlOptions, clock: Clock, orders: OrderBook | None = None) -> None:
        self.options = options
        self.clock = clock
        _allow_64bit_ints()
        self.schema = contract_schema() if not options.schema_renames else renamed_schema(options.schema_renames)
        self._lock = threading.RLock()
        self._expired: set[str] = set(options.expired_tokens)
        self._issued_at = clock.time()  # token_ttl_seconds counts from here
        self._limits = options.bucket_limits()
        self._current_limits = dict(self._limits)
        self.state: State = seeded(options.warehouses, options.pricelists)
        self.quota = Quota(self._limits, clock, options.other_integration_share)
        self._requests = 0
        self._by_status: dict[str, int] = {}
        if orders is None:  # standalone (unit tests): an order book of its own, fed by its own generator
            from erpsync.sim.events import EventQueue
            from erpsync.sim.generator import EventGenerator

            orders = OrderBook(EventGenerator(EventQueue(), clock), clock)
        orders.capture = CaptureSettings(
            default=options.capture_outcome,
            failed_probability=options.capture_failed_probability,
            pending_probability=options.capture_pending_probability,
            pending_seconds=options.capture_pending_seconds,
        )
        self.orders = orders
        # the GraphQL events queue (§2.4), fed by the same emissions as the SOAP queue
        self.events = GqlEventQueue(clock, self._event_object, first_id=options.first_event_id)
        orders.generator.queue.listeners.append(self._on_emitted)

    # --- public API -------------------------------------------------------------------------

    def handle(self, headers: Mapping[str, str], body: bytes) -> Response:
        """One HTTP POST /graphql → (status, response headers, body). Thread-safe."""
        lower = {k.lower(): v for k, v in headers.items()}
        out_headers = {
            "Content-Type": "application/json",
            "X-Centra-Request-ID": uuid.uuid4().hex,
            "X-Correlation-ID": lower.get("x-correlation-id") or uuid.uuid4().hex,
        }
        status, payload, extra = self._handle(lower, body)
        with self._lock:
            self._requests += 1
            self._by_status[str(status)] = self._by_status.get(str(status), 0) + 1
        out_headers.update(extra)
        return status, out_headers, json.dumps(payload).encode("utf-8")

    def apply_then_fail(self, headers: Mapping[str, str], body: bytes) -> Response:
        """Apply the request exactly like ``handle`` (for the 499-after-apply fault: the caller then
        answers 499 instead of this result)."""
        return self.handle(headers, body)

    def expire_token(self, token: str) -> None:
        """From now on ``token`` is answered with 403 (the "expired token" fault)."""
        with self._lock:
            self._expired.add(token)

    def set_limits(self, limits: Mapping[str, int]) -> None:
        """Change some bucket capacities at runtime (keys from ``BUCKET_KEYS``), e.g. to simulate
        Centra lowering the limits temporarily. ``reset`` restores the configured ones."""
        unknown = set(limits) - set(BUCKET_KEYS)
        if unknown or any(v <= 0 for v in limits.values()):
            raise ValueError(f"limits need keys from {list(BUCKET_KEYS)} and positive values")
        with self._lock:
            self.quota.set_limits(limits)
            self._current_limits.update(limits)

    def inspect(self) -> dict[str, Any]:
        """JSON-able view of what the simulator holds (for /_sim/state and tests)."""
        with self._lock:
            s = self.state
            return {
                "counts": {
                    "products": len(s.products),
                    "variants": len(s.variants),
                    "productSizes": len(s.product_sizes),
                    "sizeCharts": len(s.size_charts),
                    "sizes": len(s.sizes),
                    "pricelists": len(s.pricelists),
                    "warehouses": len(s.warehouses),
                    "stockChanges": s.stock_changes,
                    "mutationsApplied": s.mutations_applied,
                },
                "duplicates": s.duplicates(),
                "orders": self.orders.inspect(),
                "events": self.events.inspect(),
                "externalIds": {kind: dict(per) for kind, per in s.external.items()},
                "stock": self._stock_rows(),
                "prices": self._price_rows(),
                "quota": {
                    "tier": self.options.tier,
                    "limits": dict(self._current_limits),
                    "retryAfterFormat": self.options.retry_after_format,
                    "otherIntegrationShare": self.options.other_integration_share,
                    **self.quota.inspect(),
                },
                "clock": {
                    "factor": getattr(self.clock, "factor", 1.0),
                    "epoch": getattr(self.clock, "epoch", None),
                    "now": self.clock.time(),
                },
                "requests": {"total": self._requests, "byStatus": dict(self._by_status)},
            }

    def reset(self) -> None:
        """Back to the freshly seeded state with full buckets and zero counters."""
        with self._lock:
            self.state = seeded(self.options.warehouses, self.options.pricelists)
            self.quota = Quota(self._limits, self.clock, self.options.other_integration_share)
            self._current_limits = dict(self._limits)
            self._expired = set(self.options.expired_tokens)
            self._issued_at = self.clock.time()
            self._requests = 0
            self._by_status = {}
            self.orders.reset()
            self.events.reset()

    def snapshot(self) -> dict[str, Any]:
        """The catalogue, prices and stock as JSON-able data (the quota is not persisted)."""
        with self._lock:
            return {"version": 1, "state": self.state.to_json(), "orders": self.orders.snapshot(),
                    "events": self.events.snapshot()}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the state with one taken by ``snapshot``."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported GraphQL simulator snapshot version {data.get('version')!r}")
        state = State.from_json(dict(data["state"]))
        with self._lock:
            self.state = state
            self.orders.restore(dict(data.get("orders") or {}))
            if data.get("events") is not None:  # files saved before the events queue was persisted have none
                self.events.restore(dict(data["events"]))

    # --- pipeline ---------------------------------------------------------------------------

    def _handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        token = _bearer(headers.get("authorization", ""))
        if token is None:
            return 403, _errors("Missing or malformed Authorization: Bearer token", "authentication"), {}
        with self._lock:
            expired = token in self._expired
            ttl = self.options.token_ttl_seconds
            if ttl is not None and self.clock.time() - self._issued_at >= ttl:
                expired = token in self.options.tokens
        if expired:
            return 403, _errors("The access token has expired", "authentication"), {}
        permissions = self.options.tokens.get(token)
        if permissions is None:
            return 403, _errors("Invalid access token", "authentication"), {}

        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return 400, _errors(f"Malformed JSON body: {exc}", "bad_request"), {}
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return 400, _errors("The body must be a JSON object with a string 'query'", "bad_request"), {}
        variables = request.get("variables") or {}
        op_name = request.get("operationName")
        if not isinstance(variables, dict) or not (op_name is None or isinstance(op_name, str)):
            return 400, _errors("'variables' must be an object, 'operationName' a string", "bad_request"), {}

        document = _prepare(request["query"], self.schema)
        if isinstance(document, tuple):
            return 400, {"errors": list(document)}, {}
        operation = get_operation_ast(document, op_name)
        if operation is None:
            return 400, _errors("Unknown or ambiguous operation; set operationName", "bad_request"), {}
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return 400, {"errors": [e.formatted for e in coerced]}, {}

        fragments = _fragments(document)
        complexity, mutation_count, roots = measure(self.schema, operation, fragments, coerced)
        is_mutation = operation.operation == OperationType.MUTATION
        table = ({**MUTATION_PERMISSIONS, **FULFILMENT_MUTATION_PERMISSIONS, **EVENT_MUTATION_PERMISSIONS}
                 if is_mutation else QUERY_PERMISSIONS)
        needed = [(name, table.get(name)) for name in roots]
        used = sorted({p for _, p in needed if p is not None})
        missing = [(name, perm) for name, perm in needed if perm is not None and perm not in permissions]

        # Only the quota and the state need the lock: parsing and validation run concurrently.
        with self._lock:
            try:
                wait = self.quota.try_charge(
                    {"REQUEST_COUNT": 1, "QUERY_COMPLEXITY": complexity, "MUTATION_COUNT": mutation_count}
                )
            except CostExceedsCapacity as exc:
                return 400, _errors(f"Query too complex: {exc}", "complexity"), {}
            if wait is not None:
                return (
                    429,
                    _errors(f"Rate limit exceeded, retry in {wait:.3f} s", "rate_limit"),
                    {"Retry-After": self._retry_after(wait)},
                )
            if missing:
                name, perm = missing[0]
                payload = _errors(f"You need {perm} permission to use {name}", "authorization")
                payload["data"] = None
                payload["extensions"] = {"complexity": complexity, "permissionsUsed": []}
                return 200, payload, {}
            items = _list_items(variables) if is_mutation else 0
            gives_up = self.options.timeout_items is not None and items > self.options.timeout_items
            if not gives_up:
                result = self._execute(document, variables, op_name, is_mutation, permissions)
        # the latency model: the store's time per batch item, served outside the lock. Real time
        # whatever the time scale (like the latency faults): a store's work is not compressed by a
        # simulated clock, and a client judges answers by real time (its read timeout, its batch sizes)
        latency = (self.options.latency_base_seconds + self.options.latency_per_item_seconds * items
                   if is_mutation else 0.0)
        if latency > 0:
            self.clock.real_sleep(latency)
        if gives_up:
            return 499, _errors(f"The server gave up on a slow request ({items} batch items; more than "
                                f"{self.options.timeout_items} time out)", "timeout"), {}
        result["extensions"] = {"complexity": complexity, "permissionsUsed": used}
        return 200, result, {}

    def _execute(
        self,
        document: DocumentNode,
        variables: dict[str, Any],
        op_name: str | None,
        is_mutation: bool,
        permissions: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        root: dict[str, Callable[..., Any]]
        if is_mutation:
            root = Mutations(self.state, self.clock, self.options.batch_failure,
                             self.options.prices_batch_limit).root()
            root.update(Fulfilment(self.orders, self.state, self.clock, permissions).root())
            root.update(self.events.mutation_root())
        else:
            root = query_root(self.state, self.quota)
            root.update(order_query_root(self.orders, self.state))
            root.update(self.events.query_root())
        result = execute(self.schema, document, root_value=root, variable_values=variables, operation_name=op_name)
        if not isinstance(result, ExecutionResult):
            raise TypeError("the simulator's resolvers are synchronous")
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out

    def _on_emitted(self, event: Any) -> None:
        """Every emitted event: an order's ``updatedAt`` is the time of its latest change (the
        instant its SOAP event carries), then the GraphQL events queue hears of it."""
        date = str(event.date)
        try:
            when = datetime.fromisoformat(date)
        except ValueError:
            when = datetime.strptime(date, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - store-local, zone added below
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.orders.generator.store_tz)
        if event.type == "order" and event.mission == "update":
            self.orders.updated_at[event.entry] = when.isoformat()
        # one change, one instant: the GraphQL event is created at the time the SOAP event carries
        self.events.on_soap_event(event.type, event.entry, event.mission, event.data, at=when)

    def _event_object(self, object_type: str, reference: int) -> dict[str, Any] | None:
        """The current object behind an event (null once it is gone, and for types not modelled)."""
        gen = self.orders.generator
        if object_type == "Order":
            payload = self.orders.order(str(reference))
            return None if payload is None else OrderViews(self.orders, self.state).order(payload)
        if object_type == "Customer":
            c = gen.customers.get(str(reference))
            return None if c is None else {"__typename": "Customer", "id": reference, "email": c.get("email"),
                                           "firstName": c.get("firstname"), "lastName": c.get("lastname")}
        if object_type == "Account":
            a = gen.accounts.get(str(reference))
            return None if a is None else {"__typename": "Account", "id": reference, "name": str(a.get("name") or "")}
        return None

    def _retry_after(self, wait: float) -> str:
        fmt = self.options.retry_after_format
        if fmt == "seconds":
            return str(max(1, math.ceil(wait)))
        at = math.ceil(self.clock.time() + wait)
        if fmt == "unix":
            return str(at)
        return format_datetime(datetime.fromtimestamp(at, UTC), usegmt=True)

    def _stock_rows(self) -> list[dict[str, Any]]:
        s = self.state
        rows = []
        for (wid, psid), qty in sorted(s.stock.items()):
            ps = s.product_sizes[psid]
            wh = s.warehouses[wid]
            rows.append(
                {
                    "warehouseId": wid,
                    "warehouse": wh.external_id or wh.name,
                    "productSizeId": psid,
                    "SKU": s.sku(ps),
                    "EAN": ps.ean,
                    "quantity": qty,
                }
            )
        return rows

    def _price_rows(self) -> list[dict[str, Any]]:
        s = self.state
        rows = []
        for (plid, kind, oid), price in sorted(s.prices.items()):
            pl = s.pricelists[plid]
            obj = s.products[oid] if kind == "product" else s.variants[oid]
            rows.append(
                {
                    "pricelistId": plid,
                    "pricelist": pl.external_id or pl.name,
                    "currency": pl.currency,
                    "kind": kind,
                    "id": oid,
                    "externalId": obj.external_id,
                    "price": None if price.price is None else str(price.price),
                    "recommendedRetailPrice": None if price.rrp is None else str(price.rrp),
                }
            )
        return rows


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _errors(message: str, category: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"category": category}}]}


@functools.lru_cache(maxsize=512)
def _prepare(query: str, schema: GraphQLSchema) -> DocumentNode | tuple[GraphQLFormattedError, ...]:
    """The parsed document, or its syntax / validation errors (cached: clients resend documents)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return (exc.formatted,)
    problems = validate(schema, document)
    if problems:
        return tuple(e.formatted for e in problems)
    return document


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
