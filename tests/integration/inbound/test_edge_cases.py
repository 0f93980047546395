"""What a real Centra queue sends that a tidy one does not, through the pull job into real SQLite
and PostgreSQL: updates without an object, an older event after a newer one, one id twice in a
batch, delete then update, dates in the repeated DST hour, both date formats in one payload."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from erpsync.clock import FakeClock
from erpsync.inbound.export import export_orders
from erpsync.inbound.pull import PullJob
from erpsync.inbound.retry import Backoff
from erpsync.sim.server import SimServer
from erpsync.soap.models import SoapEvent
from erpsync.store.models import (
    CentraAccount,
    CentraCustomer,
    CentraGeneric,
    CentraInvoice,
    CentraOrder,
    CentraOrderLine,
    InboxEvent,
    ParkedItem,
)
from tests.integration.inbound.fakes import FakeQueue, generic_event, order_event
from tests.integration.inbound.simhelpers import soap_client

TZ = ZoneInfo("Europe/Stockholm")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _run(engine: Engine, queue: FakeQueue) -> dict[str, int]:
    result = PullJob(engine, queue, store_tz=TZ, clock=FakeClock()).run()
    assert result.outcome == "ok", result
    return result.counts


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one()[0])  # type: ignore[call-overload]


def empty_update(eid: int, etype: str, entry: str) -> SoapEvent:
    return SoapEvent(id=str(eid), type=etype, entry=entry, mission="update", date=T0 + timedelta(minutes=eid),
                     data=None, data_tag=None, raw=f"<event><id>{eid}</id><data/></event>")


def test_updates_with_an_empty_data_are_stored_not_parked_and_keep_a_stored_payload(engine: Engine) -> None:
    _run(engine, FakeQueue([generic_event(1, "warehouse", "WH1", {"id": "WH1", "name": "Main"})]))
    queue = FakeQueue([
        empty_update(2, "paymentterm", "NET30"),
        empty_update(3, "shippingterm", "DHL"),
        empty_update(4, "warehouse", "WH1"),  # an update that names no object: the stored one stays
        empty_update(5, "order", "1311"),
    ])
    counts = _run(engine, queue)
    assert (counts["applied"], counts["parked"], counts["acked"]) == (4, 0, 4)
    assert _count(engine, ParkedItem) == 0
    with Session(engine) as s:
        term = s.get(CentraGeneric, ("NET30", "paymentterm"))
        assert term is not None and term.payload is None and term.last_event_id == "2"
        assert term.last_event_date is not None and not term.deleted
        assert s.get(CentraGeneric, ("DHL", "shippingterm")) is not None
        wh = s.get(CentraGeneric, ("WH1", "warehouse"))
        assert wh is not None and wh.payload == {"id": "WH1", "name": "Main"} and wh.last_event_id == "4"
        order = s.get(CentraGeneric, ("1311", "order"))
        assert order is not None and order.payload is None
        statuses = {e.event_id: e.status for e in s.exec(select(InboxEvent)).scalars()}  # type: ignore[call-overload]
    assert statuses == {str(i): "applied" for i in range(1, 6)}


def test_an_incomplete_order_is_parked_naming_the_path_acked_and_the_batch_goes_on(
    engine: Engine, tmp_path: Path,
) -> None:
    good = order_event(1, "1310", "2.20", lines=2)
    half = order_event(2, "1311", "2.20", lines=2)
    assert half.data is not None
    del half.data["products"]["product"][0]["qty"]
    half.data["products"]["product"][1]["price"] = ""
    bad_customer = generic_event(3, "customer", "88", {"id": "88", "store": "Retail"})
    queue = FakeQueue([good, half, bad_customer, generic_event(4, "customer", "89", {"id": "89", "store": "1"})])
    counts = _run(engine, queue)
    assert (counts["applied"], counts["parked"], counts["acked"]) == (2, 2, 4)
    assert queue.pending == []
    with Session(engine) as s:
        parked = {p.key: p.reason for p in s.exec(select(ParkedItem)).scalars()}  # type: ignore[call-overload]
        assert s.get(CentraOrder, "1311") is None and s.get(CentraOrder, "1310") is not None
        nulls = s.exec(select(func.count()).select_from(CentraOrderLine).where(  # type: ignore[call-overload]
            col(CentraOrderLine.qty).is_(None) | col(CentraOrderLine.price).is_(None))).one()[0]
    assert nulls == 0
    assert parked == {"2": "order 1311: products/product[0]/qty: missing; products/product[1]/price: missing",
                      "3": "customer 88: store: 'Retail' is not an integer"}
    result = export_orders(engine, tmp_path, now=T0)
    assert result.orders == 1 and result.orders_file is not None
    exported = [json.loads(line)["centra_id"] for line in result.orders_file.read_text().splitlines()]
    assert exported == ["1310"]


def test_a_malformed_batch_is_retried_then_salvaged_over_http(engine: Engine, sim: SimServer) -> None:
    sim.enqueue_event("warehouse", "W1", data={"id": "W1", "name": "Main"})
    broken = sim.enqueue_event("customer", "88", data={"id": "88", "email": "a@b.se"}, broken=True)
    sim.enqueue_event("paymentterm", "NET30", mission="delete")
    client = soap_client(sim)
    with structlog.testing.capture_logs() as logs:
        job = PullJob(engine, client, store_tz=TZ, clock=FakeClock(), malformed_retries=3,
                      backoff=Backoff(attempts=2, base=0.01, cap=0.01))
        first = job.run()  # two identical malformed answers: still retrying, nothing stored or acked
        assert first.outcome == "retry" and sim.queue.depth == 3
        second = job.run()  # the third identical answer: salvaged
    client.close()
    assert second.outcome == "ok", second
    assert (second.counts["applied"], second.counts["parked"], second.counts["acked"]) == (2, 1, 3)
    assert sim.queue.depth == 0
    events = [e["event"] for e in logs]
    assert events.count("events.malformed_batch") == 2 and events.count("events.malformed_batch_salvaged") == 1
    with Session(engine) as s:
        parked = s.exec(select(ParkedItem)).scalars().one()  # type: ignore[call-overload]
        assert s.get(CentraGeneric, ("W1", "warehouse")) is not None
        assert s.get(CentraGeneric, ("NET30", "paymentterm")) is not None
    assert parked.key == str(broken.id) and "malformed" in parked.reason
    assert parked.payload is not None and "R&D" in parked.payload and "<ns1:id>88</ns1:id>" in parked.payload


def test_an_unparseable_answer_without_events_keeps_failing(engine: Engine, sim: SimServer) -> None:
    sim.enqueue_event("warehouse", "W1", data={"id": "W1"})
    sim.set_fault("soap", "malformed", probability=1.0, only="events_Get")
    client = soap_client(sim)
    job = PullJob(engine, client, store_tz=TZ, clock=FakeClock(), malformed_retries=2,
                  backoff=Backoff(attempts=3, base=0.01, cap=0.01))
    result = job.run()
    client.close()
    assert result.outcome == "retry" and result.error_class == "MalformedResponse"
    assert _count(engine, InboxEvent) == 0


def test_every_edge_case_from_the_generator_over_http(engine: Engine, sim: SimServer, tmp_path: Path) -> None:
    """The acceptance run: the queue drains, no valid event is parked, every invalid one is parked
    with a path-naming reason and acked, exports hold only complete orders."""
    sim.generate(150)
    cases = sim.generate_edge_cases()
    sim.generate(60)
    client = soap_client(sim)
    job = PullJob(engine, client, store_tz=TZ, clock=FakeClock(), malformed_retries=2,
                  backoff=Backoff(attempts=3, base=0.01, cap=0.01))
    result = job.run()
    assert result.outcome == "ok", result
    assert sim.queue.depth == 0
    half = cases["incomplete_lines"][1]
    broken = cases["malformed_batch"][0]
    with Session(engine) as s:
        parked = {p.key: p.reason for p in s.exec(select(ParkedItem)).scalars()}  # type: ignore[call-overload]
        assert parked.keys() == {str(half.id), str(broken.id)}, parked
        assert parked[str(half.id)] == (f"order {half.entry}: products/product[0]/qty: missing; "
                                        "products/product[1]/price: missing")
        for ev in cases["empty_data"]:
            assert s.get(CentraGeneric, (ev.entry, ev.type)) is not None
        order_ev, account_ev, invoice_ev = cases["single_item_lists"]
        order = s.get(CentraOrder, order_ev.entry)
        assert order is not None and order.payload is not None
        assert len(order.payload["products"]["product"]) == 1
        assert order.payload["shipments"]["shipment"][0]["products"]["product"] == [{"sku": "TS01BLKM", "qty": "1"}]
        assert order.payload["refunds"]["refund"][0]["id"] == "R1"
        assert isinstance(order.payload["payments"]["payment"], list)
        account, invoice = s.get(CentraAccount, account_ev.entry), s.get(CentraInvoice, invoice_ev.entry)
        assert account is not None and account.payload is not None and len(account.payload["buyers"]["buyer"]) == 1
        assert invoice is not None and invoice.payload is not None
        assert len(invoice.payload["items"]["invoiceitem"]) == 1
        dup = cases["duplicate_ids"][0]
        assert s.exec(select(func.count()).select_from(InboxEvent).where(  # type: ignore[call-overload]
            col(InboxEvent.event_id) == str(dup.id))).one()[0] == 1
        first, second, dst_order = cases["dst_dates"]
        customer = s.get(CentraCustomer, second.entry)
        assert customer is not None and customer.email == "second@example.com"
        stored = s.get(CentraOrder, dst_order.entry)
        assert stored is not None and stored.created is not None
        assert stored.created.replace(tzinfo=UTC) == datetime(2026, 10, 25, 0, 40, tzinfo=UTC)
        nulls = s.exec(select(func.count()).select_from(CentraOrderLine).where(  # type: ignore[call-overload]
            col(CentraOrderLine.qty).is_(None) | col(CentraOrderLine.price).is_(None)
            | col(CentraOrderLine.subtotal).is_(None))).one()[0]
        assert nulls == 0
    assert result.counts["duplicates"] >= 1
    assert result.counts["acked"] == result.counts["fetched"] - result.counts["duplicates"]

    # an event delivered again after newer ones (its acknowledgement was lost), and an older event
    # (a lower id) that arrives only now: neither overwrites the stored newer version
    assert sim.queue.redeliver(first)
    assert sim.queue.redeliver(dataclasses.replace(first, id=999, data={"id": first.entry, "email": "old@x.se"}))
    again = job.run()
    client.close()
    assert again.outcome == "ok" and sim.queue.depth == 0
    assert (again.counts["duplicates"], again.counts["superseded"], again.counts["acked"]) == (1, 1, 2)
    with Session(engine) as s:
        customer = s.get(CentraCustomer, second.entry)
        assert customer is not None and customer.email == "second@example.com"
    exported = export_orders(engine, tmp_path, now=T0)
    assert exported.lines_file is not None
    rows = exported.lines_file.read_text().splitlines()
    header = rows[0].split(",")
    assert all(r.split(",")[header.index("qty")] and r.split(",")[header.index("price")] for r in rows[1:])
