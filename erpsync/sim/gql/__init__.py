"""The GraphQL half of the Centra simulator (the Integration API with its quota).

SIM-CORE's HTTP server mounts ``GraphqlApp.handle`` at ``/graphql`` and merges ``inspect()`` into
``/_sim/state``. Complexity formula: ``erpsync.sim.gql.complexity``; quota: ``erpsync.sim.gql.quota``.
"""

from erpsync.sim.gql.app import GraphqlApp, contract_schema, contract_sdl
from erpsync.sim.gql.options import (
    ALL_PERMISSIONS,
    BUCKET_KEYS,
    DEFAULT_TOKEN,
    TIERS,
    GqlOptions,
)

__all__ = [
    "ALL_PERMISSIONS",
    "BUCKET_KEYS",
    "DEFAULT_TOKEN",
    "TIERS",
    "GqlOptions",
    "GraphqlApp",
    "contract_schema",
    "contract_sdl",
]
