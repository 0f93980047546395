"""Centra's SOAP API (the legacy ERP API): the event queue, as erpsync dataclasses."""

from erpsync.soap.client import CentraSoapClient, EventSource
from erpsync.soap.models import FETCH_LIMIT, KNOWN_EVENT_TYPES, SoapEvent, parse_centra_date

__all__ = ["FETCH_LIMIT", "KNOWN_EVENT_TYPES", "CentraSoapClient", "EventSource", "SoapEvent", "parse_centra_date"]
