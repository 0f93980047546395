"""The HTTP layer under zeep: pooled ``requests`` session, connect/read timeouts plus a total
deadline per operation, and every transport failure classified into erpsync's errors *before*
zeep sees the body (zeep loses the status code of a 503 with an HTML body; see STACK-NOTES).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from zeep.transports import Transport

from erpsync.errors import AuthenticationFailed, RateLimited, SourceUnavailable, describe_os_error
from erpsync.logs import get_logger

log = get_logger("erpsync.soap")

_CHUNK = 64 * 1024


def make_session(pool_size: int = 4) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds, a Unix timestamp or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None
    return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)


def _read_body(response: requests.Response, deadline: float, op: str, total: float) -> bytes:
    """The whole body, or ``SourceUnavailable`` once ``deadline`` has passed. ``read1`` returns what
    one socket read brought (``iter_content(n)`` blocks until ``n`` bytes: a server dripping a byte
    at a time would never reach the deadline check)."""
    raw = response.raw
    if not hasattr(raw, "read1"):  # not urllib3 underneath (a test double): no socket to watch
        return b"".join(response.iter_content(_CHUNK))
    chunks: list[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise SourceUnavailable(f"{op}: no complete answer within {total:g}s (operation timeout)")
        try:
            chunk = raw.read1(_CHUNK, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
            raise requests.exceptions.ConnectionError(str(exc)) from exc
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class ClassifyingTransport(Transport):
    """zeep ``Transport`` whose ``post`` enforces timeouts and classifies failures.

    - connect/read timeouts go to requests per socket operation; ``operation_timeout`` is a total
      deadline for receiving the whole body (a slow drip is cut off);
    - refused / reset / timed out / truncated → ``SourceUnavailable`` (retriable);
    - 429 → ``RateLimited`` with ``retry_after``; 401/403 → ``AuthenticationFailed`` (fatal);
      any other non-2xx without a SOAP Fault body (5xx, 408, 499, 520, 418, a proxy's 404 page …)
      → ``SourceUnavailable``: an unexpected status is never fatal (docs/operations.md, failure policy).
    A 500 carrying a SOAP Fault is returned as is: the caller reads the fault.
    The request body is never logged here (it carries the password).
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        connect_timeout: float,
        read_timeout: float,
        operation_timeout: float,
    ) -> None:
        super().__init__(session=session, timeout=connect_timeout + read_timeout,
                         operation_timeout=operation_timeout)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = operation_timeout

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        op = headers.get("SOAPAction", "").strip('"').rpartition("/")[2] or "?"
        t0 = time.monotonic()
        deadline = t0 + self.total_timeout
        try:
            response = self.session.post(
                address, data=message, headers=headers,
                timeout=(self.connect_timeout, self.read_timeout), stream=True)
            try:
                response._content = _read_body(response, deadline, op, self.total_timeout)
            finally:
                response.close()
        except requests.exceptions.Timeout as exc:
            raise SourceUnavailable(f"{op}: Centra SOAP {describe_os_error(exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise SourceUnavailable(f"{op}: cannot reach Centra SOAP: {describe_os_error(exc)}") from exc
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise SourceUnavailable(f"{op}: HTTP error talking to Centra SOAP: {describe_os_error(exc)}") from exc
        status = response.status_code
        log.info(
            "soap.call", op=op, status=status, duration_ms=round((time.monotonic() - t0) * 1000, 1),
            bytes=len(response.content),
            request_id=response.headers.get("X-Centra-Request-ID"),
            correlation_id=response.headers.get("X-Correlation-ID"),
        )
        head = response.content[:4096]
        if status not in (408, 429) and status < 500 and b"Envelope" not in head:
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
            if "xml" not in ctype or not head.strip():
                # e.g. centra.soap.url pointing at the GraphQL endpoint or a web page: not a login problem.
                # Transient all the same (a proxy's error page looks the same): retried, and said clearly
                raise SourceUnavailable(
                    f"{op}: {address.rpartition('@')[2] if '@' in address else address} answered HTTP {status} "
                    f"with {ctype}, not SOAP: is centra.soap.url Centra's SOAP endpoint (…/soap/api)?")
        if 200 <= status < 300:
            return response
        looks_like_fault = b"Fault" in response.content[:4096] and b"Envelope" in response.content[:4096]
        if status == 429:
            raise RateLimited(f"{op}: HTTP 429 from Centra SOAP",
                              retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()))
        if status == 500 and looks_like_fault:
            return response
        if looks_like_fault and status < 500:
            return response
        if status in (401, 403):
            raise AuthenticationFailed(f"{op}: HTTP {status} from Centra SOAP: check the username and password "
                                       "(centra.soap.username and the SOAP password)")
        # 5xx, 408, 499, 520, 418, a proxy's page …: whatever it is, a later call may succeed
        raise SourceUnavailable(
            f"{op}: HTTP {status} from Centra SOAP",
            retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()))
