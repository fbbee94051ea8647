"""What the emulator decides around each ``/api`` request before and after its route: rate limits
(fixed windows on the server's clock), latency and jitter, answers that fail before processing, and
the fate of a processed send's answer (a 500 or a dropped connection); plus the counters of all of
it for the inspection API, kept by :class:`Faults`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.ratelimit import OTHER, SEND

if TYPE_CHECKING:
    import random

    from airflow_provider_smsnexus.emulator.core import ServerClock, SettingsInForce
    from airflow_provider_smsnexus.emulator.ratelimit import FixedWindowLimiter, RateDecision

#: The counters of :meth:`Faults.stats`: ``faults`` (injected faults) and ``drift`` (what the
#: maintenance page and the list switches did).
FAULT_COUNTERS = ("fail_before", "fail_after", "drop_after")
DRIFT_COUNTERS = ("maintenance", "status_changes", "conversation_moves")


@dataclass(eq=False)
class Faults:
    """Rate limits, latency and fault injection, and their counters.

    :param settings: the settings in force (limits, latency, shares of faults, the maintenance page).
    :param clock: the server's clock (rate-limit windows).
    :param limiter: the rate limiter (it outlives a reset: :class:`~.state.Emulator` clears it).
    :param fault_rng: the dice of faults.
    :param latency_rng: the dice of latency jitter.
    :param drift_counts: the ``drift`` counters shown by :meth:`stats` (this adds to ``maintenance``;
        the lists count the rest).
    """

    settings: SettingsInForce
    clock: ServerClock
    limiter: FixedWindowLimiter
    fault_rng: random.Random
    latency_rng: random.Random
    drift_counts: dict[str, int]
    _fault_counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(FAULT_COUNTERS, 0), init=False
    )

    def rate_limit(self, bucket: Any, endpoint_class: str) -> RateDecision:
        """Count a request of ``endpoint_class`` for ``bucket`` and decide on it.

        :param bucket: account id, or a client address for requests without a valid token.
        :param endpoint_class: ``send`` or ``other``.
        """
        settings = self.settings.current
        limit = settings.send_limit if endpoint_class == SEND else settings.read_limit
        return self.limiter.hit(bucket, endpoint_class, int(limit), settings.window_seconds, self.clock.now())

    def in_maintenance(self) -> bool:
        """Whether this ``/api`` request gets the maintenance page (counted when it does)."""
        if self.settings.current.maintenance_page:
            self.drift_counts["maintenance"] += 1
            return True
        return False

    def roll_fail_before(self) -> int | None:
        """Decide whether this request fails before processing: the status to answer, or None."""
        settings = self.settings.current
        if settings.fail_before_share > 0 and self.fault_rng.random() < settings.fail_before_share:
            self._fault_counts["fail_before"] += 1
            return int(settings.fail_before_status)
        return None

    def request_delay(self) -> float:
        """Seconds to wait before handling an ``/api`` request: ``latency_ms`` plus a random share of
        ``latency_jitter_ms``."""
        settings = self.settings.current
        jitter = settings.latency_jitter_ms
        extra = self.latency_rng.uniform(0, jitter) if jitter > 0 else 0.0
        return (settings.latency_ms + extra) / 1000

    def roll_after_send(self) -> str | None:
        """Decide the fate of a processed send's answer: None (answer it), ``"fail"`` or ``"drop"``."""
        settings = self.settings.current
        fail, drop = settings.fail_after_share, settings.drop_after_share
        if fail <= 0 and drop <= 0:
            return None
        roll = self.fault_rng.random()
        if roll < fail:
            self._fault_counts["fail_after"] += 1
            return "fail"
        if roll < fail + drop:
            self._fault_counts["drop_after"] += 1
            return "drop"
        return None

    def stats(self) -> dict[str, Any]:
        """Counters: requests, accepted requests and 429s per endpoint class; per account (key: id;
        ``anon:<address>`` for requests without a valid token) and class the most accepted requests
        in one fixed window and in any sliding window; injected ``faults`` and ``drift`` events (see
        :data:`FAULT_COUNTERS` and :data:`DRIFT_COUNTERS`); the limits in force."""
        settings = self.settings.current
        result = self.limiter.stats(settings.window_seconds)
        result["faults"] = dict(self._fault_counts)
        result["drift"] = dict(self.drift_counts)
        result["limits"] = {
            SEND: settings.send_limit,
            OTHER: settings.read_limit,
            "window_seconds": settings.window_seconds,
        }
        return result
