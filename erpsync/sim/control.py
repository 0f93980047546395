"""Drive a simulator that runs in another process (``erpsync sim``) over its ``/_sim/`` endpoints.

The same operations as the in-process :class:`erpsync.sim.server.SimServer` control API::

    sim = SimControl("http://127.0.0.1:8765")
    sim.set_fault("graphql", "http", status=503, count=2)
    ids = sim.enqueue_events([{"type": "order", "entry": "1207", "data": {...}}])
    sim.generate(100)
    sim.state()["soap"]["queue_depth"]
"""

from __future__ import annotations

from typing import Any

import requests


class SimControlError(RuntimeError):
    pass


class SimControl:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None) -> Any:
        reply = self._session.request(method, f"{self.base_url}/_sim/{path}", json=json, params=params,
                                      timeout=self.timeout)
        if reply.status_code != 200:
            raise SimControlError(f"{method} /_sim/{path}: HTTP {reply.status_code}: {reply.text[:500]}")
        return reply.json()

    def health(self) -> bool:
        return bool(self._call("GET", "health").get("ok"))

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def set_fault(self, endpoint: str, kind: str, **params: Any) -> dict[str, Any]:
        """``params``: count | probability, seconds, status, only (see ``erpsync.sim.faults``)."""
        result: dict[str, Any] = self._call("POST", "faults", {"endpoint": endpoint, "kind": kind, **params})
        return result

    def clear_faults(self, endpoint: str | None = None) -> None:
        self._call("DELETE", "faults", params={"endpoint": endpoint} if endpoint else None)

    def enqueue_events(self, events: list[dict[str, Any]]) -> list[int]:
        """Each: ``{"type", "entry", "mission"?, "date"?, "data"? | "data_xml"?}``; returns the new ids."""
        return [int(i) for i in self._call("POST", "events", {"events": events})["ids"]]

    def generate(self, count: int) -> list[int]:
        return [int(i) for i in self._call("POST", "generate", {"count": count})["ids"]]

    def advance_order(self, order_id: str) -> int:
        return int(self._call("POST", f"orders/{order_id}/advance")["id"])

    def set_limits(self, limits: dict[str, int]) -> dict[str, Any]:
        """Change GraphQL bucket capacities now (keys ``"REQUEST_COUNT:TEN_SECONDS"`` …); returns the
        quota as ``/_sim/state`` shows it."""
        result: dict[str, Any] = self._call("POST", "limits", {"limits": limits})
        return result

    def expire_token(self, token: str) -> None:
        self._call("POST", "expire-token", {"token": token})

    def reset(self) -> None:
        self._call("POST", "reset")

    def save(self) -> str:
        return str(self._call("POST", "save")["saved"])
