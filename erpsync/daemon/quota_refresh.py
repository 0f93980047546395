"""The quota refresh job: read Centra's ``rateLimits`` and re-seed the shared quota buckets, so the
governor follows what Centra says even when other integrations spend the same quota."""

from __future__ import annotations

from typing import Any, Protocol

from erpsync.job import Job, RunContext


class RateLimitSource(Protocol):
    def rate_limits(self, *, reseed: bool = True) -> list[Any]: ...


class QuotaRefreshJob(Job):
    """``run.counts``: buckets (rows Centra reported). Summary: ``centra_left_pct``, the tightest bucket
    as Centra reports it for the whole shop (every integration); ``quota_left_pct`` is the governor's
    figure for erpsync's share, added to every job's summary line by the app."""

    name = "quota_refresh"

    def __init__(self, engine: Any, client: RateLimitSource, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.client = client
        self.left_pct: float | None = None

    def execute(self, run: RunContext) -> None:
        run.checkpoint()
        rows = self.client.rate_limits(reseed=True)
        run.counts["buckets"] = len(rows)
        fractions = [r.remaining / r.quota for r in rows if r.quota]
        self.left_pct = round(100 * min(fractions), 1) if fractions else None

    def summary_fields(self) -> dict[str, object]:
        return {"centra_left_pct": self.left_pct}
