"""``PushPrices``: pricelists, then prices per pricelist into Centra with ``setPricesBatch``.

Pricelists first: one mapped in ``push.pricelists`` (or named like the ERP code) that Centra
already has is only looked up; a missing one named like the ERP code is created with its externalId
(looked up again before a create is ever retried). A mapped one Centra does not have is never
created: the mapping names a pricelist Centra should have, so it and its prices are parked at once
with the mapping key in the reason (``erpsync.outbound.mappings``). Then only changed prices are
sent, ``push.prices_batch_size`` products per ``setPricesBatch`` (several pricelists in one
mutation), retried as they are (absolute prices). A price whose product, variant or pricelist
Centra does not have yet waits, and is parked after ``push.max_attempts`` runs; a batch rejected
with ``userErrors`` is bisected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from erpsync.errors import ItemRejected
from erpsync.job import RunContext
from erpsync.outbound.changes import PendingItem, Refs, pending
from erpsync.outbound.documents import (
    CREATE_PRICELIST,
    LOOKUP_PRICELISTS,
    LOOKUP_PRICELISTS_BY_ID,
    SET_PRICES_BATCH,
)
from erpsync.outbound.mappings import MappingStatus, announce, record, recorded
from erpsync.outbound.push import (
    PushJob,
    SendResult,
    SplitBatch,
    bisect,
    crash_point,
    line_of,
    raw_user_errors,
    user_errors,
    user_warnings,
    warning_text,
)
from erpsync.outbound.state import Accepted, Dependencies, Rejected, read_engine_for
from erpsync.outbound.stock import accepted_keys, parked_hashes
from erpsync.outbound.transform import check_price, price_products, prices_batch, ref_key

#: Centra's per-call limit of product prices (PROTOCOL.md §2.2): setPrices, setPricesBatch
MAX_PRODUCT_PRICES = 100


class PushPrices(PushJob):
    name = "push_prices"
    lane = "prices"

    def push_once(self, run: RunContext) -> None:
        refs = Refs.from_settings(self.push)
        self.requeue_retried(run, "pricelist", "price")
        self.check_mappings_once("pricelist")
        self._pricelists(run, refs)
        with Session(read_engine_for(self.engine)) as session:
            items = list(pending(session, "price", refs=refs, on_absent=self.push.on_absent))
        run.counts["changed"] = len(items)
        if not items:
            return
        parked = parked_hashes(self.engine, "price")
        pricelists = accepted_keys(self.engine, "pricelist")
        unknown = {m.code: m for m in recorded(self.engine) if m.kind == "pricelist" and not m.known}
        products = accepted_keys(self.engine, "product")
        variants = accepted_keys(self.engine, "variant")
        ready: list[PendingItem] = []
        waiting: list[Rejected] = []
        for_product: list[tuple[Rejected, str | None, str | None, Any]] = []
        bad: list[Rejected] = []
        for item in items:
            if parked.get(item.erp_key) == item.hash:
                run.counts["still_parked"] += 1
                continue
            try:
                check_price(item.payload)
            except ItemRejected as exc:
                bad.append(Rejected(item.erp_key, item.hash, exc.reason, dict(item.payload)))
                continue
            plc, pn, *vn = item.erp_key.split("|")
            reason, on_product = None, False
            if item.payload["price"].get("currencyIsoCode") is None:
                reason = f"pricelist {plc} is not in the ERP's pricelists (no currency)"
            elif self.dry_run is None:
                if plc in unknown and plc not in pricelists:
                    # a mapped pricelist Centra does not have: parked at once, naming the mapping key
                    bad.append(Rejected(item.erp_key, item.hash, unknown[plc].reason, _plain(item.payload)))
                    continue
                if plc not in pricelists:
                    reason = f"pricelist {plc} is not in Centra yet"
                elif pn not in products:
                    reason, on_product = f"product {pn} is not in Centra yet", True
                elif vn and vn[0] not in variants:
                    reason, on_product = f"variant {vn[0]} of product {pn} is not in Centra yet", True
            if on_product and reason is not None:
                # waits while its product is on its way; parked only when the product cannot come
                for_product.append((Rejected(item.erp_key, item.hash, reason, _plain(item.payload)), pn,
                                    vn[0] if vn else None, item.outbound))
            elif reason is not None:
                waiting.append(Rejected(item.erp_key, item.hash, reason, _plain(item.payload)))
            else:
                ready.append(item)
        if bad:
            self.ledger.reject("price", bad)
            run.counts["parked"] += len(bad)
        if for_product:
            run.counts.update(self.ledger.wait_for("price", for_product, Dependencies(self.engine, self.push.on_absent),
                                                   self.push.max_attempts))
        if waiting:
            parked_now = self.ledger.wait("price", waiting, self.push.max_attempts)
            run.counts["waiting"] += len(waiting) - len(parked_now)
            run.counts["parked"] += len(parked_now)
        per_entry = self.push.prices_batch_limit == "per_entry"
        sizer = self._sizer = self.sizer("setPricesBatch", self.push.prices_batch_size, MAX_PRODUCT_PRICES)
        self.declare_backlog(len(_batches(ready, sizer.size, per_entry=per_entry)))
        try:
            start = 0
            while start < len(ready):
                batch = ready[start:_batch_end(ready, start, sizer.size, per_entry)]
                run.checkpoint()
                try:
                    run.counts["mutations"] += bisect(batch, self._send, self._accepted(run), self._rejected(run))
                except SplitBatch:
                    run.counts["batches_split"] += 1
                    continue  # the size shrank: the same prices again, in smaller batches
                start += len(batch)
        finally:
            self.declare_backlog(0)

    # ------------------------------------------------------------------ pricelists

    def _pricelists(self, run: RunContext, refs: Refs) -> None:
        with Session(self.engine) as session:
            items = list(pending(session, "pricelist", refs=refs, on_absent=self.push.on_absent))
        if not items:
            return
        parked = parked_hashes(self.engine, "pricelist")
        items = [i for i in items if parked.get(i.erp_key) != i.hash]
        if self.dry_run is not None:
            for item in items:
                if item.outbound is None or item.outbound.remote_id is None:
                    self.dry_run.record("createPricelist", {"input": _plain(item.payload)}, self.lane)
            return
        found = self._lookup_pricelists(items)
        mapped = [MappingStatus("pricelist", i.erp_key, ref_key(refs.pricelist(i.erp_key)), i.erp_key in found)
                  for i in items if i.erp_key in self.push.pricelists]
        announce(record(self.engine, mapped, self.clock.now()), self.log)
        unknown = {m.code: m for m in mapped if not m.known}
        for item in items:
            run.checkpoint()
            remote = found.get(item.erp_key)
            if remote is None and item.outbound is not None and item.outbound.remote_id is not None:
                remote = item.outbound.remote_id
            if remote is not None:
                # Centra has it (mapped or created earlier); the contract has no pricelist update
                if item.outbound is not None and item.outbound.accepted_hash is not None:
                    self.log.warning("push.pricelist_not_updatable", key=item.erp_key,
                                     detail="the ERP changed the pricelist; the Integration API cannot update "
                                            "a pricelist: change it in Centra")
                self.ledger.accept("pricelist", [Accepted(item.erp_key, item.hash, item.payload.get("externalId"),
                                                          remote)])
                continue
            if item.erp_key in unknown:
                # push.pricelists names a pricelist Centra should have: never created under that name
                self.ledger.reject("pricelist", [Rejected(item.erp_key, item.hash, unknown[item.erp_key].reason,
                                                          _plain(item.payload))])
                run.counts["parked"] += 1
                continue
            if "externalId" not in item.payload:
                self.ledger.reject("pricelist", [Rejected(
                    item.erp_key, item.hash, f"pricelist {item.payload.get('id')} not found in Centra",
                    _plain(item.payload))])
                run.counts["parked"] += 1
                continue
            remote_id, errors = self.create_with_readback(
                lambda item=item: self._create_pricelist(item),  # type: ignore[misc]
                lambda item=item: self._lookup_pricelists([item]).get(item.erp_key),  # type: ignore[misc]
            )
            run.counts["mutations"] += 1
            if errors:
                self.ledger.reject("pricelist", [Rejected(item.erp_key, item.hash, "; ".join(errors),
                                                          _plain(item.payload))])
                run.counts["parked"] += 1
            else:
                run.counts["pricelists_created"] += 1
                self.ledger.accept("pricelist", [Accepted(item.erp_key, item.hash, item.payload["externalId"],
                                                          remote_id)])

    def _create_pricelist(self, item: PendingItem) -> tuple[str | None, list[str]]:
        assert self.centra is not None
        data = self.centra.mutate(CREATE_PRICELIST, {"input": _plain(item.payload)}, lane=self.lane)
        payload = data.get("createPricelist")
        errors = user_errors(payload)
        if errors:
            return None, errors
        return str(payload["pricelist"]["id"]), []  # type: ignore[index]

    def _lookup_pricelists(self, items: Sequence[PendingItem]) -> dict[str, str]:
        """erp_key → Centra id of the pricelists Centra has."""
        assert self.sender is not None
        by_ext = {i.payload["externalId"]: i.erp_key for i in items if "externalId" in i.payload}
        by_id = {i.payload["id"]: i.erp_key for i in items if "id" in i.payload}
        out: dict[str, str] = {}
        if by_ext:
            data = self.sender.query(LOOKUP_PRICELISTS, {"externalIds": list(by_ext), "limit": len(by_ext)}, self.lane)
            out.update({by_ext[p["externalId"]]: str(p["id"]) for p in data.get("pricelists") or []
                        if p.get("externalId") in by_ext})
        if by_id:
            data = self.sender.query(LOOKUP_PRICELISTS_BY_ID, {"ids": list(by_id), "limit": len(by_id)}, self.lane)
            out.update({by_id[p["id"]]: str(p["id"]) for p in data.get("pricelists") or [] if p["id"] in by_id})
        return out

    # ------------------------------------------------------------------ prices

    def _send(self, batch: Sequence[PendingItem]) -> SendResult:
        entries, index = prices_batch([i.payload for i in batch])
        variables = {"input": entries}
        if self.dry_run is not None:
            self.dry_run.record("setPricesBatch", variables, self.lane)
            return [], {}, {}
        assert self.sender is not None
        data = self.sender.mutate_idempotent(SET_PRICES_BATCH, variables, self.lane, self._sizer,
                                             price_products([i.payload for i in batch]))
        crash_point("after_send")
        payload = data.get("setPricesBatch")
        skipped: dict[int, list[str]] = {}
        for warning in user_warnings(payload):
            message, path = str(warning.get("message", "")), list(warning.get("path") or [])
            self.log.warning("push.user_warning", mutation="setPricesBatch", message=message, path=path)
            for n in _warned_lines(path, index):
                skipped.setdefault(n, []).append(warning_text(message))
        located: dict[int, str] = {}
        for error in raw_user_errors(payload):
            path = [str(p) for p in error.get("path") or []]
            if len(path) < 3 or path[0] != "input" or not path[1].isdigit():
                located = {}
                break
            entry = int(path[1])
            if path[2] == "productPrices" and len(path) >= 4 and path[3].isdigit():
                hit = index.get((entry, int(path[3])), [])
            else:  # the entry's pricelist: every line of it
                hit = [n for (i, _), ns in index.items() if i == entry for n in ns]
            if not hit:
                located = {}
                break
            for n in hit:
                located[n] = str(error.get("message", ""))
        return (user_errors(payload), {n: "; ".join(dict.fromkeys(m)) for n, m in skipped.items()},
                located)

    def _accepted(self, run: RunContext) -> Any:
        def record(batch: Sequence[PendingItem]) -> None:
            run.counts["sent"] += len(batch)
            if self.dry_run is None:
                self.ledger.accept("price", [Accepted(i.erp_key, i.hash) for i in batch])
                self.log.info("push.batch_sent", entity="price", items=len(batch))
        return record

    def _rejected(self, run: RunContext) -> Any:
        def park(item: PendingItem, reason: str) -> None:
            run.counts["parked"] += 1
            self.ledger.reject("price", [Rejected(item.erp_key, item.hash, reason, _plain(item.payload))])
        return park


def _warned_lines(path: Sequence[Any], index: dict[tuple[int, int], list[int]]) -> list[int]:
    """The batch lines (payload indexes) a ``setPricesBatch`` warning path points at: one product
    entry (``input.<i>.productPrices.<j>…``) or a whole pricelist entry (``input.<i>`` or
    ``input.<i>.pricelist``); none when it names neither."""
    parts = [str(p) for p in path]
    try:
        k = parts.index("input")
    except ValueError:
        return []
    if k + 1 >= len(parts) or not parts[k + 1].isdigit():
        return []
    entry = int(parts[k + 1])
    line = line_of(parts[k + 2:], "productPrices")
    if line is not None:
        return list(index.get((entry, line), []))
    if "productPrices" in parts[k + 2:]:
        return []
    return [n for (i, _), ns in index.items() if i == entry for n in ns]


def _batch_end(items: Sequence[PendingItem], start: int, products_per_batch: int, per_entry: bool) -> int:
    """The end of the batch starting at ``start``: at most ``products_per_batch`` (pricelist,
    product) entries in total, or, with ``per_entry``, per pricelist entry."""
    seen: set[tuple[str, str]] = set()
    per_list: dict[str, int] = {}
    for n in range(start, len(items)):
        plc, pn = items[n].erp_key.split("|")[:2]
        if (plc, pn) not in seen:
            full = per_list.get(plc, 0) >= products_per_batch if per_entry else len(seen) >= products_per_batch
            if full:
                return n
            per_list[plc] = per_list.get(plc, 0) + 1
            seen.add((plc, pn))
    return len(items)


def _batches(items: Sequence[PendingItem], products_per_batch: int, *, per_entry: bool = False,
             ) -> list[Sequence[PendingItem]]:
    """Consecutive slices holding at most ``products_per_batch`` (pricelist, product) entries in total,
    or, with ``per_entry``, at most that many per pricelist entry."""
    out: list[Sequence[PendingItem]] = []
    start = 0
    while start < len(items):
        end = _batch_end(items, start, products_per_batch, per_entry)
        out.append(items[start:end])
        start = end
    if not per_entry:
        assert all(price_products([i.payload for i in b]) <= products_per_batch for b in out)
    return out


def _plain(payload: Any) -> Any:
    """The payload with Decimals as strings (for parked rows and dry-run output)."""
    from decimal import Decimal

    if isinstance(payload, dict):
        return {k: _plain(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_plain(v) for v in payload]
    if isinstance(payload, Decimal):
        return str(payload)
    return payload
