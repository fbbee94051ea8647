"""The server's clock as the SMS Nexus hooks measure it: its offset from this machine's clock, from ``Date``.

Every answer carries a ``Date`` header with the server's time in whole seconds. For a request that left at
local time ``t0`` and was answered at ``t1`` with ``Date: D``, the server wrote ``D`` at some local moment in
``[t0, t1]`` while its clock read somewhere in ``[D, D + 1)``, so ``offset = server - local`` lies in
``[D - t1, D + 1 - t0]``. Each answer narrows the estimate: the interval of all samples is their
intersection. Samples that cannot all be true (the server's clock was set, an NTP step) restart the estimate
from the latest sample alone.

.. seealso:: "Exactly once" in :doc:`/guides/sending`: lookups of unknown sends use this clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from airflow_provider_smsnexus.utils.times import as_utc

#: The uncertainty of the offset before any ``Date`` header was seen: a server clock may be this far off.
DEFAULT_UNCERTAINTY_SECONDS = 60.0
#: ``Date`` has whole seconds: the server's clock read somewhere in ``[D, D + 1)``.
DATE_RESOLUTION_SECONDS = 1.0


@dataclass(frozen=True)
class ClockEstimate:
    """
    One consistent reading of a :class:`ServerClock`.

    :param offset: the server's clock minus this machine's, in seconds (the middle of the interval).
    :param uncertainty: the interval's half-width: the true offset is within ``offset ± uncertainty``.
    :param samples: how many ``Date`` headers the interval was built from since it was last restarted.
    """

    offset: float
    uncertainty: float
    samples: int

    @property
    def low(self) -> float:
        """The smallest offset the samples allow."""
        return self.offset - self.uncertainty

    @property
    def high(self) -> float:
        """The largest offset the samples allow."""
        return self.offset + self.uncertainty


def parse_date_header(value: str | None) -> float | None:
    """The epoch seconds of an HTTP ``Date`` header, or None when it is missing or unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a "-0000" zone parses as naive
        return as_utc(moment, "Date").timestamp()
    stamp = moment.timestamp()
    return stamp if math.isfinite(stamp) else None


class ServerClock:
    """
    The offset of the server's clock from this machine's, with its uncertainty; thread-safe.

    Fed by the hooks from every answer's ``Date`` header (:meth:`observe`). Before any was seen, the offset is 0
    and the uncertainty is ``default_uncertainty``.

    :param default_uncertainty: the uncertainty, in seconds, while no ``Date`` header has been seen.
    """

    def __init__(self, *, default_uncertainty: float = DEFAULT_UNCERTAINTY_SECONDS) -> None:
        if not default_uncertainty >= 0:
            raise ValueError("default_uncertainty must be a number of seconds >= 0")
        self.default_uncertainty = float(default_uncertainty)
        self._lock = threading.Lock()
        self._low = -math.inf
        self._high = math.inf
        self._samples = 0
        self.restarts = 0
        #: How many answers were taken in (with or without a usable ``Date``).
        self.answers = 0
        #: The server run that answered last, when the server names it (``RUN_HEADER``: the emulator
        #: does, a real SMS Nexus does not): a restarted emulator is another server, with other messages.
        self.run: str | None = None

    def __repr__(self) -> str:
        estimate = self.estimate()
        return (
            f"ServerClock(offset={estimate.offset:+.3f}s, uncertainty={estimate.uncertainty:.3f}s, "
            f"samples={estimate.samples})"
        )

    def observe(self, sent_at: float, answered_at: float, date: str | None, run: str | None = None) -> bool:
        """
        Take in one answer.

        :param sent_at: local epoch time just before the request left.
        :param answered_at: local epoch time just after the answer's headers arrived.
        :param date: the answer's ``Date`` header (None or unreadable: nothing is learnt).
        :param run: the answer's ``X-SMSNexus-Emulator-Run`` header, when the server names its run.
        :return: whether the answer was a usable sample.
        """
        with self._lock:
            self.answers += 1
            self.run = run or None
        server_second = parse_date_header(date)
        if server_second is None or not answered_at >= sent_at:
            return False
        self.observe_sample(sent_at, answered_at, server_second)
        return True

    def observe_sample(self, sent_at: float, answered_at: float, server_second: float) -> None:
        """
        Take in one sample: the server's clock read ``server_second`` (whole seconds, truncated) at some
        moment between ``sent_at`` and ``answered_at`` (local epoch times).
        """
        low = server_second - answered_at
        high = server_second + DATE_RESOLUTION_SECONDS - sent_at
        with self._lock:
            new_low, new_high = max(self._low, low), min(self._high, high)
            if new_low > new_high:
                # The samples contradict each other: the server's clock moved. Believe the latest alone.
                new_low, new_high, self._samples = low, high, 0
                self.restarts += 1
            self._low, self._high = new_low, new_high
            self._samples += 1

    def estimate(self) -> ClockEstimate:
        """The offset, its uncertainty and the sample count, read together."""
        with self._lock:
            if self._samples == 0:
                return ClockEstimate(0.0, self.default_uncertainty, 0)
            return ClockEstimate((self._low + self._high) / 2, (self._high - self._low) / 2, self._samples)

    @property
    def offset(self) -> float:
        """The server's clock minus this machine's, in seconds (0 before any ``Date`` header)."""
        return self.estimate().offset

    @property
    def uncertainty(self) -> float:
        """The half-width of the offset's interval, in seconds (``default_uncertainty`` before any sample)."""
        return self.estimate().uncertainty

    @property
    def samples(self) -> int:
        """How many ``Date`` headers the current estimate rests on."""
        return self.estimate().samples

    def to_server(self, local: datetime) -> tuple[datetime, float]:
        """
        A local moment on the server's clock.

        :param local: a moment of this machine's clock (naive values are taken as UTC).
        :return: the estimate (aware UTC) and its uncertainty in seconds: the server's clock read within
            ``estimate ± uncertainty`` at that moment.
        """
        estimate = self.estimate()
        moment = as_utc(local, "local")
        if moment is None:
            raise ValueError("to_server needs a datetime")
        return moment + timedelta(seconds=estimate.offset), estimate.uncertainty

    def offset_for_waits(self) -> float:
        """
        The offset to take off a server time that a client waits for (an ``X-RateLimit-Reset``): 0 while
        the samples allow the clocks to agree (the midpoint of a wide interval would move a wait early for
        no reason), else the interval's low bound, so that such a wait never ends before the server's moment.
        """
        estimate = self.estimate()
        if estimate.samples == 0 or estimate.low <= 0 <= estimate.high:
            return 0.0
        return estimate.low
