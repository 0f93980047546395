"""Logging: structlog for erpsync, stdlib loggers (zeep, gql, apscheduler, sqlalchemy) routed in.

JSON lines on stderr (the CLI and the daemon pass ``sys.stderr``; stdout is for command output)
when not on a TTY (journald: one object per line, ``timestamp`` in UTC ISO-8601, ``level``,
``event``, ``logger``), a readable console renderer on a TTY.

Redaction lives here, in one place, for every channel (log lines, the CLI's error lines and JSON
output, ``job_run.error`` and parked reasons in the database, ``status``, ``/metrics``,
``config show``): ``scrub(text)`` removes every registered secret value (``register_secret``:
credentials, passwords taken out of every configured URL) wherever it appears, plus passwords
embedded in URLs (``user:pw@``, ``?password=``, ``&password=``), SOAP ``<password>`` elements and
bearer tokens; ``redact(obj)`` applies it to every string of a nested structure and blanks values
under secret-looking keys. The ``redact_secrets`` processor applies ``redact`` to every event dict.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "**********"
_SENSITIVE_KEYS = re.compile(r"pass(word)?|secret|token|authorization|credential|api[_-]?key", re.I)
_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+(?=@)", re.I)
#: a password as a URL query parameter (libpq / SQLAlchemy accept ``?password=``) or a DSN keyword
_QUERY_PASSWORD = re.compile(
    r"(?P<pre>[?&;](?:password|passwd|pwd|token|secret|api[_-]?key|access_token)=)[^&\s#;'\"]+", re.I)
_DSN_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?:'[^']*'|[^\s'\"]+)", re.I)
_XML_PASSWORD = re.compile(r"(<(?:[\w-]+:)?password>)[^<]*(</)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Make ``value`` unprintable in every log line from now on."""
    if value and len(value) >= 3:
        with _secrets_lock:
            _secrets.add(value)


def register_secrets(values: Iterable[str | None]) -> None:
    for v in values:
        register_secret(v)


def scrub(text: str) -> str:
    """``text`` with every secret replaced by ``**********`` (the one redaction function)."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + REDACTED, text)
    text = _QUERY_PASSWORD.sub(lambda m: m.group("pre") + REDACTED, text)
    text = _DSN_PASSWORD.sub(lambda m: m.group("pre") + REDACTED, text)
    text = _XML_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def _scrub_value(key: str | None, value: Any, by_key: bool = True) -> Any:
    if by_key and key is not None and _SENSITIVE_KEYS.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: _scrub_value(str(k), v, by_key) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub_value(None, v, by_key) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(repr(value))


def redact(value: Any, *, by_key: bool = False) -> Any:
    """``value`` (a string, or dicts/lists of them) with every secret value scrubbed; with
    ``by_key`` also every value under a key that names a secret (``password``, ``token``…) blanked.
    Numbers, booleans and None pass through; other objects become their scrubbed ``repr``."""
    return _scrub_value(None, value, by_key)


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    return {k: (_scrub_value(k, v) if k != "event" else _scrub_value(None, v)) for k, v in event_dict.items()}


def _add_logger_name(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    if "logger" not in event_dict:
        record = event_dict.get("_record")
        event_dict["logger"] = record.name if record is not None else getattr(logger, "name", "erpsync")
    return event_dict


class _Stream:
    """Write-through to whatever ``sys.stdout`` is at write time (pytest swaps it)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._fixed = stream

    def write(self, s: str) -> int:
        return (self._fixed or sys.stdout).write(s)

    def flush(self) -> None:
        (self._fixed or sys.stdout).flush()


#: syslog priorities for journald's ``<N>`` line prefix (SyslogLevelPrefix=yes, the default)
_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}


class _JournaldJSON:
    """JSON line with a ``<N>`` prefix: journald strips it and keeps the level as PRIORITY, so
    ``journalctl -p err`` works; the stored MESSAGE is the plain JSON object."""

    def __init__(self) -> None:
        self._json = structlog.processors.JSONRenderer(default=str)

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        prio = _PRIORITY.get(str(event_dict.get("level", "info")).lower(), 6)
        line = self._json(logger, name, event_dict)
        return f"<{prio}>" + (line.decode() if isinstance(line, bytes) else line)


def _is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when ``stream`` is the journald stream systemd connected (``$JOURNAL_STREAM`` is
    ``<device>:<inode>`` of it; an inherited variable with another stream does not count)."""
    expected = environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def configure_logging(
    level: str = "INFO",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str | None] = (),
    environ: Mapping[str, str] | None = None,
) -> None:
    """Set up structlog and the stdlib root logger. Safe to call more than once.

    When the stream is systemd's journal stream, JSON lines carry journald's ``<N>`` priority prefix.
    """
    for s in secrets:
        register_secret(s)
    out = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    under_journald = _is_journal_stream(out, os.environ if environ is None else environ)
    renderer: Processor = (
        (_JournaldJSON() if under_journald else structlog.processors.JSONRenderer(default=str))
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_secrets, renderer],
    )
    handler = logging.StreamHandler(_Stream(stream))  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_erpsync", False):
            root.removeHandler(h)
    handler._erpsync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # chatty libraries: their INFO is noise for operators, DEBUG only when asked
    for noisy in ("zeep", "gql", "urllib3", "sqlalchemy.engine", "apscheduler"):
        logging.getLogger(noisy).setLevel(level if level == "DEBUG" else "WARNING")
    # SQLAlchemy's DEBUG logs every result row (customer e-mails, addresses): statements at most;
    # their bound values are hidden by the engines (``hide_parameters``)
    if level == "DEBUG":
        logging.getLogger("sqlalchemy.engine").setLevel("INFO")


def get_logger(name: str = "erpsync") -> Any:
    return structlog.stdlib.get_logger(name)
