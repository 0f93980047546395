"""The SQL source: a SQLAlchemy URL (``[erp.sql] url``) and one query per entity (``[erp.sql.queries]``,
typically views in the ERP's own database) whose result columns use the entity's layout names.

Each query is read in streaming chunks of ``chunk_size`` rows (a server-side cursor on
PostgreSQL) and fed to the same ``StagingLoader`` as the files, so validation, parking and
snapshot semantics are identical; the "line" of a problem is the row's ordinal in the result.
The source engine is the ERP's, opened read-only in spirit: erpsync never writes to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from erpsync.config import redact_url
from erpsync.erp.layouts import ENTITY_ORDER, entity_for
from erpsync.erp.loader import ImportReport, Mode, StagingLoader
from erpsync.erp.readers import SourceRow
from erpsync.errors import JobFailed, SourceUnavailable


def source_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)  # ERP rows stay out of the log


class SqlSource:
    def __init__(self, url: str, queries: Mapping[str, str], *, chunk_size: int = 5_000) -> None:
        if not url:
            raise JobFailed("erp.sql.url is not configured")
        self.url = url
        self.chunk_size = chunk_size
        self.queries: dict[str, str] = {}
        for name, query in queries.items():
            entity = entity_for(name)
            if entity is None:
                raise JobFailed(f"erp.sql.queries.{name}: unknown entity (expected one of {', '.join(ENTITY_ORDER)})")
            self.queries[entity] = query

    def rows(self, engine: Engine, entity: str) -> Iterator[SourceRow]:
        """Stream the rows of ``entity``'s query as ``(ordinal, {column: value})``.

        Cannot connect, or the connection drops: ``SourceUnavailable`` (retry later). The query
        itself fails (no such view, bad SQL): ``JobFailed`` (an operator must fix the config).
        """
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise SourceUnavailable(f"ERP database {redact_url(self.url)} unreachable: {exc.orig}") from exc
        with conn:
            try:
                result = conn.execution_options(stream_results=True, yield_per=self.chunk_size).execute(
                    text(self.queries[entity]))
                names = [str(k).lower() for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
                for n, row in enumerate(result, start=1):
                    yield n, dict(zip(names, row, strict=True))
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise SourceUnavailable(
                        f"ERP database {redact_url(self.url)} connection lost: {exc.orig}") from exc
                raise JobFailed(f"erp.sql.queries.{entity} failed: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                raise JobFailed(f"erp.sql.queries.{entity} failed: {exc}") from exc

    def import_all(
        self, loader: StagingLoader, *, mode: Mode = "snapshot", entities: list[str] | None = None,
    ) -> ImportReport:
        """Run every configured query (or ``entities``) in dependency order into staging."""
        wanted = [e for e in ENTITY_ORDER if e in self.queries and (entities is None or e in entities)]
        report = ImportReport()
        engine = source_engine(self.url)
        try:
            for entity in wanted:
                source: Any = f"sql:{entity}"
                report.entities.append(loader.load(entity, [(source, self.rows(engine, entity))], mode=mode))
        finally:
            engine.dispose()
        return report
