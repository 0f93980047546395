"""Readers for the files ERPs export: CSV (header row; ``,`` ``;`` or tab, detected from the header;
UTF-8 with or without BOM), JSON Lines (one object per line, numbers read as Decimal) and, for a
``.json`` file whose first character is ``[``, a JSON array of objects (line = the array element's
line in the file).

A CSV field longer than ``FIELD_LIMIT`` bytes rejects its row (the rest of the file loads).

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

#: The longest CSV field accepted (bytes, UTF-8): the csv module's default limit. A longer field
#: rejects its row, not the file.
FIELD_LIMIT = 131_072
#: How far the csv module reads one field before giving up (characters). Beyond FIELD_LIMIT the
#: row is read whole so that the next row starts where it should, then rejected.
_READ_LIMIT = 64 * 1024 * 1024


class ImportFileError(Exception):
    """The whole file cannot be imported (nothing of it is loaded)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def json_number(text: str) -> Decimal | str:
    """A JSON number with a fraction as Decimal; one in exponent notation (``1e3``) stays text, so
    that the layout rejects it like the same text in a CSV (numbers are plain decimals)."""
    return text if "e" in text or "E" in text else Decimal(text)


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise ImportFileError(str(path), "unknown file type (expected .csv, .tsv, .jsonl or .ndjson)")


def read_file(path: Path, layout: Layout) -> Iterator[SourceRow]:
    fmt = file_format(path)
    if fmt == "csv":
        return read_csv(path, layout)
    if path.suffix.lower() == ".json" and _starts_with(path, b"["):
        return read_json_array(path)
    return read_jsonl(path)


def _starts_with(path: Path, char: bytes) -> bool:
    """Whether the file's first non-blank byte (after a UTF-8 BOM) is ``char``."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot open: {exc.strerror or exc}") from None
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(char)


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
        if csv.field_size_limit() < _READ_LIMIT:
            csv.field_size_limit(_READ_LIMIT)
        reader = csv.reader(fh, delimiter=delim)
        width = len(header)
        line = 1
        try:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if "field larger than field limit" not in str(exc):
                        raise
                    start, line = line + 1, reader.line_num + 1
                    yield start, RowError(f"a field is longer than {_READ_LIMIT:,} characters (limit "
                                          f"{FIELD_LIMIT:,} bytes)")
                    continue
                start, line = line + 1, reader.line_num + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != width:
                    yield start, RowError(f"expected {width} columns, got {len(fields)}")
                    continue
                long = next((name for name, f in zip(header, fields, strict=True)
                             if len(f) > FIELD_LIMIT // 4 and len(f.encode("utf-8")) > FIELD_LIMIT), None)
                if long is not None:
                    size = len(dict(zip(header, fields, strict=True))[long].encode("utf-8"))
                    yield start, RowError(f"{long}: field of {size:,} bytes is longer than the "
                                          f"{FIELD_LIMIT:,}-byte limit")
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
                obj = json.loads(raw.decode("utf-8-sig" if line == 1 else "utf-8"), parse_float=json_number)
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


def read_json_array(path: Path) -> Iterator[SourceRow]:
    """A ``.json`` file holding one JSON array of objects. The file is parsed whole (it is one
    document); an element that is not an object is a row error, a file that is not valid JSON an
    ``ImportFileError`` naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot open: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(str(path), "not UTF-8 text") from None
    decoder = json.JSONDecoder(parse_float=json_number)
    pos = len(text) - len(text.lstrip())
    if not text.startswith("[", pos):
        raise ImportFileError(str(path), "expected a JSON array")
    pos += 1
    line_at = _LineCounter(text)
    while True:
        pos = _skip_ws(text, pos)
        if text.startswith("]", pos):
            break
        line = line_at(pos)
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportFileError(str(path), f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                             f"{exc.msg}") from None
        if isinstance(obj, dict):
            yield line, {str(k).lower(): v for k, v in obj.items()}
        else:
            yield line, RowError(f"expected a JSON object, got {type(obj).__name__}")
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            raise ImportFileError(str(path), f"invalid JSON at line {line_at(pos)}: expected ',' or ']'")
    if text[pos + 1:].strip():
        raise ImportFileError(str(path), f"invalid JSON at line {line_at(pos + 1)}: extra data after the array")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


class _LineCounter:
    """Line number (1-based) of a character offset; offsets are asked in increasing order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def __call__(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line
