"""Centra's GraphQL Integration API over gql, behind the quota governor.

- Every document is validated locally against ``erpsync/contract/centra.graphql`` (cached).
- gql's ``RequestsHTTPTransport`` with **no transport-level retries** (a resent mutation is a
  duplicate, and urllib3's retries would hide 429s from the quota): retries happen above, where
  idempotency is known. One transport per thread over one pooled ``requests.Session``
  (gql's transports are not thread-safe: STACK-NOTES).
- The HTTP status is captured before gql reads the body: a 429/5xx with GraphQL-shaped JSON would
  otherwise come back as an ordinary result with the status lost.
- Errors are mapped once, here (``erpsync.errors``):

  ======================================================  =========================================
  connect refused / connect timeout (nothing was sent)    ``SourceUnavailable``
  read timeout, reset, any unexpected status (499, 5xx,   ``SourceUnavailable`` on a query,
  404, 418 …), a malformed / truncated / non-GraphQL      ``OutcomeUnknown`` on a mutation (it may
  body, a top-level error that is not a contract error    have been applied: read back first)
  429                                                     ``RateLimited(retry_after)`` after the
                                                          governor blocked every caller
  401 / 403                                               ``AuthenticationFailed`` (fatal)
  top-level error with ``extensions.category`` auth…      ``PermissionDenied`` (fatal)
  400 with GraphQL errors, top-level validation errors    ``SchemaMismatch`` (fatal: the server
  (``category: graphql``/``validation``, unknown field)   does not accept our documents)
  ======================================================  =========================================

  Only the fatal rows stop a job; everything else is retried with backoff (docs/operations.md).

  ``userErrors`` / ``userWarnings`` come back in ``GqlResult``: the caller decides (park the item).
- The token is sent as ``Authorization: Bearer …``, registered with the log scrubber and never logged.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from gql import GraphQLRequest
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportServerError,
)
from gql.transport.requests import RequestsHTTPTransport
from graphql import ExecutionResult
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from erpsync.clock import Clock
from erpsync.errors import (
    AuthenticationFailed,
    OutcomeUnknown,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    RetryLater,
    SchemaMismatch,
    SourceUnavailable,
    describe_os_error,
)
from erpsync.graphql.complexity import upper_bound
from erpsync.graphql.quota import LANES, Permit, QuotaGovernor, parse_retry_after
from erpsync.graphql.schema import Document, DocumentCache
from erpsync.logs import get_logger, register_secret

log = get_logger("erpsync.graphql.client")

# a top-level error saying our document does not fit the server's schema
_SCHEMA_ERROR = re.compile(r"cannot query field|unknown (argument|type|field|directive)|"
                           r"is not defined by type|syntax error|must have a selection|"
                           r"expected type|is required, but it was not provided", re.I)
_SCHEMA_CATEGORIES = ("graphql", "validation", "syntax")

RATE_LIMITS_QUERY = "query RateLimits { rateLimits { type intervalSeconds quota usedQuota remainingQuota } }"


@dataclass(frozen=True)
class UserError:
    """One of Centra's ``userErrors``: the mutation failed and changed nothing."""

    message: str
    path: tuple[str, ...] = ()
    #: the response key of the root field (mutation) that reported it
    field: str = ""


@dataclass(frozen=True)
class PayloadWarning:
    """One of Centra's ``userWarnings``: the mutation succeeded; record it."""

    message: str
    path: tuple[str, ...] = ()
    field: str = ""


@dataclass(frozen=True)
class GqlResult:
    data: dict[str, Any]
    complexity: int | None
    user_errors: list[UserError] = field(default_factory=list)
    user_warnings: list[PayloadWarning] = field(default_factory=list)
    #: Centra's request id (``X-Centra-Request-ID``), for logs and support tickets
    request_id: str | None = None
    #: ``extensions.permissionsUsed``: the token permissions this request needed (``erpsync check``)
    permissions_used: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No userErrors: every mutation in the request was applied."""
        return not self.user_errors


@dataclass(frozen=True)
class RateLimitRow:
    type: str
    interval: str
    quota: int
    used: int
    remaining: int


class _CapturingTransport(RequestsHTTPTransport):
    """gql's requests transport over a shared pooled session, remembering the last response.

    gql hides the HTTP status of a GraphQL-shaped 429/5xx body; ``last_response`` keeps it.
    Pinned by tests/unit/graphql/test_client.py against the installed gql version.
    """

    def __init__(self, url: str, session: requests.Session, **kwargs: Any) -> None:
        super().__init__(url=url, retries=0, **kwargs)
        self._shared_session = session
        self.last_response: requests.Response | None = None

    def connect(self) -> None:
        self.session = self._shared_session

    def _prepare_result(self, response: requests.Response) -> ExecutionResult:
        self.last_response = response
        return super()._prepare_result(response)

    def _get_json_result(self, response: requests.Response) -> Any:
        self.last_response = response
        return super()._get_json_result(response)

    def close(self) -> None:  # the shared session is closed by CentraGraphql.close()
        self.session = None


def _pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=Retry(total=0, read=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _never_sent(exc: BaseException) -> bool:
    """True when a requests exception proves the request never left (connect phase)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, NewConnectionError | ConnectTimeoutError | NameResolutionError):
            return True
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            cur = reason
            continue
        args = getattr(cur, "args", ())
        nxt = next((a for a in args if isinstance(a, BaseException)), None)
        cur = nxt or cur.__cause__ or cur.__context__
    return False


class CentraGraphql:
    """The GraphQL client every push job uses. Thread-safe; call ``close()`` when done."""

    def __init__(
        self,
        url: str,
        token: SecretStr,
        *,
        governor: QuotaGovernor | None,
        clock: Clock,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        session: requests.Session | None = None,
        pool_size: int = 8,
        decimal_floats: bool = False,
    ) -> None:
        """``decimal_floats``: JSON numbers with a fraction decode straight to ``Decimal`` (money
        read from orders), never via float."""
        self.url = url
        self._json_loads = functools.partial(json.loads, parse_float=Decimal) if decimal_floats else json.loads
        self.governor = governor
        self.clock = clock
        self._token = token
        register_secret(token.get_secret_value())
        self._timeout = (connect_timeout, read_timeout)
        self._session = session or _pooled_session(pool_size)
        self._documents = DocumentCache()
        self._local = threading.local()
        self._transports: list[_CapturingTransport] = []
        self._transports_lock = threading.Lock()
        self._closed = False

    # -------------------------------------------------------------- public API

    def query(self, document: str, variables: dict[str, Any] | None = None, *, lane: str = "catalogue") -> GqlResult:
        """Run a query (validated, governed). Retriable faults raise ``SourceUnavailable``."""
        doc = self._documents.get(document)
        if doc.is_mutation:
            raise ValueError("query() got a mutation: use mutate()")
        return self._call(doc, variables, lane=lane, mutations=0)

    def mutate(
        self, document: str, variables: dict[str, Any] | None = None, *, mutations: int = 1, lane: str,
    ) -> GqlResult:
        """Run a mutation document. ``mutations`` is the MUTATION_COUNT charge; the number of
        mutation fields in the document is used when larger. A fault after the request may
        have been sent raises ``OutcomeUnknown``."""
        doc = self._documents.get(document)
        if not doc.is_mutation:
            raise ValueError("mutate() got a query: use query()")
        return self._call(doc, variables, lane=lane, mutations=max(mutations, doc.mutation_count))

    def rate_limits(self, *, reseed: bool = True) -> list[RateLimitRow]:
        """Read ``rateLimits`` (costs a request); with a governor and ``reseed``, re-seed it."""
        doc = self._documents.get(RATE_LIMITS_QUERY)
        result = self._call(doc, None, lane="stock", mutations=0, reseed=reseed)
        return [
            RateLimitRow(r["type"], r["intervalSeconds"], r["quota"], r["usedQuota"], r["remainingQuota"])
            for r in result.data["rateLimits"]
        ]

    def answer_seconds(self) -> float | None:
        """How long Centra took to answer this thread's last request, in real seconds (the clock's
        ``real_monotonic``: a scaled clock does not stretch it): the HTTP exchange only, never the
        time spent waiting for quota. None when the last request got no answer."""
        seconds: float | None = getattr(self._local, "answer_seconds", None)
        return seconds

    def validate(self, document: str) -> Document:
        """Validate ``document`` against the contract schema (``SchemaMismatch`` if it breaks it)."""
        return self._documents.get(document)

    def close(self) -> None:
        with self._transports_lock:
            for t in self._transports:
                t.close()
            self._transports.clear()
            self._closed = True
        self._session.close()

    def __enter__(self) -> CentraGraphql:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- internals

    def _transport(self) -> _CapturingTransport:
        t: _CapturingTransport | None = getattr(self._local, "transport", None)
        if t is None:
            with self._transports_lock:
                if self._closed:
                    raise RuntimeError("CentraGraphql is closed")
                t = _CapturingTransport(
                    self.url, self._session,
                    headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                    timeout=self._timeout,  # type: ignore[arg-type]  # requests takes (connect, read)
                    json_deserialize=self._json_loads,
                )
                t.connect()
                self._transports.append(t)
            self._local.transport = t
        return t

    def _call(
        self, doc: Document, variables: dict[str, Any] | None, *, lane: str, mutations: int, reseed: bool = False,
    ) -> GqlResult:
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        gov = self.governor
        if gov is not None and not reseed:
            gov.wait_while_blocked()  # a 429 makes a refresh due when its block ends: do it first
        if gov is not None and not reseed and gov.refresh_due() and gov.claim_refresh():
            try:
                self.rate_limits(reseed=True)
            except (SourceUnavailable, ProtocolError, SchemaMismatch, PermissionDenied) as exc:
                log.warning("quota.refresh_failed", error=type(exc).__name__, detail=str(exc))
        permit: Permit | None = None
        if gov is not None:
            bound = upper_bound(self._documents.schema, doc.ast, variables)
            permit = gov.acquire(requests=1, mutations=mutations, lane=lane, op_key=doc.op_key, bound=bound)
        transport = self._transport()
        transport.last_response = None
        if gov is not None:
            gov.wait_while_blocked()
        request = GraphQLRequest(doc.ast, variable_values=variables, operation_name=doc.operation_name)
        started = time.perf_counter()
        sent_at = self.clock.time()
        self._local.answer_seconds = None
        answer_started = self.clock.real_monotonic()
        try:
            result = transport.execute(request)
        except TransportConnectionFailed as exc:
            cause = exc.__cause__ or exc
            if _never_sent(cause):
                raise SourceUnavailable(f"cannot connect to Centra GraphQL: {describe_os_error(cause)}") from exc
            kind = (("timeout" if isinstance(cause, requests.Timeout) else "connection lost")
                    + f" ({describe_os_error(cause)})")
            if doc.is_mutation:
                raise OutcomeUnknown(f"mutation {doc.op_key}: {kind} after sending") from exc
            raise SourceUnavailable(f"query {doc.op_key}: {kind}") from exc
        except (TransportServerError, TransportProtocolError) as exc:
            self._raise_for_status(doc, transport.last_response, exc)
            # a 2xx we cannot read (malformed, truncated, a proxy's page): a later call may succeed
            raise _transient(doc, "unreadable response (not GraphQL JSON)") from exc
        except TransportError as exc:
            raise _transient(doc, str(exc)) from exc
        # the store's answer time: the HTTP exchange only (never the quota waits above), in real time
        self._local.answer_seconds = self.clock.real_monotonic() - answer_started
        response = transport.last_response
        self._raise_for_status(doc, response, None)
        ext = result.extensions or {}
        complexity = ext.get("complexity") if isinstance(ext.get("complexity"), int) else None
        if gov is not None and permit is not None:
            gov.settle(permit, complexity)
        request_id = response.headers.get("X-Centra-Request-ID") if response is not None else None
        log.debug("graphql.call", op=doc.op_key, lane=lane, complexity=complexity, request_id=request_id,
                  ms=round((time.perf_counter() - started) * 1000, 1))
        if result.errors:
            self._raise_top_level(doc, result.errors)
        data = result.data or {}
        if reseed and gov is not None:
            gov.reseed(data.get("rateLimits") or [], at=sent_at)
        errors, warnings = _payload_messages(doc, data)
        used = ext.get("permissionsUsed")
        return GqlResult(data=data, complexity=complexity, user_errors=errors, user_warnings=warnings,
                         request_id=request_id,
                         permissions_used=tuple(str(p) for p in used) if isinstance(used, list) else ())

    def _raise_for_status(self, doc: Document, response: requests.Response | None, exc: Exception | None) -> None:
        if response is None:
            return
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = _short_body(response)
        if status == 429:
            now = self.clock.time()
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
            if self.governor is not None:
                retry_after = self.governor.on_rate_limited(retry_after)
            raise RateLimited(f"{doc.op_key}: 429 rate limited", retry_after=retry_after) from exc
        if status in (401, 403):
            raise AuthenticationFailed(f"Centra GraphQL rejected the token ({status})") from exc
        if status == 400 and _graphql_errors(response):
            # the server answered in GraphQL and refused the document itself
            raise SchemaMismatch(f"{doc.op_key}: HTTP 400: {detail}") from exc
        # 499, 5xx, 404, 418, 520 …: whatever it is, it is not a reason to stop the job
        raise _transient(doc, f"HTTP {status}: {detail}") from exc

    def _raise_top_level(self, doc: Document, errors: list[Any]) -> None:
        messages = []
        for err in errors:
            if not isinstance(err, Mapping):
                messages.append(str(err))
                continue
            ext = err.get("extensions") or {}
            category = str(ext.get("category", "")) if isinstance(ext, Mapping) else ""
            if category.lower().startswith("auth"):
                raise PermissionDenied(f"{doc.op_key}: {err.get('message', 'permission denied')}")
            message = str(err.get("message", err))
            if category.lower() in _SCHEMA_CATEGORIES or _SCHEMA_ERROR.search(message):
                raise SchemaMismatch(f"{doc.op_key}: {message}")
            messages.append(message)
        # an internal error or anything else the server could not do this time
        raise _transient(doc, "; ".join(messages))


def _transient(doc: Document, detail: str) -> RetryLater:
    """A fault retrying may cure: ``SourceUnavailable`` for a query, ``OutcomeUnknown`` for a
    mutation (it may have been applied: the caller reads back before sending it again)."""
    if doc.is_mutation:
        return OutcomeUnknown(f"mutation {doc.op_key}: {detail}")
    return SourceUnavailable(f"query {doc.op_key}: {detail}")


def _graphql_errors(response: requests.Response) -> bool:
    """True when the body is GraphQL JSON with an ``errors`` list (not a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and isinstance(body.get("errors"), list) and bool(body["errors"])


def _short_body(response: requests.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except (requests.RequestException, UnicodeDecodeError):  # pragma: no cover - defensive
        return ""
    return text[:limit].replace("\n", " ")


def _payload_messages(doc: Document, data: Mapping[str, Any]) -> tuple[list[UserError], list[PayloadWarning]]:
    errors: list[UserError] = []
    warnings: list[PayloadWarning] = []
    if not doc.is_mutation:
        return errors, warnings
    for key in doc.response_keys:
        payload = data.get(key)
        if not isinstance(payload, Mapping):
            continue
        for e in payload.get("userErrors") or []:
            errors.append(UserError(str(e.get("message", "")), tuple(e.get("path") or ()), key))
        for w in payload.get("userWarnings") or []:
            warnings.append(PayloadWarning(str(w.get("message", "")), tuple(w.get("path") or ()), key))
    return errors, warnings


