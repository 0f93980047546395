"""erpsync's error classes, named by what the caller should do next.

- ``RetryLater``: a transient fault (network, 5xx, 429, lock): try again with backoff.
- ``JobFailed``: the job cannot go on (bad credentials, schema mismatch): stop it and alert.
- ``ItemRejected``: this one item is bad: park it with the reason and go on with the rest.
- ``ConfigError``: the configuration is invalid; carries every problem at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class ErpsyncError(Exception):
    """Root of every error erpsync raises on purpose."""


class RetryLater(ErpsyncError):
    """Transient: the same call may succeed later. ``retry_after`` is seconds, if the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(RetryLater):
    """Centra (or the ERP source) could not be reached or answered with a server fault."""


class MalformedResponse(SourceUnavailable):
    """The answer could not be parsed (not well-formed, not the expected shape). Retriable; when the
    same ``body`` keeps coming back, ``salvage()`` (if the adapter offers it) returns what can be
    read of it, item by item, the unreadable items marked to be parked."""

    def __init__(self, message: str, *, body: bytes,
                 salvage: Callable[[], Sequence[Any]] | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.salvage = salvage

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class DatabaseUnavailable(RetryLater):
    """The database could not be reached: try again later (exit 75; systemd starts erpsync again)."""


class RateLimited(RetryLater):
    """HTTP 429: the quota is spent; nothing may be sent before ``retry_after``."""


class OutcomeUnknown(RetryLater):
    """The request may or may not have been applied (timeout after send, 499, 5xx on a mutation).

    Retrying a non-idempotent call blindly would risk a duplicate: read back first.
    """


class JobFailed(ErpsyncError):
    """Fatal for the job: retrying will not help until an operator acts."""


class AuthenticationFailed(JobFailed):
    """Login or token rejected."""


class PermissionDenied(JobFailed):
    """The token lacks a permission the job needs."""


class SchemaMismatch(JobFailed):
    """The database schema or the remote API does not match what this version expects."""


class ProtocolError(JobFailed):
    """The peer answered something the contract does not allow and retrying will not fix."""


class ItemRejected(ErpsyncError):
    """This item is bad; park it with ``reason`` and continue with the others."""

    def __init__(self, reason: str, *, item_key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.item_key = item_key


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


class ConfigError(ErpsyncError):
    """The configuration is invalid; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def describe_os_error(exc: BaseException) -> str:
    """One line naming the cause of a network or file error found anywhere in ``exc``'s chain (its
    ``__cause__``/``__context__``, urllib3's ``reason``, requests' ``args``): DNS, refused, TLS,
    timeout, reset, disk full, permission; with the host or file when known."""
    import errno
    import socket
    import ssl

    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        cur = todo.pop(0)
        if not isinstance(cur, BaseException) or any(cur is s for s in seen) or len(seen) > 20:
            continue
        seen.append(cur)
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *getattr(cur, "args", ())]
    host = next((h for e in seen for h in [_host_of(e)] if h), "")
    at = f" ({host})" if host else ""
    for e in seen:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return f"DNS lookup failed{at}: the host name does not resolve"
    for e in seen:
        if isinstance(e, ssl.SSLError) or type(e).__name__ in ("SSLError", "SSLCertVerificationError"):
            return f"TLS handshake failed{at}: {_first_line(e)}"
    for e in seen:
        if isinstance(e, ConnectionRefusedError):
            return f"connection refused{at}: nothing listens there"
    for e in seen:
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return f"timed out{at}"
    for e in seen:
        if isinstance(e, ConnectionResetError) or type(e).__name__ in ("RemoteDisconnected", "ProtocolError"):
            return f"connection reset{at}"
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return f"disk full{f' ({e.filename})' if e.filename else ''}: {_first_line(e)}"
        if isinstance(e, PermissionError):
            return f"permission denied{f' ({e.filename})' if e.filename else ''}"
    return f"{type(exc).__name__}: {_first_line(exc)}{at}"


def _host_of(exc: BaseException) -> str:
    attrs = getattr(exc, "__dict__", {})  # urllib3: `conn` / `pool` (never its deprecated properties)
    pool = attrs.get("conn") or attrs.get("pool")
    host, port = getattr(pool, "host", None), getattr(pool, "port", None)
    if host:
        return f"{host}:{port}" if port else str(host)
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if isinstance(url, str) and "://" in url:
        return url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
