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
