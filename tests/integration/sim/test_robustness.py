"""Malformed HTTP framing and internal errors get a proper answer (400 / 500 Fault / 500 JSON), never a
dropped connection."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from erpsync.sim.server import SimServer

SAMPLES = Path(__file__).parents[2] / "unit" / "sim" / "soap_samples"
NS = "http://www.centra.com/webservices/"


def _raw(sim: SimServer, request: bytes) -> bytes:
    with socket.create_connection((sim.host, sim.port), timeout=10) as conn:
        conn.sendall(request)
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize("path", ["/graphql", "/ams/system/service/module/soap/api", "/_sim/events"])
def test_invalid_content_length_is_a_400(sim: SimServer, path: str) -> None:
    reply = _raw(sim, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    assert b"X-Centra-Request-ID" in reply


def test_chunked_request_body_is_read(sim: SimServer) -> None:
    sim.generate(2)

    def body() -> Any:
        yield (SAMPLES / "events_Get.request.xml").read_bytes()

    reply = requests.post(sim.soap_url, data=body(), timeout=10, headers={
        "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Events_Get"'})
    assert reply.status_code == 200
    assert reply.content.count(b"<ns1:event>") == 2


def test_internal_error_is_a_soap_server_fault(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sim.soap, "handle", boom)
    reply = requests.post(sim.soap_url, data=(SAMPLES / "events_Get.request.xml").read_bytes(), timeout=10,
                          headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Events_Get"'})
    assert reply.status_code == 500
    assert b"SOAP-ENV:Server" in reply.content
    assert reply.headers["X-Centra-Request-ID"]


def test_internal_error_is_a_graphql_500(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sim.gql, "handle", boom)
    reply = requests.post(sim.graphql_url, json={"query": "{ stores { id } }"}, timeout=10,
                          headers={"Authorization": f"Bearer {sim.token}"})
    assert reply.status_code == 500
    assert reply.json()["errors"][0]["message"]


def test_event_data_xml_cannot_carry_is_a_400_not_a_malformed_response_later(sim: SimServer) -> None:
    event = {"type": "customer", "entry": "1", "data": {"id": "1", "name": "a\u0001b"}}
    reply = requests.post(f"{sim.base_url}/_sim/events", json={"events": [event]}, timeout=10)
    assert reply.status_code == 400
    assert sim.queue.depth == 0
