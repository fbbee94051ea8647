"""SMSNexusBalanceSensor against the emulator, in poke and deferrable mode."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import requests
import responses
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError
from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor
from airflow_provider_smsnexus.triggers.balance import SMSNexusBalanceTrigger

if TYPE_CHECKING:
    from collections.abc import Callable

REPORT_KEYS = {
    "credits",
    "currency",
    "plan",
    "credits_used_today",
    "credits_per_hour",
    "hours_left",
    "checked_at",
}


def make_sensor(**kwargs) -> SMSNexusBalanceSensor:
    options = {"task_id": "check_balance", "threshold": 500, "poke_interval": 0.05, "timeout": 30, **kwargs}
    return SMSNexusBalanceSensor(**options)


@pytest.fixture
def no_retry_conn(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``smsnexus_default`` without hook retries: every 429 and 500 reaches the sensor."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(max_retries=0, retry_backoff=0.01, timeout=10),
    )
    return "smsnexus_default"


def when_seen(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """In the background, wait until ``condition()`` holds, then call ``then()``."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        then()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


# -- the condition, both directions --------------------------------------------------------------


def test_below_succeeds_with_the_balance_and_burn_rate_as_xcom(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(499)

    report = make_sensor(threshold=500, when="below").execute({})

    assert report["credits"] == 499
    assert set(report) == REPORT_KEYS
    assert report["plan"] == "Professional"


def test_below_does_not_fire_when_the_balance_equals_the_threshold(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(500)

    with pytest.raises(AirflowSensorTimeout):
        make_sensor(threshold=500, when="below", timeout=0.2).execute({})


def test_at_least_fires_when_the_balance_equals_the_threshold(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(500)

    report = make_sensor(threshold=500, when="at_least").execute({})

    assert report["credits"] == 500


def test_at_least_waits_until_the_account_is_topped_up(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(100)
    sensor = make_sensor(threshold=500, when="at_least")

    assert not sensor.poke({})
    smsnexus_emulator.admin.set_balance(2500)
    result = sensor.poke({})

    assert result
    assert result.xcom_value["credits"] == 2500


def test_below_waits_while_the_balance_is_healthy(smsnexus_emulator, smsnexus_conn):
    sensor = make_sensor(threshold=500, when="below")

    assert not sensor.poke({})
    smsnexus_emulator.admin.set_balance(20)
    assert sensor.poke({}).xcom_value["credits"] == 20


def test_soft_fail_skips_when_the_condition_never_holds(smsnexus_emulator, smsnexus_conn):
    with pytest.raises(AirflowSkipException):
        make_sensor(threshold=500, when="below", timeout=0.2, soft_fail=True).execute({})


def test_burn_rate_is_todays_usage_per_hour_since_utc_midnight(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.update_account(credits=300, credits_used_today=240)

    report = make_sensor(threshold=500).execute({})

    checked_at = datetime.fromisoformat(report["checked_at"])
    midnight = checked_at.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = max((checked_at - midnight).total_seconds() / 3600, 0.25)
    assert report["credits_used_today"] == 240
    assert report["credits_per_hour"] == round(240 / hours, 2)
    assert report["hours_left"] == round(300 / (240 / hours), 2)


def test_sends_today_count_towards_the_burn_rate(smsnexus_emulator, smsnexus_conn):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    hook = SMSNexusHook()
    for _ in range(3):
        hook.send_sms(from_number="+12125550100", to="+12125550150", message="usage")
    smsnexus_emulator.admin.set_balance(300)

    report = make_sensor(threshold=500).execute({})

    assert report["credits_used_today"] == 3
    assert report["credits_per_hour"] > 0
    assert report["hours_left"] > 0


def test_threshold_is_templated(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(700)
    sensor = make_sensor(threshold="{{ params.min_credits }}")

    sensor.render_template_fields({"params": {"min_credits": 800}})

    assert sensor.threshold == "800"
    assert sensor.execute({})["credits"] == 700


def test_unknown_condition_is_rejected_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="when must be one of"):
        make_sensor(when="above")


# -- transient errors --------------------------------------------------------------------------------


def test_server_errors_are_logged_and_the_sensor_pokes_again(
    smsnexus_emulator, no_retry_conn, capfd: pytest.CaptureFixture[str]
):
    admin = smsnexus_emulator.admin
    admin.set_balance(200)
    admin.set_faults(fail_before_share=1.0)
    sensor = make_sensor(threshold=500)

    capfd.readouterr()
    assert not sensor.poke({})
    assert server_errors(admin.stats()) == 1  # the emulator did answer 500
    lines = retry_lines(capfd)
    assert len(lines) == 1
    assert lines[0].startswith("SMSNexusServerError: GET /api/balance")
    admin.set_faults()
    assert sensor.poke({}).xcom_value["credits"] == 200


def test_a_run_of_500s_then_a_good_answer_succeeds(smsnexus_emulator, no_retry_conn):
    admin = smsnexus_emulator.admin
    admin.set_balance(200)
    admin.set_faults(fail_before_share=1.0)
    errors_before = server_errors(admin.stats())
    watcher = when_seen(lambda: server_errors(admin.stats()) >= errors_before + 3, admin.set_faults)

    report = make_sensor(threshold=500).execute({})

    watcher.join()
    assert report["credits"] == 200
    assert server_errors(admin.stats()) >= errors_before + 3


def test_429s_are_logged_and_the_sensor_waits_for_the_reset(
    smsnexus_emulator, no_retry_conn, capfd: pytest.CaptureFixture[str]
):
    # The hook obeys X-RateLimit-* and would not run into the limit by itself: another client of the
    # same account uses up each one-request window, so the sensor's checks meet 429s.
    admin = smsnexus_emulator.admin
    admin.set_limits(read_limit=1, window_seconds=1)
    sensor = make_sensor(threshold=1000, when="below")
    neighbour = NoisyNeighbour(smsnexus_emulator)

    def calm_down() -> None:
        neighbour.stop()
        admin.set_balance(400)

    # The sensor's 429s by the emulator's count: the account's, less those the neighbour saw (the neighbour may
    # not have counted its last answer yet, so the watcher waits for one more).
    def sensors_429s() -> int:
        return rate_limited(admin.stats()) - neighbour.rate_limited

    capfd.readouterr()
    with neighbour:
        watcher = when_seen(lambda: sensors_429s() >= 3, calm_down)
        report = sensor.execute({})

    watcher.join()
    assert report["credits"] == 400
    assert sensors_429s() >= 2
    out, err = capfd.readouterr()
    logged = [line for line in (out + err).splitlines() if "GET /api/balance answered 429" in line]
    assert len(logged) == sensors_429s()  # every 429 the emulator gave the sensor, logged once


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_finishes_with_the_right_result_while_the_server_answers_429_and_500_between_good_answers(
    smsnexus_emulator, no_retry_conn, deferrable
):
    admin = smsnexus_emulator.admin
    admin.set_faults(fail_before_share=0.5, random_seed=3)
    admin.set_limits(read_limit=2, window_seconds=1)
    sensor = make_sensor(threshold=1000, when="below", deferrable=deferrable)
    watcher = when_seen(lambda: server_errors(admin.stats()) >= 3, lambda: admin.set_balance(300))

    report = run_like_airflow(sensor)

    watcher.join()
    assert report["credits"] == 300
    assert server_errors(admin.stats()) >= 3


def test_connection_errors_are_logged_and_the_sensor_pokes_again(
    unreachable_conn_id, capfd: pytest.CaptureFixture[str]
):
    capfd.readouterr()
    assert not make_sensor(smsnexus_conn_id=unreachable_conn_id).poke({})
    lines = retry_lines(capfd)
    assert len(lines) == 1
    assert "no answer from http://127.0.0.1:9/api" in lines[0]
    assert "(NewConnectionError)" in lines[0]  # the transport error's class (urllib3 names it so)


# -- credentials ---------------------------------------------------------------------------------------


@pytest.fixture
def wrong_token_conn(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = "SMSNEXUS-TEST-TOKEN-revoked-0000"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_REVOKED", json.dumps(connection))
    return "smsnexus_revoked"


def test_401_fails_at_once_and_says_the_token_is_wrong(wrong_token_conn):
    sensor = make_sensor(smsnexus_conn_id=wrong_token_conn)

    with pytest.raises(AirflowFailException, match="401 Unauthorized") as raised:
        sensor.execute({})

    assert "revoked-0000" not in str(raised.value)
    assert wrong_token_conn in str(raised.value)


def test_401_fails_even_with_soft_fail(wrong_token_conn):
    sensor = make_sensor(smsnexus_conn_id=wrong_token_conn, soft_fail=True)

    with pytest.raises(AirflowFailException, match="401"):
        sensor.execute({})


def test_never_fail_still_skips_on_401(wrong_token_conn):
    sensor = make_sensor(smsnexus_conn_id=wrong_token_conn, never_fail=True)

    with pytest.raises(AirflowSkipException):
        sensor.execute({})


def test_403_fails_at_once_and_says_the_account_is_refused(
    smsnexus_emulator, monkeypatch: pytest.MonkeyPatch
):
    token = "SMSNEXUS-TEST-TOKEN-suspended-4444"
    smsnexus_emulator.admin.add_account(token, suspended=True)
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = token
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_SUSPENDED", json.dumps(connection))
    sensor = make_sensor(smsnexus_conn_id="smsnexus_suspended", soft_fail=True)

    with pytest.raises(AirflowFailException, match="403 Forbidden") as raised:
        sensor.execute({})

    assert "suspended-4444" not in str(raised.value)
    assert sensor.hook.stats["requests"] == 1


@responses.activate
def test_a_malformed_balance_answer_fails_the_sensor(monkeypatch: pytest.MonkeyPatch):
    # A 200 without credits (e.g. from a misconfigured proxy) cannot be produced by the emulator: mocked.
    conn = {
        "conn_type": "smsnexus",
        "host": "http://smsnexus.test/api",
        "password": "SMSNEXUS-MOCK-SECRET-tok",
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_MOCK", json.dumps(conn))
    responses.get("http://smsnexus.test/api/balance", json={"success": True, "data": {"plan": "Pro"}})

    with pytest.raises(SMSNexusResponseError, match="numeric 'credits'"):
        make_sensor(smsnexus_conn_id="smsnexus_mock", soft_fail=True).execute({})


# -- deferrable mode -------------------------------------------------------------------------------


def test_deferrable_sensor_defers_to_the_balance_trigger_with_the_timeout(smsnexus_emulator, smsnexus_conn):
    sensor = make_sensor(threshold="500", when="below", deferrable=True, poke_interval=30, timeout=600)
    before = time.time()

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, SMSNexusBalanceTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=600)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_smsnexus.triggers.balance.SMSNexusBalanceTrigger"
    assert kwargs["threshold"] == 500
    assert kwargs["when"] == "below"
    assert kwargs["smsnexus_conn_id"] == "smsnexus_default"
    assert kwargs["poke_interval"] == 30
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600


def test_deferrable_sensor_does_not_defer_when_the_first_check_succeeds(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(10)

    report = make_sensor(deferrable=True).execute({})

    assert report["credits"] == 10


def test_deferrable_sensor_with_never_fail_skips_on_401(wrong_token_conn):
    sensor = make_sensor(smsnexus_conn_id=wrong_token_conn, deferrable=True, never_fail=True)

    with pytest.raises(AirflowSkipException):
        sensor.execute({})


def test_deferrable_sensor_fails_at_once_on_401_before_deferring(wrong_token_conn):
    sensor = make_sensor(smsnexus_conn_id=wrong_token_conn, deferrable=True, soft_fail=True)

    with pytest.raises(AirflowFailException, match="401 Unauthorized"):
        sensor.execute({})


def test_deferrable_path_returns_the_same_xcom_as_poke_mode(smsnexus_emulator, smsnexus_conn):
    import asyncio

    smsnexus_emulator.admin.set_balance(10)
    poke_report = make_sensor().execute({})

    sensor = make_sensor(deferrable=True)
    trigger = SMSNexusBalanceTrigger(threshold=500, poke_interval=0.05)
    _, kwargs = trigger.serialize()

    async def first_event():
        return await anext(SMSNexusBalanceTrigger(**kwargs).run())

    event = asyncio.run(first_event())
    deferred_report = sensor.resume_execution("execute_complete", {"event": event.payload}, {})

    assert deferred_report.keys() == poke_report.keys()
    assert {k: v for k, v in deferred_report.items() if k != "checked_at"} == {
        k: v for k, v in poke_report.items() if k != "checked_at"
    }


def test_trigger_timeout_event_times_the_sensor_out():
    sensor = make_sensor(deferrable=True)

    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout", "message": "late"}}, {})


def test_trigger_timeout_event_skips_with_soft_fail():
    sensor = make_sensor(deferrable=True, soft_fail=True)

    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout", "message": "late"}}, {})


def test_triggerer_timeout_skips_with_soft_fail():
    sensor = make_sensor(deferrable=True, soft_fail=True)

    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, {})


@pytest.mark.parametrize(("status_code", "words"), [(401, "401 Unauthorized"), (403, "403 Forbidden")])
def test_trigger_credential_error_fails_even_with_soft_fail(status_code, words):
    sensor = make_sensor(deferrable=True, soft_fail=True)
    event = {"status": "error", "status_code": status_code, "message": "refused", "server_message": None}

    with pytest.raises(AirflowFailException, match=words):
        sensor.resume_execution("execute_complete", {"event": event}, {})


def test_trigger_other_error_fails_the_sensor():
    sensor = make_sensor(deferrable=True)
    event = {"status": "error", "status_code": 404, "message": "SMSNexusNotFoundError: gone"}

    with pytest.raises(Exception, match="gone"):
        sensor.resume_execution("execute_complete", {"event": event}, {})


def run_like_airflow(sensor: SMSNexusBalanceSensor):
    """Execute the sensor; when it defers, rebuild its trigger from ``serialize()``, run it on an event
    loop as the triggerer would, and resume the sensor with the event."""
    import asyncio

    try:
        return sensor.execute({})
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        assert classpath == "airflow_provider_smsnexus.triggers.balance.SMSNexusBalanceTrigger"
        trigger = SMSNexusBalanceTrigger(**json.loads(json.dumps(kwargs)))

        async def first_event():
            return await asyncio.wait_for(anext(trigger.run()), 60)

        event = asyncio.run(first_event())
        return sensor.resume_execution(deferred.method_name, {"event": event.payload}, {})


class NoisyNeighbour:
    """Another client of the same account that reads the balance as fast as it can, until stopped."""

    def __init__(self, emulator) -> None:
        self.url = f"{emulator.base_url}/balance"
        self.headers = {"Authorization": f"Bearer {emulator.token}", "Accept": "application/json"}
        #: The 429s this client was answered, by its own count.
        self.rate_limited = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            session.trust_env = False
            while not self._stop.is_set():
                if session.get(self.url, headers=self.headers, timeout=5).status_code == 429:
                    self.rate_limited += 1
                time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> NoisyNeighbour:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self._thread.join()


# -- helpers over the emulator's statistics ------------------------------------------------------------


def server_errors(stats: dict) -> int:
    return int(stats.get("faults", {}).get("fail_before", 0))


def rate_limited(stats: dict) -> int:
    return int(sum(stats.get("rate_limited", {}).values()))


def retry_lines(capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The error of each "checking again" warning the sensor logged (Airflow's task logs go to the output)."""
    out, err = capfd.readouterr()
    marker = "Balance check failed for now ("
    return [line.split(marker, 1)[1] for line in (out + err).splitlines() if marker in line]
