"""The simulated SOAP endpoint (lxml, no SOAP framework): events_Get, events_GetByMarkets, events_Done
and the fourteen ``*_Update`` operations, each checking ``<login>`` on every call.

Responses have the exact shape of the contract's ``soap-samples/`` (``SOAP-ENV``/``ns1`` prefixes,
unqualified ``<eventsDoneResponse>OK</eventsDoneResponse>``). A bad login is a SOAP Fault
(``SOAP-ENV:Client`` / ``Login failed``) with HTTP 500; a body that is not a known operation is a
``SOAP-ENV:Client`` fault too.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from lxml import etree

from erpsync.sim.events import EVENT_TYPES, NS, EventQueue, UnknownEventIds, safe_parser, xml_to_payload
from erpsync.sim.generator import EventGenerator

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NSMAP = {"SOAP-ENV": SOAP_ENV, "ns1": NS}
#: Request wrapper element → operation. ``events_Get`` is the RESPONSE wrapper: as a request it is
#: an unknown operation (PROTOCOL.md §1.1: the request wrapper is ``events_GetRequest``).
OPERATIONS = {"events_GetRequest": "events_Get", "events_GetByMarkets": "events_GetByMarkets",
              "events_Done": "events_Done", "orders_Update": "orders_Update"}
#: The update operations of PROTOCOL.md §1.2: operation → (list element, item element, event type or
#: None). Each is a partial upsert of a plural list (``paymentterms``/``shippingterms`` repeat the
#: plural name for their items).
UPDATES: dict[str, tuple[str, str, str | None]] = {
    "accounts_Update": ("accounts", "account", "account"),
    "customers_Update": ("customers", "customer", "customer"),
    "deliverywindows_Update": ("deliverywindows", "deliverywindow", None),
    "invoices_Update": ("invoices", "invoice", "invoice"),
    "markets_Update": ("markets", "market", "market"),
    "orders_Update": ("orders", "order", "order"),
    "paymentterms_Update": ("paymentterms", "paymentterms", "paymentterm"),
    "pricealterationdates_Update": ("pricealterationdates", "pricealterationdate", None),
    "pricelists_Update": ("pricelists", "pricelist", "pricelist"),
    "products_Update": ("products", "product", None),
    "salesreps_Update": ("salesreps", "salesrep", "salesrep"),
    "shippingterms_Update": ("shippingterms", "shippingterms", "shippingterm"),
    "sizes_Update": ("sizes", "size", "size"),
    "warehouses_Update": ("warehouses", "warehouse", "warehouse"),
}
OPERATIONS.update({op: op for op in UPDATES})
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
#: [open] policies (PROTOCOL.md §1.1, §1.2), see :class:`SoapEndpoint`.
UNKNOWN_ACK_POLICIES = ("ignore", "fault")
UPDATE_RESPONSES = ("result", "ok")


def soap_action(operation: str) -> str:
    """The SOAPAction of an operation: the namespace + the name with its first letter capitalised."""
    return NS + operation[:1].upper() + operation[1:]


@dataclass(frozen=True)
class SoapReply:
    status: int
    body: bytes
    operation: str


class SoapFaultError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def envelope(body_child: etree._Element | None = None) -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=NSMAP)
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    if body_child is not None:
        body.append(body_child)
    return env, body


def serialise(env: etree._Element) -> bytes:
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def fault_body(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault shaped like ``soap-samples/fault.response.xml``."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"SOAP-ENV:{code}"
    etree.SubElement(fault, "faultstring").text = message
    return serialise(env)


def operation_of(body: bytes) -> str:
    """The operation a request body names (for fault matching), or ``unknown``."""
    try:
        root = etree.fromstring(body, parser=safe_parser())
    except etree.XMLSyntaxError:
        return "unknown"
    found = root.find(f"{{{SOAP_ENV}}}Body")
    children = [c for c in (found if found is not None else []) if isinstance(c.tag, str)]
    if not children:
        return "unknown"
    return OPERATIONS.get(etree.QName(children[0]).localname, "unknown")


class SoapEndpoint:
    """The SOAP operations. Options:

    ``check_soap_action``: the ``SOAPAction`` header passed to :meth:`handle` must be the operation's
    documented action (``"http://www.centra.com/webservices/Events_Get"``, quotes optional); a
    missing or different one is a ``SOAP-ENV:Client`` fault.
    ``unknown_ack`` [open]: ``ignore`` (an unknown or already-acked id in events_Done is skipped) or
    ``fault`` (a ``SOAP-ENV:Client`` fault naming the ids, and nothing of that call is acked).
    ``update_response`` [open]: ``result`` (``<ns1:result>{success, errors, notices}``, as the
    guide's real calls show) or ``ok`` (the generated reference's ``<ordersUpdateResponse>OK</…>``;
    a failed update is then a ``SOAP-ENV:Client`` fault carrying the error messages).
    """

    def __init__(self, queue: EventQueue, generator: EventGenerator, username: str, password: str, *,
                 check_soap_action: bool = False, unknown_ack: str = "ignore",
                 update_response: str = "result") -> None:
        if unknown_ack not in UNKNOWN_ACK_POLICIES:
            raise ValueError(f"unknown_ack must be one of {list(UNKNOWN_ACK_POLICIES)}, not {unknown_ack!r}")
        if update_response not in UPDATE_RESPONSES:
            raise ValueError(f"update_response must be one of {list(UPDATE_RESPONSES)}, not {update_response!r}")
        self.queue = queue
        self.generator = generator
        self.username = username
        self.password = password
        self.check_soap_action = check_soap_action
        self.unknown_ack = unknown_ack
        self.update_response = update_response

    def handle(self, body: bytes, soap_action_header: str | None = None) -> SoapReply:
        """One request body (and its ``SOAPAction`` header, checked with ``check_soap_action``)."""
        operation = "unknown"
        try:
            try:
                root = etree.fromstring(body, parser=safe_parser())
            except etree.XMLSyntaxError as exc:
                raise SoapFaultError("Client", f"Malformed XML: {exc}") from exc
            soap_body = root.find(f"{{{SOAP_ENV}}}Body")
            if etree.QName(root).localname != "Envelope" or soap_body is None:
                raise SoapFaultError("Client", "Not a SOAP 1.1 envelope")
            children = [c for c in soap_body if isinstance(c.tag, str)]
            if not children:
                raise SoapFaultError("Client", "Empty SOAP body")
            request = children[0]
            operation = OPERATIONS.get(etree.QName(request).localname, "unknown")
            if operation == "unknown":
                raise SoapFaultError("Client", f"Unknown operation {etree.QName(request).localname}")
            if self.check_soap_action:
                got, expected = (soap_action_header or "").strip().strip('"'), soap_action(operation)
                if got != expected:
                    raise SoapFaultError("Client", f"SOAPAction {got!r} does not match the operation ({expected!r})")
            self._check_login(request)
            if operation in ("events_Get", "events_GetByMarkets"):
                reply = self._events_get(request, operation == "events_GetByMarkets")
            elif operation == "events_Done":
                reply = self._events_done(request)
            else:
                reply = self._update(request, operation)
            return SoapReply(200, reply, operation)
        except SoapFaultError as fault:
            return SoapReply(500, fault_body(fault.code, fault.message), operation)

    # ------------------------------------------------------------------ operations

    def _check_login(self, request: etree._Element) -> None:
        username = request.findtext(f"{{{NS}}}login/{{{NS}}}username") or ""
        password = request.findtext(f"{{{NS}}}login/{{{NS}}}password") or ""
        ok_user = hmac.compare_digest(username.encode(), self.username.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        if not (ok_user and ok_password):
            raise SoapFaultError("Client", "Login failed")

    def _events_get(self, request: etree._Element, by_markets: bool) -> bytes:
        type_ = (request.findtext(f"{{{NS}}}type") or "all").strip()
        if type_ != "all" and type_ not in EVENT_TYPES:
            raise SoapFaultError("Client", f"Unknown event type: {type_}")
        markets = None
        if by_markets:
            markets = [m.findtext(f"{{{NS}}}id") or "" for m in request.iterfind(f"{{{NS}}}markets/{{{NS}}}market")]
        events = self.queue.fetch(type_, markets)
        inner = self.queue.render(events)
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
                f'xmlns:ns1="{NS}"><SOAP-ENV:Body><ns1:events_Get>'
                + (f"<ns1:events>{inner}</ns1:events>" if inner else "<ns1:events/>")
                + "</ns1:events_Get></SOAP-ENV:Body></SOAP-ENV:Envelope>\n").encode("utf-8")

    def _events_done(self, request: etree._Element) -> bytes:
        ids = [el.text or "" for el in request.iterfind(f"{{{NS}}}event")]
        try:
            self.queue.done(ids, require_known=self.unknown_ack == "fault")
        except UnknownEventIds as exc:
            raise SoapFaultError("Client", str(exc)) from exc
        done = etree.Element("eventsDoneResponse")  # unqualified, exactly as the sample
        done.text = "OK"
        env, _ = envelope(done)
        return serialise(env)

    def _update(self, request: etree._Element, operation: str) -> bytes:
        """``<x>s_Update``: a partial upsert of ``<x>s > <x>*``, all-or-nothing."""
        plural, item, type_ = UPDATES[operation]
        changes: list[dict[str, Any]] = []
        errors: list[str]
        notices: list[str]
        for item_el in request.iterfind(f"{{{NS}}}{plural}/{{{NS}}}{item}"):
            change = xml_to_payload(item_el)
            changes.append(change if isinstance(change, dict) else {})
        if not changes:
            errors, notices = [f"No {plural} given"], []
        elif operation == "orders_Update":
            errors, notices = self.generator.update_orders(changes)
        else:
            errors, notices = self.generator.update_objects(type_ or item, changes, emit=type_ is not None)
        if self.update_response == "ok":
            if errors:
                raise SoapFaultError("Client", "; ".join(errors))
            ok = etree.Element(f"{operation.replace('_', '')}Response")  # unqualified, like eventsDoneResponse
            ok.text = "OK"
            env, _ = envelope(ok)
            return serialise(env)
        result = etree.Element(f"{{{NS}}}result", nsmap=NSMAP)
        etree.SubElement(result, f"{{{NS}}}success").text = "false" if errors else "true"
        errors_el = etree.SubElement(result, f"{{{NS}}}errors")
        for message in errors:
            etree.SubElement(errors_el, f"{{{NS}}}message").text = message
        notices_el = etree.SubElement(result, f"{{{NS}}}notices")
        for message in notices:
            etree.SubElement(notices_el, f"{{{NS}}}message").text = message
        env, _ = envelope(result)
        return serialise(env)
