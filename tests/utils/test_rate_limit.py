"""The client-side rate limiter and the parsing of rate-limit headers, on a virtual clock."""

from __future__ import annotations

import threading
from email.utils import formatdate

import pytest
from requests.structures import CaseInsensitiveDict

from airflow_provider_smsnexus.utils.rate_limit import RateLimiter, RateLimitInfo, parse_rate_limit_headers

NOW = 1_800_000_000.0


class VirtualClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, start: float = NOW):
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def headers(**values: str) -> CaseInsensitiveDict:
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in values.items()})


def test_epoch_reset_is_read_as_a_timestamp():
    info = parse_rate_limit_headers(
        headers(X_RateLimit_Limit="60", X_RateLimit_Remaining="7", X_RateLimit_Reset="1800000030"), now=NOW
    )
    assert info == RateLimitInfo(limit=60, remaining=7, reset_at=1_800_000_030.0, retry_after=None)


def test_small_reset_is_read_as_seconds_from_now():
    assert parse_rate_limit_headers(headers(X_RateLimit_Reset="12"), now=NOW).reset_at == NOW + 12


@pytest.mark.parametrize(
    ("value", "expected"), [("5", 5.0), ("0", 0.0), (formatdate(NOW + 20, usegmt=True), 20.0), ("soon", None)]
)
def test_retry_after_in_seconds_or_as_an_http_date(value, expected):
    assert parse_rate_limit_headers(headers(Retry_After=value), now=NOW).retry_after == expected


def test_unreadable_headers_are_ignored():
    assert parse_rate_limit_headers(headers(X_RateLimit_Limit="lots", X_RateLimit_Remaining=""), now=NOW) == (
        RateLimitInfo()
    )


def test_retry_after_wins_over_reset_when_waiting_after_a_429():
    info = RateLimitInfo(reset_at=NOW + 30, retry_after=4)
    assert info.seconds_until_allowed(NOW, fallback=1) == 4
    assert RateLimitInfo(reset_at=NOW + 30).seconds_until_allowed(NOW, fallback=1) == pytest.approx(30.05)
    assert RateLimitInfo().seconds_until_allowed(NOW, fallback=1) == 1


def test_sliding_window_allows_limit_requests_per_period():
    clock = VirtualClock()
    limiter = RateLimiter(3, 1.0, clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(9):
        limiter.acquire()
        starts.append(clock.now - NOW)
    # At most 3 in any 1-second span, and no slower than that.
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] >= 1.0
    assert starts[-1] == pytest.approx(2.0)


def test_server_remaining_zero_blocks_until_reset():
    clock = VirtualClock()
    limiter = RateLimiter(100, 60, clock=clock.time, sleep=clock.sleep)
    limiter.acquire()
    limiter.update(RateLimitInfo(limit=100, remaining=0, reset_at=NOW + 7))
    limiter.acquire()
    assert clock.now - NOW == pytest.approx(7.05)


def test_requests_in_flight_count_against_the_announced_budget():
    clock = VirtualClock()
    limiter = RateLimiter(100, 60, clock=clock.time, sleep=clock.sleep)
    limiter.update(RateLimitInfo(limit=100, remaining=2, reset_at=NOW + 5))
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()  # the third would exceed what the server said was left
    assert clock.now - NOW == pytest.approx(5.05)


def test_late_answer_from_the_same_window_cannot_raise_the_budget():
    clock = VirtualClock()
    limiter = RateLimiter(100, 60, clock=clock.time, sleep=clock.sleep)
    limiter.update(RateLimitInfo(remaining=1, reset_at=NOW + 5))
    limiter.update(RateLimitInfo(remaining=9, reset_at=NOW + 5))  # an answer that overtook another
    limiter.acquire()
    limiter.acquire()
    assert clock.now - NOW == pytest.approx(5.05)


def test_a_larger_announced_limit_lifts_the_pace():
    clock = VirtualClock()
    limiter = RateLimiter(2, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.update(RateLimitInfo(limit=5))
    for _ in range(5):
        limiter.acquire()
    assert clock.sleeps == []


def test_a_smaller_announced_limit_does_not_slow_the_configured_window():
    clock = VirtualClock()
    limiter = RateLimiter(10, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.update(RateLimitInfo(limit=2))
    assert limiter.limit == 10


def test_a_429_spends_the_budget_until_the_retry_after():
    clock = VirtualClock()
    limiter = RateLimiter(100, 60, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=3))
    limiter.acquire()
    assert clock.now - NOW == pytest.approx(3.05)


def test_limiter_is_safe_under_threads():
    clock = VirtualClock()
    limiter = RateLimiter(10, 1.0, clock=clock.time, sleep=clock.sleep)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire()
            with lock:
                starts.append(clock.now)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    assert len(starts) == 40
    for i in range(len(starts) - 10):
        assert starts[i + 10] - starts[i] >= 1.0 - 1e-9


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, 60)


# -- adaptive pace ---------------------------------------------------------------------------------


def test_a_429_halves_the_pace_once_per_window():
    clock = VirtualClock()
    limiter = RateLimiter(8, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=0))
    limiter.refused(RateLimitInfo(retry_after=0))  # the same window's refusals are one signal
    assert limiter.pace == 4
    clock.sleep(1.0)
    limiter.refused(RateLimitInfo(retry_after=0))
    assert limiter.pace == 2
    for _ in range(5):
        clock.sleep(1.0)
        limiter.refused(RateLimitInfo(retry_after=0))
    assert limiter.pace == 1  # never below one request per window


def test_the_halved_pace_is_enforced_by_the_window():
    clock = VirtualClock()
    limiter = RateLimiter(8, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=0))
    starts = []
    for _ in range(8):
        limiter.acquire()
        starts.append(clock.now - NOW)
    assert starts == [0, 0, 0, 0, 1, 1, 1, 1]


def test_the_pace_grows_back_by_one_per_window_of_answers_while_the_server_has_room():
    clock = VirtualClock()
    limiter = RateLimiter(8, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=0))
    for _ in range(4):  # a window's worth of answers at pace 4
        limiter.update(RateLimitInfo(limit=8, remaining=3))
    assert 4.9 < limiter.pace < 5.1
    for _ in range(100):
        limiter.update(RateLimitInfo(limit=8, remaining=3))
    assert limiter.pace == 8  # up to the limit, not beyond


def test_answers_from_a_full_window_do_not_raise_the_pace():
    clock = VirtualClock()
    limiter = RateLimiter(8, 1.0, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=0))
    for _ in range(20):
        limiter.update(RateLimitInfo(limit=8, remaining=0))
    assert limiter.pace == 4


def test_after_refusals_only_a_share_of_the_servers_remaining_budget_is_counted_on():
    clock = VirtualClock()
    limiter = RateLimiter(8, 60, clock=clock.time, sleep=clock.sleep)
    limiter.refused(RateLimitInfo(retry_after=0))  # pace 4 of 8: about half the account is ours
    limiter.update(RateLimitInfo(limit=8, remaining=4, reset_at=NOW + 5))
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()  # a third would take the others' share
    assert clock.now - NOW == pytest.approx(5.05)


def test_try_acquire_never_blocks():
    clock = VirtualClock()
    limiter = RateLimiter(1, 1.0, clock=clock.time, sleep=clock.sleep)
    assert limiter.try_acquire() == 0
    assert limiter.try_acquire() == pytest.approx(1.0)
    assert clock.sleeps == []
    assert "1 requests in the last 1 s" in limiter.why_waiting()


# -- the server's clock in the headers ---------------------------------------------------------------


def test_an_epoch_reset_and_a_dated_retry_after_are_read_on_the_servers_clock():
    server_ahead = 300.0
    info = parse_rate_limit_headers(
        headers(
            X_RateLimit_Reset=str(int(NOW + server_ahead + 7)), Retry_After=formatdate(NOW + 310, usegmt=True)
        ),
        now=NOW,
        server_offset=server_ahead,
    )
    assert info.reset_at == pytest.approx(NOW + 7)
    assert info.retry_after == pytest.approx(10)
    # A relative reset is a duration, not a time of the server's clock.
    assert (
        parse_rate_limit_headers(headers(X_RateLimit_Reset="12"), now=NOW, server_offset=300).reset_at
        == NOW + 12
    )


def test_a_rounded_up_retry_after_gives_way_to_the_precise_reset_it_rounds():
    info = RateLimitInfo(reset_at=NOW + 0.3, retry_after=1)
    assert info.seconds_until_allowed(NOW, fallback=5) == pytest.approx(0.35)
