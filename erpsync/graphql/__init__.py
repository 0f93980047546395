"""Centra's GraphQL Integration API: the client (``CentraGraphql``) and the quota governor.

The names are loaded on first use (PEP 562), so importing a submodule such as
``erpsync.graphql.quota`` (the tier tables plan and config use) does not pull in gql and requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.graphql.client import CentraGraphql, GqlResult, PayloadWarning, RateLimitRow, UserError
    from erpsync.graphql.quota import LANES, Permit, QuotaGovernor, parse_retry_after

_WHERE = {
    "CentraGraphql": "client", "GqlResult": "client", "PayloadWarning": "client", "RateLimitRow": "client",
    "UserError": "client", "LANES": "quota", "Permit": "quota", "QuotaGovernor": "quota",
    "parse_retry_after": "quota",
}

__all__ = [
    "LANES",
    "CentraGraphql",
    "GqlResult",
    "PayloadWarning",
    "Permit",
    "QuotaGovernor",
    "RateLimitRow",
    "UserError",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
