"""Fault injection for the simulator's two endpoints (``soap`` and ``graphql``).

A :class:`FaultRule` fires either for the next ``count`` matching calls or with ``probability`` on
every matching call (seeded, reproducible). Rules are checked in the order they were added; the
first that fires decides the call. ``only`` narrows a rule to one SOAP operation (``events_Get``,
``events_GetByMarkets``, ``events_Done``, ``orders_Update``) or, for GraphQL, to ``mutation`` or
``query`` documents.

Kinds and what the client sees (and whether the request was applied):

=================  =========================================================  ========
kind               response                                                   applied
=================  =========================================================  ========
latency            normal response after ``seconds`` (default 1)              yes
hang               no response for ``seconds`` (default 60), then close       no
http               ``status`` (500 default; 502/503 get a proxy HTML page)    no
apply_then_499     the request is executed, then HTTP 499 with an empty body  yes
reset              TCP connection reset (RST) before any response             no
truncate           the real response cut in half (Content-Length says full)   yes
malformed          HTTP 200 with broken XML / JSON                            yes
soap_fault         HTTP 500 SOAP Fault (``Server``/``Internal error``)        no
expired_token      GraphQL 403 "token expired"; SOAP "Login failed" fault     no
=================  =========================================================  ========
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

ENDPOINTS = ("soap", "graphql")
KINDS = ("latency", "hang", "http", "apply_then_499", "reset", "truncate", "malformed", "soap_fault",
         "expired_token")
_ALIASES = {"http_500": ("http", 500), "http_502": ("http", 502), "http_503": ("http", 503),
            "499": ("apply_then_499", None), "timeout": ("hang", None)}


@dataclass
class FaultRule:
    endpoint: str
    kind: str
    count: int | None = None  # fire for the next N matching calls ...
    probability: float | None = None  # ... or with this probability on every matching call
    seconds: float | None = None  # latency / hang duration
    status: int | None = None  # http
    only: str | None = None  # operation filter, see module docstring
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind in _ALIASES:
            self.kind, status = _ALIASES[self.kind]
            self.status = self.status if self.status is not None else status
        problems = []
        if self.endpoint not in ENDPOINTS:
            problems.append(f"endpoint must be one of {list(ENDPOINTS)}, not {self.endpoint!r}")
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {list(KINDS)} (or {sorted(_ALIASES)}), not {self.kind!r}")
        if (self.count is None) == (self.probability is None):
            problems.append("give exactly one of count or probability")
        if self.count is not None and self.count < 1:
            problems.append("count must be ≥ 1")
        if self.probability is not None and not 0.0 < self.probability <= 1.0:
            problems.append("probability must be in (0, 1]")
        if self.kind == "http" and self.status is None:
            self.status = 500
        if self.status is not None and not 400 <= self.status <= 599:
            problems.append("status must be an HTTP error status (4xx/5xx)")
        if self.seconds is not None and self.seconds < 0:
            problems.append("seconds must be ≥ 0")
        if problems:
            raise ValueError("; ".join(problems))

    def matches(self, endpoint: str, operation: str) -> bool:
        return endpoint == self.endpoint and (self.only is None or self.only == operation)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class FaultInjector:
    """Thread-safe rule list; ``decide`` is called once per request."""

    def __init__(self, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self.fired: Counter[str] = Counter()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def set(self, endpoint: str, kind: str, **params: Any) -> FaultRule:
        return self.add(FaultRule(endpoint=endpoint, kind=kind, **params))

    def clear(self, endpoint: str | None = None) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if endpoint is not None and r.endpoint != endpoint]

    def decide(self, endpoint: str, operation: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(endpoint, operation):
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                elif self._rng.random() >= (rule.probability or 0.0):
                    continue
                rule.fired += 1
                self.fired[f"{endpoint}:{rule.kind}"] += 1
                return rule
            return None

    def inspect(self) -> dict[str, Any]:
        with self._lock:
            return {"rules": [r.as_dict() for r in self._rules], "fired": dict(sorted(self.fired.items()))}
