"""Test doubles for the GraphQL client: ``requests`` adapters that never open a socket.

``ScriptedAdapter`` answers from a script (status, JSON, headers) or raises a given exception and
fails the test if a scripted answer is never used. ``SimAdapter`` routes each POST to the
simulator's ``GraphqlApp.handle`` in-process, so the client meets the real simulated API (quota,
complexity, 429s) on a ``FakeClock`` shared with the governor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from erpsync.sim.gql import GraphqlApp


def make_response(
    request: requests.PreparedRequest, status: int, body: bytes, headers: dict[str, str],
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body
    resp.headers = CaseInsensitiveDict(headers)
    resp.url = request.url or ""
    resp.request = request
    resp.encoding = "utf-8"
    return resp


Answer = tuple[int, Any, dict[str, str]] | BaseException | Callable[[requests.PreparedRequest], Any]


class ScriptedAdapter(BaseAdapter):
    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        assert self.answers, f"unexpected request #{len(self.requests)}"
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(request)
        status, body, headers = answer
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return make_response(request, status, raw, {"Content-Type": "application/json", **headers})

    def close(self) -> None:
        pass

    def body(self, i: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[i].body or b"{}")


class SimAdapter(BaseAdapter):
    def __init__(self, app: GraphqlApp) -> None:
        super().__init__()
        self.app = app
        self.statuses: list[int] = []
        self.sent_at: list[float] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        self.sent_at.append(self.app.clock.time())
        status, headers, out = self.app.handle(dict(request.headers), body)
        self.statuses.append(status)
        return make_response(request, status, out, dict(headers))

    def close(self) -> None:
        pass


def session_with(adapter: BaseAdapter) -> requests.Session:
    s = requests.Session()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
