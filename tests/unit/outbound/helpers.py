"""Helpers shared by the push tests and the push benchmark.

- ``load_catalogue(engine, catalogue)``: the sample generator's files imported into staging.
- ``InProcessCentra``: the ``CentraPort`` over the simulator's ``GraphqlApp`` without HTTP, with
  scripted faults (``lost``: applied, then the answer is lost → ``OutcomeUnknown``; ``down``: not
  applied → ``SourceUnavailable``; ``limited``: not applied → ``RateLimited``), recording every call.
- ``expected_state(catalogue)`` / ``centra_state(state)``: the ERP's catalogue and the simulator's
  state in one comparable shape (products, variants, sizes, prices as Decimal, stock).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse
from sqlalchemy import Engine

from erpsync.erp.files import import_files
from erpsync.erp.loader import StagingLoader
from erpsync.errors import OutcomeUnknown, ProtocolError, RateLimited, SourceUnavailable
from erpsync.sample import Catalogue, generate
from erpsync.sim.gql import DEFAULT_TOKEN, GqlOptions, GraphqlApp
from erpsync.sim.gql.state import State

BIG_LIMITS = {
    "REQUEST_COUNT:TEN_SECONDS": 2_000_000_000, "REQUEST_COUNT:ONE_HOUR": 2_000_000_000,
    "MUTATION_COUNT:TEN_SECONDS": 2_000_000_000, "MUTATION_COUNT:ONE_HOUR": 2_000_000_000,
    "QUERY_COMPLEXITY:TEN_SECONDS": 2_000_000_000, "QUERY_COMPLEXITY:ONE_HOUR": 2_000_000_000,
}


def load_catalogue(engine: Engine, catalogue: Catalogue, directory: Path | None = None) -> None:
    """Write the catalogue's files and import them (every entity, in dependency order)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(directory or Path(tmp), catalogue)
        report = import_files(StagingLoader(engine), list(files.values()))
    assert report.rejected == 0, report.as_dict()
    assert not report.failed, report.as_dict()


def sim_app(**options: Any) -> GraphqlApp:
    from erpsync.clock import FakeClock

    options.setdefault("tier", "custom")
    options.setdefault("limits", BIG_LIMITS)
    return GraphqlApp(GqlOptions(**options), FakeClock())


@dataclass
class InProcessCentra:
    app: GraphqlApp
    faults: list[str] = field(default_factory=list)  # one per mutation, popped in order
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (operation name, variables)
    mutation_fields: list[str] = field(default_factory=list)  # every mutation field sent
    sizes: Any = None  # where learnt batch sizes are kept (a QuotaGovernor), None: per run only
    allowance: float | None = None  # erpsync's hourly mutations per second (push_stock's pacing); None: unknown

    def size_store(self) -> Any:
        return self.sizes

    def mutation_allowance(self) -> float | None:
        return self.allowance

    def _post(self, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        body = json.dumps({"query": document, "variables": dict(variables)}).encode()
        status, headers, raw = self.app.handle({"Authorization": f"Bearer {DEFAULT_TOKEN}"}, body)
        data = json.loads(raw)
        if status == 429:
            raise RateLimited("429", retry_after=float(headers.get("Retry-After", "1")))
        if status == 499 or status >= 500:
            raise OutcomeUnknown(f"{status}: {data.get('errors')}")
        if status != 200 or data.get("errors"):
            raise ProtocolError(f"{status}: {data.get('errors')}")
        return data["data"]  # type: ignore[no-any-return]

    def query(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        self.calls.append((_op_name(document), json.loads(json.dumps(dict(variables)))))
        return self._post(document, variables)

    def mutate(self, document: str, variables: Mapping[str, Any], *, lane: str) -> Mapping[str, Any]:
        self.calls.append((_op_name(document), json.loads(json.dumps(dict(variables)))))
        fields = _mutation_fields(document)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "down":
            raise SourceUnavailable("injected: connection refused")
        if fault == "limited":
            raise RateLimited("injected: 429", retry_after=2.0)
        self.mutation_fields.extend(fields)
        result = self._post(document, variables)
        if fault == "lost":
            raise OutcomeUnknown("injected: applied, answer lost")
        return result

    def mutations(self, name: str | None = None) -> list[dict[str, Any]]:
        """Variables of the mutation calls (of operation ``name``) that were sent."""
        return [v for op, v in self.calls if op != "" and (name is None or op == name) and op in _MUTATION_OPS]


_MUTATION_OPS = {"SetStock", "SetPricesBatch", "CreateSizeChart", "CreatePricelist", "Catalogue"}


def _op_name(document: str) -> str:
    for d in parse(document).definitions:
        if isinstance(d, OperationDefinitionNode) and d.name is not None:
            return d.name.value
    return ""


def _mutation_fields(document: str) -> list[str]:
    out = []
    for d in parse(document).definitions:
        if isinstance(d, OperationDefinitionNode):
            out.extend(sel.name.value for sel in d.selection_set.selections)  # type: ignore[attr-defined]
    return out


# ---------------------------------------------------------------- comparable states


def expected_state(catalogue: Catalogue) -> dict[str, Any]:
    products: dict[str, Any] = {}
    for p in catalogue.rows("products"):
        products[f"prd_{p['product_number']}"] = {"name": p["name"], "status": p["status"],
                                                   "number": p["product_number"], "variants": {}}
    variant_product: dict[str, str] = {}
    for v in catalogue.rows("variants"):
        variant_product[v["variant_number"]] = f"prd_{v['product_number']}"
        products[f"prd_{v['product_number']}"]["variants"][f"var_{v['variant_number']}"] = {
            "name": v["name"], "status": v["status"], "number": v["variant_number"], "sizes": {}}
    for s in catalogue.rows("sizes"):
        variant = products[variant_product[s["variant_number"]]]["variants"][f"var_{s['variant_number']}"]
        variant["sizes"][s["ean"]] = {"size": s["size"], "sizeNumber": s["size_number"] or None}
    prices = {}
    for r in catalogue.rows("prices"):
        key = (r["pricelist"], f"var_{r['variant_number']}" if r["variant_number"] else f"prd_{r['product_number']}")
        prices[key] = (Decimal(r["price"]), Decimal(r["rrp"]) if r["rrp"] else None)
    stock = {(r["warehouse"], r["ean"]): int(r["quantity"]) for r in catalogue.rows("stock")}
    return {"products": products, "prices": prices, "stock": stock}


def centra_state(s: State) -> dict[str, Any]:
    products: dict[str, Any] = {}
    for p in s.products.values():
        variants = {}
        for vid in p.variant_ids:
            v = s.variants[vid]
            sizes = {}
            for psid in v.product_size_ids:
                ps = s.product_sizes[psid]
                sizes[ps.ean] = {"size": s.sizes[ps.size_id].name, "sizeNumber": ps.size_number}
            variants[v.external_id] = {"name": v.name, "status": v.status, "number": v.variant_number,
                                       "sizes": sizes}
        products[p.external_id] = {"name": p.name, "status": p.status, "number": p.product_number,
                                   "variants": variants}
    prices = {}
    for (plid, kind, oid), price in s.prices.items():
        obj = s.products[oid] if kind == "product" else s.variants[oid]
        prices[(s.pricelists[plid].external_id, obj.external_id)] = (price.price, price.rrp)
    stock = {(s.warehouses[wid].external_id, s.product_sizes[psid].ean): qty for (wid, psid), qty in s.stock.items()}
    return {"products": products, "prices": prices, "stock": stock}


def assert_same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Exact equality, with a readable first difference (Decimals compare by value)."""
    for part in ("products", "prices", "stock"):
        exp, act = expected[part], actual[part]
        missing = sorted(set(exp) - set(act), key=str)[:5]
        extra = sorted(set(act) - set(exp), key=str)[:5]
        assert not missing and not extra, f"{part}: missing {missing}, extra {extra}"
        diff = [k for k in exp if exp[k] != act[k]][:5]
        assert not diff, f"{part} differ: " + "; ".join(f"{k}: {exp[k]} != {act[k]}" for k in diff)
