"""``erpsync import | sample``: ERP master data into staging, and the sample catalogue.

Exit codes: 0 done; 65 (EX_DATAERR) when rows were rejected or a file could not be read (the valid
rows are loaded all the same); configuration and runtime errors as everywhere in the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from erpsync.cli.base import echo, open_engine

EXIT_DATAERR = 65
_SHOWN_PROBLEMS = 20


def _tty_progress() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(entity: str, source: str, rows: int) -> None:
        echo(f"\r{entity}: {source}: {rows:,} rows", nl=False, err=True)

    return show


@click.command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--entity", default=None,
              help="entity of every PATH (default: from each file name, e.g. products.csv, stock.jsonl)")
@click.option("--snapshot", "mode", flag_value="snapshot",
              help="the files are complete: rows absent from them are marked removed (see push.on_absent)")
@click.option("--incremental", "mode", flag_value="incremental", default=True,
              help="the files carry changes only (default); a 'removed' column marks rows gone")
@click.option("--from-sql", is_flag=True, help="read the [erp.sql] queries instead of files (snapshot by default)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.pass_obj
def import_cmd(obj: Any, paths: tuple[Path, ...], entity: str | None, mode: str, from_sql: bool,
               as_json: bool) -> None:
    """Load ERP master data (CSV / JSON Lines files, directories of them, or the SQL source) into
    staging. Invalid rows are reported with file, line and reason and parked; valid rows load."""
    from erpsync.erp.files import import_files
    from erpsync.erp.loader import StagingLoader
    from erpsync.erp.readers import ImportFileError
    from erpsync.erp.sql import SqlSource

    s = obj.settings(require_secrets=False)
    if from_sql == bool(paths):
        raise click.UsageError("give PATH… or --from-sql (not both)")
    engine = open_engine(obj)
    progress = _tty_progress()
    try:
        loader = StagingLoader(engine, progress=progress)
        if from_sql:
            source = SqlSource(s.erp.sql.url, s.erp.sql.queries, chunk_size=s.erp.sql.chunk_size)
            chosen = click.get_current_context().get_parameter_source("mode")
            sql_mode = "snapshot" if chosen is not None and chosen.name == "DEFAULT" else mode
            report = source.import_all(loader, mode=sql_mode,  # type: ignore[arg-type]
                                       entities=[entity] if entity else None)
        else:
            try:
                report = import_files(loader, list(paths), entity=entity, mode=mode)  # type: ignore[arg-type]
            except ImportFileError as exc:
                raise click.UsageError(str(exc)) from None
    finally:
        engine.dispose()
    if progress:
        echo("", err=True)
    if as_json:
        import json

        echo(json.dumps(report.as_dict(), indent=2))
    else:
        for e in report.entities:
            if e.error:
                echo(f"{e.entity}: NOT LOADED: {e.error}")
                continue
            line = f"{e.entity}: {e.loaded:,} loaded, {e.rejected:,} rejected"
            if e.mode == "snapshot":
                line += f", {e.removed:,} marked removed"
            echo(line)
            for p in e.problems[:_SHOWN_PROBLEMS]:
                echo(f"  {p}")
            if e.rejected > _SHOWN_PROBLEMS:
                echo(f"  … {e.rejected - _SHOWN_PROBLEMS:,} more (parked: kind=import)")
    if report.rejected or report.failed:
        click.get_current_context().exit(EXIT_DATAERR)


@click.group("sample")
def sample_group() -> None:
    """Sample ERP data: example files per entity and the generated acceptance catalogue."""


@sample_group.command("generate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--products", default=2_000, show_default=True, type=click.IntRange(1))
@click.option("--variants", default=3, show_default=True, type=click.IntRange(1, 99))
@click.option("--sizes", default=5, show_default=True, type=click.IntRange(1, 7))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--seed", default=20261123, show_default=True, type=int)
def sample_generate(directory: Path, products: int, variants: int, sizes: int, fmt: str, seed: int) -> None:
    """Write the deterministic sample catalogue (one file per entity) into DIRECTORY."""
    from erpsync.sample import Catalogue, generate

    written = generate(directory, Catalogue(products, variants, sizes, seed=seed), fmt=fmt)
    for entity, path in written.items():
        echo(f"{entity}: {path}")


@sample_group.command("path")
def sample_path() -> None:
    """Print the directory holding the small example files (one per entity)."""
    from erpsync.sample import EXAMPLES_DIR

    echo(str(EXAMPLES_DIR))


COMMANDS = (import_cmd, sample_group)
