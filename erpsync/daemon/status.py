"""``erpsync status``: what the database says about the daemon, its jobs and the sync state.

Read-only. Per job: last run, its outcome and counts, last success, next run (as reported by the
live leader's ``daemon_instance`` row). Then the instances (leader / standbys / dead), the inbox
backlog, open parked items, outbound items and the quota buckets — the same figures ``/metrics``
exports, from the same queries.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from erpsync.daemon.metrics import DEFAULT_QUOTA_SHARE, store_figures
from erpsync.store.daemon_state import DaemonInstance
from erpsync.store.models import JobRun

#: an instance whose heartbeat is older than this is reported as gone
INSTANCE_STALE_AFTER = timedelta(seconds=60)


def collect_status(engine: Engine, now: datetime, job_names: list[str], *,
                   quota_share: float = DEFAULT_QUOTA_SHARE) -> dict[str, Any]:
    with Session(engine) as s:
        latest_ids = select(func.max(JobRun.id)).group_by(JobRun.job)
        last_runs = {r.job: r for r in s.exec(select(JobRun).where(  # type: ignore[call-overload]
            col(JobRun.id).in_(latest_ids))).scalars()}
        last_ok: dict[str, datetime] = dict(s.exec(select(JobRun.job, func.max(JobRun.started_at)).where(  # type: ignore[call-overload]
            JobRun.outcome == "ok").group_by(JobRun.job)).all())
        instances = list(s.exec(select(DaemonInstance).order_by(  # type: ignore[call-overload]
            col(DaemonInstance.heartbeat_at).desc())).scalars())
    live = [i for i in instances if _aware(i.heartbeat_at) >= now - INSTANCE_STALE_AFTER and i.state != "stopped"]
    leader = next((i for i in live if i.role in ("leader", "single")), None)
    names = list(dict.fromkeys([*job_names, *sorted(last_runs)]))
    jobs: dict[str, Any] = {}
    for name in names:
        run = last_runs.get(name)
        sched = (leader.jobs or {}).get(name, {}) if leader else {}
        jobs[name] = {
            "last_run": _iso(run.started_at) if run else None,
            "outcome": run.outcome if run else None,
            "duration_s": (round((_aware(run.finished_at) - _aware(run.started_at)).total_seconds(), 3)
                           if run and run.finished_at else None),
            "counts": (run.counts or {}) if run else {},
            "error": run.error if run else None,
            "last_success": _iso(last_ok[name]) if name in last_ok else None,
            "next_run": sched.get("next_run"),
            "enabled": sched.get("enabled", True) if leader else None,
            "disabled_reason": sched.get("disabled_reason"),
        }
    figures = store_figures(engine, quota_share=quota_share, quota_now=now.timestamp())
    return {
        "now": now.isoformat(),
        "daemon": {
            "running": leader is not None,
            "leader": _instance(leader) if leader else None,
            # another live row claiming leadership is a leader that died (kill -9) less than
            # INSTANCE_STALE_AFTER ago and was replaced: not a standby
            "standbys": [_instance(i) for i in live if i is not leader and i.role not in ("leader", "single")],
        },
        "jobs": jobs,
        "inbox_backlog": figures["inbox_unacked"],
        "parked": figures["parked_open"],
        "outbound": [{"entity": e, "status": st, "count": n} for (e, st), n in sorted(figures["outbound"].items())],
        "deliveries": dict(sorted(figures["deliveries"].items())),
        # the governor's view (erpsync's share, topped up to now), as STATUS=, job.finished and /metrics
        "quota_left_pct": figures["quota_left_pct"],
        "quota": {name: {"remaining": round(t, 3), "capacity": c, "allowance": round(a, 3),
                         "left_pct": round(100 * max(0.0, t) / a, 1) if a else None}
                  for name, (t, c, a) in sorted(figures["quota"].items())},
        "rate_limited_429s": figures["rate_limited"],
        "unknown_mappings": [{"kind": k, "code": c, "ref": r, "key": f"push.{k}s.{c}", "mapped": m}
                             for k, c, r, m, known in figures["mappings"] if not known],
    }


def render_status(st: dict[str, Any]) -> str:
    lines: list[str] = []
    d = st["daemon"]
    if d["leader"]:
        ld = d["leader"]
        lines.append(f"daemon: {ld['role']} {ld['instance']} ({ld['state']}), heartbeat {ld['heartbeat_at']}")
        if ld.get("status"):
            lines.append(f"  {ld['status']}")
    else:
        lines.append("daemon: not running (no live leader heartbeat)")
    for sb in d["standbys"]:
        lines.append(f"standby: {sb['instance']} ({sb['state']}), heartbeat {sb['heartbeat_at']}")
    lines.append("")
    header = ("JOB", "LAST RUN", "OUTCOME", "COUNTS", "LAST SUCCESS", "NEXT RUN")
    rows = [header]
    for name, j in st["jobs"].items():
        outcome = j["outcome"] or "-"
        if j.get("enabled") is False:
            outcome += " (DISABLED)"
        counts = " ".join(f"{k}={v}" for k, v in sorted(j["counts"].items()) if v) or "-"
        rows.append((name, _short(j["last_run"]), outcome, counts, _short(j["last_success"]),
                     _short(j["next_run"])))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for name, j in st["jobs"].items():
        if j.get("disabled_reason"):
            lines.append(f"  ! {name} disabled: {j['disabled_reason']}")
        elif j["outcome"] in ("retry", "failed") and j["error"]:
            lines.append(f"  ! {name}: {j['error']}")
    for m in st.get("unknown_mappings", []):
        lines.append(f"  ! unknown {m['kind']}: {m['key']} -> {m['ref']} not found in Centra (its items are parked)"
                     if m["mapped"] else
                     f"  ! unknown {m['kind']}: ERP code {m['code']} ({m['ref']}) not found in Centra and not "
                     f"mapped in push.{m['kind']}s (its items are parked)")
    lines.append("")
    lines.append(f"inbox backlog (stored, not acked): {st['inbox_backlog']}")
    parked = st["parked"]
    lines.append("parked items: " + (", ".join(f"{k}={v}" for k, v in sorted(parked.items())) or "none")
                 + (f" (total {sum(parked.values())})" if parked else ""))
    if st.get("deliveries"):
        lines.append("deliveries: " + ", ".join(f"{k}={v}" for k, v in st["deliveries"].items()))
    if st["outbound"]:
        lines.append("outbound: " + ", ".join(f"{o['entity']}/{o['status']}={o['count']}" for o in st["outbound"]))
    if st["quota"]:
        lines.append(f"quota: {st['quota_left_pct']:g} % left; " + ", ".join(
            f"{n} {q['remaining']:.0f}/{q['allowance']:.0f}" + (f" ({q['left_pct']:g} %)" if q["left_pct"] is not None
                                                               else "")
            for n, q in st["quota"].items()) + f"; 429s: {st['rate_limited_429s']}")
    else:
        lines.append(f"quota: no buckets recorded yet; 429s: {st['rate_limited_429s']}")
    return "\n".join(lines)


def _instance(i: DaemonInstance) -> dict[str, Any]:
    return {"instance": i.instance_id, "host": i.host, "pid": i.pid, "role": i.role, "state": i.state,
            "started_at": _iso(i.started_at), "heartbeat_at": _iso(i.heartbeat_at), "status": i.status_text}


def _aware(dt: datetime | None) -> datetime:
    from datetime import UTC

    assert dt is not None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _iso(dt: datetime | None) -> str | None:
    return _aware(dt).isoformat(timespec="seconds") if dt else None


def _short(iso: str | None) -> str:
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]
