"""The retry driver: outcome classes of a send (against real TLS and TCP servers), ``before_send``, 429s
bounded by time, logged waits, the async hook on the same driver, and workers that share one account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
import responses

from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusServerError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks import _retry
from airflow_provider_smsnexus.hooks.outcomes import NOT_SENT, UNKNOWN, send_outcome
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook
from tests.hooks.tls_servers import (
    CorruptAfterRequestTLSServer,
    GarbageHandshakeServer,
    SilentServer,
    TLSHandshakeServer,
    refused_port,
    self_signed_certificate,
)

if TYPE_CHECKING:
    from pathlib import Path

SENDER = "+12125550100"
TO = "+12125550150"
MOCK_TOKEN = "tok-SMSNEXUS-MOCK-SECRET-retry"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def hook_at(monkeypatch: pytest.MonkeyPatch, base_url: str, conn_id: str = "smsnexus_retry", **extra):
    """A hook on ``base_url`` with quick retries (``extra`` overrides)."""
    extra = {"retry_backoff": 0.01, "retry_backoff_max": 0.02, "max_retries": 2, "timeout": 5, **extra}
    conn = {"conn_type": "smsnexus", "host": base_url, "password": MOCK_TOKEN, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return SMSNexusHook(smsnexus_conn_id=conn_id)


def emulator_hook(monkeypatch, emulator, conn_id: str = "smsnexus_retry", **extra) -> SMSNexusHook:
    extra = {"retry_backoff": 0.01, "retry_backoff_max": 0.05, "timeout": 10, **extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", emulator.connection_json(**extra))
    return SMSNexusHook(smsnexus_conn_id=conn_id)


def early_in_a_window() -> None:
    """Return at least 0.6 s before the end of the emulator's current 1-s window (its windows are aligned to
    the epoch, on this machine's clock), so that two requests made next land in the same window."""
    left = 1 - time.time() % 1
    if left < 0.6:
        time.sleep(left + 0.01)


def send_error(hook: SMSNexusHook) -> SMSNexusError:
    with pytest.raises(SMSNexusError) as info:
        hook.send_sms(SENDER, TO, "Outcome test")
    return info.value


# -- outcome classes, against real servers -----------------------------------------------------------------


def test_certificate_failure_during_the_handshake_is_not_sent(monkeypatch, certificate):
    with TLSHandshakeServer(certificate) as server:
        error = send_error(hook_at(monkeypatch, server.url("https"), verify=True))
    assert send_outcome(error) == NOT_SENT
    assert not isinstance(error, SMSNexusSendOutcomeUnknownError)
    assert "TLS" in str(error)
    assert server.requests == []  # the server's own record: nothing arrived
    assert server.handshake_failures >= 1


def test_a_handshake_answered_with_garbage_is_not_sent(monkeypatch):
    with GarbageHandshakeServer() as server:
        error = send_error(hook_at(monkeypatch, server.url("https"), verify=False))
    assert send_outcome(error) == NOT_SENT
    assert server.requests == []


def test_tls_error_after_the_request_was_written_is_unknown_and_not_repeated(monkeypatch, certificate):
    # Hole 2: the server read (and could have acted on) the send, then its TLS record was corrupt.
    with CorruptAfterRequestTLSServer(certificate) as server:
        error = send_error(hook_at(monkeypatch, server.url("https"), verify=str(certificate.cert_path)))
    assert isinstance(error, SMSNexusSendOutcomeUnknownError)
    assert send_outcome(error) == UNKNOWN
    assert (error.from_number, error.to) == (SENDER, TO)
    assert len(server.requests) == 1
    assert b"POST /api/sms/send" in server.requests[0]
    assert b"Outcome test" in server.requests[0]


def test_read_meeting_a_tls_error_after_the_handshake_is_retried(monkeypatch, certificate):
    with CorruptAfterRequestTLSServer(certificate) as server:
        hook = hook_at(monkeypatch, server.url("https"), verify=str(certificate.cert_path), max_retries=2)
        with pytest.raises(SMSNexusServerError, match="after 3 attempt"):
            hook.get_balance()
    assert len(server.requests) == 3


def test_refused_connection_is_not_sent_and_a_send_is_retried(monkeypatch):
    hook = hook_at(monkeypatch, f"http://127.0.0.1:{refused_port()}/api", max_retries=2)
    error = send_error(hook)
    assert isinstance(error, SMSNexusServerError)
    assert send_outcome(error) == NOT_SENT
    assert hook.stats["requests"] == 3  # a send that never left is retried like a read


def test_dns_failure_is_not_sent(monkeypatch):
    error = send_error(hook_at(monkeypatch, "http://smsnexus-unresolvable.invalid/api", max_retries=0))
    assert send_outcome(error) == NOT_SENT


def test_read_timeout_after_the_request_arrived_is_unknown(monkeypatch):
    with SilentServer() as server:
        error = send_error(hook_at(monkeypatch, server.url("http"), timeout=0.5))
    assert isinstance(error, SMSNexusSendOutcomeUnknownError)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (SMSNexusSendOutcomeUnknownError("5xx or lost answer"), UNKNOWN),
        (SMSNexusResponseError("2xx with an unreadable body", status_code=200), UNKNOWN),
        (SMSNexusValidationError("422"), NOT_SENT),
        (SMSNexusRateLimitError("429 until max_rate_limit_wait"), NOT_SENT),
        (SMSNexusServerError("never left, retries spent"), NOT_SENT),
        (RuntimeError("not the hook's own error"), UNKNOWN),
    ],
)
def test_send_outcome_table(error, outcome):
    assert send_outcome(error) == outcome


def test_send_answered_502_before_processing_is_unknown(monkeypatch, smsnexus_emulator):
    # A gateway's 502 cannot be told from one after processing: unknown, never repeated.
    smsnexus_emulator.admin.configure(fail_before_share=1.0, fail_before_status=502)
    calls: list[int] = []
    hook = emulator_hook(monkeypatch, smsnexus_emulator)
    with pytest.raises(SMSNexusSendOutcomeUnknownError) as info:
        hook.send_sms(SENDER, TO, "Gateway", before_send=lambda: calls.append(1))
    assert info.value.status_code == 502
    assert calls == [1]
    assert smsnexus_emulator.admin.stats()["requests"]["send"] == 1
    assert smsnexus_emulator.admin.sent_messages() == []


# -- before_send ------------------------------------------------------------------------------------------


def test_before_send_runs_before_each_attempt_after_the_429_wait(monkeypatch, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.set_limits(send_limit=1, window_seconds=1)
    hook = emulator_hook(monkeypatch, smsnexus_emulator, send_rate_limit=1000, max_retries=0)
    marks: list[tuple[float, int]] = []

    def mark() -> None:
        # What the server had recorded when the callback ran: the request of this attempt never did.
        marks.append((time.time(), admin.stats()["requests"]["send"]))

    # An earlier client spent this window's only send, so the first attempt meets a 429.
    other = emulator_hook(monkeypatch, smsnexus_emulator, conn_id="smsnexus_other", max_rate_limit_wait=0)
    _ = hook.pool, other.pool
    early_in_a_window()
    other.send_sms(SENDER, "+12125550151", "spends the window")
    sent = hook.send_sms(SENDER, TO, "Marked", before_send=mark)

    stats = admin.stats()
    assert stats["rate_limited"]["send"] >= 1
    assert len(marks) == stats["requests"]["send"] - 1  # one mark per attempt this hook made
    assert [seen for _, seen in marks] == list(range(1, len(marks) + 1))  # each before its own request
    created = datetime.fromisoformat(sent["created_at"].replace("Z", "+00:00"))
    assert int(marks[-1][0]) <= created.timestamp()  # the last mark precedes its message (whole seconds)


def test_a_failing_before_send_sends_nothing_and_propagates(monkeypatch, smsnexus_emulator):
    hook = emulator_hook(monkeypatch, smsnexus_emulator)
    problem = RuntimeError("the ledger is gone")

    def refuse() -> None:
        raise problem

    with pytest.raises(RuntimeError) as info:
        hook.send_sms(SENDER, TO, "Never", before_send=refuse)
    assert info.value is problem
    assert smsnexus_emulator.admin.stats()["requests"]["send"] == 0
    assert smsnexus_emulator.admin.sent_messages() == []


# -- 429s bounded by time --------------------------------------------------------------------------------


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sleeping records the delay and moves ``time.time`` on instead of waiting."""
    slept: list[float] = []
    now = [time.time()]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "time", lambda: now[0])
    return slept


@responses.activate
def test_a_send_waits_out_more_429s_than_max_retries(monkeypatch, virtual_time):
    url = "http://smsnexus.test/api"
    hook = hook_at(monkeypatch, url, max_retries=1, max_rate_limit_wait=60)
    for _ in range(7):
        responses.post(f"{url}/sms/send", status=429, json={"success": False}, headers={"Retry-After": "2"})
    responses.post(f"{url}/sms/send", json={"success": True, "data": {"id": 9}})
    calls: list[int] = []
    assert hook.send_sms(SENDER, TO, "Hi", before_send=lambda: calls.append(1))["id"] == 9
    assert len(responses.calls) == 8 == len(calls)
    assert virtual_time[:7] == [2.0] * 7


@responses.activate
def test_429s_give_up_once_max_rate_limit_wait_is_spent(monkeypatch, virtual_time):
    url = "http://smsnexus.test/api"
    hook = hook_at(monkeypatch, url, max_retries=10, max_rate_limit_wait=5)
    responses.post(f"{url}/sms/send", status=429, json={"success": False}, headers={"Retry-After": "2"})
    with pytest.raises(SMSNexusRateLimitError):
        hook.send_sms(SENDER, TO, "Hi")
    assert len(responses.calls) == 3  # waited 2 + 2; a third wait would pass 5 s
    assert sum(virtual_time) == pytest.approx(4.0)


# -- waits are logged ------------------------------------------------------------------------------------


def log_lines(capfd: pytest.CaptureFixture[str], word: str) -> list[str]:
    """The lines the task logger wrote (Airflow's logging prints them) that contain ``word``."""
    out, err = capfd.readouterr()
    return [line for line in (out + err).splitlines() if word in line]


def test_a_long_limiter_wait_is_logged_with_what_it_waits_for(monkeypatch, smsnexus_emulator, capfd):
    monkeypatch.setattr(_retry, "LONG_WAIT_SECONDS", 0.3)
    hook = emulator_hook(monkeypatch, smsnexus_emulator, send_rate_limit=1, rate_limit_period=1)
    hook.send_sms(SENDER, TO, "first")
    assert log_lines(capfd, "waits") == []
    hook.send_sms(SENDER, "+12125550151", "second")
    lines = log_lines(capfd, "waits")
    assert len(lines) == 1
    assert "POST /api/sms/send waits" in lines[0]
    assert "for the send budget: 1 requests in the last 1 s, pace 1" in lines[0]


def test_a_429_wait_is_logged_with_the_reset_and_the_time_budget(monkeypatch, smsnexus_emulator, capfd):
    smsnexus_emulator.admin.set_limits(read_limit=1, window_seconds=1)
    hook = emulator_hook(monkeypatch, smsnexus_emulator, max_rate_limit_wait=30)
    other = emulator_hook(monkeypatch, smsnexus_emulator, conn_id="smsnexus_other", max_rate_limit_wait=0)
    _ = hook.pool, other.pool
    early_in_a_window()
    other.get_balance()  # spends the window
    hook.get_balance()
    lines = log_lines(capfd, "answered 429")
    assert lines
    assert "waiting" in lines[0]
    assert "for the server's rate-limit reset" in lines[0]
    assert "of max_rate_limit_wait=30 s used" in lines[0]


# -- the async hook on the same driver -------------------------------------------------------------------


def test_async_hook_is_paced_counted_and_clocked_by_the_driver(monkeypatch, smsnexus_emulator):
    import asyncio

    smsnexus_emulator.admin.set_limits(read_limit=2, window_seconds=1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_ASYNC",
        smsnexus_emulator.connection_json(read_rate_limit=2, rate_limit_period=1, timeout=10),
    )
    hook = SMSNexusAsyncHook(smsnexus_conn_id="smsnexus_async")

    async def read() -> None:
        for _ in range(5):
            await hook.get_balance()

    asyncio.run(read())
    stats = smsnexus_emulator.admin.stats()
    assert stats["rate_limited"]["other"] == 0  # the limiter held the polls inside the server's limit
    assert stats["requests"]["other"] == hook.stats["requests"] == 5
    assert hook.stats["waited_seconds"] > 0
    assert hook.server_clock.samples == 5
    assert set(hook.limiters) == {"send", "read"}


# -- workers that share one account ----------------------------------------------------------------------

WORKER = r"""
import json, os, sys
# Protocol lines on the original stdout; everything else the process prints (Airflow logs) to stderr.
protocol = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

worker, count = int(sys.argv[1]), int(sys.argv[2])
hook = SMSNexusHook(smsnexus_conn_id="smsnexus_share")
_ = hook.pool, hook.limiters
print("READY", file=protocol, flush=True)
sys.stdin.readline()  # the start signal: all workers begin together
errors = []
for i in range(count):
    try:
        hook.send_sms("+12125550100", f"+121255501{50 + i:02d}", f"worker {worker} message {i}")
    except SMSNexusError as exc:
        errors.append(type(exc).__name__)
report = {"errors": errors, "stats": hook.stats, "pace": hook.limiters["send"].pace}
print(json.dumps(report), file=protocol, flush=True)
"""


@pytest.mark.slow
def test_four_workers_each_told_the_whole_limit_all_finish_without_a_rate_limit_error(
    smsnexus_emulator, tmp_path: Path
):
    workers, per_worker, limit = 4, 40, 8
    admin = smsnexus_emulator.admin
    admin.set_limits(send_limit=limit, window_seconds=1)
    env = {
        **os.environ,
        "AIRFLOW_CONN_SMSNEXUS_SHARE": smsnexus_emulator.connection_json(
            send_rate_limit=limit, rate_limit_period=1, timeout=10, retry_backoff=0.05
        ),
    }
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    logs = [tmp_path / f"worker-{w}.log" for w in range(workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(w), str(per_worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=logs[w].open("w"),
            env=env,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for proc, log in zip(procs, logs):
            assert proc.stdout.readline().strip() == "READY", log.read_text()[-2000:]
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc, log in zip(procs, logs):
            out, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0, log.read_text()[-2000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert [r["errors"] for r in reports] == [[]] * workers  # none failed, from rate contention or else
    bodies = sorted(m["body"] for m in admin.sent_messages())
    expected = sorted(f"worker {w} message {i}" for w in range(workers) for i in range(per_worker))
    assert bodies == expected  # every message once, none missing
    stats = admin.stats()
    assert stats["accounts"]["1"]["send"]["max_in_window"] <= limit
    assert stats["accepted"]["send"] == workers * per_worker
    # Few refusals: under one per four sends (workers that keep the whole limit each meet about 60 here).
    assert stats["rate_limited"]["send"] < workers * per_worker / 4, stats["rate_limited"]
