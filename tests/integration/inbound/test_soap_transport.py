"""The SOAP transport against a misbehaving HTTP server on a local socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from erpsync.errors import SourceUnavailable
from erpsync.soap.transport import ClassifyingTransport, make_session


@pytest.fixture
def drip_server() -> Iterator[str]:
    """Answers every request with headers at once, then a body one byte every 0.1 s (a proxy or a
    server stuck in the middle of the answer: every read succeeds, the answer never completes)."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n")
                try:
                    while not stop.is_set():
                        conn.sendall(b" ")
                        time.sleep(0.1)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/soap"
    stop.set()
    thread.join(5)
    srv.close()


def test_operation_timeout_is_a_deadline_for_a_slow_drip(drip_server: str) -> None:
    transport = ClassifyingTransport(make_session(), connect_timeout=1, read_timeout=1, operation_timeout=1)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            transport.post(drip_server, b"<x/>", {"SOAPAction": '"http://www.centra.com/webservices/Events_Get"'})
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=call, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(15)
    assert not t.is_alive(), "the 1 s operation timeout did not end a call that drips one byte per 0.1 s"
    assert isinstance(outcome[0], SourceUnavailable) and "operation timeout" in str(outcome[0])
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("chunked", [False, True])
def test_a_truncated_body_is_retriable_not_an_empty_answer(chunked: bool) -> None:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 5000"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n" + framing + b"\r\n\r\n")
            conn.sendall(b"1000\r\n<?xml version='1.0'?>" if chunked else b"<?xml version='1.0'?>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = ClassifyingTransport(make_session(), connect_timeout=1, read_timeout=2, operation_timeout=5)
    try:
        with pytest.raises(SourceUnavailable):
            transport.post(f"http://127.0.0.1:{srv.getsockname()[1]}/soap", b"<x/>", {})
    finally:
        thread.join(5)
        srv.close()


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_a_request_timeout_or_gateway_status_without_a_fault_is_retriable(status: int) -> None:
    # 408: the server (or a proxy) gave up waiting for the request: sending it again is the fix
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: 6\r\n"
                         "Connection: close\r\n\r\n<html>".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    transport = ClassifyingTransport(make_session(), connect_timeout=1, read_timeout=2, operation_timeout=5)
    try:
        with pytest.raises(SourceUnavailable, match=str(status)):
            transport.post(f"http://127.0.0.1:{srv.getsockname()[1]}/soap", b"<x/>", {})
    finally:
        thread.join(5)
        srv.close()
