"""Bisection, retries and read-back (recording fakes, an injected clock, no I/O)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from erpsync.clock import FakeClock
from erpsync.config import PushSettings
from erpsync.errors import OutcomeUnknown, RateLimited, SourceUnavailable
from erpsync.outbound.push import PushJob, Sender, SendResult, bisect, error_lines, skipped_lines


def run_bisect(items: list[int], bad: set[int], skip: set[int] = frozenset()) -> tuple[list, list, list]:  # type: ignore[assignment]
    sent: list[list[int]] = []
    accepted: list[int] = []
    rejected: list[tuple[int, str]] = []

    def send(batch: Sequence[int]) -> SendResult:
        sent.append(list(batch))
        errors = [f"item {i} is bad" for i in batch if i in bad]
        skipped = {n: f"{i} skipped" for n, i in enumerate(batch) if i in skip} if not errors else {}
        return errors, skipped, {}

    n = bisect(items, send, accepted.extend, lambda item, reason: rejected.append((item, reason)))
    assert n == len(sent)
    return sent, accepted, rejected


def test_good_batch_is_one_mutation() -> None:
    sent, accepted, rejected = run_bisect(list(range(100)), set())
    assert sent == [list(range(100))] and accepted == list(range(100)) and rejected == []


def test_one_bad_item_is_isolated_and_the_rest_lands() -> None:
    sent, accepted, rejected = run_bisect(list(range(64)), {37})
    assert rejected == [(37, "item 37 is bad")]
    assert sorted(accepted) == [i for i in range(64) if i != 37]
    assert len(sent) == 1 + 2 * 6  # log2(64) levels, two halves each


def test_several_bad_items_each_parked_with_its_own_message() -> None:
    _, accepted, rejected = run_bisect(list(range(10)), {0, 9, 4})
    assert sorted(rejected) == [(0, "item 0 is bad"), (4, "item 4 is bad"), (9, "item 9 is bad")]
    assert sorted(accepted) == [1, 2, 3, 5, 6, 7, 8]


def test_skip_with_warning_rejects_only_the_skipped_items() -> None:
    sent, accepted, rejected = run_bisect(list(range(5)), set(), {3})
    assert len(sent) == 1 and accepted == [0, 1, 2, 4] and rejected == [(3, "3 skipped")]


def test_skipped_lines_reads_the_warning_paths() -> None:
    warnings = [{"message": "Skipped: Product size with EAN '1' not found",
                 "path": ["input", "productSizes", "4", "x"]},
                {"message": "EAN '2' matches 2 product sizes", "path": ["input", "productSizes", "1"]}]
    assert skipped_lines(warnings, "productSizes") == {4: "Product size with EAN '1' not found",
                                                       1: "EAN '2' matches 2 product sizes"}


@pytest.mark.parametrize(("message", "path", "line"), [
    ("Skipped: EAN not found", ["input", "productSizes", "3"], 3),
    ("Line ignored: unknown EAN 7300000000011", ["input", "productSizes", 3, "productSize"], 3),
    ("productSize not found, quantity not set", ["setStock", "input", "productSizes", "0"], 0),
    ("Warning: the size is blocked", ("input", "productSizes", 7, "quantity"), 7),
    ("Skipped:   ", ["input", "productSizes", "2"], 2),
])
def test_any_warning_on_a_line_means_the_line_was_not_applied(message: str, path: list, line: int) -> None:
    got = skipped_lines([{"message": message, "path": path}], "productSizes")
    assert set(got) == {line}
    assert got[line] == (message[len("Skipped:"):].strip() if message.startswith("Skipped:") else message)


def test_warnings_that_name_no_line_are_not_line_outcomes() -> None:
    warnings = [{"message": "Skipped: whatever", "path": ["input", "warehouse"]},
                {"message": "slow down", "path": []}, {"message": "odd", "path": ["input", "productSizes", "x"]},
                {"message": "no path"}]
    assert skipped_lines(warnings, "productSizes") == {}


def test_two_warnings_on_one_line_are_both_kept() -> None:
    warnings = [{"message": "first", "path": ["input", "productSizes", "1"]},
                {"message": "second", "path": ["input", "productSizes", "1", "quantity"]}]
    assert skipped_lines(warnings, "productSizes") == {1: "first; second"}


def test_sender_retries_transient_faults_with_backoff_on_the_clock() -> None:
    clock = FakeClock()
    faults = [SourceUnavailable("down"), RateLimited("429", retry_after=7.0), OutcomeUnknown("lost")]
    calls = []

    def fn() -> str:
        calls.append(clock.time())
        if faults:
            raise faults.pop(0)
        return "ok"

    sender = Sender(port=None, clock=clock, max_attempts=5, stop_event=threading.Event())  # type: ignore[arg-type]
    assert sender.call(fn) == "ok"
    assert clock.sleeps == [1.0, 7.0, 4.0]  # exponential, except where the server said Retry-After
    assert sender.retries == 3 and len(calls) == 4


def test_sender_gives_up_after_max_attempts() -> None:
    clock = FakeClock()
    sender = Sender(port=None, clock=clock, max_attempts=3, stop_event=threading.Event())  # type: ignore[arg-type]
    attempts = []

    def fn() -> None:
        attempts.append(1)
        raise SourceUnavailable("down")

    with pytest.raises(SourceUnavailable):
        sender.call(fn)
    assert len(attempts) == 3


def test_sender_stops_retrying_when_shutdown_is_requested() -> None:
    stop = threading.Event()
    stop.set()
    sender = Sender(port=None, clock=FakeClock(), max_attempts=9, stop_event=stop)  # type: ignore[arg-type]
    attempts = []

    def fn() -> None:
        attempts.append(1)
        raise SourceUnavailable("down")

    with pytest.raises(SourceUnavailable):
        sender.call(fn)
    assert attempts == [1]


class _Job(PushJob):
    name = "push_test"

    def push_once(self, run: object) -> None:  # type: ignore[override]
        raise AssertionError("not run in these tests")


def test_create_is_never_resent_when_the_read_back_finds_it() -> None:
    clock = FakeClock()
    job = _Job(None, object(), PushSettings(max_attempts=4), clock=clock)  # type: ignore[arg-type]
    creates, lookups = [], []

    def create() -> tuple[str | None, list[str]]:
        creates.append(1)
        raise OutcomeUnknown("499 after apply")

    def read_back() -> str | None:
        lookups.append(1)
        return "42"

    assert job.create_with_readback(create, read_back) == ("42", [])
    assert creates == [1] and lookups == [1]


def test_create_is_resent_only_after_the_read_back_misses_it_and_not_after_a_429() -> None:
    job = _Job(None, object(), PushSettings(max_attempts=5), clock=FakeClock())  # type: ignore[arg-type]
    outcomes: list[Exception | None] = [RateLimited("429", retry_after=1), OutcomeUnknown("timeout"), None]
    creates, lookups = [], []

    def create() -> tuple[str | None, list[str]]:
        creates.append(1)
        exc = outcomes.pop(0)
        if exc is not None:
            raise exc
        return "7", []

    def read_back() -> str | None:
        lookups.append(1)
        return None

    assert job.create_with_readback(create, read_back) == ("7", [])
    assert len(creates) == 3 and len(lookups) == 1  # no read-back after the 429: nothing was applied


def test_user_error_paths_find_the_bad_lines_without_bisecting() -> None:
    sent: list[list[int]] = []
    accepted: list[int] = []
    rejected: list[tuple[int, str]] = []

    def send(batch: Sequence[int]) -> SendResult:
        sent.append(list(batch))
        bad = {n: f"line {i} bad" for n, i in enumerate(batch) if i in (5, 77)}
        return [m for m in bad.values()], {}, bad

    n = bisect(list(range(100)), send, accepted.extend, lambda item, reason: rejected.append((item, reason)))
    # batch, the 98 good lines, the two named lines together, then each alone
    assert n == 5 and sorted(rejected) == [(5, "line 5 bad"), (77, "line 77 bad")]
    assert sorted(accepted) == [i for i in range(100) if i not in (5, 77)]


def test_misleading_paths_fall_back_to_bisection() -> None:
    accepted: list[int] = []
    rejected: list[tuple[int, str]] = []

    def send(batch: Sequence[int]) -> SendResult:
        errors = ["bad"] if 13 in batch else []
        return errors, {}, ({0: "blamed"} if errors and len(batch) > 1 else {})  # always blames line 0

    bisect(list(range(32)), send, accepted.extend, lambda item, reason: rejected.append((item, reason)))
    assert rejected == [(13, "bad")]  # the blamed good lines were not parked
    assert sorted(accepted) == [i for i in range(32) if i != 13]


def test_error_lines_need_every_path_to_name_a_line() -> None:
    errors = [{"message": "Product size with EAN 'x' not found",
               "path": ["input", "productSizes", "3", "productSize", "EAN"]},
              {"message": "quantity must be ≥ 0", "path": ["input", "productSizes", "3", "quantity"]}]
    assert error_lines(errors, "productSizes") == {3: "Product size with EAN 'x' not found; quantity must be ≥ 0"}
    assert error_lines([*errors, {"message": "Warehouse not found", "path": ["input", "warehouse"]}],
                       "productSizes") == {}


def test_sender_backs_off_after_a_429_without_retry_after() -> None:
    # an ungoverned client raises RateLimited(retry_after=None) when Centra sends no Retry-After:
    # the next request must not go out at once (a 429 storm), it waits the exponential backoff
    clock = FakeClock()
    faults = [RateLimited("429", retry_after=None), RateLimited("429", retry_after=None)]
    calls = []

    def fn() -> str:
        calls.append(clock.time())
        if faults:
            raise faults.pop(0)
        return "ok"

    sender = Sender(port=None, clock=clock, max_attempts=5, stop_event=threading.Event())  # type: ignore[arg-type]
    assert sender.call(fn) == "ok"
    assert clock.sleeps == [1.0, 2.0]
    assert calls[1] > calls[0] and calls[2] > calls[1]


def test_price_batches_respect_the_per_call_limit_in_total_or_per_entry() -> None:
    from erpsync.outbound.changes import PendingItem
    from erpsync.outbound.prices import _batches

    items = [PendingItem("price", f"{pl}|P{n:04d}", {"pricelist": {"externalId": pl}, "product": {"externalId": n}},
                         "h", None) for n in range(150) for pl in ("PL-SEK", "PL-EUR", "PL-USD")]
    total = _batches(items, 100)
    assert [len(b) for b in total] == [100, 100, 100, 100, 50]
    per_entry = _batches(items, 100, per_entry=True)
    assert [len(b) for b in per_entry] == [300, 150]
    for batch in per_entry:
        per_list: dict[str, int] = {}
        for item in batch:
            per_list[item.erp_key.split("|")[0]] = per_list.get(item.erp_key.split("|")[0], 0) + 1
        assert max(per_list.values()) <= 100


def test_prices_batch_size_above_centra_limit_is_a_config_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="prices_batch_size"):
        PushSettings(prices_batch_size=200)
    with pytest.raises(ValidationError, match="prices_batch_limit"):
        PushSettings(prices_batch_limit="per_call")  # type: ignore[arg-type]
