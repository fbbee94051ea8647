"""ServerClock: the server's clock offset from Date headers, on hand-made samples and against the emulator."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import datetime, timedelta, timezone
from email.utils import formatdate

import pytest

from airflow_provider_smsnexus.hooks._clock import DEFAULT_UNCERTAINTY_SECONDS, ServerClock, parse_date_header
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook


def date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def test_without_any_date_the_offset_is_zero_with_the_default_uncertainty():
    clock = ServerClock()
    assert (clock.offset, clock.uncertainty, clock.samples) == (0.0, DEFAULT_UNCERTAINTY_SECONDS, 0)
    assert ServerClock(default_uncertainty=5).uncertainty == 5
    assert clock.observe(1000.0, 1000.1, None) is False
    assert clock.observe(1000.0, 1000.1, "not a date") is False
    assert clock.samples == 0


def test_one_sample_gives_the_interval_from_send_to_answer_and_the_date_resolution():
    clock = ServerClock()
    # Sent at 1000.2, answered at 1000.4, Date 1300: offset in [1300 - 1000.4, 1301 - 1000.2] = [299.6, 300.8].
    assert clock.observe(1000.2, 1000.4, date(1300))
    assert clock.offset == pytest.approx(300.2)
    assert clock.uncertainty == pytest.approx(0.6)
    assert clock.samples == 1


def test_samples_are_intersected():
    clock = ServerClock()
    clock.observe_sample(1000.2, 1000.4, 1300)  # [299.6, 300.8]
    clock.observe_sample(2000.7, 2000.8, 2300)  # [299.2, 300.3]
    assert (clock.estimate().low, clock.estimate().high) == (pytest.approx(299.6), pytest.approx(300.3))
    assert clock.offset == pytest.approx(299.95)
    assert clock.samples == 2


def test_contradicting_samples_restart_from_the_latest_alone():
    clock = ServerClock()
    clock.observe_sample(1000.2, 1000.4, 1300)
    clock.observe_sample(2000.2, 2000.4, 2400)  # the server's clock jumped 100 s
    assert clock.offset == pytest.approx(400.2)
    assert (clock.samples, clock.restarts) == (1, 1)


@pytest.mark.parametrize("true_offset", [-300.0, -0.4, 0.0, 0.73, 300.0])
def test_the_true_offset_stays_inside_the_interval_and_the_interval_narrows(true_offset):
    rng = random.Random(7)
    clock = ServerClock()
    local = 1_800_000_000.0
    for _ in range(50):
        local += rng.uniform(0.05, 3.0)
        sent_at, latency = local, rng.uniform(0.001, 0.2)
        written_at = sent_at + rng.uniform(0, latency)  # when the server wrote its Date
        clock.observe_sample(sent_at, sent_at + latency, float(int(written_at + true_offset)))
        estimate = clock.estimate()
        assert estimate.low <= true_offset <= estimate.high
    assert clock.uncertainty < 0.25  # many sub-second phases: much finer than the 1-s Date


def test_to_server_moves_a_local_moment_by_the_offset():
    clock = ServerClock()
    clock.observe_sample(1000.2, 1000.4, 1300)
    moment = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)
    estimate, uncertainty = clock.to_server(moment)
    assert estimate == moment + timedelta(seconds=300.2)
    assert uncertainty == pytest.approx(0.6)
    assert clock.to_server(moment.replace(tzinfo=None))[0] == estimate  # naive is UTC


def test_waits_use_no_offset_while_the_clocks_may_agree_and_the_low_bound_otherwise():
    clock = ServerClock()
    clock.observe_sample(1000.2, 1000.4, 1000)  # [-0.4, 0.8]: the clocks may agree
    assert clock.offset_for_waits() == 0.0
    ahead = ServerClock()
    ahead.observe_sample(1000.2, 1000.4, 1300)
    assert ahead.offset_for_waits() == pytest.approx(299.6)  # a wait never ends early


def test_date_headers_are_read_in_both_gmt_forms():
    assert parse_date_header("Sun, 08 Mar 2026 12:00:00 GMT") == 1772971200.0
    assert parse_date_header("Sun, 08 Mar 2026 12:00:00 -0000") == 1772971200.0
    assert parse_date_header("") is None


def test_the_clock_is_safe_under_threads():
    clock = ServerClock()

    def feed(start: float) -> None:
        for i in range(500):
            sent = start + i * 0.37
            clock.observe_sample(sent, sent + 0.01, float(int(sent + 0.005 + 42)))

    threads = [threading.Thread(target=feed, args=(1000.0 + 10_000 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    estimate = clock.estimate()
    assert estimate.samples == 2000
    assert estimate.low <= 42 <= estimate.high


def test_the_connection_sets_the_uncertainty_before_any_answer(monkeypatch, smsnexus_emulator):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_CLOCK", smsnexus_emulator.connection_json(server_clock_uncertainty=7)
    )
    assert SMSNexusHook(smsnexus_conn_id="smsnexus_clock").server_clock.uncertainty == 7


@pytest.mark.parametrize("offset", [-300, 300])
def test_the_hooks_measure_the_emulators_clock_offset(monkeypatch, smsnexus_emulator, offset):
    smsnexus_emulator.admin.configure(clock_offset_seconds=offset)
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_CLOCK", smsnexus_emulator.connection_json(timeout=10))
    hook = SMSNexusHook(smsnexus_conn_id="smsnexus_clock")
    for _ in range(5):
        hook.get_balance()
    estimate = hook.server_clock.estimate()
    assert estimate.samples == 5
    assert estimate.low - 0.01 <= offset <= estimate.high + 0.01  # 0.01: the emulator's own processing
    assert estimate.uncertainty <= 1.0
    async_hook = SMSNexusAsyncHook(smsnexus_conn_id="smsnexus_clock")
    asyncio.run(async_hook.get_balance())
    assert abs(async_hook.server_clock.offset - offset) <= async_hook.server_clock.uncertainty + 0.01
