"""Options of the simulated GraphQL Integration API: tokens, permissions, quota tier, policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Every permission the simulator knows; a token with all of them may call every field.
ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        "Product:read",
        "Product:write",
        "SizeChart:read",
        "SizeChart:write",
        "Pricelist:read",
        "Pricelist:write",
        "Price:write",
        "Warehouse:read",
        "StockChange:write",
        "Store:read",
        # fulfilment (PROTOCOL.md §2.5)
        "Order:read",
        "Order:write",
        "Order.isLocked:write",
        "Shipment:read",
        "Shipment:write",
        "Payment.capture:write",
        # events queue (PROTOCOL.md §2.4)
        "Event:read",
        "Event:write",
    }
)

DEFAULT_TOKEN = "sim-token"  # noqa: S105 - the documented quick-start token of a local simulator

BUCKET_TYPES: tuple[str, ...] = ("REQUEST_COUNT", "QUERY_COMPLEXITY", "MUTATION_COUNT")
BUCKET_INTERVALS: dict[str, int] = {"TEN_SECONDS": 10, "ONE_HOUR": 3600}
#: The six bucket keys, "<RateLimitType>:<RateLimitInterval>".
BUCKET_KEYS: tuple[str, ...] = tuple(f"{t}:{i}" for t in BUCKET_TYPES for i in BUCKET_INTERVALS)


def _tier(requests: tuple[int, int], mutations: tuple[int, int], complexity: tuple[int, int]) -> dict[str, int]:
    return {
        "REQUEST_COUNT:TEN_SECONDS": requests[0],
        "REQUEST_COUNT:ONE_HOUR": requests[1],
        "MUTATION_COUNT:TEN_SECONDS": mutations[0],
        "MUTATION_COUNT:ONE_HOUR": mutations[1],
        "QUERY_COMPLEXITY:TEN_SECONDS": complexity[0],
        "QUERY_COMPLEXITY:ONE_HOUR": complexity[1],
    }


#: Published plan tiers (PROTOCOL.md §2.1): capacity of each bucket.
TIERS: dict[str, dict[str, int]] = {
    "growth": _tier((60, 5_000), (20, 1_800), (250_000, 30_000_000)),
    "enhanced": _tier((150, 20_000), (50, 4_500), (900_000, 90_000_000)),
    "high_volume": _tier((450, 40_000), (150, 7_000), (1_800_000, 180_000_000)),
    "enterprise": _tier((1_500, 85_000), (500, 25_000), (4_000_000, 400_000_000)),
}

RETRY_AFTER_FORMATS = ("seconds", "unix", "http-date")
CAPTURE_OUTCOMES = ("success", "pending", "failed")
BATCH_FAILURE_POLICIES = ("reject", "skip")
#: [open] how ``setPricesBatch``'s limit of 100 product prices counts: in total, or per entry
PRICES_BATCH_LIMITS = ("total", "per_entry")


def _default_tokens() -> dict[str, frozenset[str]]:
    return {DEFAULT_TOKEN: ALL_PERMISSIONS}


@dataclass(frozen=True)
class GqlOptions:
    """How the simulated GraphQL API behaves.

    ``tier`` is one of ``TIERS`` or ``"custom"``; ``limits`` (keys from ``BUCKET_KEYS``, e.g.
    ``"REQUEST_COUNT:TEN_SECONDS"``) overrides single buckets of a tier and must name all six for
    ``custom``. ``other_integration_share`` (0 ≤ share < 1) is the fraction of every bucket's refill
    that a simulated other integration on the same environment spends. ``batch_failure`` is
    ``"reject"`` (one bad item fails the whole batch with ``userErrors``) or ``"skip"`` (bad items are
    skipped with a ``userWarning``, the rest is applied). ``token_ttl_seconds`` makes every token
    expire (403) that many seconds of the simulator's clock after start or ``reset`` (Centra's tokens
    expire, 30 days by default); None = never. ``prices_batch_limit`` is the [open] reading of
    ``setPricesBatch``'s 100 product prices: ``"total"`` per call (default) or ``"per_entry"``.
    """

    tokens: Mapping[str, frozenset[str]] = field(default_factory=_default_tokens)
    expired_tokens: frozenset[str] = frozenset()
    token_ttl_seconds: float | None = None
    tier: str = "growth"
    limits: Mapping[str, int] | None = None
    retry_after_format: str = "seconds"
    other_integration_share: float = 0.0
    batch_failure: str = "reject"
    prices_batch_limit: str = "total"
    latency_base_seconds: float = 0.0
    latency_per_item_seconds: float = 0.0
    timeout_items: int | None = None
    warehouses: tuple[str, ...] = ("WH-MAIN", "WH-EU", "WH-US")
    pricelists: tuple[tuple[str, str], ...] = (("PL-SEK", "SEK"), ("PL-EUR", "EUR"), ("PL-USD", "USD"))
    #: serve a schema that differs from the contract: ("Type.field=newName", …)
    schema_renames: tuple[str, ...] = ()
    # fulfilment: how captures end (per order: POST /_sim/orders/<number>/capture)
    capture_outcome: str = "success"
    capture_failed_probability: float = 0.0
    capture_pending_probability: float = 0.0
    capture_pending_seconds: float = 5.0
    #: the events queue's first id (its own sequence); above 2**31 exercises 64-bit ids ([open] §2.4)
    first_event_id: int = 1

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.tier != "custom" and self.tier not in TIERS:
            problems.append(f"tier must be one of {[*TIERS, 'custom']}, not {self.tier!r}")
        limits = dict(self.limits or {})
        unknown = sorted(set(limits) - set(BUCKET_KEYS))
        if unknown:
            problems.append(f"unknown limit keys {unknown}; expected keys from {list(BUCKET_KEYS)}")
        if self.tier == "custom":
            missing = sorted(set(BUCKET_KEYS) - set(limits))
            if missing:
                problems.append(f"tier 'custom' needs all six limits, missing {missing}")
        if any(v <= 0 for v in limits.values()):
            problems.append("every limit must be a positive integer")
        if self.retry_after_format not in RETRY_AFTER_FORMATS:
            problems.append(f"retry_after_format must be one of {list(RETRY_AFTER_FORMATS)}")
        if self.token_ttl_seconds is not None and self.token_ttl_seconds <= 0:
            problems.append("token_ttl_seconds must be positive (or None: never expire)")
        if not 0.0 <= self.other_integration_share < 1.0:
            problems.append("other_integration_share must be in [0, 1)")
        if self.batch_failure not in BATCH_FAILURE_POLICIES:
            problems.append(f"batch_failure must be one of {list(BATCH_FAILURE_POLICIES)}")
        if self.prices_batch_limit not in PRICES_BATCH_LIMITS:
            problems.append(f"prices_batch_limit must be one of {list(PRICES_BATCH_LIMITS)}")
        if self.latency_base_seconds < 0 or self.latency_per_item_seconds < 0:
            problems.append("latency_base_seconds and latency_per_item_seconds must be ≥ 0")
        if self.timeout_items is not None and self.timeout_items < 1:
            problems.append("timeout_items must be positive (or None: never)")
        if len(set(self.warehouses)) != len(self.warehouses):
            problems.append("warehouse externalIds must be unique")
        if len({p for p, _ in self.pricelists}) != len(self.pricelists):
            problems.append("pricelist externalIds must be unique")
        if self.capture_outcome not in CAPTURE_OUTCOMES:
            problems.append(f"capture_outcome must be one of {list(CAPTURE_OUTCOMES)}")
        if not (0.0 <= self.capture_failed_probability <= 1.0 and 0.0 <= self.capture_pending_probability <= 1.0
                and self.capture_failed_probability + self.capture_pending_probability <= 1.0):
            problems.append("capture_failed_probability and capture_pending_probability must be in [0, 1], sum ≤ 1")
        if self.capture_pending_seconds < 0:
            problems.append("capture_pending_seconds must be ≥ 0")
        if not 1 <= self.first_event_id < 2**63 - 2**32:
            problems.append("first_event_id must be a positive 64-bit integer")
        if problems:
            raise ValueError("; ".join(problems))

    def bucket_limits(self) -> dict[str, int]:
        """Capacity of each of the six buckets for this tier and override."""
        base = dict(TIERS.get(self.tier, {}))
        base.update(self.limits or {})
        return base
