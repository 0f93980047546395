"""The quota governor: spends Centra's six GraphQL rate-limit buckets without a 429 storm.

Centra meters every integration of a store against six token buckets (requests, complexity and
mutations, each per 10 s and per hour; PROTOCOL.md §2.1) that refill continuously. The governor
models the same six buckets, scaled by ``share`` (the fraction erpsync may use, leaving the rest to
the shop's other integrations), and is consulted before every call:

- ``acquire(requests, complexity, mutations, lane)`` blocks (on the injected clock) until every
  bucket can pay, then charges them; ``try_acquire`` returns the wait instead of blocking.
- Lanes, work-conserving, in strict priority ``fulfilment`` > ``stock`` > ``prices`` > ``events``
  > ``catalogue``. A lane may not take a bucket below its *reserve*: what the higher lanes will
  need within ``HORIZON`` seconds, i.e. the sum over every higher lane of its declared backlog, the
  call its waiting callers want, and its measured demand rate × ``HORIZON`` (capped at the
  allowance). With no higher-lane work the catalogue spends the whole share; the moment stock work
  appears (declared, or a stock caller waiting) the catalogue stops at the reserve and stock gets
  the next tokens. The demand signal, which any lane uses the same way:

  - ``declare_backlog(lane, mutations, requests=None, complexity=None)``: "this lane has that much
    ready work"; call it when a run knows its batches and again as they go (``0`` when done).
    Requests default to ``mutations`` (one mutation per request), complexity to ``mutations`` × the
    lane's learnt complexity per call. A declaration not renewed within ``BACKLOG_TTL`` lapses (its
    process may have died).
  - a caller waiting in ``acquire`` declares its own call until it is granted (refreshed on every
    retry, at least every ``MAX_SLEEP``), so an undeclared lane still gets priority;
  - every grant feeds the lane's demand rate (exponentially weighted, ``RATE_SECONDS``).

  All of it lives in the shared state (``QuotaSnapshot.lanes``), so lanes of different processes
  see each other. (The fixed floors ``quota.stock_reserve`` / ``quota.prices_reserve`` of before are
  deprecated: accepted with a warning, without effect.)
- Complexity before the first send: a caller passes ``bound`` (``erpsync.graphql.complexity``:
  an upper bound from the document's selection set, list limits and input size); the charge is
  ``bound × ratio``, the ratio learnt per operation from ``extensions.complexity`` (1.0 before
  the first answer), so a never-seen document cannot overdraw a tight complexity bucket.
- Feedback: ``settle`` corrects the charge and the per-operation complexity estimate (or ratio) from
  ``extensions.complexity``; ``on_rate_limited`` (a 429) blocks every caller, in every process,
  until Retry-After and makes a ``rateLimits`` refresh due; ``reseed`` sets the buckets from
  ``rateLimits`` (``remainingQuota`` minus the part left to others), so quota spent by other
  integrations, or limits lowered by Centra, are seen.
- State lives in a ``QuotaStore``: in memory, or in the database (``erpsync.store.quota_repo``)
  so a restart keeps its spent buckets and several processes share one budget. Each
  ``try_acquire`` is one short transaction.

Time is ``clock.time()`` (Unix seconds, scaled by a ``ScaledClock``): it must mean the same thing
in every process that shares the store.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from erpsync.clock import Clock
from erpsync.config import QuotaSettings
from erpsync.logs import get_logger

log = get_logger("erpsync.graphql.quota")

#: The six buckets, in the order they are shown.
BUCKETS: tuple[str, ...] = (
    "requests_10s", "requests_1h", "complexity_10s", "complexity_1h", "mutations_10s", "mutations_1h",
)
INTERVALS: dict[str, float] = {"10s": 10.0, "1h": 3600.0}
#: Centra's ``rateLimits`` names → bucket name
_TYPE_NAMES = {"REQUEST_COUNT": "requests", "QUERY_COMPLEXITY": "complexity", "MUTATION_COUNT": "mutations"}
_INTERVAL_NAMES = {"TEN_SECONDS": "10s", "ONE_HOUR": "1h"}

#: Lanes, highest priority first.
LANES: tuple[str, ...] = ("fulfilment", "stock", "prices", "events", "catalogue")

#: Published plan tiers: (requests, mutations, complexity) per 10 s and per hour.
TIERS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "growth": ((60, 20, 250_000), (5_000, 1_800, 30_000_000)),
    "enhanced": ((150, 50, 900_000), (20_000, 4_500, 90_000_000)),
    "high_volume": ((450, 150, 1_800_000), (40_000, 7_000, 180_000_000)),
    "enterprise": ((1_500, 500, 4_000_000), (85_000, 25_000, 400_000_000)),
}

#: complexity charged for an operation never seen before (observed: 100–230 for small documents)
DEFAULT_COMPLEXITY_GUESS = 250
#: weight of the newest observation in the running complexity estimate
ESTIMATE_WEIGHT = 0.3
#: how far ahead (clock seconds) a lane's reserve provides for the higher lanes' demand
HORIZON = 10.0
#: a declared backlog not renewed within this long (clock seconds) lapses
BACKLOG_TTL = 120.0
#: time constant (clock seconds) of a lane's measured demand rate
RATE_SECONDS = 60.0
#: the three token kinds, in the order of ``LaneDemand``'s vectors
KINDS: tuple[str, ...] = ("requests", "complexity", "mutations")

#: prefix of the learnt batch sizes in the shared estimates (``batch:setStock``)
BATCH_PREFIX = "batch:"


def learnt_batch_sizes(estimates: Mapping[str, Any] | None) -> dict[str, int]:
    """The learnt batch sizes kept among the shared estimates, by mutation kind."""
    return {str(k)[len(BATCH_PREFIX):]: int(v) for k, v in (estimates or {}).items()
            if str(k).startswith(BATCH_PREFIX) and isinstance(v, int | float)}
#: suffix of the per-operation key holding the learnt ratio real cost ÷ upper bound
RATIO_SUFFIX = "#ratio"
#: longest single sleep while waiting, so changes by other processes are noticed
MAX_SLEEP = 5.0
#: time constant (clock seconds) of learning erpsync's refill rate from successive ``rateLimits``
LEARN_SECONDS = 30.0
#: shortest sleep: float time near 1.8e9 s cannot advance by less than ~1e-6 s
MIN_SLEEP = 0.001
#: tokens closer than this to the need count as enough (float rounding of the refill)
_EPSILON = 1e-9
#: a Retry-After number at least this large is a Unix timestamp, not delta-seconds
_UNIX_TIMESTAMP_MIN = 1_000_000_000


_KIND = {n: n.rsplit("_", 1)[0] for n in BUCKETS}
_INTERVAL = {n: INTERVALS[n.rsplit("_", 1)[1]] for n in BUCKETS}


def bucket_interval(name: str) -> float:
    return _INTERVAL[name]


def bucket_kind(name: str) -> str:
    return _KIND[name]


def bucket_name(rate_limit_type: str, interval: str) -> str:
    """``("MUTATION_COUNT", "ONE_HOUR")`` → ``"mutations_1h"``."""
    return f"{_TYPE_NAMES[rate_limit_type]}_{_INTERVAL_NAMES[interval]}"


def tier_limits(tier: str) -> dict[str, int]:
    """The six capacities of a published tier."""
    ten, hour = TIERS[tier]
    return _limits(ten, hour)


def _limits(ten: Sequence[int], hour: Sequence[int]) -> dict[str, int]:
    return {
        "requests_10s": ten[0], "mutations_10s": ten[1], "complexity_10s": ten[2],
        "requests_1h": hour[0], "mutations_1h": hour[1], "complexity_1h": hour[2],
    }


def limits_from_settings(settings: QuotaSettings) -> dict[str, int]:
    """Capacities from ``[quota]``: the tier's, or ``limits_10s``/``limits_1h`` for ``custom``
    (an explicit pair also overrides a named tier)."""
    if settings.limits_10s is not None and settings.limits_1h is not None:
        return _limits(settings.limits_10s, settings.limits_1h)
    if settings.tier == "custom":
        raise ValueError("quota.tier = 'custom' needs quota.limits_10s and quota.limits_1h")
    return tier_limits(settings.tier)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``now`` (Unix seconds) per a ``Retry-After`` header value.

    Accepts delta-seconds (``"30"``, ``"1.5"``), a Unix timestamp (``"1800000030"``) and an
    HTTP-date (``"Wed, 21 Oct 2026 07:28:00 GMT"``). Returns None when absent or unparseable;
    never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        if number >= _UNIX_TIMESTAMP_MIN:
            return max(0.0, number - now)
        return max(0.0, number)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP-date is always GMT
        return None
    # HTTP-dates have whole seconds: the server's instant lies within the second after ``when``
    return max(0.0, when.timestamp() - now)


# ---------------------------------------------------------------- state


@dataclass
class BucketState:
    capacity: float  # the server's quota for this bucket (before ``share``)
    tokens: float  # erpsync's allowance at ``updated_at`` (at most capacity × share; may be < 0)
    updated_at: float
    #: erpsync's refill per second as learnt from ``rateLimits`` (None: capacity × share / interval)
    rate: float | None = None
    #: own tokens minus the server-derived allowance right after the last reseed (≤ 0), and when
    learn_gap: float = 0.0
    learn_at: float = 0.0


@dataclass
class LaneDemand:
    """What one lane will need soon: declared backlog, a waiting call, its measured rate.

    Vectors are (requests, complexity, mutations) in tokens (rates: tokens per second)."""

    backlog: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    backlog_at: float = 0.0
    waiting: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    waiting_until: float = 0.0
    rate: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rate_at: float = 0.0
    #: complexity per granted request (EWMA), for converting a declared backlog
    per_call_complexity: float = 0.0

    def demand(self, k: int, now: float) -> float:
        """Tokens of kind ``k`` this lane will want within ``HORIZON`` seconds of ``now``."""
        d = 0.0
        if self.backlog_at and now - self.backlog_at <= BACKLOG_TTL:
            d += self.backlog[k]
        if self.waiting_until >= now:
            d += self.waiting[k]
        if self.rate_at:
            d += self.rate[k] * math.exp(-max(0.0, now - self.rate_at) / RATE_SECONDS) * HORIZON
        return d

    def to_json(self) -> list[Any]:
        return [self.backlog, self.backlog_at, self.waiting, self.waiting_until, self.rate, self.rate_at,
                self.per_call_complexity]

    @classmethod
    def from_json(cls, data: Any) -> LaneDemand:
        try:
            b, b_at, w, w_until, r, r_at, pcc = data
            return cls([float(x) for x in b], float(b_at), [float(x) for x in w], float(w_until),
                       [float(x) for x in r], float(r_at), float(pcc))
        except (TypeError, ValueError):
            return cls()


@dataclass
class QuotaSnapshot:
    """Everything the governor persists. Stores hand one out per transaction."""

    buckets: dict[str, BucketState]
    blocked_until: float = 0.0
    rate_limited_count: int = 0
    last_refresh_at: float = 0.0
    estimates: dict[str, float] = field(default_factory=dict)
    #: demand per lane (declared backlog, waiting calls, measured rate)
    lanes: dict[str, LaneDemand] = field(default_factory=dict)
    dirty_buckets: bool = False
    dirty_state: bool = False


class QuotaStore(Protocol):
    def transaction(self, initial: Callable[[], QuotaSnapshot]) -> AbstractContextManager[QuotaSnapshot]:
        """Lock the shared state, yield it (created by ``initial()`` if absent), save on clean exit
        what the caller marked dirty."""
        ...


class MemoryQuotaStore:
    """State in this process only (tests, ``erpsync quota`` without a database)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap: QuotaSnapshot | None = None

    @contextmanager
    def transaction(self, initial: Callable[[], QuotaSnapshot]) -> Iterator[QuotaSnapshot]:
        # the governor changes the snapshot only after every check passed, so no copy is needed
        with self._lock:
            if self._snap is None:
                self._snap = initial()
            yield self._snap
            self._snap.dirty_buckets = self._snap.dirty_state = False


# ---------------------------------------------------------------- the governor


@dataclass(frozen=True)
class Permit:
    """The outcome of ``try_acquire``: granted (``wait == 0``) or the seconds to wait."""

    granted: bool
    wait: float
    lane: str
    requests: int
    complexity: int
    mutations: int
    op_key: str | None = None
    #: the complexity upper bound the charge was derived from (None: a plain estimate)
    bound: int | None = None
    reason: str = ""  # which bucket (or "retry-after") made it wait
    #: a ``rateLimits`` refresh is due: the caller (the client) should read and ``reseed``
    refresh_due: bool = False
    #: the clock time of the decision
    at: float = 0.0


@dataclass(frozen=True)
class BucketView:
    name: str
    capacity: int  # the server's quota
    allowance: float  # capacity × share
    tokens: float  # erpsync's tokens now
    refill_per_second: float


def refill_rate(b: BucketState, name: str, share: float) -> float:
    """Refill per second: the share of the server's, or less when others were seen to spend more
    than their part."""
    full_share = b.capacity * share / _INTERVAL[name]
    return full_share if b.rate is None else min(b.rate, full_share)


def bucket_level(b: BucketState, name: str, share: float, now: float) -> float:
    """erpsync's tokens of bucket ``name`` at clock time ``now``: the stored level topped up by the
    refill since it was stored, capped at the allowance (capacity × share)."""
    allowance = b.capacity * share
    elapsed = now - b.updated_at
    if elapsed <= 0:
        return min(allowance, b.tokens)
    return min(allowance, b.tokens + elapsed * refill_rate(b, name, share))


def bucket_views(snap: QuotaSnapshot, share: float, now: float) -> list[BucketView]:
    """The six buckets as the governor sees them at ``now`` (what ``QuotaGovernor.snapshot`` shows;
    also computed from the stored state by ``store.quota_repo.read_quota`` for status and metrics)."""
    return [
        BucketView(name=n, capacity=int(snap.buckets[n].capacity), allowance=snap.buckets[n].capacity * share,
                   tokens=bucket_level(snap.buckets[n], n, share, now),
                   refill_per_second=refill_rate(snap.buckets[n], n, share))
        for n in BUCKETS if n in snap.buckets
    ]


def quota_left_pct(views: Iterable[BucketView]) -> float | None:
    """THE quota figure (STATUS=, ``job.finished``, ``erpsync status``, ``/metrics``): the tightest
    bucket's tokens, topped up to now, as a percentage of erpsync's allowance (capacity × share);
    0 while in debt; None without buckets."""
    fractions = [v.tokens / v.allowance for v in views if v.allowance > 0]
    return round(100 * max(0.0, min(fractions)), 1) if fractions else None


@dataclass
class GovernorStats:
    granted: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    rate_limited: int = 0
    reseeds: int = 0
    #: clock time of the first wait caused by each bucket (or "retry-after")
    first_wait: dict[str, float] = field(default_factory=dict)
    #: per lane: acquires, acquires that waited, the most sleeps in one acquire, the longest wait (s)
    lane_acquires: dict[str, int] = field(default_factory=dict)
    lane_waited: dict[str, int] = field(default_factory=dict)
    lane_max_sleeps: dict[str, int] = field(default_factory=dict)
    lane_max_wait: dict[str, float] = field(default_factory=dict)


class QuotaGovernor:
    """Six buckets × ``share``, lanes with reservations, Retry-After, re-seeding; thread-safe."""

    def __init__(
        self,
        limits: Mapping[str, int],
        *,
        clock: Clock,
        share: float = 0.8,
        refresh_seconds: float = 300.0,
        store: QuotaStore | None = None,
        default_complexity: int = DEFAULT_COMPLEXITY_GUESS,
    ) -> None:
        missing = set(BUCKETS) - set(limits)
        if missing:
            raise ValueError(f"limits missing for {sorted(missing)}")
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.limits = {b: int(limits[b]) for b in BUCKETS}
        self.clock = clock
        self.share = share
        #: strict priority: a lane provides for the demand of every lane before it
        self.priority = {lane: i for i, lane in enumerate(LANES)}
        self.refresh_seconds = refresh_seconds
        self.store: QuotaStore = store or MemoryQuotaStore()
        self.default_complexity = default_complexity
        self.stats = GovernorStats()
        self._lock = threading.Lock()
        self._estimates: dict[str, float] = {}
        self._dirty_estimates: set[str] = set()
        self._pending_complexity = 0.0  # settle() corrections not yet written to the store
        self._last_refresh_at = 0.0
        self._blocked_until = 0.0

    @classmethod
    def from_settings(cls, settings: QuotaSettings, *, clock: Clock, store: QuotaStore | None = None) -> QuotaGovernor:
        return cls(
            limits_from_settings(settings), clock=clock, share=settings.share,
            refresh_seconds=settings.refresh_seconds, store=store,
        )

    # -------------------------------------------------------------- estimates

    def estimate(self, op_key: str) -> int:
        """The running complexity estimate of an operation (the default guess if never seen)."""
        with self._lock:
            est = self._estimates.get(op_key)
        return self.default_complexity if est is None else max(1, math.ceil(est))

    def charge_for(self, op_key: str | None, bound: int) -> int:
        """The complexity charged for a call bounded by ``bound``: the bound × the ratio learnt for
        ``op_key`` (the bound itself before the first answer)."""
        with self._lock:
            ratio = self._estimates.get(f"{op_key}{RATIO_SUFFIX}") if op_key else None
        return max(1, math.ceil(bound * (1.0 if ratio is None else ratio)))

    # -------------------------------------------------------------- acquire

    def acquire(
        self,
        *,
        requests: int = 1,
        complexity: int | None = None,
        mutations: int = 0,
        lane: str = "catalogue",
        op_key: str | None = None,
        timeout: float | None = None,
        bound: int | None = None,
    ) -> Permit:
        """Block until every bucket allows the call, then charge it and return the granted permit.

        ``complexity`` defaults to ``bound × `` the learnt ratio when a ``bound`` is given, else to the
        running estimate for ``op_key``. With ``timeout`` (clock
        seconds) it returns the last refused permit (``granted`` False) instead of waiting longer.
        """
        started = self.clock.time()
        waited = False
        sleeps = 0
        while True:
            permit = self.try_acquire(
                requests=requests, complexity=complexity, mutations=mutations, lane=lane, op_key=op_key, bound=bound)
            if permit.granted:
                st = self.stats
                st.lane_acquires[lane] = st.lane_acquires.get(lane, 0) + 1
                if waited:
                    took = self.clock.time() - started
                    st.waited_seconds += took
                    st.lane_waited[lane] = st.lane_waited.get(lane, 0) + 1
                    st.lane_max_sleeps[lane] = max(st.lane_max_sleeps.get(lane, 0), sleeps)
                    st.lane_max_wait[lane] = max(st.lane_max_wait.get(lane, 0.0), took)
                return permit
            if timeout is not None and self.clock.time() - started + permit.wait > timeout:
                return permit
            if not waited:
                self.stats.waits += 1
                self.stats.first_wait.setdefault(permit.reason, permit.at)
                log.debug("quota.wait", lane=lane, seconds=round(permit.wait, 3), reason=permit.reason)
            waited = True
            sleeps += 1
            self.clock.sleep(min(max(permit.wait, MIN_SLEEP), MAX_SLEEP))

    def try_acquire(
        self,
        *,
        requests: int = 1,
        complexity: int | None = None,
        mutations: int = 0,
        lane: str = "catalogue",
        op_key: str | None = None,
        bound: int | None = None,
    ) -> Permit:
        """Charge the call if every bucket allows it now; otherwise return how long to wait."""
        if lane not in self.priority:
            raise ValueError(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        if complexity is None and bound is not None:
            complexity = self.charge_for(op_key, bound)
        elif complexity is None:
            complexity = self.estimate(op_key) if op_key else self.default_complexity
            bound = None
        costs = {"requests": requests, "complexity": complexity, "mutations": mutations}
        with self._lock, self.store.transaction(self._initial) as snap:
            now = self.clock.time()  # read under the lock: decisions are ordered like their times
            self._merge_shared(snap)
            wait, reason = 0.0, ""
            if snap.blocked_until > now:
                wait, reason = snap.blocked_until - now, "retry-after"
            levels = {name: self._level(snap, name, now) for name in BUCKETS}
            reserve = self._reserve(snap, lane, now)
            for name in BUCKETS:
                cost = costs[_KIND[name]]
                if cost <= 0:
                    continue
                allowance = self._allowance(snap, name)
                # a call bigger than the lane's room waits for a full bucket
                need = min(cost + reserve[_KIND[name]], allowance)
                if levels[name] + _EPSILON < need:
                    rate = self._rate(snap.buckets[name], name)
                    w = (need - levels[name]) / rate if rate > _EPSILON else self.refresh_seconds
                    if w > wait:
                        wait, reason = w, name
            refresh_due = now - snap.last_refresh_at >= self.refresh_seconds and now >= snap.blocked_until
            permit = Permit(
                granted=wait <= 0, wait=max(0.0, wait), lane=lane, requests=requests, complexity=complexity,
                mutations=mutations, op_key=op_key, bound=bound, reason=reason, refresh_due=refresh_due, at=now,
            )
            demand = snap.lanes.setdefault(lane, LaneDemand())
            vector = [float(costs[k]) for k in KINDS]
            if permit.granted:
                for name in BUCKETS:
                    b = snap.buckets[name]
                    b.tokens = levels[name] - costs[_KIND[name]]
                    b.updated_at = max(b.updated_at, now)
                snap.dirty_buckets = True
                self.stats.granted += 1
                decay = math.exp(-max(0.0, now - demand.rate_at) / RATE_SECONDS) if demand.rate_at else 0.0
                demand.rate = [r * decay + c / RATE_SECONDS for r, c in zip(demand.rate, vector, strict=True)]
                demand.rate_at = now
                if requests > 0:
                    per_call = complexity / requests
                    pcc = demand.per_call_complexity
                    demand.per_call_complexity = per_call if not pcc else pcc + ESTIMATE_WEIGHT * (per_call - pcc)
                demand.waiting_until = 0.0
                if demand.backlog_at and demand.backlog[2] > 0 and mutations > 0:
                    demand.backlog = [max(0.0, b - c) for b, c in zip(demand.backlog, vector, strict=True)]
            else:
                demand.waiting = vector
                demand.waiting_until = now + min(permit.wait, MAX_SLEEP) + MAX_SLEEP
            snap.dirty_state = True
        return permit

    # -------------------------------------------------------------- lanes

    def _reserve(self, snap: QuotaSnapshot, lane: str, now: float) -> dict[str, float]:
        """Tokens of each kind ``lane`` must leave for the higher lanes' demand within ``HORIZON``."""
        rank = self.priority[lane]
        out = dict.fromkeys(KINDS, 0.0)
        for other, demand in snap.lanes.items():
            if self.priority.get(other, rank) < rank:
                for k, kind in enumerate(KINDS):
                    out[kind] += demand.demand(k, now)
        return out

    def declare_backlog(
        self, lane: str, mutations: float, *, requests: float | None = None, complexity: float | None = None,
    ) -> None:
        """Declare the ready work ``lane`` has (``mutations`` left to send; 0 when done).

        Lower lanes keep that much of every bucket free for it (see the module docstring). Grants
        of the lane count down its backlog, so one declaration per run (plus one at the end) is
        enough; declaring again replaces the figure.
        """
        if lane not in self.priority:
            raise ValueError(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        now = self.clock.time()
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            demand = snap.lanes.setdefault(lane, LaneDemand())
            per_call = demand.per_call_complexity or float(self.default_complexity)
            calls = mutations if requests is None else requests
            demand.backlog = [max(0.0, float(calls)),
                              max(0.0, float(complexity if complexity is not None else calls * per_call)),
                              max(0.0, float(mutations))]
            demand.backlog_at = now if mutations > 0 or calls > 0 else 0.0
            snap.dirty_state = True

    # -------------------------------------------------------------- learnt batch sizes

    def batch_size(self, kind: str) -> int | None:
        """The batch size learnt for mutation ``kind`` (shared by every process), if any."""
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            value = snap.estimates.get(f"{BATCH_PREFIX}{kind}")
        return None if value is None else int(value)

    def learn_batch_size(self, kind: str, size: int) -> None:
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            snap.estimates[f"{BATCH_PREFIX}{kind}"] = float(size)
            self._estimates[f"{BATCH_PREFIX}{kind}"] = float(size)
            snap.dirty_state = True

    def batch_sizes(self) -> dict[str, int]:
        """Every learnt batch size, by mutation kind."""
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            return learnt_batch_sizes(snap.estimates)

    def lane_demand(self) -> dict[str, dict[str, float]]:
        """Per lane, the tokens of each kind it will want within ``HORIZON`` (for reports)."""
        now = self.clock.time()
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            return {lane: {kind: round(d.demand(k, now), 3) for k, kind in enumerate(KINDS)}
                    for lane, d in snap.lanes.items()}

    def _initial(self) -> QuotaSnapshot:
        """The state of a store that has none yet: full allowances, a refresh due at once."""
        now = self.clock.time()
        return QuotaSnapshot(
            buckets={n: BucketState(self.limits[n], self.limits[n] * self.share, now) for n in BUCKETS},
        )

    def _allowance(self, snap: QuotaSnapshot, name: str) -> float:
        return snap.buckets[name].capacity * self.share

    def _rate(self, b: BucketState, name: str) -> float:
        return refill_rate(b, name, self.share)

    def _level(self, snap: QuotaSnapshot, name: str, now: float) -> float:
        return bucket_level(snap.buckets[name], name, self.share, now)

    def _merge_shared(self, snap: QuotaSnapshot) -> None:
        """Exchange with the shared state what this process learnt (called under the store lock)."""
        if self._pending_complexity:
            for name in ("complexity_10s", "complexity_1h"):
                snap.buckets[name].tokens -= self._pending_complexity
            self._pending_complexity = 0.0
            snap.dirty_buckets = True
        for name in BUCKETS:  # a tier change in the configuration (once Centra reported, it rules)
            b = snap.buckets[name]
            if b.capacity != self.limits[name] and not b.learn_at:
                b.capacity = self.limits[name]
                b.tokens = min(b.tokens, b.capacity * self.share)
                snap.dirty_buckets = True
        if self._dirty_estimates:
            for key in self._dirty_estimates:
                snap.estimates[key] = self._estimates[key]
            self._dirty_estimates.clear()
            snap.dirty_state = True
        for key, value in snap.estimates.items():
            self._estimates.setdefault(key, value)
        self._last_refresh_at = snap.last_refresh_at
        self._blocked_until = snap.blocked_until

    # -------------------------------------------------------------- feedback

    def settle(self, permit: Permit, complexity: int | None) -> None:
        """Correct a granted call by the complexity the server reported (``extensions.complexity``).

        The difference is charged (or refunded) with the next store transaction and the
        operation's running estimate moves towards the observed value.
        """
        if complexity is None or not permit.granted:
            return
        with self._lock:
            self._pending_complexity += complexity - permit.complexity
            if permit.op_key and permit.bound:
                key = f"{permit.op_key}{RATIO_SUFFIX}"
                seen = complexity / permit.bound
                old = self._estimates.get(key)
                new = seen if old is None else old + ESTIMATE_WEIGHT * (seen - old)
                if old is None or abs(new - old) >= 0.001:
                    self._estimates[key] = new
                    self._dirty_estimates.add(key)
            elif permit.op_key:
                old = self._estimates.get(permit.op_key)
                new = float(complexity) if old is None else old + ESTIMATE_WEIGHT * (complexity - old)
                if old is None or abs(new - old) >= 0.5:
                    self._estimates[permit.op_key] = new
                    self._dirty_estimates.add(permit.op_key)

    def on_rate_limited(self, retry_after: float | None) -> float:
        """A 429 arrived: block every caller (all processes) for ``retry_after`` seconds, count it,
        and make a ``rateLimits`` refresh due once the block ends. Returns the block in seconds."""
        now = self.clock.time()
        seconds = retry_after if retry_after is not None else 10.0  # no header: one short window
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            snap.blocked_until = max(snap.blocked_until, now + seconds)
            snap.rate_limited_count += 1
            snap.last_refresh_at = 0.0  # refresh as soon as the block ends
            snap.dirty_state = True
            self._blocked_until = snap.blocked_until
            self._last_refresh_at = 0.0
        self.stats.rate_limited += 1
        log.warning("quota.rate_limited", retry_after=round(seconds, 3))
        return seconds

    def wait_while_blocked(self) -> float:
        """In-memory, just before sending: sleep while a 429 seen by this process blocks everyone
        (a call granted before the 429 arrived must not go out during the Retry-After either).
        Returns the seconds slept."""
        slept = 0.0
        while True:
            left = self._blocked_until - self.clock.time()
            if left <= 0:
                return slept
            self.clock.sleep(max(left, MIN_SLEEP))
            slept += left

    def refresh_due(self) -> bool:
        """Cheap, in-memory: is a ``rateLimits`` refresh due as far as this process last saw?"""
        now = self.clock.time()
        return now - self._last_refresh_at >= self.refresh_seconds and now >= self._blocked_until

    def claim_refresh(self) -> bool:
        """Atomically take the duty of the next refresh (one process per period does it)."""
        now = self.clock.time()
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            if now - snap.last_refresh_at < self.refresh_seconds or now < snap.blocked_until:
                return False
            snap.last_refresh_at = now
            snap.dirty_state = True
            self._last_refresh_at = now
            return True

    def reseed(self, rows: Sequence[Mapping[str, object]], *, at: float | None = None) -> None:
        """Set the buckets from ``rateLimits`` rows ({type, intervalSeconds, quota, remainingQuota}).

        erpsync's tokens drop to what remains beyond the part left to others,
        ``remainingQuota − (1 − share) × quota`` (possibly negative: others spent it, wait), when
        that is below its own account; they are never raised above it. ``quota`` replaces the
        configured capacity, so a limit lowered by Centra is obeyed.
        """
        now = self.clock.time() if at is None else at
        with self._lock, self.store.transaction(self._initial) as snap:
            self._pending_complexity = 0.0  # the server's numbers already include those calls
            self._merge_shared(snap)
            for row in rows:
                try:
                    name = bucket_name(str(row["type"]), str(row["intervalSeconds"]))
                    quota = float(row["quota"])  # type: ignore[arg-type]
                    remaining = float(row["remainingQuota"])  # type: ignore[arg-type]
                except (KeyError, ValueError, TypeError):
                    log.warning("quota.reseed_row_ignored", row=dict(row))
                    continue
                if quota <= 0:
                    continue
                b = snap.buckets[name]
                own = self._level(snap, name, now)
                old_rate = self._rate(b, name)
                b.capacity = quota
                server = remaining - (1.0 - self.share) * quota
                gap = own - server  # > 0: our account promised more than others left us
                if b.learn_at and now > b.learn_at:
                    # the gap grows by (our refill − what others leave us) per second: learn the rate
                    dt = now - b.learn_at
                    observed = old_rate - (gap - b.learn_gap) / dt
                    weight = dt / (dt + LEARN_SECONDS)
                    full_share = quota * self.share / _INTERVAL[name]
                    b.rate = max(0.0, min(full_share, old_rate + weight * (observed - old_rate)))
                # never above erpsync's own account: share is a share of the refill too, so the
                # part others leave unused is not taken (they may need it a minute later)
                b.tokens = min(own, quota * self.share, server)
                b.learn_gap = min(0.0, own - server)
                b.learn_at = now
                b.updated_at = now
            snap.last_refresh_at = max(snap.last_refresh_at, now)
            snap.dirty_buckets = snap.dirty_state = True
            self._last_refresh_at = snap.last_refresh_at
        self.stats.reseeds += 1

    # -------------------------------------------------------------- visibility

    def snapshot(self) -> tuple[list[BucketView], dict[str, float]]:
        """The six buckets as the governor sees them now, plus the shared counters."""
        now = self.clock.time()
        with self._lock, self.store.transaction(self._initial) as snap:
            self._merge_shared(snap)
            views = bucket_views(snap, self.share, now)
            info = {
                "blocked_for": max(0.0, snap.blocked_until - now),
                "rate_limited_count": float(snap.rate_limited_count),
                "last_refresh_at": snap.last_refresh_at,
            }
        return views, info
