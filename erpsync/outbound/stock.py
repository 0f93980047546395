"""``PushStock``: absolute physical stock per warehouse into Centra with ``setStock``.

Only changed levels are sent (``changes.pending``), grouped per warehouse, ``push.stock_batch_size``
sizes (addressed by EAN) per mutation. ``setStock`` is absolute, so a batch whose outcome is unknown
is simply sent again. A level for a size Centra does not have yet waits while its product is on its way, without
spending attempts, and is parked only when the product is parked or absent from the ERP (then sent
as soon as the product is accepted); a level for a warehouse Centra does not have is parked after
``push.max_attempts`` runs.
A batch rejected with ``userErrors`` is bisected: the bad lines are parked, the rest lands.

While a catalogue push is under way (levels of this run wait for their products), the first levels of
sizes it already created go in full batches only, apart from the live changes (levels Centra already
has), and the rest once the catalogue is done; those batches (``first_level_mutations``) are the
push's own work and are not charged to live stock's budget. The daemon runs the job again
after ``next_run_in()``: the quota-derived coalescing window (``erpsync.outbound.pacing``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from erpsync.errors import ErpsyncError
from erpsync.job import RunContext
from erpsync.outbound.changes import Refs, pending
from erpsync.outbound.documents import SET_STOCK
from erpsync.outbound.mappings import MappingStatus, announce, find_missing, record
from erpsync.outbound.pacing import StockPacer
from erpsync.outbound.push import (
    PushJob,
    SendResult,
    SplitBatch,
    bisect,
    crash_point,
    error_lines,
    raw_user_errors,
    skipped_lines,
    user_errors,
    user_warnings,
)
from erpsync.outbound.state import Accepted, Dependencies, Rejected, read_engine_for
from erpsync.outbound.transform import ref_key, stock_input
from erpsync.store.models import OutboundItem


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


@dataclass(frozen=True, slots=True)
class StockLine:
    """One changed stock level, kept small (a first push can carry millions of them)."""

    erp_key: str
    hash: str
    warehouse: str  # ``ref_key`` of the warehouse reference
    ean: str
    quantity: int
    product: str | None  # the product number it belongs to, for the "waiting" reason
    first: bool = False  # Centra never accepted a level for it (a new size's first stock)


class PushStock(PushJob):
    """See the module docstring. After each run, ``next_run_in()`` says when the daemon runs it
    again: the quota-derived coalescing window (``erpsync.outbound.pacing``)."""

    name = "push_stock"
    lane = "stock"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pacer = StockPacer(self.push.stock_mutation_share, self.push.stock_min_interval_seconds,
                                self.push.stock_interval_seconds, self.clock, self._mutation_allowance)
        self._next_run_in: float | None = None

    def _mutation_allowance(self) -> float | None:
        allowance = getattr(self.centra, "mutation_allowance", None)
        if allowance is None or self.dry_run is not None:
            return None
        try:
            value = allowance()
        except (SQLAlchemyError, ErpsyncError) as exc:  # the window falls back to the fixed interval
            self.log.warning("push.stock_pacing_unavailable", error_class=type(exc).__name__)
            return None
        return None if value is None else float(value)

    def next_run_in(self) -> float | None:
        """Clock seconds until the next run, as the stock budget allows after the last one (None:
        pacing is off or the allowance unknown; the fixed ``push.stock_interval_seconds`` applies)."""
        return self._next_run_in

    def execute(self, run: RunContext) -> None:
        self._next_run_in = None
        started = self.clock.time()
        try:
            super().execute(run)
        finally:
            if self.dry_run is None:  # first levels sent during a catalogue push are the push's, not live stock's
                self._next_run_in = self.pacer.ran(run.counts.get("mutations", 0)
                                                   - run.counts.get("first_level_mutations", 0), started)

    def push_once(self, run: RunContext) -> None:
        refs = Refs.from_settings(self.push)
        self.requeue_retried(run, "stock")
        self.check_mappings_once("warehouse")
        parked = parked_hashes(self.engine, "stock")
        known_eans = accepted_keys(self.engine, "size") if self.dry_run is None else None
        self._warehouses: dict[str, dict[str, Any]] = {}
        ready: dict[str, list[StockLine]] = defaultdict(list)
        waiting: list[Rejected] = []
        for_product: list[tuple[Rejected, str | None, str | None, Any]] = []
        with Session(read_engine_for(self.engine)) as session:
            for item in pending(session, "stock", refs=refs, on_absent=self.push.on_absent):
                run.counts["changed"] += 1
                if parked.get(item.erp_key) == item.hash:
                    run.counts["still_parked"] += 1
                    continue
                ref = item.payload["warehouse"]
                wh = ref_key(ref)
                self._warehouses.setdefault(wh, dict(ref))
                line = StockLine(item.erp_key, item.hash, wh, item.payload["productSize"]["EAN"],
                                 int(item.payload["quantity"]), item.depends_on,
                                 item.outbound is None or item.outbound.accepted_hash is None)
                if known_eans is not None and line.ean not in known_eans:
                    for_product.append((Rejected(line.erp_key, line.hash,
                                                 f"product size EAN {line.ean} is not in Centra yet",
                                                 self._payload(line)), line.product, None, item.outbound))
                    continue
                ready[wh].append(line)
        if ready and self.dry_run is None:
            # a warehouse Centra does not have: its levels are parked at once, the reason naming the
            # mapping key (they come back when the mapping, and so the payload, changes, or on retry)
            for status in self._check_warehouses(ready):
                unknown = [Rejected(i.erp_key, i.hash, status.reason, self._payload(i))
                           for i in ready.pop(status.ref)]
                self.ledger.reject("stock", unknown)
                run.counts["parked"] += len(unknown)
        products_coming = False
        if for_product:  # waits while its product is on its way; parked only when it cannot come
            waits = self.ledger.wait_for("stock", for_product, Dependencies(self.engine, self.push.on_absent),
                                         self.push.max_attempts)
            run.counts.update(waits)
            products_coming = waits.get("waiting", 0) > 0
        if waiting:
            parked_now = self.ledger.wait("stock", waiting, self.push.max_attempts)
            run.counts["waiting"] += len(waiting) - len(parked_now)
            run.counts["parked"] += len(parked_now)
        sizer = self._sizer = self.sizer("setStock", self.push.stock_batch_size, self.push.stock_batch_max)
        groups: list[tuple[list[StockLine], bool]] = []  # (lines, first levels during a catalogue push)
        for key in sorted(ready):
            lines = ready[key]
            if not products_coming:
                groups.append((lines, False))
                continue
            # a catalogue push is under way: the first levels of the sizes it already created are the
            # push's own work (plan counts them), sent in full batches only, the rest when it ends;
            # live changes (levels Centra has) go at once, paced by stock's budget
            first = [line for line in lines if line.first]
            live = [line for line in lines if not line.first]
            full = len(first) - len(first) % sizer.size
            if len(first) > full:
                run.counts["held_for_full_batch"] += len(first) - full
            if live:
                groups.append((live, False))
            if full:
                groups.append((first[:full], True))
        self.declare_backlog(sum(-(-len(lines) // sizer.size) for lines, _ in groups))
        try:
            for lines, bulk in groups:
                start = 0
                while start < len(lines):
                    batch = lines[start:start + sizer.size]
                    run.checkpoint()
                    try:
                        sent = bisect(batch, self._send, self._accepted(run), self._rejected(run))
                    except SplitBatch:
                        run.counts["batches_split"] += 1
                        continue  # the size shrank: the same lines again, in smaller batches
                    run.counts["mutations"] += sent
                    if bulk:
                        run.counts["first_level_mutations"] += sent
                    start += len(batch)
        finally:
            self.declare_backlog(0)

    def _payload(self, line: StockLine) -> dict[str, Any]:
        return {"warehouse": self._warehouses[line.warehouse], "productSize": {"EAN": line.ean},
                "quantity": line.quantity}

    def _check_warehouses(self, ready: dict[str, list[StockLine]]) -> list[MappingStatus]:
        """Look up the warehouses of this run's levels; record each (``mapping_check``), log the
        newly unknown ones, and return the unknown ones (``ref`` is the ``ready`` key)."""
        sender = self.sender
        assert sender is not None
        missing = find_missing(lambda doc, variables: sender.query(doc, variables, self.lane), "warehouse",
                               {k: self._warehouses[k] for k in ready})
        statuses = []
        for key, lines in ready.items():
            code = lines[0].erp_key.partition("|")[0]
            statuses.append(MappingStatus("warehouse", code, key, key not in missing, code in self.push.warehouses))
        announce(record(self.engine, statuses, self.clock.now()), self.log)
        return [m for m in statuses if not m.known]

    def _send(self, batch: Sequence[StockLine]) -> SendResult:
        variables = {"input": stock_input(self._warehouses[batch[0].warehouse], [self._payload(i) for i in batch])}
        if self.dry_run is not None:
            self.dry_run.record("setStock", variables, self.lane)
            return [], {}, {}
        assert self.sender is not None
        data = self.sender.mutate_idempotent(SET_STOCK, variables, self.lane, self._sizer, len(batch))
        crash_point("after_send")
        payload = data.get("setStock")
        warnings = user_warnings(payload)
        for warning in warnings:
            self.log.warning("push.user_warning", mutation="setStock", message=warning.get("message"),
                             path=warning.get("path"))
        return (user_errors(payload), skipped_lines(warnings, "productSizes"),
                error_lines(raw_user_errors(payload), "productSizes"))

    def _accepted(self, run: RunContext) -> Any:
        def record(batch: Sequence[StockLine]) -> None:
            run.counts["sent"] += len(batch)
            if self.dry_run is None:
                self.ledger.accept("stock", [Accepted(i.erp_key, i.hash) for i in batch])
                self.log.info("push.batch_sent", entity="stock", items=len(batch), warehouse=batch[0].warehouse)
        return record

    def _rejected(self, run: RunContext) -> Any:
        def park(item: StockLine, reason: str) -> None:
            run.counts["parked"] += 1
            self.ledger.reject("stock", [Rejected(item.erp_key, item.hash, reason, self._payload(item))])
        return park
