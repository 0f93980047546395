"""The scheduled import from the ERP's database (``[erp.sql]``) as a job the daemon can run.

Each run reads every configured query as a full snapshot into staging (see ``erp/loader.py``),
one entity per transaction, checking for shutdown between entities. Counts per run:
``<entity>_loaded``, ``<entity>_rejected``, ``<entity>_removed``. An unreachable ERP database is
``SourceUnavailable`` (the run is retried later); a failing query is ``JobFailed``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from erpsync.config import ErpSqlSettings
from erpsync.erp.layouts import ENTITY_ORDER
from erpsync.erp.loader import Mode, StagingLoader
from erpsync.erp.sql import SqlSource, source_engine
from erpsync.job import Job, RunContext


class SqlImportJob(Job):
    name = "import_sql"

    def __init__(self, engine: Engine, sql: ErpSqlSettings, *, mode: Mode = "snapshot", **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.source = SqlSource(sql.url, sql.queries, chunk_size=sql.chunk_size)
        self.mode: Mode = mode

    def execute(self, run: RunContext) -> None:
        loader = StagingLoader(self.engine, clock=self.clock)
        erp = source_engine(self.source.url)
        try:
            for entity in ENTITY_ORDER:
                if entity not in self.source.queries:
                    continue
                run.checkpoint()
                report = loader.load(entity, [(f"sql:{entity}", self.source.rows(erp, entity))], mode=self.mode)
                run.counts[f"{entity}_loaded"] += report.loaded
                run.counts[f"{entity}_rejected"] += report.rejected
                run.counts[f"{entity}_removed"] += report.removed
        finally:
            erp.dispose()
