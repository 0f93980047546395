"""``erpsync import PATH…``: the files ERPs export, one entity per file.

The entity comes from ``--entity`` or from the file name (``products.csv``, ``stock-20261123.jsonl``,
see ``layouts.ALIASES``); a directory stands for the recognisable files in it. Entities are loaded
in dependency order (size charts, products, variants, sizes, pricelists, prices, stock) so a row
may refer to rows of an earlier entity in the same import; all files of one entity are loaded in
one transaction (``StagingLoader``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from erpsync.erp.layouts import ENTITY_ORDER, LAYOUTS, entity_for
from erpsync.erp.loader import EntityReport, ImportReport, Mode, StagingLoader
from erpsync.erp.readers import ImportFileError, SourceRow, file_format, read_file


def _expand(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and entity_for(child.name) is not None and _known_format(child):
                    yield child
        else:
            yield path


def _known_format(path: Path) -> bool:
    try:
        file_format(path)
    except ImportFileError:
        return False
    return True


def plan_files(paths: Sequence[Path], entity: str | None = None) -> dict[str, list[Path]]:
    """entity -> files, in load order. Raises ``ImportFileError`` for a file of unknown entity."""
    if entity is not None and entity_for(entity) is None:
        raise ImportFileError(entity, f"unknown entity (expected one of {', '.join(ENTITY_ORDER)})")
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in _expand(paths):
        if not path.exists():
            raise ImportFileError(str(path), "no such file or directory")
        name = entity_for(entity) if entity else entity_for(path.name)
        if name is None:
            raise ImportFileError(str(path), "cannot tell the entity from the file name: name it after the "
                                             f"entity ({', '.join(ENTITY_ORDER)}) or pass --entity")
        groups[name].append(path)
    return {e: groups[e] for e in ENTITY_ORDER if e in groups}


def _rows(path: Path, entity: str) -> Iterator[SourceRow]:
    if not path.is_file():
        raise ImportFileError(str(path), "no such file")
    yield from read_file(path, LAYOUTS[entity])


def import_files(
    loader: StagingLoader, paths: Sequence[Path], *, entity: str | None = None, mode: Mode = "incremental",
) -> ImportReport:
    """Import ``paths``; invalid rows are reported and parked, never blocking the valid ones."""
    report = ImportReport()
    for name, files in plan_files(paths, entity).items():
        sources = [(str(p), _rows(p, name)) for p in files]
        entity_report: EntityReport = loader.load(name, sources, mode=mode)
        report.entities.append(entity_report)
    return report
