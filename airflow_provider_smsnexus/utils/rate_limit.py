"""Client-side rate limiting: a sliding-window limiter that obeys the server's rate-limit headers and adapts.

Pure apart from the clock: the hooks feed it the ``X-RateLimit-*`` headers of every answer, and ask it
before every request how long to wait. Thread-safe, so one hook can be shared by a pool of senders. Its
pace adapts to the server's refusals (multiplicative decrease on a 429, additive increase while the
server has room), so that workers that each believe they own the whole account settle inside its limit.
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
#: A 429 multiplies the pace by this (at most once per window, however many requests it refused).
PACE_DECREASE_FACTOR = 0.5
#: While the server has room, the pace grows by this many requests per window's worth of answers.
PACE_INCREASE = 1.0


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
        """
        How long to wait after a 429: ``Retry-After`` wins, then the reset time, then ``fallback``.

        A ``Retry-After`` in whole seconds is often the reset rounded up: when the reset falls within the
        second and a half before it, the reset is the precise form of the same moment and is used (waiting
        a rounded-up second would land every retry at the same point of each window, after the rush).
        """
        if self.retry_after is not None:
            if self.reset_at is not None:
                until_reset = self.reset_at - now
                if self.retry_after - 1.5 < until_reset <= self.retry_after:
                    return max(0.0, until_reset + RESET_MARGIN_SECONDS)
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


def _parse_retry_after(value: str | None, now: float, server_offset: float) -> float | None:
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
        return max(0.0, parsedate_to_datetime(value).timestamp() - server_offset - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_rate_limit_headers(
    headers: Mapping[str, str], now: float | None = None, *, server_offset: float = 0.0
) -> RateLimitInfo:
    """
    Read ``X-RateLimit-Limit/Remaining/Reset`` and ``Retry-After`` from an answer's headers.

    Missing or unreadable headers give None fields. ``headers`` must be case-insensitive, as the
    header mappings of requests and aiohttp are.

    :param headers: the answer's headers.
    :param now: the current epoch time (defaults to ``time.time()``), to resolve relative values.
    :param server_offset: the server's clock minus this machine's, in seconds: an epoch ``X-RateLimit-Reset``
        and an HTTP-date ``Retry-After`` are times of the server's clock, turned into this machine's.
    """
    now = time.time() if now is None else now
    reset = _to_int(headers.get("X-RateLimit-Reset"))
    reset_at: float | None = None
    if reset is not None:
        reset_at = float(reset) - server_offset if reset >= _EPOCH_THRESHOLD else now + reset
    return RateLimitInfo(
        limit=_to_int(headers.get("X-RateLimit-Limit")),
        remaining=_to_int(headers.get("X-RateLimit-Remaining")),
        reset_at=reset_at,
        retry_after=_parse_retry_after(headers.get("Retry-After"), now, server_offset),
    )


class RateLimiter:
    """
    Keeps one client inside a rate limit.

    Two rules, both enforced before every request:

    * a sliding window: at most ``pace`` requests in any ``period`` seconds. The pace starts at ``limit``
      (raised to the limit the server announces in ``X-RateLimit-Limit`` when that is larger), is halved by a
      429 (once per window), and grows back by one request per window's worth of answers that still had
      ``X-RateLimit-Remaining`` above 0, up to ``limit``: a client alone on its account keeps its full pace;
      clients that share one discover their share;
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
        self._pace = float(limit)
        self._last_decrease_at: float | None = None
        self.waited_seconds = 0.0
        self.refusals = 0

    @property
    def pace(self) -> float:
        """The requests per ``period`` this limiter currently allows (at most ``limit``, at least 1)."""
        with self._lock:
            return self._pace

    def acquire(self) -> float:
        """Block until a request may be sent, reserve it, and return the seconds waited."""
        waited = 0.0
        while True:
            delay = self.try_acquire()
            if delay <= 0:
                with self._lock:
                    self.waited_seconds += waited
                return waited
            self._sleep(delay)
            waited += delay

    def try_acquire(self) -> float:
        """
        Reserve a request if one may be sent now, without blocking.

        :return: 0 when the request was reserved, else the seconds to wait before asking again.
        """
        with self._lock:
            now = self._clock()
            delay = self._delay_locked(now)
            if delay <= 0:
                self._reserve_locked(now)
                return 0.0
            return delay

    def why_waiting(self) -> str:
        """What a request waits for right now, in words (for log lines)."""
        with self._lock:
            now = self._clock()
            if self._server_reset_locked(now) is not None:
                return "the server said no requests are left in its window until its reset"
            allowed = self._allowed_locked()
            adapted = " (adapted to the server's refusals)" if allowed < self.limit else ""
            return f"{len(self._sent)} requests in the last {self.period:g} s, pace {allowed}{adapted}"

    def _allowed_locked(self) -> int:
        return max(1, min(self.limit, math.floor(self._pace + 1e-9)))

    def _server_reset_locked(self, now: float) -> float | None:
        """The server's reset when its budget is spent (no request may leave before it), else None."""
        if self._reset_at is not None and now >= self._reset_at:
            self._remaining, self._reset_at = None, None  # a new server window: budget unknown until told
        if self._remaining is not None and self._remaining <= 0:
            return self._reset_at
        return None

    def _delay_locked(self, now: float) -> float:
        reset_at = self._server_reset_locked(now)
        if reset_at is not None:
            return reset_at - now + RESET_MARGIN_SECONDS
        while self._sent and now - self._sent[0] >= self.period:
            self._sent.popleft()
        allowed = self._allowed_locked()
        if len(self._sent) >= allowed:
            return self._sent[len(self._sent) - allowed] + self.period - now
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
        """Take in what an accepted answer said about the limit."""
        with self._lock:
            info = self._bounded(info)
            if self.adopt_announced_limit and info.limit is not None and info.limit > self.limit:
                # A larger announced limit lifts the client's pace; a smaller one is enforced through
                # Remaining/Reset, so the configured pace is never slowed by a server with a shorter window.
                if self._pace >= self.limit:
                    self._pace = float(info.limit)
                self.limit = info.limit
            if info.remaining is None or info.remaining > 0:
                # Additive increase: one more request per window, spread over a window's worth of answers.
                self._pace = min(float(self.limit), self._pace + PACE_INCREASE / max(self._pace, 1.0))
            if info.remaining is None:
                return
            if self._pace < self.limit:
                # Refusals showed that others spend this budget too: count on this client's share only.
                info = dataclasses.replace(
                    info, remaining=math.floor(info.remaining * self._pace / self.limit)
                )
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
        """Record a 429: the server's budget is spent until its reset, and this client went too fast."""
        with self._lock:
            now = self._clock()
            self.refusals += 1
            if self._last_decrease_at is None or now - self._last_decrease_at >= self.period:
                # Multiplicative decrease, once per window: the refusals of one window are one signal.
                self._pace = max(1.0, self._pace * PACE_DECREASE_FACTOR)
                self._last_decrease_at = now
            info = self._bounded(info)
            if info.reset_at is not None:
                self._reset_at = info.reset_at
            elif info.retry_after is not None:
                self._reset_at = now + info.retry_after
            if self._reset_at is not None:
                self._remaining = 0
