"""Webhook signature and form checks (PROTOCOL.md §2.3), no I/O."""

from __future__ import annotations

import pytest

from erpsync.daemon.webhook import WebhookRejected, check_form, parse_signature_header, sign, verify

VECTOR_SECRET = "test123"
VECTOR_T = 12345678
VECTOR_BODY = b"payload=%7B%22x%22%3A%22test%22%7D"
VECTOR_SIG = "0b9cd84f5d583e5e1aadfb9f160aa8080b51d5b85ff85808d6b75bdac356c549"


def test_contract_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_T, VECTOR_BODY) == VECTOR_SIG
    header = f"t={VECTOR_T},v1={VECTOR_SIG}"
    assert verify(VECTOR_SECRET, header, VECTOR_BODY, now=VECTOR_T + 10) == VECTOR_T


def test_uppercase_hex_and_spaces_are_accepted() -> None:
    header = f"t={VECTOR_T}, v1={VECTOR_SIG.upper()}"
    assert verify(VECTOR_SECRET, header, VECTOR_BODY, now=VECTOR_T) == VECTOR_T


@pytest.mark.parametrize(("header", "body", "now", "status", "reason"), [
    (f"t={VECTOR_T},v1={'0' * 64}", VECTOR_BODY, VECTOR_T, 401, "signature_mismatch"),
    (f"t={VECTOR_T},v1={VECTOR_SIG}", VECTOR_BODY + b"x", VECTOR_T, 401, "signature_mismatch"),
    (f"t={VECTOR_T + 1},v1={VECTOR_SIG}", VECTOR_BODY, VECTOR_T, 401, "signature_mismatch"),
    # the right signature, but captured more than the tolerance ago: a replay
    (f"t={VECTOR_T},v1={VECTOR_SIG}", VECTOR_BODY, VECTOR_T + 301, 401, "timestamp_outside_tolerance"),
    (f"t={VECTOR_T},v1={VECTOR_SIG}", VECTOR_BODY, VECTOR_T - 301, 401, "timestamp_outside_tolerance"),
    (None, VECTOR_BODY, VECTOR_T, 400, "signature_missing"),
    ("", VECTOR_BODY, VECTOR_T, 400, "signature_missing"),
    (f"v1={VECTOR_SIG}", VECTOR_BODY, VECTOR_T, 400, "signature_malformed"),
    (f"t=yesterday,v1={VECTOR_SIG}", VECTOR_BODY, VECTOR_T, 400, "signature_malformed"),
    (f"t={VECTOR_T}", VECTOR_BODY, VECTOR_T, 400, "signature_malformed"),
])
def test_refusals(header: str | None, body: bytes, now: float, status: int, reason: str) -> None:
    with pytest.raises(WebhookRejected) as err:
        verify(VECTOR_SECRET, header, body, now=now, tolerance_s=300)
    assert (err.value.status, err.value.reason) == (status, reason)
    assert VECTOR_SECRET not in str(err.value)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookRejected) as err:
        verify("other", f"t={VECTOR_T},v1={VECTOR_SIG}", VECTOR_BODY, now=VECTOR_T)
    assert err.value.reason == "signature_mismatch"


def test_one_matching_v1_among_several_is_enough() -> None:
    header = f"t={VECTOR_T},v1={'a' * 64},v1={VECTOR_SIG}"
    assert verify(VECTOR_SECRET, header, VECTOR_BODY, now=VECTOR_T) == VECTOR_T


def test_tolerance_is_configurable() -> None:
    header = f"t={VECTOR_T},v1={VECTOR_SIG}"
    assert verify(VECTOR_SECRET, header, VECTOR_BODY, now=VECTOR_T + 3000, tolerance_s=3600) == VECTOR_T


def test_parse_header() -> None:
    assert parse_signature_header("t=5,v1=AB,v0=zz") == (5, ["ab"])


@pytest.mark.parametrize(("ctype", "body", "reason"), [
    ("application/json", b'{"events": []}', "not_form"),
    (None, VECTOR_BODY, "not_form"),
    ("application/x-www-form-urlencoded", b"\xff\xfe", "not_form"),
    ("application/x-www-form-urlencoded", b"no-equals-sign", "not_form"),
    ("application/x-www-form-urlencoded", b"other=1", "payload_missing"),
    ("application/x-www-form-urlencoded", b"payload=", "payload_missing"),
])
def test_form_refusals(ctype: str | None, body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRejected) as err:
        check_form(ctype, body)
    assert err.value.status == 400 and err.value.reason == reason


def test_form_accepts_centra_payload() -> None:
    check_form("application/x-www-form-urlencoded; charset=UTF-8", VECTOR_BODY)
