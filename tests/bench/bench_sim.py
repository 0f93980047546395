"""Simulator throughput figures (prints, never asserts timings).

Run: .venv/bin/python -m tests.bench.bench_sim [--events 5000] [--threads 4]
"""

from __future__ import annotations

import argparse
import threading
import time

import requests
import zeep

from erpsync.sim.gql import BUCKET_KEYS
from erpsync.sim.server import WSDL_PATH, SimOptions, SimServer


def bench_generate(n: int) -> None:
    server = SimServer(SimOptions(port=0))
    started = time.perf_counter()
    server.generate(n)
    elapsed = time.perf_counter() - started
    print(f"generate: {n} events in {elapsed:.2f} s ({n / elapsed:,.0f} events/s)")


def bench_drain(n: int, threads: int) -> None:
    with SimServer(SimOptions(port=0)) as sim:
        sim.generate(n)
        client = zeep.Client(wsdl=str(WSDL_PATH), settings=zeep.Settings(strict=False, forbid_external=True))
        login = {"username": sim.soap_user, "password": sim.soap_password}
        calls = 0
        lock = threading.Lock()

        def drain() -> None:
            nonlocal calls
            service = client.create_service("{http://www.centra.com/webservices/}CentraBinding", sim.soap_url)
            while True:
                result = service.events_Get(login=login, type="all")
                ids = [e.id for e in result.events.event] if result.events else []
                with lock:
                    calls += 2
                if not ids:
                    return
                service.events_Done(login=login, event=ids)

        started = time.perf_counter()
        workers = [threading.Thread(target=drain) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
        acked = sim.state()["soap"]["acked_count"]
        print(f"soap drain (zeep, {threads} threads): {acked} events acked in {elapsed:.2f} s "
              f"({acked / elapsed:,.0f} events/s, {calls / elapsed:,.0f} SOAP calls/s)")


def bench_graphql(requests_n: int, threads: int) -> None:
    limits = dict.fromkeys(BUCKET_KEYS, 10**9)
    with SimServer(SimOptions(port=0, tier="custom", limits=limits)) as sim:
        per_thread = requests_n // threads
        body = {"query": "{ products(limit: 10) { id externalId } }"}

        def run() -> None:
            with requests.Session() as session:
                for _ in range(per_thread):
                    session.post(sim.graphql_url, json=body, headers={"Authorization": f"Bearer {sim.token}"},
                                 timeout=30)

        started = time.perf_counter()
        workers = [threading.Thread(target=run) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
        print(f"graphql queries ({threads} threads, keep-alive): {per_thread * threads} in {elapsed:.2f} s "
              f"({per_thread * threads / elapsed:,.0f} requests/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--graphql-requests", type=int, default=2000)
    args = parser.parse_args()
    bench_generate(args.events)
    bench_drain(args.events, 1)
    bench_drain(args.events, args.threads)
    bench_graphql(args.graphql_requests, args.threads)


if __name__ == "__main__":
    main()
