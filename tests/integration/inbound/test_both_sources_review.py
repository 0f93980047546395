"""Review of source = "both" (#15): the two queues as a real Centra may interleave them, on SQLite and
PostgreSQL. Each test names the situation; each held, or was fixed together with its test."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session

from erpsync.inbound import gql_transform
from erpsync.inbound.gql_source import GraphqlEventSource
from erpsync.inbound.models import object_change
from erpsync.store.engine import transaction
from erpsync.store.inbox import EventMeta, InboundItem, InboxRepository
from erpsync.store.models import CentraCustomer, CentraOrder, CentraOrderLine, InboxEvent

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
TZ = ZoneInfo("Europe/Stockholm")


# ------------------------------------------------------------------ builders


def customer(eid: str, at: datetime, email: str, *, country: str | None = "SE") -> InboundItem:
    """A customer version as either queue maps it (GraphQL: no country / status)."""
    gql = eid.startswith("gql:")
    cols: dict[str, Any] = {"email": email, "firstname": "Ada", "lastname": "Berg", "payload": {"email": email}}
    if not gql:
        cols.update(country=country, status="active")
    meta = EventMeta(eid, None if gql else int(eid), "customer", "81", "update", at)
    from erpsync.store.inbox import ObjectChange

    return InboundItem(meta, ObjectChange("customer", "81", columns=cols), None, "")


def soap_order(eid: int, at: datetime, *, status: str = "confirmed", products: list[dict[str, Any]] | None = None,
               ambiguous: bool = False, created: str = "2026-12-01 13:00:00") -> InboundItem:
    """Order 1201 as the SOAP source maps it (``object_change`` on SOAP's ``<order>``)."""
    data = {
        "ordernumber": "1201", "status": status, "store": "1", "currency": "SEK", "ordertotal": "150.00",
        "customer": {"id": "81"}, "market": "Retail-SE", "pricelist": "PL-SEK", "created": created,
        "products": {"product": products if products is not None else SOAP_PRODUCTS},
    }
    change = object_change("order", "1201", data, store_tz=TZ)
    meta = EventMeta(str(eid), eid, "order", "1201", "update", at, ambiguous)
    return InboundItem(meta, change, None, "")


SOAP_PRODUCTS = [
    # a bundle: its virtual line (the ERP must not pick it) and a component
    {"id": "P9", "variation": {"id": "V9"}, "sku": "BNDL", "qty": "1", "price": "100.00", "origprice": "100.00",
     "discount": "0.00", "subtotal": "100.00", "tax": "25.000", "description": "Gift box",
     "bundleinfo": {"isbundle": "yes"},
     "sizes": {"size": [{"id": "ONE", "sku": "BNDL-ONE", "orderitem": {"id": "501"}}]}},
    {"id": "P1", "variation": {"id": "V1"}, "sku": "TS01", "qty": "1", "price": "50.00", "origprice": "50.00",
     "discount": "0.00", "subtotal": "50.00", "tax": "25.000", "description": "Organic tee",
     "sizes": {"size": [{"id": "XL", "sku": "TS01XL", "orderitem": {"id": "502"}}]}},
]


def gql_line(line_id: int, product: str, variant: str, number: str, size: str, sku: str, price: str,
             name: str) -> dict[str, Any]:
    return {"id": line_id, "productNumber": number, "size": size, "productName": name, "quantity": 1,
            "cancelledQuantity": 0, "unitPrice": {"value": Decimal(price)},
            "unitOriginalPrice": {"value": Decimal(price)}, "lineValue": {"value": Decimal(price)},
            "taxPercent": Decimal("25.0"), "discountPercent": Decimal("0.0"),
            "product": {"id": 7000 + line_id, "externalId": product},
            "productVariant": {"id": 8000 + line_id, "externalId": variant},
            "productSize": {"SKU": sku, "EAN": f"73{line_id}"}}


def gql_lines(bundle_id: int = 501, tee_id: int = 502, *, reverse: bool = False) -> list[dict[str, Any]]:
    lines = [gql_line(bundle_id, "P9", "V9", "BNDL", "ONE", "BNDL-ONE", "100", "Gift box"),
             gql_line(tee_id, "P1", "V1", "TS01", "XL", "TS01XL", "50", "Organic tee")]
    return lines[::-1] if reverse else lines


def gql_order(eid: int | str, updated: str, *, status: str = "CONFIRMED", lines: list[dict[str, Any]] | None = None,
              read_at: datetime | None = None, created: str = "2026-12-01T12:00:00+00:00") -> InboundItem:
    """Order 1201 as the GraphQL source maps it (``to_inbound_item`` on the order read by number)."""
    order = {"__typename": "DirectToConsumerOrder", "id": "h1201", "number": 1201, "status": status,
             "createdAt": created, "updatedAt": updated,
             "grandTotal": {"value": 150, "currency": {"code": "SEK"}}, "store": {"id": 1},
             "market": {"id": 1, "name": "Retail Sweden"}, "pricelist": {"id": 3, "externalId": "PL-SEK"},
             "lines": lines if lines is not None else gql_lines(), "shipments": [],
             "customer": {"id": 81, "email": "a@x", "firstName": "Ada", "lastName": "Berg"}}
    event = {"id": eid, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1201,
             "createdAt": updated, "object": None}
    item = gql_transform.to_inbound_item(event, order)
    assert item.change is not None, item.park_reason
    # read after the stores below (their ``now``): a same-second tie is decided by content
    return replace(item, meta=replace(item.meta, read_at=read_at or T0 + timedelta(hours=3)))


def store(engine: Engine, *items: InboundItem, now: datetime = T0 + timedelta(hours=2)) -> list[str]:
    with transaction(engine) as session:
        InboxRepository().store_batch(session, list(items), now=now)
    with Session(engine) as s:
        status = dict(s.exec(select(InboxEvent.event_id, InboxEvent.status)).all())  # type: ignore[call-overload]
    return [status[i.meta.event_id] for i in items]


def customer_row(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as s:
        return tuple(s.exec(select(CentraCustomer.version, CentraCustomer.email,  # type: ignore[call-overload]
                                   CentraCustomer.country)).one())


def order_row(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as s:
        return tuple(s.exec(select(CentraOrder.version, CentraOrder.status,  # type: ignore[call-overload]
                                   CentraOrder.last_event_id)).one())


def order_lines(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.exec(select(  # type: ignore[call-overload]
            CentraOrderLine.line_no, CentraOrderLine.sku, CentraOrderLine.order_item_id,
            CentraOrderLine.is_bundle_virtual).order_by(CentraOrderLine.line_no)).all()]


# ------------------------------------------------------------------ what holds


def test_one_order_version_once_whichever_queue_first_with_offsets_and_decimal_scales(engine: Engine) -> None:
    """GraphQL's updatedAt with another offset (+01:00, a fraction of a second) is the same UTC second
    as SOAP's event date; 150 vs 150.00 and 25.0 vs 25.000 compare by value."""
    assert store(engine, soap_order(10, T0)) == ["applied"]
    assert store(engine, gql_order(1, "2026-12-01T13:00:00.730+01:00")) == ["superseded"]
    assert order_row(engine) == (1, "confirmed", "10")
    # and GraphQL first: SOAP's snapshot of that second is superseded
    assert store(engine, gql_order(2, "2026-12-01T07:00:05-05:00", status="PROCESSING")) == ["applied"]
    assert store(engine, soap_order(11, T0 + timedelta(seconds=5), status="processing")) == ["superseded"]
    assert order_row(engine) == (2, "processing", "gql:2")


def test_event_ids_as_json_string_or_number_beyond_2_53_are_one_event() -> None:
    big = 2**53 + 1  # not representable as a double: must stay exact
    as_number = gql_transform.to_inbound_item({"id": big, "objectType": "Customer", "changeType": "UPDATED",
                                               "objectReference": 81, "createdAt": "2026-12-01T12:00:00Z",
                                               "object": {"customerId": 81, "email": "a@x"}})
    as_string = gql_transform.to_inbound_item({"id": f" {big} ", "objectType": "Customer", "changeType": "UPDATED",
                                               "objectReference": "81", "createdAt": "2026-12-01T12:00:00Z",
                                               "object": {"customerId": 81, "email": "a@x"}})
    assert as_number.meta.event_id == as_string.meta.event_id == f"gql:{big}"
    assert as_number.change == as_string.change

    class Client:
        def __init__(self) -> None:
            self.sent: list[Any] = []

        def mutate(self, _doc: str, variables: dict[str, Any], lane: str) -> Any:
            self.sent.append(variables["ids"])
            return type("R", (), {"user_errors": []})()

    client = Client()
    GraphqlEventSource(client).ack([f"gql:{big}", f"gql:{2**63 - 1}"])
    assert client.sent == [[big, 2**63 - 1]]  # the exact integers, one call


def test_event_ids_redelivered_as_strings_are_duplicates(engine: Engine) -> None:
    """A confirm lost after the commit: the page comes again (ids now as JSON strings): nothing is
    applied twice."""
    first = gql_order(2**40 + 7, "2026-12-01T12:00:00Z")
    assert store(engine, first) == ["applied"]
    again = gql_order(str(2**40 + 7), "2026-12-01T12:00:00Z")
    with transaction(engine) as session:
        out = InboxRepository().store_batch(session, [again], now=T0 + timedelta(hours=3))
    assert (out.applied, out.duplicates, out.ack_ids) == (0, 1, [f"gql:{2**40 + 7}"])
    assert order_row(engine)[0] == 1


def test_deleted_then_recreated_in_one_second_from_either_queue(engine: Engine) -> None:
    def deleted(eid: str) -> InboundItem:
        from erpsync.store.inbox import ObjectChange

        meta = EventMeta(eid, None if eid.startswith("gql:") else int(eid), "customer", "81", "delete",
                         T0 + timedelta(seconds=9))
        return InboundItem(meta, ObjectChange("customer", "81", delete=True), None, "")

    assert store(engine, customer("10", T0, "a@x")) == ["applied"]
    re_created = T0 + timedelta(seconds=9)
    # SOAP first: deleted and created again within second 9
    assert store(engine, deleted("11"), customer("12", re_created, "b@x")) == ["applied", "applied"]
    # GraphQL's page of that second: the delete then the current object (= SOAP's last version). Both
    # count as the second's newer states (a delete carries no content to compare): applied again, and
    # the page ends on the re-created customer
    store(engine, deleted("gql:1"), customer("gql:2", re_created, "b@x"))
    with Session(engine) as s:
        row = tuple(s.exec(select(CentraCustomer.deleted, CentraCustomer.email)).one())  # type: ignore[call-overload]
    # whatever the statuses, the ERP ends with the re-created customer, not deleted
    assert row == (False, "b@x")


# ------------------------------------------------------------------ defects


def test_overlapping_pulls_of_a_new_object_keep_the_newer_version(engine: Engine, db_url: str) -> None:
    """GraphQL and SOAP pull at once and both bring an object the inbox has never seen: GraphQL its
    state of second 3, SOAP an older snapshot (second 0). Whichever commits last, the stored version
    is the newer one and SOAP's is superseded. (PostgreSQL: neither sees the other's uncommitted row;
    before the fix the second commit's upsert overwrote the first unconditionally.)"""
    from erpsync.store.engine import make_engine

    eng_a, eng_b = make_engine(db_url), make_engine(db_url)
    written = threading.Event()
    errors: list[BaseException] = []

    def graphql_pull() -> None:
        try:
            with transaction(eng_a) as session:
                InboxRepository().store_batch(session, [customer("gql:1", T0 + timedelta(seconds=3), "v2@x")],
                                              now=T0 + timedelta(seconds=4))
                written.set()
                time.sleep(1.0)  # SOAP's transaction runs now, before this commit
        except BaseException as exc:
            errors.append(exc)
            written.set()

    def soap_pull() -> None:
        try:
            assert written.wait(20)
            with transaction(eng_b) as session:
                InboxRepository().store_batch(session, [customer("10", T0, "v1@x")], now=T0 + timedelta(seconds=4))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=graphql_pull), threading.Thread(target=soap_pull)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    eng_a.dispose()
    eng_b.dispose()
    assert not errors, errors
    with Session(engine) as s:
        status = dict(s.exec(select(InboxEvent.event_id, InboxEvent.status)).all())  # type: ignore[call-overload]
    assert customer_row(engine)[1] == "v2@x"
    assert status == {"gql:1": "applied", "10": "superseded"}


def test_graphql_lines_in_another_order_keep_soaps_bundle_flag(engine: Engine) -> None:
    """The contract does not order GraphQL's lines like SOAP's products; a client matches lines by
    SKU (then EAN, unit price and position). A later GraphQL version listing the component before the
    bundle must keep SOAP's is_bundle_virtual on the bundle's line, not on whatever line now has its
    position."""
    assert store(engine, soap_order(10, T0)) == ["applied"]
    assert order_lines(engine) == [(1, "BNDL", "501", True), (2, "TS01", "502", False)]
    later = gql_order(1, "2026-12-01T12:00:07Z", status="PROCESSING", lines=gql_lines(reverse=True))
    assert store(engine, later) == ["applied"]
    flags = {sku: flag for _no, sku, _item, flag in order_lines(engine)}
    assert flags == {"BNDL": True, "TS01": False}


def test_graphql_line_ids_other_than_soaps_are_the_same_version(engine: Engine) -> None:
    """[open] OrderLine.id may not be SOAP's orderitem id: the same order state from GraphQL, in the
    second SOAP stored, is that version again (lines matched by SKU), not a second application."""
    assert store(engine, soap_order(10, T0)) == ["applied"]
    assert store(engine, gql_order(1, "2026-12-01T12:00:00Z", lines=gql_lines(9001, 9002))) == ["superseded"]
    assert order_row(engine) == (1, "confirmed", "10")
    # in another order too: the same lines
    assert store(engine, gql_order(2, "2026-12-01T12:00:00Z", lines=gql_lines(9001, 9002, reverse=True))) == [
        "superseded"]
    # a later version from GraphQL: the ERP keeps the line ids (and the bundle flag) it has, matched by SKU
    assert store(engine, gql_order(3, "2026-12-01T12:00:05Z", status="PROCESSING",
                                   lines=gql_lines(9001, 9002))) == ["applied"]
    assert order_lines(engine) == [(1, "BNDL", "501", True), (2, "TS01", "502", False)]


def test_an_order_without_lines_from_the_other_queue(engine: Engine) -> None:
    """Same-second tie, no lines on either side: compared (the line comparison indexed the first line)."""
    assert store(engine, soap_order(10, T0, products=[])) == ["applied"]
    assert store(engine, gql_order(1, "2026-12-01T12:00:00Z", lines=[])) == ["superseded"]


def test_a_soap_only_field_change_survives_graphql_storing_its_second_first(engine: Engine) -> None:
    assert store(engine, customer("10", T0, "a@x", country="SE")) == ["applied"]
    moved = T0 + timedelta(seconds=9)
    # the customer moves to Norway: GraphQL's event (same email and name: its shape has no country) first
    assert store(engine, customer("gql:1", moved, "a@x")) == ["applied"]
    # its version is GraphQL's (superseded: one `applied` per version), its SOAP-only column SOAP's;
    # the row's version moves on so that the ERP takes it again
    assert store(engine, customer("11", moved, "a@x", country="NO")) == ["superseded"]
    assert customer_row(engine) == (3, "a@x", "NO")
    # an older SOAP event (a parked one retried) never brings its country back
    assert store(engine, customer("9", T0 - timedelta(seconds=9), "a@x", country="DK")) == ["superseded"]
    assert customer_row(engine) == (3, "a@x", "NO")


def test_soap_only_columns_follow_soap_within_one_batch(engine: Engine) -> None:
    """SOAP applied, GraphQL's later state and SOAP's snapshot of it in one batch: the row written
    once keeps SOAP's market (only the last winner per object is written); a retail order's
    customer_id (both queues carry it) follows the version."""
    later = gql_order(1, "2026-12-01T12:00:07Z", status="PROCESSING")
    snap = soap_order(11, T0 + timedelta(seconds=7), status="processing")
    snap.change.columns["market"] = "Retail-NO"  # type: ignore[union-attr]
    snap.change.columns["customer_id"] = "99"  # type: ignore[union-attr]
    assert store(engine, soap_order(10, T0), later, snap) == ["applied", "applied", "superseded"]
    with Session(engine) as s:
        row = tuple(s.exec(select(CentraOrder.version, CentraOrder.status, CentraOrder.market,  # type: ignore[call-overload]
                                  CentraOrder.last_event_id, CentraOrder.soap_event_seq,
                                  CentraOrder.customer_id)).one())
    assert row == (3, "processing", "Retail-NO", "gql:1", 11, "81")


def test_a_wholesale_orders_buyer_follows_soap(engine: Engine) -> None:
    """WholesaleOrder has no buyer in the GraphQL shape: SOAP's later event sets it even when its
    version is superseded."""
    assert store(engine, soap_order(10, T0)) == ["applied"]  # customer 81
    order = dict(gql_order(1, "2026-12-01T12:00:05Z").change.columns["payload"])  # type: ignore[union-attr]
    order.update({"__typename": "WholesaleOrder", "account": {"id": 5, "name": "Shop AB"}, "status": "PROCESSING"})
    order.pop("customer")
    event = {"id": 1, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1201,
             "createdAt": "2026-12-01T12:00:05Z", "object": None}
    wholesale = gql_transform.to_inbound_item(event, order)
    assert wholesale.change is not None and "customer_id" not in wholesale.change.columns
    assert store(engine, replace(wholesale, meta=replace(wholesale.meta, read_at=T0 + timedelta(hours=3)))) == [
        "applied"]
    buyer = soap_order(11, T0 + timedelta(seconds=5), status="processing")
    buyer.change.columns["customer_id"] = "82"  # type: ignore[union-attr]
    assert store(engine, buyer) == ["superseded"]
    with Session(engine) as s:
        row = tuple(s.exec(select(CentraOrder.version, CentraOrder.customer_id,  # type: ignore[call-overload]
                                  CentraOrder.last_event_id)).one())
    assert row == (3, "82", "gql:1")


def test_customer_events_straddling_pages_never_bring_an_older_state_back(engine: Engine) -> None:
    assert store(engine, customer("10", T0, "v1@x")) == ["applied"]
    # the customer changed at +5 (v2), +7 and +9 (v3); GraphQL's full page ends with the +5 event, the
    # object it shows is the current v3: stamped +5
    assert store(engine, customer("gql:1", T0 + timedelta(seconds=5), "v3@x")) == ["applied"]
    # SOAP lags: its snapshot of +7 is older than what the table holds
    assert store(engine, customer("11", T0 + timedelta(seconds=7), "v2b@x")) == ["superseded"]
    assert customer_row(engine)[1] == "v3@x"
    # GraphQL's next page: the events of +7 and +9, the same current state, stamped +9: the same version
    assert store(engine, customer("gql:2", T0 + timedelta(seconds=9), "v3@x"),
                 customer("gql:3", T0 + timedelta(seconds=9), "v3@x")) == ["superseded", "superseded"]
    assert customer_row(engine)[:2] == (2, "v3@x")
    # a real later change comes through GraphQL's own event (SOAP's snapshot of it is superseded)
    assert store(engine, customer("12", T0 + timedelta(seconds=20), "v4@x")) == ["superseded"]
    assert store(engine, customer("gql:4", T0 + timedelta(seconds=20), "v4@x")) == ["applied"]
    assert customer_row(engine)[:2] == (3, "v4@x")


def test_with_the_graphql_queue_no_longer_read_soap_moves_what_graphql_stored(engine: Engine) -> None:
    """source = "soap" again (a roll-back): no GraphQL event will come, SOAP's later snapshot is newer."""
    assert store(engine, customer("gql:1", T0 + timedelta(seconds=5), "v3@x")) == ["applied"]
    with transaction(engine) as session:
        out = InboxRepository(graphql_queue_read=False).store_batch(
            session, [customer("11", T0 + timedelta(seconds=7), "v4@x")], now=T0 + timedelta(hours=2))
    assert out.applied == 1 and customer_row(engine) == (2, "v4@x", "SE")


def test_dst_fall_back_second_pass_is_one_version(engine: Engine) -> None:
    # Stockholm 2026-10-25 02:10:00 second pass = 01:10:00Z; SOAP's offset-less date reads it 00:10:00Z
    soap_at = datetime(2026, 10, 25, 2, 10, tzinfo=TZ).astimezone(UTC)  # fold=0: the first pass
    assert soap_at == datetime(2026, 10, 25, 0, 10, tzinfo=UTC)
    assert store(engine, soap_order(10, soap_at, ambiguous=True)) == ["applied"]
    assert store(engine, gql_order(1, "2026-10-25T01:10:00Z")) == ["superseded"]


def test_a_parked_graphql_event_retried_later_is_judged_as_read_when_parked(engine: Engine) -> None:
    """`erpsync parked retry` of a GraphQL event applies the object read when it was parked. SOAP stored
    a state of that second after the read: the replay must not bring the older read back (the live
    rule: a SOAP snapshot stored after GraphQL read its page wins the same-second tie)."""
    import json

    from sqlalchemy import update

    from erpsync.inbound.replay import replay_parked_event
    from erpsync.store.models import ParkedItem

    bad = gql_order(5, "2026-12-01T12:00:00Z")  # CONFIRMED, read before SOAP stored PROCESSING
    event = {"id": 5, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1201,
             "createdAt": "2026-12-01T12:00:00Z", "object": None}
    order = dict(bad.change.columns["payload"]) if bad.change else {}
    order["grandTotal"] = {"value": "oops", "currency": {"code": "SEK"}}
    parked_item = gql_transform.to_inbound_item(event, order)
    assert parked_item.change is None
    assert store(engine, parked_item, now=T0 + timedelta(minutes=1)) == ["parked"]
    assert store(engine, soap_order(10, T0, status="processing"), now=T0 + timedelta(minutes=2)) == ["applied"]
    repo = InboxRepository()
    with transaction(engine) as session:
        parked = repo.parked(session)[0]
        fixed = json.loads(parked.payload or "")
        fixed["object"]["grandTotal"]["value"] = 150
        session.connection().execute(update(ParkedItem).values(payload=json.dumps(fixed)))
    with transaction(engine) as session:
        result = replay_parked_event(session, repo, repo.parked(session)[0], TZ, T0 + timedelta(hours=5))
    assert result.status == "superseded"
    assert order_row(engine)[:2] == (1, "processing")


def test_versions_of_a_known_object_take_no_id_map_ids(engine: Engine) -> None:
    """id_map.id is a 32-bit serial: on PostgreSQL every INSERT … ON CONFLICT attempt takes a value, so
    re-inserting a known object's row per version would run it out on a busy store. Only new objects
    take one."""
    from erpsync.store.models import IdMap

    for n in range(5):
        store(engine, customer(str(10 + n), T0 + timedelta(seconds=n), f"v{n}@x"))
    other = customer("20", T0, "b@x")
    other = replace(other, change=replace(other.change, key="82")) if other.change else other
    store(engine, other)
    with Session(engine) as s:
        ids = sorted(r[0] for r in s.exec(select(IdMap.id)).all())  # type: ignore[call-overload]
    assert ids == [1, 2]


class _FakeGraphql:
    """A GraphQL events queue whose ids come as JSON strings beyond 2**53; ``lose_confirms`` confirm
    calls are applied by nobody and answered with a transient failure (the commit stands)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.confirmed: list[list[int]] = []
        self.lose_confirms = 0

    def query(self, doc: str, variables: dict[str, Any] | None = None, lane: str = "") -> Any:
        if "eventListeners" in doc:
            data = {"eventListeners": [{"objectType": t, "changeTypes": list(gql_transform_types())}
                                       for t in ("Order", "Customer", "Account")]}
        else:
            data = {"events": list(self.events[: (variables or {}).get("limit", 200)]), "orders": []}
        return type("Q", (), {"data": data})()

    def mutate(self, doc: str, variables: dict[str, Any], lane: str = "") -> Any:
        from erpsync.errors import RetryLater

        if self.lose_confirms:
            self.lose_confirms -= 1
            raise RetryLater("confirmEvents: connection reset")
        self.confirmed.append(list(variables["ids"]))
        done = {str(i) for i in variables["ids"]}
        self.events = [e for e in self.events if str(e["id"]).strip() not in done]
        return type("M", (), {"user_errors": []})()


def gql_transform_types() -> tuple[str, ...]:
    from erpsync.inbound.gql_documents import ALL_CHANGE_TYPES

    return ALL_CHANGE_TYPES


def test_a_lost_confirm_after_the_commit_redelivers_without_a_second_application(engine: Engine) -> None:
    from erpsync.clock import FakeClock
    from erpsync.inbound.gql_source import GraphqlPullJob
    from erpsync.inbound.retry import Backoff

    base = 2**53 + 10
    events = [{"id": str(base + n), "objectType": "Customer", "changeType": "UPDATED", "objectReference": "81",
               "createdAt": f"2026-12-01T13:00:0{n}+01:00",
               "object": {"__typename": "Customer", "customerId": 81, "email": "a@x", "firstName": "A",
                          "lastName": "B"}} for n in range(3)]
    client = _FakeGraphql(events)
    job = GraphqlPullJob(engine, GraphqlEventSource(client), clock=FakeClock(),  # type: ignore[arg-type]
                         backoff=Backoff(attempts=1))
    client.lose_confirms = 1
    assert job.run().outcome != "ok"  # stored and committed, the confirm lost
    res = job.run()
    assert res.outcome == "ok" and (res.counts["applied"], res.counts["duplicates"]) == (0, 3)
    assert client.confirmed == [[base, base + 1, base + 2]] and client.events == []
    with Session(engine) as s:
        rows = s.exec(select(InboxEvent.event_id, InboxEvent.status)).all()  # type: ignore[call-overload]
    assert sorted(tuple(r) for r in rows) == [(f"gql:{base}", "applied"), (f"gql:{base + 1}", "superseded"),
                                              (f"gql:{base + 2}", "superseded")]
    assert customer_row(engine)[:2] == (1, "a@x")


def test_an_order_placed_in_the_dst_fall_back_hour_is_one_version_later_on(engine: Engine) -> None:
    placed = "2026-10-25 02:30:00"  # Stockholm, the second pass: 01:30:00Z
    assert store(engine, soap_order(10, T0, created=placed)) == ["applied"]  # a December change of it
    assert store(engine, gql_order(1, "2026-12-01T12:00:00Z", created="2026-10-25T01:30:00Z")) == ["superseded"]
    # a later version from GraphQL writes its unambiguous `created`; SOAP's later ones never flip it back
    assert store(engine, gql_order(2, "2026-12-01T12:00:05Z", status="PROCESSING",
                                   created="2026-10-25T01:30:00Z")) == ["applied"]
    assert store(engine, soap_order(11, T0 + timedelta(seconds=9), status="completed", created=placed)) == ["applied"]
    with Session(engine) as s:
        created = s.exec(select(CentraOrder.created)).one()[0]  # type: ignore[call-overload]
    assert created.replace(tzinfo=UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    # and the same state again from GraphQL is that version (its `created` matches SOAP's either reading)
    assert store(engine, gql_order(3, "2026-12-01T12:00:09Z", status="SHIPPED",
                                   created="2026-10-25T01:30:00Z")) == ["superseded"]


def test_an_order_event_with_an_unreadable_reference_is_parked_and_confirmed(engine: Engine) -> None:
    """objectReference '²' passed ``isdigit`` and crashed ``int`` while the page's orders were read:
    the run failed before storing anything, on every run (a poison event at the head of the queue)."""
    from erpsync.clock import FakeClock
    from erpsync.inbound.gql_source import GraphqlPullJob
    from erpsync.inbound.retry import Backoff

    events = [{"id": 7, "objectType": "Order", "changeType": "UPDATED", "objectReference": "²",
               "createdAt": "2026-12-01T12:00:00Z", "object": None},
              {"id": 8, "objectType": "Customer", "changeType": "UPDATED", "objectReference": 81,
               "createdAt": "2026-12-01T12:00:00Z", "object": {"customerId": 81, "email": "a@x"}}]
    client = _FakeGraphql(events)
    job = GraphqlPullJob(engine, GraphqlEventSource(client), clock=FakeClock(),  # type: ignore[arg-type]
                         backoff=Backoff(attempts=1))
    res = job.run()
    assert res.outcome == "ok" and (res.counts["parked"], res.counts["applied"]) == (1, 1)
    assert client.confirmed == [[7, 8]]


def test_a_line_added_with_a_known_sku_keeps_its_own_id(engine: Engine) -> None:
    """A line added in Centra with the SKU of an existing one, listed first: the existing line keeps
    its id (matched by id), the new one keeps its new id (no two lines with one id)."""
    assert store(engine, soap_order(10, T0)) == ["applied"]
    added = gql_line(503, "P1", "V1", "TS01", "XL", "TS01XL", "50", "Organic tee")
    later = gql_order(1, "2026-12-01T12:00:07Z", status="PROCESSING", lines=[added, *gql_lines()])
    assert store(engine, later) == ["applied"]
    assert sorted(item for _no, _sku, item, _flag in order_lines(engine)) == ["501", "502", "503"]
