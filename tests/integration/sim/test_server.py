"""The server as a whole: the six quota buckets over HTTP with a scaled clock, control endpoints,
persistence, concurrent clients on both APIs."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep

from erpsync.sim.gql import BUCKET_KEYS
from erpsync.sim.server import SimOptions, SimServer

SimFactory = Callable[..., SimServer]
NS = "http://www.centra.com/webservices/"
QUERY = {"query": "{ stores { id } }"}
MUTATION = {"query": 'mutation { createPricelist(input: {name: "N", status: ACTIVE, currencyIsoCode: "NOK", '
                     "store: {id: 1}}) { pricelist { id } userErrors { message } } }"}


def gql(sim: SimServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(sim.graphql_url, json=body, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)


def _wait_seconds(value: str, fmt: str, now: float) -> float:
    if fmt == "seconds":
        assert value.isdigit()
        return float(value)
    if fmt == "unix":
        assert value.isdigit() and int(value) > 1_000_000_000
        return float(value) - now
    assert value.endswith("GMT")
    return parsedate_to_datetime(value).timestamp() - now


@pytest.mark.parametrize(("bucket", "fmt"),
                         list(zip(BUCKET_KEYS, itertools.cycle(["seconds", "unix", "http-date"]), strict=False)))
def test_each_bucket_429_retry_after_and_refill_on_the_scaled_clock(sim_factory: SimFactory, bucket: str,
                                                                    fmt: str) -> None:
    complexity = gql(sim_factory(), QUERY).json()["extensions"]["complexity"]
    kind, interval = bucket.split(":")
    body = MUTATION if kind == "MUTATION_COUNT" else QUERY
    capacity = 2 * complexity + complexity // 2 if kind == "QUERY_COMPLEXITY" else 2
    limits = dict.fromkeys(BUCKET_KEYS, 10**9)
    limits[bucket] = capacity
    # a scale at which one request's worth refills in about a third of a real second
    scale = 10.0 if interval == "TEN_SECONDS" else 3600.0
    sim = sim_factory(tier="custom", limits=limits, retry_after_format=fmt, time_scale=scale)
    clock = sim.client_clock()
    assert (clock.factor, clock.epoch) == (sim.time_factor, sim.time_epoch)  # type: ignore[attr-defined]
    published = requests.get(f"{sim.base_url}/_sim/state", timeout=10).json()["clock"]
    assert (published["factor"], published["epoch"]) == (scale, sim.time_epoch)

    assert [gql(sim, body).status_code for _ in range(2)] == [200, 200]
    charged = sim.state()["graphql"]["quota"]["chargedRequests"]
    refused = gql(sim, body)
    assert refused.status_code == 429
    assert refused.headers["X-Centra-Request-ID"]
    wait = _wait_seconds(refused.headers["Retry-After"], fmt, clock.time())
    window = 10 if interval == "TEN_SECONDS" else 3600
    assert 0 < wait <= window + 2
    state = sim.state()["graphql"]["quota"]
    assert state["rejected429"] == 1
    assert state["chargedRequests"] == charged  # a 429 costs nothing
    clock.sleep(max(wait, 0) + 0.02 * scale / 10)  # on the shared scaled clock: well under a real second
    assert gql(sim, body).status_code == 200


def test_other_integration_share_slows_our_refill(sim_factory: SimFactory) -> None:
    """The simulated other integration spends half of every refill: we wait about twice as long."""
    limits = dict.fromkeys(BUCKET_KEYS, 10**9)
    limits["REQUEST_COUNT:TEN_SECONDS"] = 2
    waits = {}
    for share in (0.0, 0.5):
        sim = sim_factory(tier="custom", limits=limits, other_integration_share=share)
        assert [gql(sim, QUERY).status_code for _ in range(3)] == [200, 200, 429]
        waits[share] = float(gql(sim, QUERY).headers["Retry-After"])
        assert sim.state()["graphql"]["quota"]["otherIntegrationShare"] == share
    assert 4 <= waits[0.0] <= 6  # one request per 5 s on a 2-per-10-s bucket
    assert 9 <= waits[0.5] <= 11


def test_control_endpoints(sim: SimServer, tmp_path: Path) -> None:
    base = f"{sim.base_url}/_sim"
    assert requests.get(f"{base}/health", timeout=10).json() == {"ok": True}
    ids = requests.post(f"{base}/events", timeout=10, json={"events": [
        {"type": "order", "entry": "7", "data": {"id": "7", "status": "pending"}},
        {"type": "customer", "entry": "8", "data_xml": "<customer><id>8</id></customer>",
         "date": "2026-11-20T09:14:03+01:00"},
        {"type": "size", "entry": "XXS", "mission": "delete"},
    ]}).json()["ids"]
    assert ids == [1000, 1001, 1002]
    assert sim.queue.get(1001).date == "2026-11-20T09:14:03+01:00"  # type: ignore[union-attr]
    generated = requests.post(f"{base}/generate", json={"count": 12}, timeout=10).json()["ids"]
    assert generated == list(range(1003, 1015))
    order = next(iter(sim.generator.orders))
    advanced = requests.post(f"{base}/orders/{order}/advance", timeout=10)
    assert advanced.status_code == 200 and advanced.json()["id"] == 1015
    assert requests.post(f"{base}/orders/nope/advance", timeout=10).status_code == 404
    bad = requests.post(f"{base}/events", json={"events": [{"type": "bogus", "entry": "1"}]}, timeout=10)
    assert bad.status_code == 400

    # the GraphQL half's inspection is merged in: the duplicate-on-second-create trap is visible
    create = {"query": 'mutation { createProduct(input: {name: "T", status: ACTIVE, productNumber: "P", '
                       'externalId: "EXT-1"}) { product { id } userErrors { message } } }'}
    assert [gql(sim, create).status_code for _ in range(2)] == [200, 200]
    state = requests.get(f"{base}/state", timeout=10).json()
    assert state["soap"]["queue_depth"] == 16
    assert state["soap"]["pending_by_type"]["size"] >= 1
    assert state["graphql"]["counts"]["products"] == 2
    assert state["graphql"]["duplicates"]["product"] == {"EXT-1": 1}
    assert state["requests"]["graphql:mutation"] == 2
    assert state["urls"]["graphql"] == sim.graphql_url

    assert requests.post(f"{base}/reset", timeout=10).json() == {"ok": True}
    state = requests.get(f"{base}/state", timeout=10).json()
    assert state["soap"]["queue_depth"] == 0
    assert state["graphql"]["counts"]["products"] == 0
    assert requests.get(f"{sim.base_url}/nope", timeout=10).status_code == 404


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = SimServer(SimOptions(port=0, seed=9, state_file=str(path)))
    with first:
        first.generate(30)
        first.queue.done([1000, 1001])
        assert gql(first, {"query": 'mutation { createProduct(input: {name: "T", status: ACTIVE, '
                                    'productNumber: "P", externalId: "E"}) { product { id } } }'}).status_code == 200
        before = first.state()
    assert path.exists()
    second = SimServer(SimOptions(port=0, seed=9, state_file=str(path)))
    with second:
        after = second.state()
        assert after["soap"]["queue_depth"] == before["soap"]["queue_depth"] == 28
        assert after["soap"]["acked_ids"] == [1000, 1001]
        assert after["graphql"]["counts"] == before["graphql"]["counts"]
        # the generator continues where it left off (same objects, same rng)
        assert set(second.generator.orders) == set(first.generator.orders)
        assert second.generate(1)[0].id == 1030


def test_generated_data_is_reproducible_per_seed() -> None:
    def run(seed: int) -> list[tuple[int, str, str]]:
        server = SimServer(SimOptions(port=0, seed=seed))
        return [(e.id, e.type, e.entry) for e in server.generate(60)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_concurrent_soap_and_graphql_clients(sim: SimServer, centra_wsdl_path: Path) -> None:
    sim.generate(400)
    client = zeep.Client(wsdl=str(centra_wsdl_path), settings=zeep.Settings(strict=False, forbid_external=True))
    errors: list[BaseException] = []
    acked: set[int] = set()
    lock = threading.Lock()

    def drain() -> None:
        service = client.create_service("{http://www.centra.com/webservices/}CentraBinding", sim.soap_url)
        login = {"username": sim.soap_user, "password": sim.soap_password}
        try:
            while True:
                result = service.events_Get(login=login, type="all")
                ids = [e.id for e in result.events.event] if result.events else []
                if not ids:
                    return
                service.events_Done(login=login, event=ids)
                with lock:
                    acked.update(int(i) for i in ids)
        except BaseException as exc:
            errors.append(exc)

    def query() -> None:
        try:
            with requests.Session() as session:
                for _ in range(10):
                    reply = session.post(sim.graphql_url, json=QUERY, timeout=10,
                                         headers={"Authorization": f"Bearer {sim.token}"})
                    assert reply.status_code in (200, 429)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(4)] + [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(acked) == 400
    assert sim.state()["soap"]["queue_depth"] == 0
    assert sim.state()["soap"]["acked_count"] == 400


def test_sim_control_client_drives_a_server_over_http(sim: SimServer, tmp_path: Path) -> None:
    from erpsync.sim.control import SimControl, SimControlError

    with SimControl(sim.base_url) as control:
        assert control.health()
        assert control.enqueue_events([{"type": "order", "entry": "1", "data": {"id": "1"}}]) == [1000]
        assert control.generate(4) == [1001, 1002, 1003, 1004]
        order = next(iter(sim.generator.orders))
        assert control.advance_order(order) == 1005
        control.set_fault("graphql", "http", status=503, count=1)
        assert control.faults()["rules"][0]["status"] == 503
        assert gql(sim, QUERY).status_code == 503
        control.set_fault("soap", "reset", probability=0.5)
        control.clear_faults("soap")
        assert control.faults()["rules"] == []
        control.expire_token(sim.token)
        assert gql(sim, QUERY).status_code == 403
        assert control.state()["soap"]["queue_depth"] == 6
        with pytest.raises(SimControlError, match="400"):
            control.set_fault("soap", "nonsense")
        with pytest.raises(SimControlError, match="no state file"):
            control.save()
        control.reset()
        assert control.state()["soap"]["queue_depth"] == 0


def test_background_generation_at_a_rate(sim_factory: SimFactory) -> None:
    sim = sim_factory(generate_rate=200.0)
    deadline = threading.Event()
    for _ in range(100):  # poll up to 5 s for the background thread's events
        if sim.queue.depth >= 20:
            break
        deadline.wait(0.05)
    assert sim.queue.depth >= 20
    ids = [e.id for e in sim.queue.fetch(limit=1000)]
    assert ids == sorted(ids)


def test_state_file_autosave_and_restart(sim_factory: SimFactory, tmp_path: Path) -> None:
    import json

    path = tmp_path / "auto.json"
    sim = sim_factory(state_file=str(path), autosave_seconds=0.05)
    sim.generate(9)
    waiter = threading.Event()
    for _ in range(100):
        if path.exists() and len(json.loads(path.read_text())["queue"]["events"]) == 9:
            break
        waiter.wait(0.05)
    assert len(json.loads(path.read_text())["queue"]["events"]) == 9  # saved while running (crash-safe)
    sim.stop()
    sim.start()  # a stopped server can start again, with its state
    assert sim.queue.depth == 9
    assert requests.get(f"{sim.base_url}/_sim/health", timeout=10).status_code == 200
