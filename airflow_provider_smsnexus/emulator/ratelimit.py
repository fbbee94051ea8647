"""Fixed-window rate limiting with a record of every request, for the emulator.

Windows are aligned to the epoch: window ``k`` covers ``[k * length, (k + 1) * length)``, so
``X-RateLimit-Reset`` is the same for every client of a bucket. A refused request is not counted
against the window (as Laravel's throttle does), so refusals never prolong a wait.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

#: Endpoint classes with their own limit: ``POST /api/sms/send`` and everything else.
SEND = "send"
OTHER = "other"


@dataclass(frozen=True)
class RateDecision:
    """The limiter's answer to one request.

    :param allowed: whether the request may proceed.
    :param limit: requests allowed per window (``X-RateLimit-Limit``).
    :param remaining: requests left in this window after this one (``X-RateLimit-Remaining``).
    :param reset_at: epoch seconds when the window ends (``X-RateLimit-Reset``, rounded up).
    :param retry_after: whole seconds to wait before retrying (``Retry-After``), at least 1.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The rate-limit headers of the answer (with ``Retry-After`` when refused)."""
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_at).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


@dataclass
class _BucketRecord:
    requests: int = 0
    rate_limited: int = 0
    accepted_times: list[float] = field(default_factory=list)


class FixedWindowLimiter:
    """Counts requests per bucket (account and endpoint class) in fixed windows, and records them."""

    def __init__(self) -> None:
        self._windows: dict[tuple[Any, str], tuple[float, int, int]] = {}
        self._records: dict[tuple[Any, str], _BucketRecord] = defaultdict(_BucketRecord)

    def clear(self) -> None:
        """Forget every window and record."""
        self._windows.clear()
        self._records.clear()

    def hit(self, bucket: Any, endpoint_class: str, limit: int, window: float, now: float) -> RateDecision:
        """Count one request and decide whether it may proceed.

        :param bucket: who is counted (an account id, or a client address without a valid token).
        :param endpoint_class: :data:`SEND` or :data:`OTHER`.
        :param limit: accepted requests per window.
        :param window: window length in seconds.
        :param now: the request's time in epoch seconds.
        """
        key = (bucket, endpoint_class)
        window_index = math.floor(now / window)
        reset_exact = (window_index + 1) * window
        reset_at = math.ceil(reset_exact)
        record = self._records[key]
        record.requests += 1
        state = self._windows.get(key)
        used = state[2] if state is not None and state[:2] == (window, window_index) else 0
        if used >= limit:
            record.rate_limited += 1
            retry_after = max(1, math.ceil(reset_exact - now))
            return RateDecision(False, limit, 0, reset_at, retry_after)
        used += 1
        self._windows[key] = (window, window_index, used)
        record.accepted_times.append(now)
        return RateDecision(True, limit, max(0, limit - used), reset_at, 0)

    def stats(self, window: float) -> dict[str, Any]:
        """Summarise the record: totals per class and, per bucket and class, the most accepted
        requests seen in one fixed window and in any sliding window of that length.

        :param window: window length in seconds to evaluate (normally the current one).
        """
        totals: dict[str, dict[str, int]] = {
            name: {SEND: 0, OTHER: 0} for name in ("requests", "accepted", "rate_limited")
        }
        most_fixed = {SEND: 0, OTHER: 0}
        most_sliding = {SEND: 0, OTHER: 0}
        buckets: dict[str, dict[str, dict[str, int]]] = {}
        for (bucket, endpoint_class), record in self._records.items():
            fixed = _max_per_fixed_window(record.accepted_times, window)
            sliding = _max_per_sliding_window(record.accepted_times, window)
            buckets.setdefault(str(bucket), {})[endpoint_class] = {
                "requests": record.requests,
                "accepted": len(record.accepted_times),
                "rate_limited": record.rate_limited,
                "max_in_window": fixed,
                "max_in_sliding_window": sliding,
            }
            totals["requests"][endpoint_class] += record.requests
            totals["accepted"][endpoint_class] += len(record.accepted_times)
            totals["rate_limited"][endpoint_class] += record.rate_limited
            most_fixed[endpoint_class] = max(most_fixed[endpoint_class], fixed)
            most_sliding[endpoint_class] = max(most_sliding[endpoint_class], sliding)
        return {
            **totals,
            "max_in_window": most_fixed,
            "max_in_sliding_window": most_sliding,
            "accounts": buckets,
        }


def _max_per_fixed_window(times: list[float], window: float) -> int:
    counts: dict[int, int] = defaultdict(int)
    for moment in times:
        counts[math.floor(moment / window)] += 1
    return max(counts.values(), default=0)


def _max_per_sliding_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    best = 0
    first = 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best
