"""Tokens expire (Centra: 30 days by default): ``token_ttl_seconds`` on the simulator's clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from erpsync.clock import FakeClock
from erpsync.sim.gql import GqlOptions, GraphqlApp

from .conftest import Caller


def test_tokens_expire_after_the_ttl_and_reset_reissues(make_app: Callable[..., GraphqlApp], clock: FakeClock) -> None:
    app = make_app(token_ttl_seconds=30 * 86400)
    caller = Caller(app)
    assert caller.raw("{ stores { id } }")[0] == 200
    clock.advance(30 * 86400 - 1)
    assert caller.raw("{ stores { id } }")[0] == 200
    clock.advance(1)
    status, _, body = caller.raw("{ stores { id } }")
    assert status == 403
    assert "expired" in body["errors"][0]["message"]
    assert caller.raw("{ stores { id } }", token="nope")[2]["errors"][0]["message"] == "Invalid access token"
    app.reset()
    assert caller.raw("{ stores { id } }")[0] == 200


def test_tokens_never_expire_by_default(make_app: Callable[..., GraphqlApp], clock: FakeClock) -> None:
    caller = Caller(make_app())
    clock.advance(10 * 365 * 86400)
    assert caller.raw("{ stores { id } }")[0] == 200


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="token_ttl_seconds"):
        GqlOptions(token_ttl_seconds=0)
