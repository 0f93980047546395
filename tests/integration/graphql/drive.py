"""Drive a mutation backlog through CentraGraphql + QuotaGovernor against a running simulator.

Shared by the integration tests and ``tests/bench/bench_quota.py``. Records, on the simulator's
(scaled) clock: when each request was sent, when each mutation succeeded, every 429 with its
Retry-After.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter

from erpsync.clock import Clock
from erpsync.errors import RateLimited
from erpsync.graphql import CentraGraphql, QuotaGovernor
from erpsync.graphql.quota import QuotaStore

STOCK_FIELD = (
    "setStock(input: $input) { userErrors { message path } userWarnings { message path } }"
)


def stock_document(per_request: int) -> str:
    fields = " ".join(f"m{i}: {STOCK_FIELD}" for i in range(per_request))
    return f"mutation Stock($input: StockSetInput!) {{ {fields} }}"


STOCK_VARS = {"input": {"warehouse": {"externalId": "WH-MAIN"}, "description": "bench",
                        "stockQuantityType": "PHYSICAL", "productSizes": []}}


class RecordingAdapter(HTTPAdapter):
    def __init__(self, clock: Clock) -> None:
        super().__init__(pool_maxsize=16, max_retries=0)
        self.clock = clock
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        with self._lock:
            self.sent.append(self.clock.time())
        return super().send(request, *args, **kwargs)


@dataclass
class DriveResult:
    started: float
    ended: float
    mutation_times: list[float] = field(default_factory=list)
    rate_limited: list[tuple[float, float]] = field(default_factory=list)  # (received at, retry_after)
    sent: list[float] = field(default_factory=list)
    requests: int = 0

    @property
    def duration(self) -> float:
        return self.ended - self.started

    def mutations_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.mutation_times if t0 <= t < t1)

    def requests_before_retry_after(self) -> int:
        """Requests sent while a 429's Retry-After was still running (must be 0)."""
        bad = 0
        for received, retry_after in self.rate_limited:
            bad += sum(1 for s in self.sent if received < s < received + retry_after - 1e-6)
        return bad


def drive(
    graphql_url: str, token: str, clock: Clock, limits: dict[str, int], *, seconds: float,
    per_request: int = 1, threads: int = 1, share: float = 0.8, refresh_seconds: float = 300.0,
    store: QuotaStore | None = None, lane: str = "stock",
) -> tuple[DriveResult, QuotaGovernor]:
    gov = QuotaGovernor(limits, clock=clock, share=share, refresh_seconds=refresh_seconds, store=store)
    adapter = RecordingAdapter(clock)
    session = requests.Session()
    session.mount("http://", adapter)
    document = stock_document(per_request)
    result = DriveResult(started=clock.time(), ended=0.0)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors: list[BaseException] = []
    with CentraGraphql(graphql_url, SecretStr(token), governor=gov, clock=clock, session=session) as client:
        def work() -> None:
            try:
                while time.monotonic() < deadline:
                    try:
                        res = client.mutate(document, STOCK_VARS, mutations=per_request, lane=lane)
                    except RateLimited as exc:
                        with lock:
                            result.rate_limited.append((clock.time(), float(exc.retry_after or 0)))
                        continue
                    assert res.ok, res.user_errors
                    now = clock.time()
                    with lock:
                        result.mutation_times.extend([now] * per_request)
            except BaseException as exc:  # re-raised in the caller
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    if errors:
        raise errors[0]
    result.ended = clock.time()
    result.sent = list(adapter.sent)
    result.requests = len(adapter.sent)
    return result, gov
