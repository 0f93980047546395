"""Readers for the files ERPs export: CSV (header row; ``,`` ``;`` or tab, detected from the header;
UTF-8 with or without BOM) and JSON Lines (one object per line, numbers read as Decimal).

A reader yields ``(line, row)``: ``row`` is the raw mapping, or a ``RowError`` when the line
itself is unreadable (bad JSON, wrong column count). A file that cannot be read at all (missing
required columns, not UTF-8) raises ``ImportFileError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from erpsync.erp.layouts import Layout, RowError

SourceRow = tuple[int, Mapping[str, Any] | RowError]


class ImportFileError(Exception):
    """The whole file cannot be imported (nothing of it is loaded)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise ImportFileError(str(path), "unknown file type (expected .csv, .tsv, .jsonl or .ndjson)")


def read_file(path: Path, layout: Layout) -> Iterator[SourceRow]:
    fmt = file_format(path)
    return read_csv(path, layout) if fmt == "csv" else read_jsonl(path)


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path, layout: Layout) -> Iterator[SourceRow]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot open: {exc.strerror or exc}") from None
    with fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError:
            raise ImportFileError(str(path), "not UTF-8 text") from None
        if not first.strip():
            raise ImportFileError(str(path), "empty file (a header row is required)")
        delim = _delimiter(first)
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delim))]
        missing = [c for c in layout.required if c not in header]
        if missing:
            raise ImportFileError(str(path), f"missing required column(s) {', '.join(missing)} in the header "
                                             f"(layout of {layout.entity}: {', '.join(layout.names)})")
        reader = csv.reader(fh, delimiter=delim)
        width = len(header)
        line = 1
        try:
            for fields in reader:
                start, line = line + 1, reader.line_num + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != width:
                    yield start, RowError(f"expected {width} columns, got {len(fields)}")
                    continue
                yield start, dict(zip(header, fields, strict=True))
        except UnicodeDecodeError:
            raise ImportFileError(str(path), f"not UTF-8 text (after line {line})") from None
        except csv.Error as exc:
            raise ImportFileError(str(path), f"unreadable CSV after line {line}: {exc}") from None


def read_jsonl(path: Path) -> Iterator[SourceRow]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot open: {exc.strerror or exc}") from None
    with fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8-sig" if line == 1 else "utf-8"), parse_float=Decimal)
            except UnicodeDecodeError:
                yield line, RowError("not UTF-8 text")
                continue
            except ValueError as exc:
                yield line, RowError(f"invalid JSON: {exc}")
                continue
            if not isinstance(obj, dict):
                yield line, RowError(f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield line, {str(k).lower(): v for k, v in obj.items()}
