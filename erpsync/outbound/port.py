"""The push jobs' ``CentraPort`` over the QUOTA engineer's ``CentraGraphql`` client.

``GraphqlPort(client)`` returns each response's ``data`` (payload ``userErrors`` stay inside it,
where the jobs read them per mutation); the client's errors pass through unchanged.
``centra_port(settings, engine, clock)`` builds the client with the quota governor whose state is
kept in the database (so every erpsync process spends one budget), for ``erpsync push`` and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from erpsync.clock import Clock
from erpsync.config import Settings
from erpsync.errors import ConfigError, ConfigProblem
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import QuotaGovernor
from erpsync.store.quota_repo import SqlQuotaStore


class GraphqlPort:
    """Adapts ``CentraGraphql`` (``GqlResult``) to ``push_base.CentraPort`` (``data``)."""

    def __init__(self, client: CentraGraphql) -> None:
        self.client = client

    def query(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        return self.client.query(document, dict(variables), lane=lane).data

    def mutate(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        return self.client.mutate(document, dict(variables), lane=lane).data

    def answer_seconds(self) -> float | None:
        """Real seconds Centra took to answer this thread's last call (quota waits excluded)."""
        return self.client.answer_seconds()

    def size_store(self) -> QuotaGovernor | None:
        """Where learnt batch sizes are kept: the governor's shared state."""
        return self.client.governor

    def declare_backlog(self, lane: str, mutations: int) -> None:
        """The lane's ready mutations, for the quota governor's lane reserves."""
        if self.client.governor is not None:
            self.client.governor.declare_backlog(lane, mutations)

    def mutation_allowance(self) -> float | None:
        """erpsync's hourly mutation allowance per second (the governor's refill of ``mutations_1h``:
        the share, lowered when other integrations were seen to spend more than theirs)."""
        governor = self.client.governor
        if governor is None:
            return None
        views, _info = governor.snapshot()
        return next((v.refill_per_second for v in views if v.name == "mutations_1h"), None)

    def close(self) -> None:
        self.client.close()


def centra_port(settings: Settings, engine: Engine, clock: Clock, *, governor: QuotaGovernor | None = None,
                ) -> GraphqlPort:
    """The port for ``settings.centra.graphql``, governed by the shared (database) quota."""
    gql = settings.centra.graphql
    if gql is None:
        raise ConfigError([ConfigProblem("centra.graphql", "pushing needs a [centra.graphql] section",
                                         "configuration")])
    if gql.token is None:
        raise ConfigError([ConfigProblem("centra.graphql.token", "missing: set ERPSYNC_CENTRA_GRAPHQL_TOKEN",
                                         "environment")])
    gov = governor or QuotaGovernor.from_settings(settings.quota, clock=clock, store=SqlQuotaStore(engine))
    client = CentraGraphql(gql.url, gql.token, governor=gov, clock=clock,
                           connect_timeout=gql.connect_timeout, read_timeout=gql.read_timeout)
    return GraphqlPort(client)
