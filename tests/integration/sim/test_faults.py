"""Every fault kind on both endpoints, over real HTTP: what the client sees and whether it was applied."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from erpsync.sim.server import SimServer

SAMPLES = Path(__file__).parents[2] / "unit" / "sim" / "soap_samples"
NS = "http://www.centra.com/webservices/"
MUTATION = ('mutation { createProduct(input: {name: "Tee", status: ACTIVE, productNumber: "P1", externalId: "P1"}) '
            "{ product { id } userErrors { message } } }")


@pytest.fixture
def fsim(sim_factory: Callable[..., SimServer]) -> SimServer:
    """Events 4101..4103 queued, so the sample events_Done body acks all three."""
    server = sim_factory(first_event_id=4101, soap_user="erp-user", soap_password="s3cret", hang_seconds=3.0)
    server.generate(3)
    return server


def call(sim: SimServer, endpoint: str, timeout: float = 10) -> requests.Response:
    """One *applying* call: SOAP events_Done of 4101..4103, or GraphQL createProduct."""
    if endpoint == "soap":
        return requests.post(sim.soap_url, data=(SAMPLES / "events_Done.request.xml").read_bytes(), timeout=timeout,
                             headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Events_Done"'})
    return requests.post(sim.graphql_url, json={"query": MUTATION}, timeout=timeout,
                         headers={"Authorization": f"Bearer {sim.token}"})


def applied(sim: SimServer, endpoint: str) -> bool:
    if endpoint == "soap":
        return sim.queue.depth == 0
    return bool(sim.gql.inspect()["counts"]["products"] == 1)


ENDPOINTS = ["soap", "graphql"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_no_fault_baseline(fsim: SimServer, endpoint: str) -> None:
    reply = call(fsim, endpoint)
    assert reply.status_code == 200
    assert reply.headers["X-Centra-Request-ID"]
    assert applied(fsim, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_error_status_not_applied(fsim: SimServer, endpoint: str, status: int) -> None:
    fsim.set_fault(endpoint, "http", status=status)
    reply = call(fsim, endpoint)
    assert reply.status_code == status
    assert reply.headers["X-Centra-Request-ID"]
    if status in (502, 503):
        assert reply.headers["Content-Type"].startswith("text/html")
    assert not applied(fsim, endpoint)
    assert call(fsim, endpoint).status_code == 200  # count=1 by default: the next call is normal
    assert applied(fsim, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_499_after_apply(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "apply_then_499")
    reply = call(fsim, endpoint)
    assert reply.status_code == 499
    assert reply.content == b""
    assert applied(fsim, endpoint)  # the outcome the client cannot know


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_connection_reset_not_applied(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "reset")
    with pytest.raises(requests.ConnectionError):
        call(fsim, endpoint)
    assert not applied(fsim, endpoint)
    assert call(fsim, endpoint).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_truncated_body_after_apply(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "truncate")
    with pytest.raises(requests.RequestException):
        call(fsim, endpoint)
    assert applied(fsim, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_body_after_apply(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "malformed")
    reply = call(fsim, endpoint)
    assert reply.status_code == 200
    if endpoint == "soap":
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(reply.content)
    else:
        with pytest.raises(ValueError):
            json.loads(reply.content)
    assert applied(fsim, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hang_past_client_timeout_not_applied(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "hang", seconds=2.0)
    with pytest.raises(requests.Timeout):
        call(fsim, endpoint, timeout=0.3)
    assert not applied(fsim, endpoint)
    assert call(fsim, endpoint).status_code == 200  # the server is still serving other connections


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_latency(fsim: SimServer, endpoint: str) -> None:
    fsim.set_fault(endpoint, "latency", seconds=0.3)
    started = time.monotonic()
    reply = call(fsim, endpoint)
    assert time.monotonic() - started >= 0.3  # a lower bound only: never an upper bound on wall time
    assert reply.status_code == 200
    assert applied(fsim, endpoint)


def test_expired_token_graphql_403(fsim: SimServer) -> None:
    fsim.set_fault("graphql", "expired_token", count=2)
    for _ in range(2):
        reply = call(fsim, "graphql")
        assert reply.status_code == 403
        assert "expired" in reply.json()["errors"][0]["message"].lower()
    assert not applied(fsim, "graphql")
    assert call(fsim, "graphql").status_code == 200


def test_expired_token_made_permanent(fsim: SimServer) -> None:
    fsim.expire_token(fsim.token)
    assert call(fsim, "graphql").status_code == 403
    assert call(fsim, "graphql").status_code == 403
    assert not applied(fsim, "graphql")


def test_expired_login_and_soap_fault_on_soap(fsim: SimServer, centra_wsdl_path: Path) -> None:
    client = zeep.Client(wsdl=str(centra_wsdl_path), settings=zeep.Settings(strict=False, forbid_external=True))
    service = client.create_service("{http://www.centra.com/webservices/}CentraBinding", fsim.soap_url)
    login = {"username": fsim.soap_user, "password": fsim.soap_password}
    fsim.set_fault("soap", "soap_fault")
    with pytest.raises(zeep.exceptions.Fault) as info:
        service.events_Get(login=login, type="all")
    assert info.value.message == "Internal error"
    fsim.set_fault("soap", "expired_token")
    with pytest.raises(zeep.exceptions.Fault) as info:
        service.events_Get(login=login, type="all")
    assert info.value.message == "Login failed"
    assert len(service.events_Get(login=login, type="all").events.event) == 3


def test_count_probability_and_only_filters(fsim: SimServer) -> None:
    fsim.set_fault("soap", "http", status=503, count=2, only="events_Done")
    get = (SAMPLES / "events_Get.request.xml").read_bytes()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Events_Get"'}
    assert requests.post(fsim.soap_url, data=get, headers=headers, timeout=10).status_code == 200  # not matched
    assert [call(fsim, "soap").status_code for _ in range(3)] == [503, 503, 200]

    fsim.set_fault("graphql", "http", status=500, probability=0.5, only="query")
    statuses = [requests.post(fsim.graphql_url, json={"query": "{ stores { id } }"}, timeout=10,
                              headers={"Authorization": f"Bearer {fsim.token}"}).status_code for _ in range(30)]
    assert set(statuses) == {200, 500}
    assert call(fsim, "graphql").status_code == 200  # a mutation is not a query
    fired = fsim.state()["faults"]["fired"]
    assert fired["soap:http"] == 2
    assert fired["graphql:http"] == statuses.count(500)


def test_faults_over_the_http_control_endpoint(fsim: SimServer) -> None:
    url = f"{fsim.base_url}/_sim/faults"
    reply = requests.post(url, timeout=10, json={"rules": [
        {"endpoint": "graphql", "kind": "http_502"},
        {"endpoint": "soap", "kind": "apply_then_499", "count": 1},
    ]})
    assert reply.status_code == 200
    assert [r["kind"] for r in reply.json()["rules"]] == ["http", "apply_then_499"]
    assert call(fsim, "graphql").status_code == 502
    assert call(fsim, "soap").status_code == 499
    requests.post(url, json={"endpoint": "soap", "kind": "reset", "probability": 1.0}, timeout=10)
    assert requests.get(url, timeout=10).json()["rules"][0]["kind"] == "reset"
    assert requests.delete(f"{url}?endpoint=soap", timeout=10).json()["rules"] == []
    bad = requests.post(url, json={"endpoint": "ftp", "kind": "nope"}, timeout=10)
    assert bad.status_code == 400
    assert "endpoint" in bad.json()["error"]


def test_rule_validation() -> None:
    from erpsync.sim.faults import FaultRule

    with pytest.raises(ValueError, match="exactly one of count or probability"):
        FaultRule("soap", "http", count=1, probability=0.5)
    with pytest.raises(ValueError, match="probability"):
        FaultRule("soap", "http", probability=1.5)
    assert FaultRule("graphql", "http_503", count=1).status == 503


