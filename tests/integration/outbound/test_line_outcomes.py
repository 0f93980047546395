"""A ``userWarning`` that points at a batch line means that line was not applied, whatever its wording:
the line is parked with Centra's message and its hash stays unaccepted (both batch policies)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.outbound.prices import PushPrices
from erpsync.outbound.products import PushProducts
from erpsync.outbound.stock import PushStock
from erpsync.sample import Catalogue
from erpsync.store.models import OutboundItem, ParkedItem
from erpsync.store.staging import StagingPrice, StagingStock
from tests.unit.outbound.helpers import InProcessCentra, load_catalogue, sim_app

SMALL = Catalogue(products=6, variants=2, sizes=3)
EAN = "7300000000011"

#: (message, path rewrite) pairs: how another Centra might word and place a skipped line
WORDINGS: list[tuple[str, Callable[[list[str]], list[Any]]]] = [
    ("Line ignored: {}", lambda p: p),
    ("{} (not applied)", lambda p: ["setStock", *p] if "productSizes" in p else ["setPricesBatch", *p]),
    ("WARNING {}", lambda p: [int(x) if x.isdigit() else x for x in p]),
    ("could not process this line: {}", lambda p: [*p, "extra"]),
]


@dataclasses.dataclass
class RewordingCentra(InProcessCentra):
    """Rewrites every warning's wording and path; ``inject`` adds warnings to a response."""

    wording: str = "{}"
    repath: Callable[[list[str]], list[Any]] = lambda p: p
    inject: Callable[[Mapping[str, Any]], list[dict[str, Any]]] | None = None

    def _post(self, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        data = dict(super()._post(document, variables))
        for key, payload in data.items():
            if not isinstance(payload, dict) or "userWarnings" not in payload:
                continue
            warnings = [{"message": self.wording.format(w["message"].removeprefix("Skipped: ")),
                         "path": self.repath(list(w["path"]))} for w in payload["userWarnings"]]
            if self.inject is not None:
                warnings += self.inject(variables)
            data[key] = {**payload, "userWarnings": warnings}
        return data


def _outbound(engine: Engine, entity: str) -> dict[str, OutboundItem]:
    with Session(engine) as s:
        rows = s.exec(select(OutboundItem).where(col(OutboundItem.entity) == entity)).all()  # type: ignore[call-overload]
        return {r[0].erp_key: r[0] for r in rows}


def _parked(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        rows = s.exec(select(ParkedItem).where(col(ParkedItem.resolved_at).is_(None))).all()  # type: ignore[call-overload]
        return {p[0].key: p[0].reason for p in rows}


def _assert_parked_unaccepted(engine: Engine, entity: str, keys: set[str], text: str) -> None:
    parked = {k: r for k, r in _parked(engine).items() if k.startswith(f"{entity}:")}
    assert set(parked) == {f"{entity}:{k}" for k in keys}
    assert all(text in r for r in parked.values()), parked
    rows = _outbound(engine, entity)
    for key in keys:
        assert rows[key].status == "parked" and rows[key].accepted_hash != rows[key].rejected_hash
    assert all(r.status == "accepted" for k, r in rows.items() if k not in keys)


@pytest.mark.parametrize(("wording", "repath"), WORDINGS)
def test_skip_policy_any_wording_parks_the_stock_line(engine: Engine, wording: str, repath: Any) -> None:
    port = RewordingCentra(sim_app(batch_failure="skip"), wording=wording, repath=repath)
    load_catalogue(engine, SMALL)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    with Session(engine) as s, s.begin():
        s.exec(update(StagingStock).where(col(StagingStock.ean) == EAN).values(quantity=-1))  # type: ignore[call-overload]
    result = PushStock(engine, port, PushSettings(), clock=FakeClock()).run()
    assert result.counts["parked"] == 3 and result.counts["mutations"] == 3
    _assert_parked_unaccepted(engine, "stock", {f"{wh}|{EAN}" for wh in ("WH-MAIN", "WH-EU", "WH-US")},
                              "quantity must be ≥ 0")
    # unchanged: nothing is sent again, nothing passes as accepted
    port.mutation_fields.clear()
    again = PushStock(engine, port, PushSettings(), clock=FakeClock()).run()
    assert again.counts.get("sent", 0) == 0 and port.mutation_fields == []


@pytest.mark.parametrize("policy", ["reject", "skip"])
def test_a_warning_chosen_by_centra_parks_the_line_in_both_policies(engine: Engine, policy: str) -> None:
    """Centra resolves a duplicated EAN itself and warns: the ERP's level may not be where it meant."""
    port = InProcessCentra(sim_app(batch_failure=policy))
    load_catalogue(engine, SMALL)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    state = port.app.state
    size = next(ps for ps in state.product_sizes.values() if ps.ean == EAN)
    twin = dataclasses.replace(size, id=max(state.product_sizes) + 1)
    state.product_sizes[twin.id] = twin
    result = PushStock(engine, port, PushSettings(), clock=FakeClock()).run()
    assert result.outcome == "ok" and result.counts["parked"] == 3
    _assert_parked_unaccepted(engine, "stock", {f"{wh}|{EAN}" for wh in ("WH-MAIN", "WH-EU", "WH-US")},
                              "matches 2 product sizes")


def _price_warning(wording: str, product: str) -> Callable[[Mapping[str, Any]], list[dict[str, Any]]]:
    def inject(variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for i, entry in enumerate(variables.get("input") or []):
            if not isinstance(entry, Mapping):
                continue
            for j, pp in enumerate(entry.get("productPrices") or []):
                if pp["product"].get("externalId") == product:
                    out.append({"message": wording, "path": ["input", str(i), "productPrices", str(j), "price"]})
        return out
    return inject


@pytest.mark.parametrize("policy", ["reject", "skip"])
@pytest.mark.parametrize("wording", ["Skipped: price not set",
                                     "Price ignored, product is archived"])
def test_price_line_warned_in_any_wording_is_parked(engine: Engine, policy: str, wording: str) -> None:
    port = RewordingCentra(sim_app(batch_failure=policy), inject=_price_warning(wording, "prd_P000003"))
    load_catalogue(engine, SMALL)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    result = PushPrices(engine, port, PushSettings(), clock=FakeClock()).run()
    assert result.outcome == "ok"
    with Session(engine) as s:
        keys = {r[0].pricelist + "|P000003" + (f"|{r[0].variant_number}" if r[0].variant_number else "")
                for r in s.exec(select(StagingPrice).where(col(StagingPrice.product_number) == "P000003"))}  # type: ignore[call-overload]
    _assert_parked_unaccepted(engine, "price", keys, wording.removeprefix("Skipped:").strip())


def test_a_warning_on_a_whole_pricelist_entry_parks_its_lines(engine: Engine) -> None:
    def inject(variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"message": "pricelist is locked", "path": ["input", str(i), "pricelist"]}
                for i, e in enumerate(variables.get("input") or [])
                if isinstance(e, Mapping) and e["pricelist"].get("externalId") == "PL-EUR"]
    port = RewordingCentra(sim_app(), inject=inject)
    load_catalogue(engine, SMALL)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    PushPrices(engine, port, PushSettings(), clock=FakeClock()).run()
    parked = {k for k in _parked(engine) if k.startswith("price:")}
    assert parked and all(k.startswith("price:PL-EUR|") for k in parked)
    assert all(r.status == "accepted" for k, r in _outbound(engine, "price").items() if not k.startswith("PL-EUR|"))


@pytest.mark.parametrize("limit", ["total", "per_entry"])
def test_price_batches_stay_within_centra_per_call_limit(engine: Engine, limit: str) -> None:
    port = InProcessCentra(sim_app(prices_batch_limit=limit))
    catalogue = Catalogue(products=45, variants=1, sizes=1)
    load_catalogue(engine, catalogue)
    PushProducts(engine, port, PushSettings(), clock=FakeClock()).run()
    result = PushPrices(engine, port, PushSettings(prices_batch_limit=limit), clock=FakeClock()).run()  # type: ignore[arg-type]
    assert result.outcome == "ok" and result.counts.get("parked", 0) == 0
    batches = port.mutations("SetPricesBatch")
    sizes = [sum(len(e["productPrices"]) for e in v["input"]) for v in batches]
    assert sum(sizes) == 45 * 3
    if limit == "total":
        assert sizes == [100, 35]
    else:
        assert len(batches) == 1 and max(len(e["productPrices"]) for e in batches[0]["input"]) <= 100


def test_plan_counts_the_mutations_push_sends(engine: Engine) -> None:
    from erpsync.outbound.changes import Batching, plan

    catalogue = Catalogue(products=40, variants=3, sizes=5)  # 120 product prices, 600 sizes per warehouse
    load_catalogue(engine, catalogue)
    push = PushSettings(stock_batch_size=100, stock_batch_max=1000)
    with Session(engine) as s:
        planned = plan(s, batching=Batching.from_settings(push))
    port = InProcessCentra(sim_app(pricelists=()))  # a pricelist Centra already has is only looked up
    for job in (PushProducts, PushPrices, PushStock):
        assert job(engine, port, push, clock=FakeClock()).run().outcome == "ok"
    by_entity = {e.entity: e.mutations for e in planned.entities}
    sent = port.mutation_fields
    assert by_entity["price"] == sent.count("setPricesBatch") == 2
    assert by_entity["stock"] == sent.count("setStock")
    assert by_entity["product"] + by_entity["sizechart"] == sent.count("createProduct") + sent.count("createSizeChart")
    assert planned.mutations == len(sent)
