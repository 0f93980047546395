"""``PushStock``: absolute physical stock per warehouse into Centra with ``setStock``.

Only changed levels are sent (``changes.pending``), grouped per warehouse, ``push.stock_batch_size``
sizes (addressed by EAN) per mutation. ``setStock`` is absolute, so a batch whose outcome is unknown
is simply sent again. A level for a size Centra does not have yet (its product was not pushed, or
the warehouse is not found) waits, and is parked with the reason after ``push.max_attempts`` runs.
A batch rejected with ``userErrors`` is bisected: the bad lines are parked, the rest lands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from erpsync.store.models import OutboundItem
from erpsync.sync.changes import PendingItem, Refs, pending
from erpsync.sync.job import RunContext
from erpsync.sync.outbound_documents import LOOKUP_WAREHOUSES, LOOKUP_WAREHOUSES_BY_ID, SET_STOCK
from erpsync.sync.outbound_state import Accepted, Rejected
from erpsync.sync.outbound_transform import ref_key, stock_input
from erpsync.sync.push_base import (
    PushJob,
    SendResult,
    bisect,
    chunks,
    crash_point,
    error_lines,
    raw_user_errors,
    skipped_lines,
    user_errors,
    user_warnings,
)


def parked_hashes(engine: Any, entity: str) -> dict[str, str]:
    """erp_key → the payload hash Centra rejected, for parked items (not re-sent unchanged)."""
    stmt = select(OutboundItem.erp_key, OutboundItem.rejected_hash).where(  # type: ignore[call-overload]
        col(OutboundItem.entity) == entity, col(OutboundItem.status) == "parked")
    with engine.connect() as conn:
        return {k: h for k, h in conn.execute(stmt) if h}


def accepted_keys(engine: Any, entity: str) -> set[str]:
    """erp_keys of ``entity`` Centra has (accepted at least once)."""
    stmt = select(OutboundItem.erp_key).where(  # type: ignore[call-overload]
        col(OutboundItem.entity) == entity, col(OutboundItem.remote_id).is_not(None))
    with engine.connect() as conn:
        return {k for (k,) in conn.execute(stmt)}


class PushStock(PushJob):
    name = "push_stock"
    lane = "stock"

    def execute(self, run: RunContext) -> None:
        refs = Refs.from_settings(self.push)
        self.requeue_retried(run, "stock")
        with Session(self.engine) as session:
            items = list(pending(session, "stock", refs=refs, on_absent=self.push.on_absent))
        run.counts["changed"] = len(items)
        if not items:
            return
        parked = parked_hashes(self.engine, "stock")
        known_eans = accepted_keys(self.engine, "size")
        ready: dict[str, list[PendingItem]] = defaultdict(list)
        waiting: list[Rejected] = []
        for item in items:
            if parked.get(item.erp_key) == item.hash:
                run.counts["still_parked"] += 1
                continue
            ean = item.payload["productSize"]["EAN"]
            if self.dry_run is None and ean not in known_eans:
                waiting.append(Rejected(item.erp_key, item.hash,
                                        f"product size EAN {ean} is not in Centra yet "
                                        f"(product {item.depends_on or 'unknown'} not pushed)", dict(item.payload)))
                continue
            ready[ref_key(item.payload["warehouse"])].append(item)
        if ready and self.dry_run is None:
            missing = self._missing_warehouses({k: v[0].payload["warehouse"] for k, v in ready.items()})
            for key in missing:
                waiting.extend(Rejected(i.erp_key, i.hash, f"warehouse {key} not found in Centra "
                                        "(map the ERP code in push.warehouses)", dict(i.payload))
                               for i in ready.pop(key))
        if waiting:
            parked_now = self.ledger.wait("stock", waiting, self.push.max_attempts)
            run.counts["waiting"] += len(waiting) - len(parked_now)
            run.counts["parked"] += len(parked_now)
        for key in sorted(ready):
            for batch in chunks(ready[key], self.push.stock_batch_size):
                run.checkpoint()
                run.counts["mutations"] += bisect(batch, self._send, self._accepted(run), self._rejected(run))

    def _missing_warehouses(self, wanted: dict[str, dict[str, Any]]) -> list[str]:
        assert self.sender is not None
        by_ext = [r["externalId"] for r in wanted.values() if "externalId" in r]
        by_id = [r["id"] for r in wanted.values() if "id" in r]
        found: set[str] = set()
        if by_ext:
            data = self.sender.query(LOOKUP_WAREHOUSES, {"externalIds": by_ext, "limit": len(by_ext)}, self.lane)
            found |= {f"externalId:{w['externalId']}" for w in data.get("warehouses") or []}
        if by_id:
            data = self.sender.query(LOOKUP_WAREHOUSES_BY_ID, {"ids": by_id, "limit": len(by_id)}, self.lane)
            found |= {f"id:{w['id']}" for w in data.get("warehouses") or []}
        return [k for k in wanted if k not in found]

    def _send(self, batch: Sequence[PendingItem]) -> SendResult:
        variables = {"input": stock_input(batch[0].payload["warehouse"], [i.payload for i in batch])}
        if self.dry_run is not None:
            self.dry_run.record("setStock", variables, self.lane)
            return [], {}, {}
        assert self.sender is not None
        data = self.sender.mutate_idempotent(SET_STOCK, variables, self.lane)
        crash_point("after_send")
        payload = data.get("setStock")
        warnings = user_warnings(payload)
        for warning in warnings:
            self.log.warning("push.user_warning", mutation="setStock", message=warning.get("message"),
                             path=warning.get("path"))
        return (user_errors(payload), skipped_lines(warnings, "productSizes"),
                error_lines(raw_user_errors(payload), "productSizes"))

    def _accepted(self, run: RunContext) -> Any:
        def record(batch: Sequence[PendingItem]) -> None:
            run.counts["sent"] += len(batch)
            if self.dry_run is None:
                self.ledger.accept("stock", [Accepted(i.erp_key, i.hash) for i in batch])
                self.log.info("push.batch_sent", entity="stock", items=len(batch),
                              warehouse=ref_key(batch[0].payload["warehouse"]))
        return record

    def _rejected(self, run: RunContext) -> Any:
        def park(item: PendingItem, reason: str) -> None:
            run.counts["parked"] += 1
            self.log.warning("push.item_parked", entity="stock", key=item.erp_key, reason=reason)
            self.ledger.reject("stock", [Rejected(item.erp_key, item.hash, reason, dict(item.payload))])
        return park
