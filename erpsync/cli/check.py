"""``erpsync check``: a live compatibility check against Centra (or the simulator)."""

from __future__ import annotations

import sys

import click

from erpsync.cli.base import Ctx, print_json


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@click.pass_obj
def check_cmd(obj: Ctx, as_json: bool) -> None:
    """Check that Centra and this configuration fit erpsync: SOAP login (a read that acknowledges
    nothing), rateLimits, the token's read permissions, the live GraphQL schema against every
    document erpsync sends, and the mapped warehouses and pricelists. A few requests, no mutation.
    Exit 0 when every row is ✔, 1 otherwise."""
    from erpsync.check import render_table, run_checks

    settings = obj.settings(require_secrets=False)
    rows = run_checks(settings)
    if as_json:
        print_json([{"check": r.name, "ok": r.ok, "detail": r.detail, "fix": r.fix} for r in rows])
    else:
        click.echo(render_table(rows))
    sys.exit(0 if all(r.ok for r in rows) else 1)
