"""``PushFulfilment``: the ERP's deliveries and line cancellations into Centra, exactly once (§2.5).

A delivery (``erp_delivery`` + its ``erp_delivery_line`` rows) is driven through

    new → creating → created → linked → [capturing → captured | capture_pending] → completing → shipped

one mutation per step, each step's result committed before the next step is sent:

- **new**: read the order (lines, and the shipments it already has). Lines given by SKU / EAN are
  resolved on the order's lines; over-shipping is refused with the figures. A good-to-go shipment
  Centra made itself whose lines equal the delivery is adopted instead of creating one. The intent
  (the resolved lines and the shipments the order had) is stored: state ``creating``.
- **creating**: ``createShipment`` (with ``externalId`` when ``external_id_on_create``). After an
  unknown outcome (timeout, 499, 5xx, reset, or a kill -9 — a run that finds ``creating`` starts
  here) the shipment is read back by ``externalId`` and among the order's shipments: one that no
  delivery recorded and whose lines equal the intent is ours. Created again only if none matches.
- **created**: ``updateShipment`` sets the delivery id as ``externalId`` (and ``isPaid`` when paid
  outside Centra); safe to resend.
- **capturing** (when the row asks ``capture``): captured ⇔ Centra's ``isCaptured``. PENDING waits
  (read again each run, parked after ``capture_pending_max_wait_seconds``); a failed capture parks
  the delivery for a person with Centra's message (``fulfilment.capture_failed``) and is never
  followed by ``completeShipment``; ``erpsync parked retry`` sends the capture again.
- **completing**: ``completeShipment`` with the shipment info; an unknown outcome or a null payload
  is settled by reading back ``isShipped``.

Cancellations (``erp_line_cancellation``) are deltas: ``cancelledQuantity`` is read and stored
before sending; after an unknown outcome the line is read again and only the missing units are
sent. In-flight items (``creating`` …, ``sending``) are resumed before new ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlmodel import Session, col

from erpsync.config import FulfilmentSettings, PushSettings
from erpsync.errors import ItemRejected, OutcomeUnknown, PermissionDenied, RateLimited, RetryLater
from erpsync.job import RunContext
from erpsync.outbound.fulfilment_documents import (
    CANCEL_DTC_LINES,
    CANCEL_WHOLESALE_LINES,
    CAPTURE_SHIPMENT,
    COMPLETE_SHIPMENT,
    CREATE_SHIPMENT,
    ORDER_FOR_FULFILMENT,
    SHIPMENT_BY_EXTERNAL_ID,
    SHIPMENT_BY_ID,
    UPDATE_SHIPMENT,
)
from erpsync.outbound.fulfilment_model import (
    OrderView,
    ShipmentView,
    WantedLine,
    check_order,
    create_input,
    resolve_lines,
    shipment_info,
    shipped_at_value,
    stock_policy,
)
from erpsync.outbound.push import CentraPort, DryRunSink, PushJob, crash_point, user_errors, user_warnings
from erpsync.store.engine import transaction
from erpsync.store.fulfilment import OPEN_DELIVERY_STATES, ErpDelivery, ErpDeliveryLine, ErpLineCancellation
from erpsync.store.models import ParkedItem

T = TypeVar("T")
PARK_KIND_DELIVERY = "delivery"
PARK_KIND_CANCELLATION = "cancellation"
#: Steps a kill -9 can land between (``ERPSYNC_TEST_PUSH_CRASH_AT=fulfil_after_create:2``).
#: In the order a run reaches them (cancellations are sent before deliveries).
CRASH_POINTS = ("fulfil_after_cancel", "fulfil_after_intent", "fulfil_after_create", "fulfil_after_created",
                "fulfil_after_link", "fulfil_after_capture", "fulfil_after_complete")
#: Resumed first: their last step may have been sent without its result being recorded.
IN_FLIGHT = ("creating", "created", "linked", "capturing", "captured", "capture_pending", "completing")


class CaptureFailed(ItemRejected):
    """Centra (its payment provider) refused the capture: a person must look at it."""


class PushFulfilment(PushJob):
    name = "push_fulfilment"
    lane = "fulfilment"

    def __init__(self, engine: Any, centra: CentraPort | None, push: PushSettings, fulfilment: FulfilmentSettings,
                 **kw: Any) -> None:
        super().__init__(engine, centra, push, **kw)
        self.settings = fulfilment
        self._run: RunContext | None = None

    # ------------------------------------------------------------------ run

    def _count(self, key: str) -> None:
        if self._run is not None:
            self._run.counts[key] += 1

    def push_once(self, run: RunContext) -> None:
        self._run = run
        if self.dry_run is not None:
            self._plan(run, self.dry_run)
            return
        self._requeue_retried(run)
        for cancellation_id in self._cancellations():
            run.checkpoint()
            self._cancel_one(run, cancellation_id)
        for delivery_id in self._deliveries():
            run.checkpoint()
            self._drive_one(run, delivery_id)

    def _deliveries(self) -> list[str]:
        """Open deliveries, in-flight ones first, then the oldest new ones; and rejected ones whose
        ERP row changed since (re-checked)."""
        with Session(self.engine) as s:
            rows = s.exec(select(ErpDelivery.delivery_id, ErpDelivery.state, ErpDelivery.row_hash)  # type: ignore[call-overload]
                          .where(col(ErpDelivery.state).in_((*OPEN_DELIVERY_STATES, "rejected")),
                                 col(ErpDelivery.removed_at).is_(None))
                          .order_by(col(ErpDelivery.imported_at), col(ErpDelivery.delivery_id))).all()
        in_flight = [d for d, st, _h in rows if st in IN_FLIGHT]
        fresh = [d for d, st, _h in rows if st == "new"]
        rejected = [d for d, st, h in rows if st == "rejected" and h != self._row_hash(d)]
        return (in_flight + fresh + rejected)[: self.settings.max_deliveries_per_run]

    def _cancellations(self) -> list[str]:
        with Session(self.engine) as s:
            rows = s.exec(select(ErpLineCancellation.cancellation_id, ErpLineCancellation.state)  # type: ignore[call-overload]
                          .where(col(ErpLineCancellation.state).in_(("new", "sending")),
                                 col(ErpLineCancellation.removed_at).is_(None))
                          .order_by(col(ErpLineCancellation.imported_at),
                                    col(ErpLineCancellation.cancellation_id))).all()
        return [c for c, st in rows if st == "sending"] + [c for c, st in rows if st == "new"]

    # ------------------------------------------------------------------ store

    def _load(self, delivery_id: str) -> tuple[ErpDelivery, list[ErpDeliveryLine]]:
        with Session(self.engine) as s:
            d = s.get(ErpDelivery, delivery_id)
            assert d is not None
            lines = list(s.exec(select(ErpDeliveryLine).where(  # type: ignore[call-overload]
                col(ErpDeliveryLine.delivery_id) == delivery_id, col(ErpDeliveryLine.removed_at).is_(None))
                .order_by(col(ErpDeliveryLine.line_no))).scalars())
            s.expunge_all()
        return d, lines

    def _set(self, delivery_id: str, **values: Any) -> None:
        """Write status columns of one delivery (committed at once: the step is durable)."""
        values.setdefault("status_at", self.clock.now())
        with transaction(self.engine) as s:
            s.execute(update(ErpDelivery).where(col(ErpDelivery.delivery_id) == delivery_id).values(**values))

    def _set_cancellation(self, cancellation_id: str, **values: Any) -> None:
        values.setdefault("status_at", self.clock.now())
        with transaction(self.engine) as s:
            s.execute(update(ErpLineCancellation).where(
                col(ErpLineCancellation.cancellation_id) == cancellation_id).values(**values))

    def _row_hash(self, delivery_id: str) -> str:
        d, lines = self._load(delivery_id)
        return _hash(d, lines)

    def _recorded_shipments(self, order_number: str, but: str) -> set[int]:
        """Shipment ids other deliveries of the order recorded (never adopted twice)."""
        with Session(self.engine) as s:
            ids = s.exec(select(ErpDelivery.shipment_id).where(  # type: ignore[call-overload]
                col(ErpDelivery.order_number) == order_number, col(ErpDelivery.delivery_id) != but,
                col(ErpDelivery.shipment_id).is_not(None))).all()
        return {int(i) for (i,) in ids}

    def _park(self, delivery_id: str, kind: str, reason: str, resume: str | None, intent: dict[str, Any] | None,
              ) -> None:
        """State ``parked`` with the reason, and an open ParkedItem for ``erpsync parked``."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            if kind == PARK_KIND_DELIVERY:
                new_intent = dict(intent or {})
                new_intent["resume"] = resume
                s.execute(update(ErpDelivery).where(col(ErpDelivery.delivery_id) == delivery_id).values(
                    state="parked", error=reason, status_at=now, intent=new_intent))
            else:
                s.execute(update(ErpLineCancellation).where(
                    col(ErpLineCancellation.cancellation_id) == delivery_id).values(
                    state="parked", error=reason, status_at=now))
            existing = s.execute(select(ParkedItem).where(
                col(ParkedItem.kind) == kind, col(ParkedItem.key) == delivery_id,
                col(ParkedItem.resolved_at).is_(None))).scalars().first()
            if existing is not None:
                existing.reason, existing.attempts, existing.updated_at = reason, existing.attempts + 1, now
            else:
                s.add(ParkedItem(kind=kind, key=delivery_id, reason=reason, created_at=now, updated_at=now))

    def _requeue_retried(self, run: RunContext) -> None:
        """Parked deliveries an operator retried (``erpsync parked retry``) resume where they stopped."""
        with Session(self.engine) as s:
            rows = s.exec(select(ParkedItem.key, ParkedItem.resolved_at, ParkedItem.kind).where(  # type: ignore[call-overload]
                col(ParkedItem.kind).in_((PARK_KIND_DELIVERY, PARK_KIND_CANCELLATION)),
                col(ParkedItem.resolution) == "retried")).all()
            parked_d = {d.delivery_id: d for d in s.exec(select(ErpDelivery).where(  # type: ignore[call-overload]
                col(ErpDelivery.state) == "parked")).scalars()}
            parked_c = {c.cancellation_id: c for c in s.exec(select(ErpLineCancellation).where(  # type: ignore[call-overload]
                col(ErpLineCancellation.state) == "parked")).scalars()}
            s.expunge_all()
        for key, resolved_at, kind in rows:
            if kind == PARK_KIND_DELIVERY and key in parked_d:
                d = parked_d[key]
                if d.status_at is not None and _utc(resolved_at) < _utc(d.status_at):
                    continue  # retried before it was parked again
                resume = (d.intent or {}).get("resume") or "new"
                self._set(key, state=resume, error=None, attempts=0)
                run.counts["requeued"] += 1
                self.log.info("fulfilment.requeued", delivery=key, state=resume)
            elif kind == PARK_KIND_CANCELLATION and key in parked_c:
                c = parked_c[key]
                if c.status_at is not None and _utc(resolved_at) < _utc(c.status_at):
                    continue
                self._set_cancellation(key, state="sending" if c.cancelled_before is not None else "new", error=None)
                run.counts["requeued"] += 1

    # ------------------------------------------------------------------ Centra calls

    def _query(self, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        assert self.sender is not None
        return self.sender.query(document, variables, self.lane)

    def _read_order(self, number: str) -> OrderView | None:
        data = self._query(ORDER_FOR_FULFILMENT, {"numbers": [int(number)], "limit": 1})
        orders = data.get("orders") or []
        return OrderView.parse(orders[0]) if orders else None

    def _read_shipment(self, shipment_id: int) -> ShipmentView | None:
        raw = self._query(SHIPMENT_BY_ID, {"id": shipment_id}).get("shipment")
        return ShipmentView.parse(raw) if raw else None

    def _mutate(self, document: str, variables: Mapping[str, Any], field: str,
                read_back: Callable[[], T | None], crash: str) -> tuple[Mapping[str, Any] | None, T | None]:
        """Send one mutation; (payload, None) when answered, (None, found) when an unknown outcome was
        settled by ``read_back``. Nothing-sent faults are resent after a backoff; an unknown outcome is
        read back first (after ``push.unknown_outcome_wait_seconds``) and resent only if not found."""
        assert self.centra is not None and self.sender is not None
        attempt = 1
        while True:
            try:
                data = self.centra.mutate(document, variables, lane=self.lane)
                self._count("mutations")
                crash_point(crash)
                payload = data.get(field)
                for w in user_warnings(payload):
                    self.log.warning("fulfilment.user_warning", mutation=field, message=w.get("message"),
                                     path=w.get("path"))
                return payload, None
            except RetryLater as exc:
                if not isinstance(exc, RateLimited):
                    self._count("mutations")  # it may have been applied (and charged)
                if attempt >= self.push.max_attempts or self.stop_event.is_set():
                    raise
                self.sender.backoff(attempt, exc, self.settle(exc))
                attempt += 1
                if isinstance(exc, OutcomeUnknown):
                    found = read_back()
                    if found is not None:
                        self.log.info("fulfilment.read_back_found", mutation=field, error_class=type(exc).__name__)
                        return None, found

    # ------------------------------------------------------------------ deliveries

    def _drive_one(self, run: RunContext, delivery_id: str) -> None:
        d, lines = self._load(delivery_id)
        if d.state == "rejected":
            self._set(delivery_id, state="new", error=None, row_hash=None)
            d.state = "new"
        try:
            self._drive(run, d, lines)
        except CaptureFailed as exc:
            run.counts["capture_failed"] += 1
            run.counts["parked"] += 1
            self.log.error("fulfilment.capture_failed", delivery=delivery_id, order=d.order_number,
                           shipment=d.shipment_id, reason=exc.reason)
            self._park(delivery_id, PARK_KIND_DELIVERY, exc.reason, "linked", d.intent)
        except PermissionDenied as exc:
            if "isLocked" not in str(exc):
                raise  # a permission the whole job needs: stop it and alert
            run.counts["parked"] += 1
            state = self._state(delivery_id)
            self.log.warning("fulfilment.delivery_parked", delivery=delivery_id, order=d.order_number,
                             state=state, reason=str(exc))
            self._park(delivery_id, PARK_KIND_DELIVERY, f"order {d.order_number} is locked: {exc}",
                       state, self._intent(delivery_id))
        except ItemRejected as exc:
            if d.state in ("new", "rejected") or self._state(delivery_id) == "new":
                run.counts["rejected"] += 1
                self.log.warning("fulfilment.delivery_rejected", delivery=delivery_id, order=d.order_number,
                                 reason=exc.reason)
                self._set(delivery_id, state="rejected", error=exc.reason, row_hash=_hash(d, lines))
            else:
                run.counts["parked"] += 1
                state = self._state(delivery_id)
                self.log.warning("fulfilment.delivery_parked", delivery=delivery_id, order=d.order_number,
                                 state=state, reason=exc.reason)
                self._park(delivery_id, PARK_KIND_DELIVERY, exc.reason, state, self._intent(delivery_id))

    def _state(self, delivery_id: str) -> str:
        d, _ = self._load(delivery_id)
        return d.state

    def _intent(self, delivery_id: str) -> dict[str, Any] | None:
        d, _ = self._load(delivery_id)
        return d.intent

    def _drive(self, run: RunContext, d: ErpDelivery, lines: list[ErpDeliveryLine]) -> None:
        did = d.delivery_id
        state = d.state
        intent: dict[str, Any] = dict(d.intent or {})
        shipment_id = d.shipment_id
        if state == "new":
            planned = self._plan_delivery(d, lines)
            if planned is None:
                run.counts["waiting"] += 1
                return
            intent, adopted = planned
            if adopted is not None:
                self._set(did, state="created", intent=intent, shipment_id=adopted.id,
                          shipment_number=adopted.number, attempts=d.attempts + 1)
                self.log.info("fulfilment.shipment_adopted", delivery=did, order=d.order_number, shipment=adopted.id)
                run.counts["adopted"] += 1
                state, shipment_id = "created", adopted.id
            else:
                self._set(did, state="creating", intent=intent, attempts=d.attempts + 1)
                crash_point("fulfil_after_intent")
                state = "creating"
        if state == "creating":
            ship = self._create(d, intent)
            linked = self.settings.external_id_on_create
            self._set(did, state="linked" if linked else "created", shipment_id=ship.id,
                      shipment_number=ship.number, error=None)
            self.log.info("fulfilment.shipment_created", delivery=did, order=d.order_number, shipment=ship.id,
                          number=ship.number)
            run.counts["created"] += 1
            crash_point("fulfil_after_created")
            state, shipment_id = ("linked" if linked else "created"), ship.id
        assert shipment_id is not None
        if state == "created":
            self._link(d, shipment_id)
            self._set(did, state="linked")
            crash_point("fulfil_after_link")
            state = "linked"
        if state in ("linked", "capturing", "capture_pending"):
            if d.capture:
                if state == "linked":
                    self._set(did, state="capturing")
                if state == "capture_pending":  # the payment provider answers later: only read
                    now_read = self._read_shipment(shipment_id)
                    outcome = "captured" if now_read is not None and now_read.is_captured else "pending"
                else:
                    outcome = self._capture(d, shipment_id, resumed=state != "linked")
                if outcome == "pending":
                    since = d.capture_pending_since or self.clock.now()
                    waited = (self.clock.now() - _utc(since)).total_seconds()
                    if waited > self.settings.capture_pending_max_wait_seconds:
                        raise CaptureFailed(f"capture of shipment {shipment_id} still PENDING after {int(waited)} s "
                                            "(asynchronous payment provider): check it in Centra")
                    self._set(did, state="capture_pending", capture_pending_since=since)
                    run.counts["capture_pending"] += 1
                    return
                self._set(did, state="captured", is_captured=True, captured_at=self.clock.now(),
                          capture_pending_since=None)
                run.counts["captured"] += 1
                state = "captured"
            else:
                state = "captured"  # nothing to capture: the next step is completion
        if state == "captured":
            self._set(did, state="completing")
            state = "completing"
        if state == "completing":
            if d.capture and not self._is_captured(did):
                raise CaptureFailed(f"shipment {shipment_id} is not captured: never completed without a capture")
            self._complete(d, shipment_id)
            self._set(did, state="shipped", is_shipped=True, completed_at=self.clock.now(), error=None)
            run.counts["shipped"] += 1
            self.log.info("fulfilment.shipment_completed", delivery=did, order=d.order_number, shipment=shipment_id)

    def _is_captured(self, delivery_id: str) -> bool:
        d, _ = self._load(delivery_id)
        return d.is_captured

    def _plan_delivery(self, d: ErpDelivery, lines: list[ErpDeliveryLine],
                       ) -> tuple[dict[str, Any], ShipmentView | None] | None:
        """(intent, a Centra-made shipment to adopt or None), or None to wait (order PENDING)."""
        if not lines:
            raise ItemRejected(f"delivery {d.delivery_id} has no lines (erp_delivery_line)")
        if d.capture and d.paid_outside:
            raise ItemRejected("capture and paid_outside are both set")
        order = self._read_order(d.order_number)
        if order is None:
            raise ItemRejected(f"order_number {d.order_number} not found in Centra")
        if check_order(order) == "wait":
            return None
        wanted = [WantedLine(x.line_no, x.quantity, x.order_line_id, x.sku, x.ean) for x in lines]
        recorded = self._recorded_shipments(d.order_number, d.delivery_id)
        known = [s.id for s in order.shipments]
        try:
            resolved = resolve_lines(order, wanted)
        except ItemRejected:
            # Centra may have made a good-to-go shipment itself ("Direct to Shipment") for these lines
            open_own = {s.id for s in order.shipments if not s.is_shipped and s.id not in recorded}
            if not open_own:
                raise
            resolved = resolve_lines(order, wanted, exclude=open_own)
            match = next((s for s in order.shipments if s.id in open_own and list(s.lines) == resolved), None)
            if match is None:
                raise
            return {"lines": resolved, "known": known, "order": order.number}, match
        return {"lines": [list(x) for x in resolved], "known": known, "order": order.number,
                "wholesale": order.wholesale}, None

    def _create(self, d: ErpDelivery, intent: dict[str, Any]) -> ShipmentView:
        lines = [(int(a), int(b)) for a, b in intent["lines"]]
        send_email = d.send_email if d.send_email is not None else self.settings.send_email
        ext = d.delivery_id if self.settings.external_id_on_create else None
        variables = {"input": create_input(d.order_number, lines, send_email=send_email, external_id=ext,
                                           paid_outside=d.paid_outside)}

        def read_back() -> ShipmentView | None:
            return self._find_created(d, intent)

        if intent.get("sent"):
            found = read_back()  # resumed: the create may have been applied before a crash
            if found is not None:
                self.log.info("fulfilment.read_back_found", mutation="createShipment", delivery=d.delivery_id)
                return found
        intent["sent"] = True
        self._set(d.delivery_id, intent=intent)  # from here on a restart reads back before creating
        payload, found = self._mutate(CREATE_SHIPMENT, variables, "createShipment", read_back, "fulfil_after_create")
        if found is not None:
            return found
        errors = user_errors(payload)
        if errors or payload is None or not payload.get("shipment"):
            found = read_back() if payload is None else None
            if found is not None:
                return found
            raise ItemRejected("createShipment: " + "; ".join(errors or ["no shipment in the answer"]))
        return ShipmentView.parse(payload["shipment"])

    def _find_created(self, d: ErpDelivery, intent: dict[str, Any]) -> ShipmentView | None:
        """Our shipment after an unknown outcome: by externalId, else an unrecorded shipment of the
        order, unknown when the intent was stored, whose lines equal the intent."""
        raw = self._query(SHIPMENT_BY_EXTERNAL_ID, {"externalId": d.delivery_id}).get("shipment")
        if raw:
            return ShipmentView.parse(raw)
        order = self._read_order(d.order_number)
        if order is None:
            return None
        want = sorted((int(a), int(b)) for a, b in intent["lines"])
        skip = set(intent.get("known") or []) | self._recorded_shipments(d.order_number, d.delivery_id)
        return next((s for s in order.shipments if s.id not in skip and list(s.lines) == want), None)

    def _link(self, d: ErpDelivery, shipment_id: int) -> None:
        fields: dict[str, Any] = {"externalId": d.delivery_id}  # isPaid (paid outside) went with the create
        payload, _ = self._mutate(UPDATE_SHIPMENT, {"id": shipment_id, "input": fields}, "updateShipment",
                                  lambda: None, "fulfil_after_link")
        errors = user_errors(payload)
        if errors:
            raise ItemRejected("updateShipment (externalId): " + "; ".join(errors))

    def _capture(self, d: ErpDelivery, shipment_id: int, *, resumed: bool) -> str:
        """``captured`` or ``pending``; ``CaptureFailed`` with Centra's message otherwise."""
        if resumed:
            ship = self._read_shipment(shipment_id)
            if ship is not None and ship.is_captured:
                return "captured"

        def read_back() -> ShipmentView | None:
            ship = self._read_shipment(shipment_id)
            return ship if ship is not None and ship.is_captured else None

        payload, found = self._mutate(CAPTURE_SHIPMENT, {"id": shipment_id}, "captureShipment", read_back,
                                      "fulfil_after_capture")
        if found is not None:
            return "captured"
        assert payload is not None
        shipment = payload.get("shipment") or {}
        entry = payload.get("paymentHistoryEntry") or {}
        if shipment.get("isCaptured"):
            return "captured"
        if entry.get("status") == "PENDING":
            return "pending"
        errors = user_errors(payload) if payload.get("userErrors") else []
        ship = self._read_shipment(shipment_id)  # "already captured" and friends: Centra's flag decides
        if ship is not None and ship.is_captured:
            return "captured"
        reason = "; ".join(errors) or f"capture {entry.get('status') or 'not confirmed'} (isCaptured false)"
        raise CaptureFailed(f"capture of shipment {shipment_id} failed: {reason}")

    def _complete(self, d: ErpDelivery, shipment_id: int) -> None:
        send_email = d.send_email if d.send_email is not None else self.settings.send_email
        complete: dict[str, Any] = {"sendEmail": send_email}
        at = shipped_at_value(_utc(d.shipped_at) if d.shipped_at else None, self.clock.now(),
                              self.settings.shipped_at_margin_seconds)
        if at is not None:
            complete["shippedAt"] = at
        info = shipment_info(d.carrier, d.service, d.packages, d.tracking_number, d.return_tracking_number)
        if info is not None:
            complete["shipmentInfo"] = info

        def read_back() -> ShipmentView | None:
            ship = self._read_shipment(shipment_id)
            return ship if ship is not None and ship.is_shipped else None

        if d.state == "completing" and read_back() is not None:
            return  # resumed after the completion was applied
        payload, found = self._mutate(COMPLETE_SHIPMENT, {"id": shipment_id, "input": complete}, "completeShipment",
                                      read_back, "fulfil_after_complete")
        if found is not None:
            return
        if payload is None or not (payload.get("shipment") or {}).get("isShipped"):
            # a null payload is an unknown outcome; userErrors may mean "already shipped": Centra's flag decides
            if read_back() is not None:
                return
            errors = user_errors(payload)
            raise ItemRejected("completeShipment: " + "; ".join(errors))

    # ------------------------------------------------------------------ cancellations

    def _cancel_one(self, run: RunContext, cancellation_id: str) -> None:
        with Session(self.engine) as s:
            c = s.get(ErpLineCancellation, cancellation_id)
            assert c is not None
            s.expunge(c)
        try:
            self._cancel(run, c)
        except ItemRejected as exc:
            run.counts["rejected"] += 1
            self.log.warning("fulfilment.cancellation_rejected", cancellation=cancellation_id, order=c.order_number,
                             reason=exc.reason)
            if c.state == "new":
                self._set_cancellation(cancellation_id, state="rejected", error=exc.reason)
            else:
                self._park(cancellation_id, PARK_KIND_CANCELLATION, exc.reason, None, None)

    def _cancel(self, run: RunContext, c: ErpLineCancellation) -> None:
        order = self._read_order(c.order_number)
        if order is None:
            raise ItemRejected(f"order_number {c.order_number} not found in Centra")
        if c.state == "new":
            if check_order(order) == "wait":
                run.counts["waiting"] += 1
                return
            shipped = order.in_shipments()
            line = None
            if c.order_line_id is not None:
                line = order.line(c.order_line_id)
            else:
                candidates = [x for x in order.lines if (c.sku and x.sku == c.sku) or (not c.sku and x.ean == c.ean)]
                line = next((x for x in candidates if x.quantity - shipped.get(x.id, 0) >= c.quantity),
                            candidates[0] if candidates else None)
            if line is None:
                what = f"order_line_id {c.order_line_id}" if c.order_line_id is not None else \
                    (f"sku {c.sku}" if c.sku else f"ean {c.ean}")
                raise ItemRejected(f"{what} is on no line of order {c.order_number}")
            left = line.quantity - shipped.get(line.id, 0)
            if c.quantity > left:
                raise ItemRejected(f"cannot cancel {c.quantity} of order line {line.id}: only {left} are neither "
                                   f"shipped nor cancelled (cancelled {line.cancelled})")
            self._set_cancellation(c.cancellation_id, state="sending", line_id=line.id,
                                   cancelled_before=line.cancelled, attempts=c.attempts + 1)
            c.line_id, c.cancelled_before = line.id, line.cancelled
        assert c.line_id is not None and c.cancelled_before is not None
        target = c.cancelled_before + c.quantity
        while True:
            current = order.line(c.line_id)
            if current is None:
                raise ItemRejected(f"order line {c.line_id} is gone from order {c.order_number}")
            if current.cancelled >= target:
                self._set_cancellation(c.cancellation_id, state="done", cancelled_after=current.cancelled,
                                       done_at=self.clock.now(), error=None)
                run.counts["cancelled"] += 1
                self.log.info("fulfilment.lines_cancelled", cancellation=c.cancellation_id, order=c.order_number,
                              line=c.line_id, quantity=c.quantity)
                return
            delta = target - current.cancelled
            document, field = (CANCEL_WHOLESALE_LINES, "updateWholesaleOrder") if order.wholesale else \
                (CANCEL_DTC_LINES, "updateDirectToConsumerOrder")
            variables = {"number": int(c.order_number), "input": {"cancelLines": [{
                "line": {"id": c.line_id}, "quantity": delta,
                "stockActionPolicy": stock_policy(c.stock_policy, c.warehouse)}]}}
            payload, found = self._mutate(document, variables, field, self._cancel_read_back(c, target),
                                          "fulfil_after_cancel")
            if found is not None:
                order = found
                continue
            if payload is not None and user_errors(payload):
                fresh = self._read_order(c.order_number)
                line_now = fresh.line(c.line_id) if fresh else None
                if line_now is None or line_now.cancelled < target:
                    raise ItemRejected(f"{field}: " + "; ".join(user_errors(payload)))
            fresh = self._read_order(c.order_number)  # read back cancelledQuantity: never send a delta twice
            if fresh is None:
                raise ItemRejected(f"order_number {c.order_number} not found in Centra")
            order = fresh

    def _cancel_read_back(self, c: ErpLineCancellation, target: int) -> Callable[[], OrderView | None]:
        """The order when the line already has ``target`` units cancelled (the cancel was applied)."""
        line_id = c.line_id

        def read_back() -> OrderView | None:
            fresh = self._read_order(c.order_number)
            now_line = fresh.line(line_id) if fresh is not None and line_id is not None else None
            return fresh if now_line is not None and now_line.cancelled >= target else None

        return read_back

    # ------------------------------------------------------------------ plan

    def _plan(self, run: RunContext, sink: DryRunSink) -> None:
        """A dry run: what each open delivery still needs (mutations), nothing sent."""
        for delivery_id in self._deliveries():
            d, _lines = self._load(delivery_id)
            for operation in remaining_mutations(d, self.settings.external_id_on_create):
                sink.record(operation, {"delivery": delivery_id, "order": d.order_number}, self.lane)
                run.counts["mutations"] += 1
            run.counts["pending"] += 1


def remaining_mutations(d: ErpDelivery, external_id_on_create: bool) -> list[str]:
    """The mutations a delivery in its current state still needs (for ``plan`` and ETAs)."""
    steps: list[str] = []
    if d.state in ("new", "creating", "rejected"):
        steps.append("createShipment")
    if d.state in ("new", "creating", "created", "rejected") and not (external_id_on_create and d.state != "created"):
        steps.append("updateShipment")
    if d.capture and d.state in ("new", "creating", "created", "linked", "capturing", "rejected"):
        steps.append("captureShipment")
    if d.state not in ("shipped", "parked"):
        steps.append("completeShipment")
    return steps


def fulfilment_plan(engine: Any, external_id_on_create: bool) -> dict[str, Any]:
    """Open deliveries (not shipped, parked or rejected), the mutations they still need, by state."""
    with Session(engine) as s:
        rows = list(s.exec(select(ErpDelivery).where(  # type: ignore[call-overload]
            col(ErpDelivery.state).in_(OPEN_DELIVERY_STATES), col(ErpDelivery.removed_at).is_(None))).scalars())
        cancellations = s.exec(select(ErpLineCancellation.cancellation_id).where(  # type: ignore[call-overload]
            col(ErpLineCancellation.state).in_(("new", "sending")))).all()
    by_state: dict[str, int] = {}
    mutations = 0
    for d in rows:
        by_state[d.state] = by_state.get(d.state, 0) + 1
        mutations += len(remaining_mutations(d, external_id_on_create))
    return {"deliveries": len(rows), "mutations": mutations + len(cancellations), "by_state": by_state,
            "cancellations": len(cancellations)}


def _hash(d: ErpDelivery, lines: list[ErpDeliveryLine]) -> str:
    erp = {k: getattr(d, k) for k in ("order_number", "carrier", "service", "tracking_number",
                                      "return_tracking_number", "packages", "shipped_at", "capture",
                                      "paid_outside", "send_email")}
    erp["lines"] = [(x.line_no, x.order_line_id, x.sku, x.ean, x.quantity) for x in lines]
    return hashlib.sha256(json.dumps(erp, sort_keys=True, default=str).encode()).hexdigest()[:64]


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
