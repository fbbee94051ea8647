"""SMSNexusHook.test_connection (the UI's Test button): one attempt, within min(timeout, 10) s, never raises."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

# The connection's own retries and back-off: a test of the button that still retried would make six attempts.
RETRYING = {"timeout": 1.5, "max_retries": 5, "retry_backoff": 0.05, "retry_backoff_max": 0.1}


def point_at(monkeypatch: pytest.MonkeyPatch, port: int, **extras) -> SMSNexusHook:
    connection = {
        "conn_type": "smsnexus",
        "host": f"http://127.0.0.1:{port}/api",
        "password": "SMSNEXUS-TEST-TOKEN-unreachable",
        "extra": extras,
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_PROBE", json.dumps(connection))
    return SMSNexusHook(smsnexus_conn_id="smsnexus_probe")


@pytest.fixture
def blackhole():
    """A port that accepts TCP connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


def connections_made(listener: socket.socket) -> int:
    listener.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_a_silent_host_gets_one_attempt_and_a_failure_answer(monkeypatch, blackhole):
    hook = point_at(monkeypatch, blackhole.getsockname()[1], **RETRYING)

    ok, text = hook.test_connection()

    assert ok is False
    assert text
    assert connections_made(blackhole) == 1


def test_a_closed_port_gets_one_attempt_and_no_retry(monkeypatch, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again once the block ends: nothing listens there
    hook = point_at(monkeypatch, port, **RETRYING)

    with caplog.at_level("INFO"):
        ok, text = hook.test_connection()

    assert ok is False
    assert text
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]


def test_the_wait_is_capped_at_ten_seconds_whatever_the_connections_timeout(monkeypatch, blackhole):
    # A connection with a 5-minute timeout would keep the Test button spinning that long; the test of the
    # connection waits at most 10 s. Observed by the socket the request timed out on, not by a clock.
    hook = point_at(monkeypatch, blackhole.getsockname()[1], timeout=300, max_retries=0)
    from urllib3 import Timeout
    from urllib3.connectionpool import HTTPConnectionPool

    timeouts = []
    real_urlopen = HTTPConnectionPool.urlopen

    def recording_urlopen(self, method, url, *args, **kwargs):
        timeouts.append((self.timeout.connect_timeout, self.timeout.read_timeout))  # the pool's own
        return real_urlopen(self, method, url, *args, **{**kwargs, "timeout": Timeout(0.5)})

    monkeypatch.setattr(HTTPConnectionPool, "urlopen", recording_urlopen)

    ok, _ = hook.test_connection()

    assert ok is False
    assert timeouts == [(10.0, 10.0)]  # connecting and reading


def test_a_reachable_emulator_still_passes(smsnexus_conn):
    assert SMSNexusHook(smsnexus_conn_id=smsnexus_conn).test_connection() == (
        True,
        "Connected: 10000 credits on plan Professional",
    )
