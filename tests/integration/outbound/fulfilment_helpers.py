"""Helpers of the fulfilment tests: confirmed orders in the simulator, deliveries written as the ERP
writes them (its own columns only: status columns take their server defaults), the job over HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from erpsync.clock import Clock
from erpsync.config import FulfilmentSettings, PushSettings, QuotaSettings
from erpsync.graphql.client import CentraGraphql
from erpsync.graphql.quota import MemoryQuotaStore, QuotaGovernor
from erpsync.job import JobResult
from erpsync.outbound.fulfilment import PushFulfilment
from erpsync.outbound.port import GraphqlPort
from erpsync.sim.server import SimServer
from erpsync.store.fulfilment import ErpDelivery, ErpDeliveryLine, ErpLineCancellation

PUSH = PushSettings(unknown_outcome_wait_seconds=0.0, max_attempts=8)


def confirmed_orders(sim: SimServer, n: int) -> list[str]:
    """``n`` generated retail orders advanced to confirmed (as the SOAP queue shows them)."""
    out: list[str] = []
    while len(out) < n:
        number = sim.generator.new_order().entry
        if sim.generator.orders[number]["type"] != "retail":
            continue
        sim.generator.advance_order(number)
        if sim.generator.orders[number]["status"] == "confirmed":
            out.append(number)
    return out


def order_items(sim: SimServer, number: str) -> list[dict[str, Any]]:
    """The order's lines as the ERP knows them from SOAP: orderitem id, SKU, quantity; bundles' virtual
    lines left out (never picked)."""
    items = []
    for product in sim.generator.orders[number]["products"]["product"]:
        if (product.get("bundleinfo") or {}).get("isbundle") == "yes":
            continue
        for size in product["sizes"]["size"]:
            items.append({"id": int(size["orderitem"]["id"]), "sku": size["sku"], "qty": int(size["qty"])})
    return items


def write_delivery(engine: Engine, delivery_id: str, order: str, lines: Sequence[Mapping[str, Any]], *,
                   capture: bool = False, paid_outside: bool = False, tracking: str | None = None,
                   shipped_at: datetime | None = None) -> None:
    """The ERP's INSERTs: header and lines in one transaction, ERP columns only."""
    with engine.begin() as conn:
        conn.execute(insert(ErpDeliveryLine), [
            {"delivery_id": delivery_id, "line_no": i, "quantity": line["quantity"],
             "order_line_id": line.get("order_line_id"), "sku": line.get("sku"), "ean": line.get("ean")}
            for i, line in enumerate(lines, start=1)])
        conn.execute(insert(ErpDelivery).values(
            delivery_id=delivery_id, order_number=order, carrier="PostNord", service="MyPack",
            tracking_number=tracking or f"TRK-{delivery_id}", packages=1, capture=capture,
            paid_outside=paid_outside, shipped_at=shipped_at))


def write_cancellation(engine: Engine, cancellation_id: str, order: str, quantity: int, *,
                       order_line_id: int | None = None, sku: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(ErpLineCancellation).values(
            cancellation_id=cancellation_id, order_number=order, order_line_id=order_line_id, sku=sku,
            quantity=quantity))


def deliveries(engine: Engine) -> dict[str, ErpDelivery]:
    with Session(engine) as s:
        rows = list(s.exec(select(ErpDelivery)).scalars())  # type: ignore[call-overload]
        s.expunge_all()
    return {d.delivery_id: d for d in rows}


def make_port(sim: SimServer, clock: Clock, *, read_timeout: float = 5.0) -> GraphqlPort:
    governor = QuotaGovernor.from_settings(QuotaSettings(tier="enterprise"), clock=clock, store=MemoryQuotaStore())
    client = CentraGraphql(sim.graphql_url, SecretStr(sim.token), governor=governor, clock=clock,
                           connect_timeout=2, read_timeout=read_timeout)
    return GraphqlPort(client)


def run_job(engine: Engine, port: GraphqlPort, clock: Clock, settings: FulfilmentSettings | None = None,
            push: PushSettings = PUSH) -> JobResult:
    return PushFulfilment(engine, port, push, settings or FulfilmentSettings(), clock=clock).run()


def sim_shipments(sim: SimServer) -> dict[str, list[dict[str, Any]]]:
    return dict(sim.state()["graphql"]["orders"]["shipmentsByOrder"])
