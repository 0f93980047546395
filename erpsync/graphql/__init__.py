"""Centra's GraphQL Integration API: the client (``CentraGraphql``) and the quota governor."""

from erpsync.graphql.client import CentraGraphql, GqlResult, PayloadWarning, RateLimitRow, UserError
from erpsync.graphql.quota import LANES, Permit, QuotaGovernor, parse_retry_after

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
