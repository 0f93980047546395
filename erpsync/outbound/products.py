"""``PushProducts``: size charts, then products with their variants and sizes, into Centra.

Size charts first (looked up by externalId, created when missing). Then only changed products
(``changes.pending``), ``push.products_batch_size`` at a time:

1. one lookup by externalId for the whole batch (``products(where:{externalId:[…]})``);
2. per product, the mutations that make Centra equal the payload (``catalogue_ops``): a new
   product is one ``createProduct`` carrying every variant and size; an existing one gets only the
   updates and creates that differ from what Centra has;
3. those mutations go out aliased, ``push.catalogue_mutations_per_request`` per HTTP request, each
   with its own ``userErrors``; a product whose mutation is rejected is parked with the message;
4. after a fault that may have applied a request, the batch is looked up again and diffed again
   before anything is re-sent, so a create is never sent twice for the same externalId.

A product is recorded as accepted (hash, remote id, and its variants and sizes, which price and
stock pushes wait for) only after every mutation it needed was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from erpsync.errors import RateLimited, RetryLater
from erpsync.job import RunContext
from erpsync.outbound.changes import PendingItem, payload_hash, pending
from erpsync.outbound.documents import (
    CREATE_SIZE_CHART,
    LOOKUP_PRODUCT_VARIANTS,
    LOOKUP_PRODUCTS,
    LOOKUP_SIZE_CHARTS,
    VARIANTS_PAGE,
    catalogue_mutation,
)
from erpsync.outbound.push import PushJob, chunks, crash_point, user_errors, user_warnings
from erpsync.outbound.state import Accepted, Rejected
from erpsync.outbound.stock import parked_hashes
from erpsync.outbound.transform import (
    CatalogueOp,
    RemoteProduct,
    catalogue_ops,
    catalogue_variables,
)

SIZE_CHART_PAGE = 100
#: products per lookup query (each reads up to ``VARIANTS_PAGE`` variants with their sizes)
LOOKUP_CHUNK = 20


class PushProducts(PushJob):
    name = "push_products"
    lane = "catalogue"

    def push_once(self, run: RunContext) -> None:
        self.requeue_retried(run, "sizechart", "product")
        self._size_charts(run)
        with Session(self.engine) as session:
            items = list(pending(session, "product", on_absent=self.push.on_absent))
        run.counts["changed"] = len(items)
        parked = parked_hashes(self.engine, "product")
        todo = []
        for item in items:
            if parked.get(item.erp_key) == item.hash:
                run.counts["still_parked"] += 1
            else:
                todo.append(item)
        for batch in chunks(todo, self.push.products_batch_size):
            run.checkpoint()
            self._push_batch(run, batch)

    # ------------------------------------------------------------------ size charts

    def _size_charts(self, run: RunContext) -> None:
        with Session(self.engine) as session:
            items = list(pending(session, "sizechart"))
        parked = parked_hashes(self.engine, "sizechart")
        items = [i for i in items if parked.get(i.erp_key) != i.hash]
        if not items:
            return
        if self.dry_run is not None:
            for item in items:
                if item.outbound is None or item.outbound.remote_id is None:
                    self.dry_run.record("createSizeChart", {"input": dict(item.payload)}, self.lane)
            return
        remote = self._lookup_size_charts()
        for item in items:
            run.checkpoint()
            ext = item.payload["externalId"]
            out = item.outbound
            if out is not None and out.remote_id is not None and out.accepted_hash is not None and ext in remote:
                reason = (f"size chart {item.erp_key} changed in the ERP, but the Integration API cannot "
                          "update a size chart: change it in Centra, then `erpsync resync sizechart`")
                self.ledger.reject("sizechart", [Rejected(item.erp_key, item.hash, reason, dict(item.payload))])
                run.counts["parked"] += 1
                continue
            if ext in remote:
                self.ledger.accept("sizechart", [Accepted(item.erp_key, item.hash, ext, remote[ext])])
                continue
            remote_id, errors = self.create_with_readback(
                lambda item=item: self._create_size_chart(item),  # type: ignore[misc]
                lambda ext=ext: self._lookup_size_charts().get(ext),  # type: ignore[misc]
            )
            run.counts["mutations"] += 1
            if errors:
                self.ledger.reject("sizechart", [Rejected(item.erp_key, item.hash, "; ".join(errors),
                                                          dict(item.payload))])
                run.counts["parked"] += 1
            else:
                run.counts["sizecharts_created"] += 1
                self.ledger.accept("sizechart", [Accepted(item.erp_key, item.hash, ext, remote_id)])

    def _create_size_chart(self, item: PendingItem) -> tuple[str | None, list[str]]:
        assert self.centra is not None
        data = self.centra.mutate(CREATE_SIZE_CHART, {"input": dict(item.payload)}, lane=self.lane)
        payload = data.get("createSizeChart")
        errors = user_errors(payload)
        if errors:
            return None, errors
        return str(payload["sizeChart"]["id"]), []  # type: ignore[index]

    def _lookup_size_charts(self) -> dict[str, str]:
        """externalId → id of every size chart in Centra (paged)."""
        assert self.sender is not None
        out: dict[str, str] = {}
        page = 1
        while True:
            data = self.sender.query(LOOKUP_SIZE_CHARTS, {"limit": SIZE_CHART_PAGE, "page": page}, self.lane)
            charts = data.get("sizeCharts") or []
            out.update({c["externalId"]: str(c["id"]) for c in charts if c.get("externalId")})
            if len(charts) < SIZE_CHART_PAGE:
                return out
            page += 1

    # ------------------------------------------------------------------ products

    def _push_batch(self, run: RunContext, batch: Sequence[PendingItem]) -> None:
        if self.dry_run is not None:
            for item in batch:
                is_new = item.outbound is None or item.outbound.remote_id is None
                self.dry_run.record("createProduct" if is_new else "updateProduct (only fields that differ)",
                                    {"input": dict(item.payload)}, self.lane)
                run.counts["sent"] += 1
            return
        assert self.sender is not None
        open_items = {i.payload["externalId"]: i for i in batch}
        failed: dict[str, list[str]] = {}
        touched: set[str] = set()  # products that needed a mutation (read back again at the end)
        attempt = 1
        while True:
            remote = self._lookup(list(open_items))
            self.ledger.remember_remote("product", [
                Accepted(i.erp_key, i.hash, ext, str(remote[ext].id))
                for ext, i in open_items.items() if ext in remote])
            plans = {ext: catalogue_ops(i.payload, remote.get(ext)) for ext, i in open_items.items()}
            ops = [(ext, op) for ext, product_ops in plans.items() for op in product_ops]
            touched.update(ext for ext, _ in ops)
            try:
                self._send_ops(run, ops, failed)
                break
            except RetryLater as exc:
                # the batch may be partly applied: look it up and diff again (never blind re-creates)
                if attempt >= self.push.max_attempts or self.stop_event.is_set():
                    raise
                self.sender.backoff(attempt, exc, self.settle(exc))
                attempt += 1
                if isinstance(exc, RateLimited):
                    run.counts["rate_limited"] += 1
        # every mutation went through (or was rejected): record the outcome per product
        final = {ext: rp for ext, rp in remote.items() if ext not in touched}
        final.update(self._lookup([ext for ext in open_items if ext in touched and ext not in failed]))
        accepted, rejected = [], []
        for ext, item in open_items.items():
            if ext in failed:
                rejected.append(Rejected(item.erp_key, item.hash, "; ".join(dict.fromkeys(failed[ext])),
                                         dict(item.payload)))
                continue
            rp = final.get(ext)
            if rp is None:
                rejected.append(Rejected(item.erp_key, item.hash, "product not found in Centra after it was pushed",
                                         dict(item.payload)))
                continue
            still = catalogue_ops(item.payload, rp)
            if still:  # every mutation was accepted, yet Centra differs: never record it as in sync
                rejected.append(Rejected(item.erp_key, item.hash, "Centra still differs after the push: " + ", ".join(
                    f"{op.kind} {op.label}" for op in still), dict(item.payload)))
                continue
            accepted.append((item, rp))
        if rejected:
            self.ledger.reject("product", rejected)
            run.counts["parked"] += len(rejected)
        self._record(accepted)
        run.counts["sent"] += len(accepted)
        self.log.info("push.batch_sent", entity="product", items=len(accepted), parked=len(rejected))

    def _send_ops(
        self,
        run: RunContext,
        ops: Sequence[tuple[str, CatalogueOp]],
        failed: dict[str, list[str]],
    ) -> None:
        assert self.centra is not None
        per_request = self.push.catalogue_mutations_per_request
        todo = [(ext, op) for ext, op in ops if ext not in failed]
        for group in chunks(todo, per_request):
            document = catalogue_mutation([op.kind for _, op in group])
            data = self.centra.mutate(document, catalogue_variables([op for _, op in group]), lane=self.lane)
            crash_point("after_send")
            run.counts["mutations"] += len(group)
            run.counts["requests"] += 1
            for i, (ext, op) in enumerate(group):
                payload = data.get(f"m{i}")
                errors = user_errors(payload)
                for warning in user_warnings(payload):
                    self.log.warning("push.user_warning", mutation=op.kind, key=op.label,
                                     message=warning.get("message"), path=warning.get("path"))
                if errors:
                    failed.setdefault(ext, []).extend(f"{op.kind} {op.label}: {e}" for e in errors)
                    continue
                run.counts[op.kind] += 1

    def _lookup(self, externals: Sequence[str]) -> dict[str, RemoteProduct]:
        """The products Centra has for these externalIds, with every variant (paged when needed)."""
        assert self.sender is not None
        out: dict[str, RemoteProduct] = {}
        for part in chunks(list(externals), LOOKUP_CHUNK):  # complexity grows with the page size
            out.update(self._lookup_page(part))
        return out

    def _lookup_page(self, externals: Sequence[str]) -> dict[str, RemoteProduct]:
        assert self.sender is not None
        data = self.sender.query(LOOKUP_PRODUCTS, {"externalIds": list(externals), "limit": len(externals)},
                                 self.lane)
        out: dict[str, RemoteProduct] = {}
        for p in data.get("products") or []:
            if p.get("externalId") not in externals:
                continue
            product = RemoteProduct.from_data(p)
            page, count = 1, len(p.get("variants") or [])
            while count >= VARIANTS_PAGE:
                page += 1
                more = self.sender.query(LOOKUP_PRODUCT_VARIANTS, {"ids": [product.id], "page": page}, self.lane)
                variants = ((more.get("products") or [{}])[0]).get("variants") or []
                product.add_variants(variants)
                count = len(variants)
            out[p["externalId"]] = product
        return out

    def _record(self, accepted: Sequence[tuple[PendingItem, RemoteProduct]]) -> None:
        """Accepted products, and their variants and sizes (what prices and stock wait for)."""
        if not accepted:
            return
        products: list[Accepted] = []
        variants: list[Accepted] = []
        sizes: list[Accepted] = []
        for item, rp in accepted:
            products.append(Accepted(item.erp_key, item.hash, item.payload["externalId"], str(rp.id)))
            for v in _variants(item.payload):
                rv = rp.variants.get(v["externalId"])
                if rv is None:
                    continue
                variants.append(Accepted(v["variantNumber"], payload_hash(v), v["externalId"], str(rv.id)))
                sizes.extend(Accepted(ps["EAN"], payload_hash(ps), v["externalId"], str(rv.id))
                             for ps in v.get("productSizes") or [] if ps.get("EAN") in rv.eans)
        self.ledger.accept("product", products)
        self.ledger.accept("variant", variants)
        self.ledger.accept("size", sizes)


def _variants(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in payload.get("addProductVariants") or [] if v.get("variantNumber")]
