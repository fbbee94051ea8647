"""Client-side rate limiting: a sliding-window limiter that also obeys the server's rate-limit headers.

Pure apart from the clock: the hooks feed it the ``X-RateLimit-*`` headers of every answer, and ask it
before every request how long to wait. Thread-safe, so one hook can be shared by a pool of senders.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# A Reset value above this is an epoch timestamp; below it, a number of seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000
# Wait a little past the announced reset so that a request never lands in the old window.
RESET_MARGIN_SECONDS = 0.05


@dataclass(frozen=True)
class RateLimitInfo:
    """
    What one answer said about the rate limit.

    :param limit: ``X-RateLimit-Limit``: requests allowed in the window.
    :param remaining: ``X-RateLimit-Remaining``: requests left in the window.
    :param reset_at: ``X-RateLimit-Reset`` as an epoch timestamp (seconds), whichever form the server used.
    :param retry_after: ``Retry-After`` in seconds from now (given as seconds or as an HTTP date).
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    retry_after: float | None = None

    def seconds_until_allowed(self, now: float, fallback: float) -> float:
        """How long to wait after a 429: ``Retry-After`` wins, then the reset time, then ``fallback``."""
        if self.retry_after is not None:
            return max(0.0, self.retry_after)
        if self.reset_at is not None:
            return max(0.0, self.reset_at - now + RESET_MARGIN_SECONDS)
        return fallback


def _to_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def parse_rate_limit_headers(headers: Mapping[str, str], now: float | None = None) -> RateLimitInfo:
    """
    Read ``X-RateLimit-Limit/Remaining/Reset`` and ``Retry-After`` from an answer's headers.

    Missing or unreadable headers give None fields. ``headers`` must be case-insensitive, as the
    header mappings of requests and aiohttp are.

    :param headers: the answer's headers.
    :param now: the current epoch time (defaults to ``time.time()``), to resolve relative values.
    """
    now = time.time() if now is None else now
    reset = _to_int(headers.get("X-RateLimit-Reset"))
    reset_at: float | None = None
    if reset is not None:
        reset_at = float(reset) if reset >= _EPOCH_THRESHOLD else now + reset
    return RateLimitInfo(
        limit=_to_int(headers.get("X-RateLimit-Limit")),
        remaining=_to_int(headers.get("X-RateLimit-Remaining")),
        reset_at=reset_at,
        retry_after=_parse_retry_after(headers.get("Retry-After"), now),
    )


class RateLimiter:
    """
    Keeps one client inside a rate limit.

    Two rules, both enforced before every request:

    * a sliding window: at most ``limit`` requests in any ``period`` seconds (raised to the limit the server
      announces in ``X-RateLimit-Limit`` when that is larger);
    * the server's budget: once an answer said ``Remaining: 0`` (counting the requests this client has in
      flight since), wait until the announced reset instead of sending a request that would be refused.

    :param limit: requests allowed per ``period`` until the server announces its own limit.
    :param period: the window length in seconds.
    :param clock: returns the current epoch time (default ``time.time``).
    :param sleep: blocks for a number of seconds (default ``time.sleep``).
    :param max_wait: the longest wait for a server reset; a reset announced further away (a Reset in
        milliseconds, a broken gateway) is taken as this far away instead of blocking for ever.
    :param adopt_announced_limit: raise the window to a larger ``X-RateLimit-Limit``. Off when the limit was
        set on purpose, e.g. as one worker's share of an account that several workers use.
    """

    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        max_wait: float = 120.0,
        adopt_announced_limit: bool = True,
    ):
        if limit < 1 or period <= 0:
            raise ValueError("A rate limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        # Looked up at call time, so that tests can replace time.sleep / time.time.
        self._clock = clock or (lambda: time.time())
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.max_wait = max_wait
        self.adopt_announced_limit = adopt_announced_limit
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self.waited_seconds = 0.0

    def acquire(self) -> float:
        """Block until a request may be sent, reserve it, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay_locked(self._clock())
                if delay <= 0:
                    self._reserve_locked(self._clock())
                    self.waited_seconds += waited
                    return waited
            self._sleep(delay)
            waited += delay

    def _delay_locked(self, now: float) -> float:
        if self._reset_at is not None and now >= self._reset_at:
            self._remaining, self._reset_at = None, None  # a new server window: budget unknown until told
        if self._remaining is not None and self._remaining <= 0 and self._reset_at is not None:
            return self._reset_at - now + RESET_MARGIN_SECONDS
        while self._sent and now - self._sent[0] >= self.period:
            self._sent.popleft()
        if len(self._sent) >= self.limit:
            return self._sent[0] + self.period - now
        return 0.0

    def _reserve_locked(self, now: float) -> None:
        self._sent.append(now)
        if self._remaining is not None:
            self._remaining -= 1

    def _bounded(self, info: RateLimitInfo) -> RateLimitInfo:
        latest = self._clock() + self.max_wait - RESET_MARGIN_SECONDS
        if info.reset_at is not None and info.reset_at > latest:
            info = dataclasses.replace(info, reset_at=latest)
        if info.retry_after is not None and info.retry_after > self.max_wait - RESET_MARGIN_SECONDS:
            info = dataclasses.replace(info, retry_after=self.max_wait - RESET_MARGIN_SECONDS)
        return info

    def update(self, info: RateLimitInfo) -> None:
        """Take in what an answer said about the limit."""
        with self._lock:
            info = self._bounded(info)
            if self.adopt_announced_limit and info.limit is not None and info.limit > self.limit:
                # A larger announced limit lifts the client's pace; a smaller one is enforced through
                # Remaining/Reset, so the configured pace is never slowed by a server with a shorter window.
                self.limit = info.limit
            if info.remaining is None:
                return
            if info.reset_at is None:
                self._remaining = (
                    info.remaining if self._remaining is None else min(self._remaining, info.remaining)
                )
                return
            same_window = self._reset_at is not None and abs(info.reset_at - self._reset_at) < 0.5
            if same_window and self._remaining is not None:
                # Answers overtake each other under concurrency: the smaller budget is the true one.
                self._remaining = min(self._remaining, info.remaining)
            elif self._reset_at is None or info.reset_at > self._reset_at:
                self._remaining, self._reset_at = info.remaining, info.reset_at

    def refused(self, info: RateLimitInfo) -> None:
        """Record a 429: the server's budget is spent until its reset."""
        with self._lock:
            info = self._bounded(info)
            if info.reset_at is not None:
                self._reset_at = info.reset_at
            elif info.retry_after is not None:
                self._reset_at = self._clock() + info.retry_after
            if self._reset_at is not None:
                self._remaining = 0
