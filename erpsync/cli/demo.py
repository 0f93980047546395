"""``erpsync demo``: the bundled sample ERP synced with an in-process Centra simulator (the demo
itself is ``erpsync.demo``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo")
@click.option("--timeout", "timeout_s", type=float, default=110.0, show_default=True,
              help="give up (exit 1) when the sample is not fully synced after this many seconds")
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), default=None,
              help="keep the demo database in this directory instead of a temporary one")
@click.option("--products", type=click.IntRange(0, 20_000), default=0, show_default=True,
              help="sync a generated catalogue of this many products instead of the bundled sample (0)")
def demo_cmd(timeout_s: float, keep_dir: str | None, products: int) -> None:
    """Sync the bundled sample ERP with an in-process Centra simulator; no config needed."""
    from erpsync.demo.run import demo_main

    sys.exit(demo_main(timeout_s=timeout_s, keep_dir=Path(keep_dir) if keep_dir else None, products=products))
