"""Rate limits: headers on every answer, fixed 1-second windows per account and endpoint class,
429 with Retry-After, refused requests change nothing, and the inspection counters."""

from __future__ import annotations

import time

import pytest

from airflow_provider_smsnexus.emulator.ratelimit import FixedWindowLimiter

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
OTHER_TOKEN = "SMSNEXUS-TEST-TOKEN-other"
SUSPENDED_TOKEN = "SMSNEXUS-TEST-TOKEN-suspended"


def limit_headers(response) -> tuple[int, int, int]:
    return tuple(int(response.headers[name]) for name in HEADERS)  # type: ignore[return-value]


def test_every_answer_carries_the_rate_limit_headers(api, client_for, smsnexus_emulator):
    smsnexus_emulator.admin.add_account(SUSPENDED_TOKEN, suspended=True)
    responses = {
        200: api.get("/balance"),
        401: client_for("wrong").get("/balance"),
        403: client_for(SUSPENDED_TOKEN).get("/balance"),
        404: api.get("/no-such-endpoint"),
        422: api.send(to="bad"),
    }
    smsnexus_emulator.admin.set_faults(fail_before_share=1.0)
    responses[500] = api.get("/balance")
    for status, response in responses.items():
        assert response.status_code == status
        limit, remaining, reset = limit_headers(response)
        assert 0 <= remaining < limit
        assert time.time() - 1 <= reset <= time.time() + 61


def wait_until_epoch(moment: float) -> None:
    """Return once the machine's clock (the emulator's, without a clock offset) reads ``moment``."""
    while (left := moment - time.time()) > 0:
        time.sleep(left)


def test_reset_is_the_end_of_the_current_window_in_epoch_seconds(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_limits(read_limit=10, window_seconds=1)
    before = time.time()
    _, _, reset = limit_headers(api.get("/balance"))
    after = time.time()
    # The request was counted at some moment between the two readings: its window ends at the next
    # whole second after that moment.
    assert int(before) + 1 <= reset <= int(after) + 1


def test_sends_over_the_limit_are_429_with_retry_after_and_change_nothing(
    api, smsnexus_emulator, window_start, in_windows
):
    admin = smsnexus_emulator.admin

    def scenario():
        admin.reset()
        admin.set_limits(send_limit=3, window_seconds=1)
        window_start()
        return [[api.send(f"burst {i}") for i in range(5)]]

    [responses] = in_windows(scenario)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert [limit_headers(r)[:2] for r in responses] == [(3, 2), (3, 1), (3, 0), (3, 0), (3, 0)]
    refused = responses[3]
    assert refused.json() == {"success": False, "message": "Too Many Attempts."}
    assert int(refused.headers["Retry-After"]) == 1
    assert [m["body"] for m in admin.sent_messages()] == ["burst 0", "burst 1", "burst 2"]
    assert api.get("/balance").json()["data"]["credits"] == 10000 - 3
    reset = limit_headers(responses[0])[2]
    wait_until_epoch(reset)
    again = api.send("next window")
    assert again.status_code == 200
    assert limit_headers(again)[2] > reset
    assert limit_headers(again)[1] == 2


def test_refused_requests_do_not_use_up_the_next_window(api, smsnexus_emulator, window_start, in_windows):
    admin = smsnexus_emulator.admin

    def scenario():
        admin.reset()
        admin.set_limits(read_limit=2, window_seconds=1)
        window_start()
        first = [api.get("/balance") for _ in range(6)]
        wait_until_epoch(limit_headers(first[-1])[2])
        return [first, [api.get("/balance") for _ in range(3)]]

    first, second = in_windows(scenario)  # in consecutive windows
    assert [r.status_code for r in first] == [200, 200, 429, 429, 429, 429]
    assert [r.status_code for r in second] == [200, 200, 429]


def test_send_and_other_requests_have_separate_limits(api, smsnexus_emulator, window_start, in_windows):
    admin = smsnexus_emulator.admin

    def scenario():
        admin.reset()
        admin.set_limits(send_limit=1, read_limit=2, window_seconds=1)
        window_start()
        return [
            [
                api.send(),
                api.send(),
                api.get("/balance"),
                api.post("/webhooks", {"url": "https://example.com/h", "events": ["message.failed"]}),
                api.get("/messages"),
            ]
        ]

    [[sent, refused, balance, webhook, messages]] = in_windows(scenario)
    assert (sent.status_code, refused.status_code) == (200, 429)
    assert balance.status_code == 200
    assert limit_headers(balance)[:2] == (2, 1)
    assert webhook.status_code == 200
    assert limit_headers(webhook)[:2] == (2, 0)
    assert messages.status_code == 429


def test_accounts_have_separate_windows(api, client_for, smsnexus_emulator, window_start, in_windows):
    admin = smsnexus_emulator.admin
    other = client_for(OTHER_TOKEN)

    def scenario():
        admin.reset()
        admin.set_limits(read_limit=1, window_seconds=1)
        admin.add_account(OTHER_TOKEN)
        window_start()
        return [[api.get("/balance"), api.get("/balance"), other.get("/balance")]]

    [responses] = in_windows(scenario)
    assert [r.status_code for r in responses] == [200, 429, 200]


def test_stats_report_the_most_accepted_per_window_and_the_429s(
    api, smsnexus_emulator, window_start, in_windows
):
    admin = smsnexus_emulator.admin

    def scenario():
        admin.reset()
        admin.set_limits(send_limit=2, read_limit=3, window_seconds=1)
        window_start()
        return [[api.send() for _ in range(4)] + [api.get("/balance") for _ in range(5)]]

    in_windows(scenario)
    stats = admin.stats()
    assert stats["requests"] == {"send": 4, "other": 5}
    assert stats["accepted"] == {"send": 2, "other": 3}
    assert stats["rate_limited"] == {"send": 2, "other": 2}
    assert stats["max_in_window"] == {"send": 2, "other": 3}
    assert stats["accounts"]["1"]["send"]["max_in_window"] == 2
    assert stats["limits"] == {"send": 2, "other": 3, "window_seconds": 1}


def test_requests_without_a_valid_token_are_limited_per_client_address(
    client_for, smsnexus_emulator, window_start, in_windows
):
    admin = smsnexus_emulator.admin
    stranger = client_for("wrong")

    def scenario():
        admin.reset()
        admin.set_limits(read_limit=1, window_seconds=1)
        window_start()
        return [[stranger.get("/balance"), stranger.get("/balance")]]

    [responses] = in_windows(scenario)
    assert [r.status_code for r in responses] == [401, 429]
    assert admin.stats()["accounts"]["anon:127.0.0.1"]["other"]["rate_limited"] == 1


def test_limits_are_checked_in_fixed_windows_aligned_to_the_epoch():
    limiter = FixedWindowLimiter()
    decisions = [limiter.hit(1, "send", 2, 1.0, moment) for moment in (10.0, 10.5, 10.99, 11.0, 11.2)]
    assert [d.allowed for d in decisions] == [True, True, False, True, True]
    assert [d.reset_at for d in decisions] == [11, 11, 11, 12, 12]
    assert decisions[2].retry_after == 1
    assert decisions[2].headers()[-1] == (b"retry-after", b"1")
    stats = limiter.stats(1.0)
    assert stats["max_in_window"]["send"] == 2
    assert stats["max_in_sliding_window"]["send"] == 3  # 10.5, 11.0 and 11.2 fall within one second


@pytest.mark.parametrize(("window", "now", "reset"), [(60.0, 125.0, 180), (0.5, 10.2, 11), (2.0, 10.0, 12)])
def test_reset_rounds_the_window_end_up_to_whole_seconds(window, now, reset):
    assert FixedWindowLimiter().hit("a", "other", 5, window, now).reset_at == reset


class _Answer:
    """Just the header :func:`in_windows` reads, of an answer counted in the window ending at ``reset``."""

    def __init__(self, reset: int) -> None:
        self.headers = {"X-RateLimit-Reset": str(reset)}


def test_a_scenario_whose_burst_straddles_a_window_boundary_is_run_again(in_windows):
    runs = iter([[[_Answer(11), _Answer(12)]], [[_Answer(12), _Answer(12)], [_Answer(14)]], [[_Answer(13)]]])
    calls = []

    def scenario():
        calls.append(1)
        return next(runs)

    # Run 1 straddles, run 2's bursts are not in consecutive windows, run 3 is good.
    [[answer]] = in_windows(scenario)
    assert answer.headers["X-RateLimit-Reset"] == "13"
    assert len(calls) == 3


def test_a_scenario_that_never_fits_one_window_fails_the_test_saying_so(in_windows):
    with pytest.raises(pytest.fail.Exception, match="too loaded"):
        in_windows(lambda: [[_Answer(1), _Answer(2)]], attempts=2)
