"""How the inbox decides between the two queues (source = "both"), on SQLite and PostgreSQL: the
object's time in whole seconds, a same-second tie by content, SOAP after SOAP by event id."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from erpsync.store.engine import transaction
from erpsync.store.inbox import EventMeta, InboundItem, InboxRepository, ObjectChange
from erpsync.store.models import CentraCustomer, InboxEvent

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def customer(eid: str, at: datetime, email: str, *, payload: Any = None, country: str | None = "SE") -> InboundItem:
    seq = None if eid.startswith("gql:") else int(eid)
    cols: dict[str, Any] = {"email": email, "firstname": "Ada", "lastname": "Berg",
                            "payload": payload or {"email": email}}
    if not eid.startswith("gql:"):  # the GraphQL shape has no country / status
        cols.update(country=country, status="active")
    meta = EventMeta(eid, seq, "customer", "81", "update", at)
    return InboundItem(meta, ObjectChange("customer", "81", columns=cols), None, "")


def store(engine: Engine, *items: InboundItem, now: datetime = T0) -> list[str]:
    with transaction(engine) as session:
        InboxRepository().store_batch(session, list(items), now=now)
    with Session(engine) as s:
        status = dict(s.exec(select(InboxEvent.event_id, InboxEvent.status)).all())  # type: ignore[call-overload]
    return [status[i.meta.event_id] for i in items]


def row(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as s:
        return tuple(s.exec(select(CentraCustomer.version, CentraCustomer.email, CentraCustomer.country,  # type: ignore[call-overload]
                                   CentraCustomer.last_event_id)).one())


def test_the_same_second_graphql_first(engine: Engine) -> None:
    # GraphQL read the current state (v3) of a second in which the customer changed three times
    assert store(engine, customer("gql:1", T0, "v3@x")) == ["applied"]
    # SOAP's snapshots of that second, including v3 itself: GraphQL stored the second's current state
    assert store(engine, customer("10", T0, "v1@x"), customer("11", T0, "v2@x"),
                 customer("12", T0, "v3@x")) == ["superseded"] * 3
    # the country (SOAP-only) follows SOAP's events: taken from them, the version stays GraphQL's
    assert row(engine) == (2, "v3@x", "SE", "gql:1")
    # a later second: a customer's GraphQL time is only a lower bound of the state it shows, so SOAP's
    # snapshot waits for GraphQL's own event of that change (SOAP-only columns still follow SOAP)
    later = T0.replace(second=1)
    assert store(engine, customer("13", later, "v4@x", country="NO")) == ["superseded"]
    assert row(engine) == (3, "v3@x", "NO", "gql:1")
    assert store(engine, customer("gql:2", later, "v4@x")) == ["applied"]
    assert row(engine) == (4, "v4@x", "NO", "gql:2")


def test_the_same_second_soap_first(engine: Engine) -> None:
    assert store(engine, customer("10", T0, "v1@x"), customer("11", T0, "v2@x")) == ["applied", "applied"]
    # GraphQL shows v2 (what SOAP stored: the same version, by content) then v3 (a newer state of the second)
    assert store(engine, customer("gql:1", T0, "v2@x")) == ["superseded"]
    assert store(engine, customer("gql:2", T0, "v3@x")) == ["applied"]
    assert row(engine) == (3, "v3@x", "SE", "gql:2")  # country: not in the GraphQL shape, SOAP's value stays
    assert store(engine, customer("12", T0, "v3@x")) == ["superseded"]  # SOAP's v3 arrives last: once only
    # an older second never overwrites, from either queue
    earlier = T0.replace(minute=0, hour=11)
    assert store(engine, customer("9", earlier, "v0@x"), customer("gql:0", earlier, "v0@x")) == ["superseded"] * 2
    assert row(engine)[0] == 3


def test_graphql_repeats_its_own_state_once(engine: Engine) -> None:
    # three events of one customer in a page, all showing the current state: applied once
    assert store(engine, customer("gql:1", T0, "a@x"), customer("gql:2", T0, "a@x"),
                 customer("gql:3", T0, "a@x")) == ["applied", "superseded", "superseded"]
    # the next page shows it unchanged (a later event time, the same object): still that version
    assert store(engine, customer("gql:4", T0.replace(second=5), "a@x")) == ["superseded"]
    assert store(engine, customer("gql:5", T0.replace(second=6), "b@x")) == ["applied"]
    assert row(engine)[0] == 2


def test_decimals_compare_by_value_across_queues(engine: Engine) -> None:
    """A tie compares the ERP columns by value: SOAP's 25.000 is GraphQL's 25.0 (and PostgreSQL's
    25.00000000)."""
    def account(eid: str, name: str, limit: str) -> InboundItem:
        return InboundItem(EventMeta(eid, None if eid.startswith("gql:") else int(eid), "invoice", "9", "update", T0),
                           ObjectChange("invoice", "9", columns={"order_id": "1201", "total": Decimal(limit),
                                                                 "currency": "SEK", "payload": {"n": name}}), None, "")
    assert store(engine, account("10", "soap", "25.000")) == ["applied"]
    assert store(engine, account("gql:1", "gql", "25.0")) == ["superseded"]
    assert store(engine, account("gql:2", "gql", "25.01")) == ["applied"]


def test_a_graphql_page_read_before_soap_stored_a_later_state_of_the_second(engine: Engine) -> None:
    """The two pulls race: GraphQL read the customer at v2, SOAP then stored v3 of the same second;
    GraphQL's page (v2) must not bring v2 back. Its own event of the change to v3 settles it."""
    from dataclasses import replace
    from datetime import timedelta

    read_at = T0 + timedelta(seconds=10)
    assert store(engine, customer("10", T0, "v3@x"), now=read_at + timedelta(milliseconds=5)) == ["applied"]
    late = customer("gql:1", T0, "v2@x")
    assert store(engine, replace(late, meta=replace(late.meta, read_at=read_at))) == ["superseded"]
    assert row(engine)[:2] == (1, "v3@x")
    # read after SOAP stored: GraphQL's state of that second is the newer one
    fresh = customer("gql:2", T0, "v4@x")
    assert store(engine, replace(fresh, meta=replace(fresh.meta, read_at=read_at + timedelta(seconds=1)))) == [
        "applied"]
    assert row(engine)[:2] == (2, "v4@x")


def test_a_parked_graphql_event_is_retried_as_graphql(engine: Engine) -> None:
    """`erpsync parked retry` maps a parked GraphQL event from its JSON (not as SOAP XML)."""
    import json

    from sqlalchemy import update

    from erpsync.inbound import gql_transform
    from erpsync.inbound.replay import replay_parked_event
    from erpsync.store.models import CentraOrder, ParkedItem

    order = {"__typename": "DirectToConsumerOrder", "number": 1201, "status": "CONFIRMED",
             "createdAt": "2026-12-01T12:00:00+00:00", "updatedAt": "2026-12-01T12:00:00+00:00",
             "grandTotal": {"value": "oops", "currency": {"code": "SEK"}}, "store": {"id": 1}, "lines": []}
    event = {"id": 77, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1201,
             "createdAt": "2026-12-01T12:00:00+00:00", "object": None}
    item = gql_transform.to_inbound_item(event, order)
    assert item.change is None and "grandTotal.value" in (item.park_reason or "")
    assert store(engine, item) == ["parked"]
    repo = InboxRepository()
    with transaction(engine) as session:
        parked = repo.parked(session)[0]
        again = replay_parked_event(session, repo, parked, UTC, T0)
    assert again.status == "parked" and "grandTotal.value" in (again.reason or "")  # still the GraphQL reason
    fixed = json.loads(parked.payload or "")
    fixed["object"]["grandTotal"]["value"] = 12.5
    with transaction(engine) as session:
        session.connection().execute(update(ParkedItem).values(payload=json.dumps(fixed)))
    with transaction(engine) as session:
        parked = repo.parked(session)[0]
        done = replay_parked_event(session, repo, parked, UTC, T0)
    assert done.status == "applied"
    with Session(engine) as s:
        total = s.exec(select(CentraOrder.order_total)).one()[0]  # type: ignore[call-overload]
    assert Decimal(total) == Decimal("12.50")
