"""What ``erpsync quota`` shows: the six buckets as the governor sees them (and as Centra does)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from erpsync.graphql.client import RateLimitRow
from erpsync.graphql.quota import BUCKETS, QuotaGovernor, bucket_name


def quota_report(governor: QuotaGovernor, remote: Sequence[RateLimitRow] | None = None) -> dict[str, Any]:
    """A JSON-able report: per bucket the server quota, erpsync's allowance (× share), its tokens
    now, and (with ``remote``) Centra's own ``usedQuota``/``remainingQuota``."""
    views, info = governor.snapshot()
    demand = governor.lane_demand()
    by_remote = {bucket_name(r.type, r.interval): r for r in remote or ()}
    buckets = []
    for v in views:
        row: dict[str, Any] = {
            "bucket": v.name,
            "quota": v.capacity,
            "allowance": round(v.allowance, 3),
            "tokens": round(v.tokens, 3),
            "used_pct": round(100.0 * (1 - v.tokens / v.allowance), 1) if v.allowance else None,
            "refill_per_second": round(v.refill_per_second, 6),
        }
        if v.name in by_remote:
            r = by_remote[v.name]
            row.update({"centra_quota": r.quota, "centra_used": r.used, "centra_remaining": r.remaining})
        buckets.append(row)
    last = info["last_refresh_at"]
    return {
        "share": governor.share,
        "lanes": {lane: f"priority {rank + 1}; demand now {demand.get(lane, {}).get('mutations', 0.0):g} mutations"
                  for lane, rank in governor.priority.items()},
        "buckets": buckets,
        "batch_sizes": governor.batch_sizes(),
        "blocked_for_seconds": round(info["blocked_for"], 3),
        "rate_limited_total": int(info["rate_limited_count"]),
        "last_refresh": datetime.fromtimestamp(last, UTC).isoformat() if last else None,
    }


def format_quota_report(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    remote = any("centra_remaining" in b for b in report["buckets"])
    head = ["bucket", "quota", f"erpsync×{report['share']:g}", "tokens now", "used", "refill/s"]
    if remote:
        head += ["centra used", "centra remaining"]
    rows = [head]
    order = {name: i for i, name in enumerate(BUCKETS)}
    for b in sorted(report["buckets"], key=lambda b: order[b["bucket"]]):
        row = [b["bucket"], f"{b['quota']:,}", f"{b['allowance']:,.0f}", f"{b['tokens']:,.1f}",
               f"{b['used_pct']}%", f"{b['refill_per_second']:g}"]
        if remote:
            row += [f"{b.get('centra_used', '-'):,}" if "centra_used" in b else "-",
                    f"{b.get('centra_remaining', '-'):,}" if "centra_remaining" in b else "-"]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.append("")
    sizes = report.get("batch_sizes") or {}
    if sizes:
        lines.append("learnt batch sizes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sizes.items())))
    blocked = report["blocked_for_seconds"]
    lines.append(f"blocked by Retry-After: {f'{blocked:g} s' if blocked else 'no'}; "
                 f"429s so far: {report['rate_limited_total']}; "
                 f"last rateLimits refresh: {report['last_refresh'] or 'never'}")
    return "\n".join(lines)
