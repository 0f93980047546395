"""``erpsync config check|show``: validate the configuration, print the effective one."""

from __future__ import annotations

import click

from erpsync.cli.base import Ctx, echo, print_json
from erpsync.config import redacted_dump


@click.group("config")
def config_group() -> None:
    """Validate or show the configuration."""


@config_group.command("check")
@click.option("--require-secrets", is_flag=True,
              help="also fail when the SOAP password or GraphQL token is not available")
@click.pass_obj
def config_check(obj: Ctx, require_secrets: bool) -> None:
    """Validate the config file and environment overrides; exit non-zero listing every problem.

    Secrets are looked up too; their absence is a warning unless --require-secrets (the commands
    that talk to Centra always require them).
    """
    from erpsync.config import file_permission_warnings

    settings = obj.settings(require_secrets=require_secrets)
    for problem in settings.missing_secrets():
        echo(f"warning: {problem}", err=True)
    for warning in file_permission_warnings(obj.config_path):
        echo(f"warning: {warning}", err=True)
    for warning in settings.deprecations():
        echo(f"warning: {warning}", err=True)
    echo(f"configuration OK: {obj.config_path}")
    from erpsync.app import default_jobs, jobs_off

    echo("jobs enabled: " + ", ".join(default_jobs(settings)))
    for job, why in jobs_off(settings).items():
        echo(f"job off: {job} ({why})")


@config_group.command("show")
@click.pass_obj
def config_show(obj: Ctx) -> None:
    """Print the effective configuration (file + environment + defaults), secrets redacted."""
    print_json(redacted_dump(obj.settings(require_secrets=False)))
