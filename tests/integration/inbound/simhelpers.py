"""Helpers shared by the over-HTTP pull tests: build the job on the sim, compute the expected state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from erpsync.clock import FakeClock
from erpsync.inbound.pull import PullJob
from erpsync.inbound.retry import Backoff
from erpsync.sim.server import SimServer
from erpsync.soap.client import CentraSoapClient
from erpsync.store.models import (
    CentraAccount,
    CentraCustomer,
    CentraGeneric,
    CentraInvoice,
    CentraOrder,
    CentraOrderLine,
    InboxEvent,
)

TZ = ZoneInfo("Europe/Stockholm")


def soap_client(sim: SimServer, *, password: str | None = None, read_timeout: float = 5.0,
                operation_timeout: float = 20.0) -> CentraSoapClient:
    return CentraSoapClient(
        sim.soap_url, sim.soap_user, password or sim.soap_password, store_tz=TZ,
        connect_timeout=2.0, read_timeout=read_timeout, operation_timeout=operation_timeout)


def pull_job(engine: Engine, client: CentraSoapClient, clock: FakeClock | None = None) -> PullJob:
    return PullJob(engine, client, store_tz=TZ, clock=clock or FakeClock(),
                   backoff=Backoff(attempts=8, base=0.05, cap=1.0))


# containers whose items erpsync always reads as a list, even when one item came (docs/erp-tables.md)
_LIST_ITEMS = {("products", "product"), ("cancelled", "product"), ("shipments", "shipment"), ("sizes", "size"),
               ("warehouseitems", "warehouse"), ("additionals", "additional"), ("payments", "payment"),
               ("partof", "product")}


def norm(value: Any, parent: str = "") -> Any:
    """The sim writes empty strings; an empty XML element reads back as None. A single item of a
    list container (``partof > product``) is written by the sim as an object, read as a list."""
    if isinstance(value, dict):
        out = {}
        for k, raw in value.items():
            v = norm(raw, k)
            out[k] = [v] if (parent, k) in _LIST_ITEMS and isinstance(v, dict) else v
        return out
    if isinstance(value, list):
        return [norm(v, parent) for v in value]
    return None if value == "" else value


def latest_by_object(sim: SimServer) -> dict[tuple[str, str], Any]:
    """(type, entry) -> the data of the newest event the sim emitted for it (None = deleted)."""
    latest: dict[tuple[str, str], Any] = {}
    snapshot = sim.snapshot()
    events = snapshot.get("queue", snapshot).get("events", [])
    assert not events, "the queue should be drained before comparing"
    return latest


def assert_tables_match(engine: Engine, expected: dict[tuple[str, str], tuple[int, str, Any]]) -> None:
    """``expected``: (type, entry) -> (event id, mission, data) of the newest event per object."""
    with Session(engine) as s:
        orders = {o.centra_id: o for o in s.exec(select(CentraOrder)).scalars()}  # type: ignore[call-overload]
        lines: dict[str, list[CentraOrderLine]] = {}
        for ln in s.exec(select(CentraOrderLine).order_by(col(CentraOrderLine.order_id),  # type: ignore[call-overload]
                                                          col(CentraOrderLine.line_no))).scalars():
            lines.setdefault(ln.order_id, []).append(ln)
        tables = {
            "customer": {r.centra_id: r for r in s.exec(select(CentraCustomer)).scalars()},  # type: ignore[call-overload]
            "account": {r.centra_id: r for r in s.exec(select(CentraAccount)).scalars()},  # type: ignore[call-overload]
            "invoice": {r.centra_id: r for r in s.exec(select(CentraInvoice)).scalars()},  # type: ignore[call-overload]
        }
        generic = {(r.type, r.centra_id): r for r in s.exec(select(CentraGeneric)).scalars()}  # type: ignore[call-overload]
        n_generic = len(generic)
        n_objects = len(orders) + sum(len(t) for t in tables.values()) + n_generic
        assert n_objects == len(expected), "one row per object, nothing duplicated"
        for (etype, entry), (eid, mission, data) in expected.items():
            if etype == "order":
                row: Any = orders[entry]
            elif etype in tables:
                row = tables[etype][entry]
            else:
                row = generic[(etype, entry)]
            assert row.last_event_id == str(eid), (etype, entry)
            assert row.deleted == (mission == "delete"), (etype, entry)
            if mission == "delete":
                continue
            assert norm(row.payload) == norm(data), (etype, entry)
            if etype == "order":
                assert row.order_total == Decimal(data["ordertotal"])
                assert row.status == data["status"]
                products = data["products"]["product"]
                got = lines[entry]
                assert len(got) == len(products)
                for ln, p in zip(got, products, strict=True):
                    for field in ("price", "qty", "subtotal", "discount", "tax", "origprice"):
                        assert getattr(ln, field) == Decimal(p[field]), (entry, field)
            elif etype == "invoice":
                assert row.total == Decimal(data["total"])
        inbox = s.exec(select(col(InboxEvent.event_id))).scalars().all()  # type: ignore[call-overload]
        assert len(inbox) == len(set(inbox))
