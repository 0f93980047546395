"""Centra's SOAP event queue over zeep.

The WSDL is the package's own (``erpsync/contract/centra.wsdl``), parsed once per client and
pointed at the configured URL; zeep builds the request envelopes, the responses are read with
lxml (``raw_response``) and returned as ``SoapEvent`` dataclasses. Every library exception is
translated here (and in ``transport.py``) into erpsync's error classes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Protocol

import requests
import zeep
from lxml import etree
from zeep.exceptions import Error as ZeepError

from erpsync.errors import (
    AuthenticationFailed,
    MalformedResponse,
    PermissionDenied,
    ProtocolError,
    SchemaMismatch,
    SourceUnavailable,
)
from erpsync.logs import get_logger, register_secret
from erpsync.soap import xml
from erpsync.soap.models import SoapEvent
from erpsync.soap.transport import ClassifyingTransport, make_session

WSDL_PATH = Path(__file__).resolve().parent.parent / "contract" / "centra.wsdl"
NS = "http://www.centra.com/webservices/"
BINDING = f"{{{NS}}}CentraBinding"

# a Fault refusing events_Done for ids that are not (any more) in the queue
_UNKNOWN_IDS = re.compile(r"(unknown|invalid|no such|not found|already).{0,40}\bevents?\b|"
                          r"\bevents?\b.{0,40}(unknown|not found|already|does not exist)", re.I)
_AUTH_FAULT = re.compile(r"login|auth|password|credential|unauthori[sz]ed|access denied", re.I)
_PERMISSION_FAULT = re.compile(r"permission|not allowed|forbidden|not permitted", re.I)
# the server does not know the operation we call: our contract is not its contract
_SCHEMA_FAULT = re.compile(r"procedure .{0,60}not present|unknown (operation|method|function|action)|"
                           r"no such (operation|method|function)|not a valid method", re.I)

log = get_logger("erpsync.soap")


class UnknownEventIds(SourceUnavailable):
    """``events_Done`` refused: it named an id Centra does not have (any more)."""


class EventSource(Protocol):
    """What the pull job needs from Centra: the oldest unacknowledged events, and acknowledging."""

    def fetch(self) -> list[SoapEvent]:
        """At most 100 of the oldest unacknowledged events, ascending."""
        ...

    def ack(self, event_ids: Sequence[str]) -> None:
        """Remove these events from the queue (``events_Done``)."""
        ...


class CentraSoapClient:
    """``EventSource`` over Centra's SOAP API. Build once, reuse, ``close()`` at the end."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        store_tz: tzinfo,
        event_type: str = "all",
        markets: Sequence[str] = (),
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        operation_timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        register_secret(password)
        self._username = username
        self._password = password
        self.store_tz = store_tz
        self.event_type = event_type
        self.markets = tuple(markets)
        self._owns_session = session is None
        self._session = session or make_session()
        transport = ClassifyingTransport(
            self._session, connect_timeout=connect_timeout, read_timeout=read_timeout,
            operation_timeout=operation_timeout)
        settings = zeep.Settings(strict=False, xml_huge_tree=True, forbid_external=True, forbid_dtd=True,
                                 forbid_entities=True, raw_response=True)
        self._client = zeep.Client(str(WSDL_PATH), transport=transport, settings=settings)
        self._service = self._client.create_service(BINDING, url)

    # ------------------------------------------------------------- EventSource

    def fetch(self) -> list[SoapEvent]:
        login = {"username": self._username, "password": self._password}
        try:
            if self.markets:
                markets = {"market": [{"id": m} for m in self.markets]}
                body = self._call("events_GetByMarkets", login=login, type=self.event_type, markets=markets)
            else:
                body = self._call("events_Get", login=login, type=self.event_type)
        except MalformedResponse as exc:
            # a batch that does not parse is retried; the pull job salvages it if it keeps coming back
            raw = exc.body
            raise MalformedResponse(str(exc), body=raw,
                                    salvage=lambda: xml.salvage_events(raw, self.store_tz)) from exc
        try:
            events = xml.parse_events(xml.payload_element(body), self.store_tz)
        except ProtocolError as exc:  # not the shape the contract gives: retry (salvage if it persists)
            raw = etree.tostring(body)
            raise MalformedResponse(f"events_Get: {exc}", body=raw,
                                    salvage=lambda: xml.salvage_events(raw, self.store_tz)) from exc
        log.info("events.fetched", count=len(events))
        return events

    def ack(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        ids = list(event_ids)
        try:
            self._done(ids)
        except UnknownEventIds as exc:
            # [open] Centra may refuse the whole call for an id it no longer has (acked before: a
            # retried ack whose first answer was lost, or another puller's ack). Those ids are done;
            # ack the others one at a time, skipping the refused ones.
            log.warning("events.ack_unknown_ids", count=len(ids), error=str(exc))
            skipped = 0
            for eid in ids:
                try:
                    self._done([eid])
                except UnknownEventIds:
                    skipped += 1
            log.info("events.acked", count=len(ids) - skipped, already_gone=skipped)
            return
        log.info("events.acked", count=len(ids))

    def _done(self, ids: list[str]) -> None:
        login = {"username": self._username, "password": self._password}
        body = self._call("events_Done", login=login, event=ids)
        try:
            answer = xml.parse_done_response(xml.payload_element(body))
        except ProtocolError as exc:
            raise SourceUnavailable(f"events_Done: {exc}") from exc
        if answer.upper() != "OK":  # nothing is acked until Centra says OK: ask again later
            raise SourceUnavailable(f"events_Done answered {answer[:200]!r}, expected OK")

    # ------------------------------------------------------------- plumbing

    def _call(self, op: str, **kwargs: object) -> etree._Element:
        try:
            response = getattr(self._service, op)(**kwargs)
        except ZeepError as exc:  # our own call does not fit the bundled WSDL
            raise SchemaMismatch(f"{op}: zeep could not build or send the request: {exc}") from exc
        except requests.exceptions.RequestException as exc:  # should not get past the transport
            raise SourceUnavailable(f"{op}: HTTP error talking to Centra SOAP ({type(exc).__name__})") from exc
        try:
            body = xml.soap_body(xml.parse_document(response.content))
        except ProtocolError as exc:
            # malformed or truncated XML: a broken answer, possibly a proxy: worth a retry
            raise MalformedResponse(f"{op}: {exc}", body=response.content) from exc
        fault = xml.find_fault(body)
        if fault is not None:
            if op == "events_Done" and _UNKNOWN_IDS.search(fault.message):
                raise UnknownEventIds(f"{op}: SOAP Fault {fault.code or '?'}: {fault.message}")
            raise classify_fault(op, fault)
        return body

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> CentraSoapClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def classify_fault(op: str, fault: xml.SoapFault) -> Exception:
    """A SOAP Fault by what happens next (docs/operations.md, failure policy): a refused login, a
    missing permission and an operation the server does not know are fatal for the job; every
    other fault, Server or Client, is transient (retried with backoff; the daemon reports the job
    degraded when it keeps failing)."""
    text = f"{op}: SOAP Fault {fault.code or '?'}: {fault.message or '(no message)'}"
    if _AUTH_FAULT.search(fault.message):
        return AuthenticationFailed(text)
    if _PERMISSION_FAULT.search(fault.message):
        return PermissionDenied(text)
    if _SCHEMA_FAULT.search(fault.message):
        return SchemaMismatch(text)
    return SourceUnavailable(text)
