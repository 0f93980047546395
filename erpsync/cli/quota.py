"""``erpsync quota``: the six buckets as the governor sees them, and (``--remote``) as Centra does."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from erpsync.cli.base import echo
from erpsync.errors import ConfigError, ConfigProblem


@click.command("quota")
@click.option("--remote", is_flag=True,
              help="also read Centra's rateLimits (costs one request; corrects the governor when it is lower)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def quota_cmd(obj: Any, remote: bool, as_json: bool) -> None:
    """Show the GraphQL quota: per bucket the quota, erpsync's share, its tokens now, 429s, blocks."""
    from erpsync.clock import clock_from_environ
    from erpsync.graphql.client import CentraGraphql
    from erpsync.graphql.quota import QuotaGovernor
    from erpsync.graphql.report import format_quota_report, quota_report
    from erpsync.store.engine import make_engine
    from erpsync.store.quota_repo import SqlQuotaStore

    settings = obj.settings(require_secrets=False)
    clock = clock_from_environ(os.environ)
    engine = make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    try:
        governor = QuotaGovernor.from_settings(settings.quota, clock=clock, store=SqlQuotaStore(engine))
        rows = None
        if remote:
            gql = settings.centra.graphql
            if gql is None:
                raise ConfigError([ConfigProblem("centra.graphql", "--remote needs a [centra.graphql] section",
                                                 "configuration")])
            if gql.token is None:
                raise ConfigError([ConfigProblem("centra.graphql.token",
                                                 "missing: set ERPSYNC_CENTRA_GRAPHQL_TOKEN", "environment")])
            with CentraGraphql(gql.url, gql.token, governor=governor, clock=clock,
                               connect_timeout=gql.connect_timeout, read_timeout=gql.read_timeout) as client:
                rows = client.rate_limits()
        report = quota_report(governor, rows)
    finally:  # a database down (75) or without the schema (2): erpsync.cli.base.translate says which
        engine.dispose()
    if as_json:
        echo(json.dumps(report, indent=2))
    else:
        echo(format_quota_report(report))
