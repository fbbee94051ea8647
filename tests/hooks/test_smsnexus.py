"""SMSNexusHook against a mocked transport: the cases a real server cannot produce on demand.

``responses`` answers the hook's urllib3 requests through ``tests/_responses_urllib3.py``; transport failures
are registered as the urllib3 errors the hook's pool raises. The same hook is tested over real HTTP against
the emulator in ``test_smsnexus_emulator.py``.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import responses
from airflow.sdk.exceptions import AirflowFailException
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

from airflow_provider_smsnexus import get_provider_info
from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusForbiddenError,
    SMSNexusNotFoundError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusServerError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.id_set import IdSet

BASE = "http://smsnexus.test/api"
TOKEN = "tok-SMSNEXUS-MOCK-SECRET-91c4"
SEND_URL = f"{BASE}/sms/send"
MESSAGES_URL = f"{BASE}/messages"
SENT_MESSAGE = {
    "id": 1,
    "from": "+12125550100",
    "to": "+12125550150",
    "body": "Hi",
    "status": "queued",
    "credits_used": 1,
    "created_at": "2026-03-08T12:00:00Z",
}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A virtual clock: sleeping records the delay and moves ``time.time`` forward instead of waiting."""
    recorded: list[float] = []
    now = [time.time()]

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "time", lambda: now[0])
    return recorded


def make_hook(monkeypatch: pytest.MonkeyPatch, host: str = BASE, **extra) -> SMSNexusHook:
    extra = {"retry_backoff": 0.01, "retry_backoff_max": 0.02, "max_retries": 3, **extra}
    conn = {"conn_type": "smsnexus", "host": host, "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_MOCK", json.dumps(conn))
    return SMSNexusHook(smsnexus_conn_id="smsnexus_mock")


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> SMSNexusHook:
    return make_hook(monkeypatch)


def page(rows: list[dict], current: int, last: int, per_page: int = 100) -> dict:
    return {
        "success": True,
        "data": rows,
        "meta": {"current_page": current, "last_page": last, "per_page": per_page, "total": 0},
    }


def message(id_: int, created_at: str) -> dict:
    return {**SENT_MESSAGE, "id": id_, "created_at": created_at, "direction": "outbound"}


# The errors urllib3 raises (retries=False) for each failure, as the hook's pool meets them.
def reset() -> ProtocolError:
    return ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(None, "/api", "Read timed out. (read timeout=30)")


def refused() -> NewConnectionError:
    return NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")


def connect_timeout() -> ConnectTimeoutError:
    return ConnectTimeoutError(None, "Connection to smsnexus.test timed out. (connect timeout=30)")


# -- connection and requests -----------------------------------------------------------------------


@responses.activate
def test_every_request_carries_bearer_token_and_json_headers(hook):
    responses.post(SEND_URL, json={"success": True, "data": SENT_MESSAGE})
    hook.send_sms("+12125550100", "+12125550150", "Hi", media_url="https://example.test/a.png")
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "from": "+12125550100",
        "to": "+12125550150",
        "message": "Hi",
        "media_url": "https://example.test/a.png",
    }


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", "https://www.smsnexus.net/api/balance"),
        ("http://127.0.0.1:8025/api", "http://127.0.0.1:8025/api/balance"),
        ("http://127.0.0.1:8025/api/", "http://127.0.0.1:8025/api/balance"),
        ("www.smsnexus.net/api", "https://www.smsnexus.net/api/balance"),
    ],
)
def test_base_url_comes_from_host_with_the_public_default(monkeypatch, host, expected):
    assert make_hook(monkeypatch, host=host).config.url("/api/balance") == expected


def test_invalid_extra_is_reported_by_name(monkeypatch):
    hook = make_hook(monkeypatch, max_retries="many")
    with pytest.raises(SMSNexusError, match="invalid extra"):
        _ = hook.config


def test_one_pool_per_hook_and_a_session_for_ad_hoc_calls(hook):
    assert hook.pool is hook.pool
    assert hook.get_conn() is hook.session is hook.session
    assert hook.session.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_the_pool_is_reused_across_requests_and_the_session_is_never_built(hook):
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}})
    hook.get_balance()
    pool = hook.pool
    hook.get_balance()
    assert hook.pool is pool
    assert len(responses.calls) == 2
    assert "session" not in vars(hook)  # the hook's own requests never needed requests' session


def test_threads_that_start_together_share_one_pool(hook):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as threads:
        pools = list(threads.map(lambda _: hook.pool, range(32)))
    assert {id(pool) for pool in pools} == {id(hook.pool)}


# -- error mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, SMSNexusAuthError),
        (403, SMSNexusForbiddenError),
        (404, SMSNexusNotFoundError),
        (422, SMSNexusValidationError),
        (400, SMSNexusError),
    ],
)
@responses.activate
def test_each_error_status_maps_to_its_class(hook, status, error_class):
    responses.get(f"{BASE}/balance", status=status, json={"success": False, "message": f"status {status}"})
    with pytest.raises(error_class, match=f"status {status}") as info:
        hook.get_balance()
    assert info.value.status_code == status
    assert info.value.server_message == f"status {status}"
    assert len(responses.calls) == 1  # 4xx is never retried


@responses.activate
def test_validation_error_carries_the_field_errors(hook):
    errors = {"to": ["The to field is required."], "message": ["The message field is required."]}
    responses.post(
        SEND_URL, status=422, json={"success": False, "message": "Validation failed", "errors": errors}
    )
    with pytest.raises(SMSNexusValidationError) as info:
        hook.send_sms("+12125550100", "", "")
    assert info.value.errors == errors
    assert "to: The to field is required." in str(info.value)


def test_auth_and_validation_errors_fail_the_task_without_retries():
    assert issubclass(SMSNexusAuthError, AirflowFailException)
    assert issubclass(SMSNexusValidationError, AirflowFailException)
    assert not issubclass(SMSNexusServerError, AirflowFailException)
    assert not issubclass(SMSNexusRateLimitError, AirflowFailException)


@responses.activate
def test_html_error_page_still_gives_the_right_class_and_a_readable_message(hook, sleeps):
    html = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
    responses.get(f"{BASE}/balance", status=502, body=html, content_type="text/html")
    with pytest.raises(SMSNexusServerError, match="502 Bad Gateway") as info:
        hook.get_balance()
    assert info.value.status_code == 502
    assert len(responses.calls) == 4  # first try + 3 retries


@responses.activate
def test_html_page_with_status_200_is_a_response_error(hook):
    responses.get(f"{BASE}/balance", status=200, body="<html>captive portal</html>", content_type="text/html")
    with pytest.raises(SMSNexusResponseError, match="not JSON"):
        hook.get_balance()


@responses.activate
def test_unexpected_data_shape_is_a_response_error(hook):
    responses.get(f"{BASE}/phone-numbers", json={"success": True, "data": {"not": "a list"}})
    with pytest.raises(SMSNexusResponseError, match="list"):
        hook.get_phone_numbers()


def test_errors_survive_pickling_with_their_attributes():
    import pickle

    error = SMSNexusValidationError("bad", server_message="Validation failed", errors={"to": ["x"]})
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.errors, clone.status_code, clone.server_message, str(clone)) == (
        {"to": ["x"]},
        422,
        "Validation failed",
        "bad",
    )


# -- retries ---------------------------------------------------------------------------------------


@responses.activate
def test_reads_retry_5xx_with_capped_backoff(hook, sleeps):
    responses.get(f"{BASE}/balance", status=500, json={"success": False, "message": "boom"})
    responses.get(f"{BASE}/balance", status=503, body="")
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 7}})
    assert hook.get_balance() == {"credits": 7}
    assert len(responses.calls) == 3
    assert len(sleeps) == 2
    assert all(0 < s <= 0.02 for s in sleeps)
    assert hook.stats["retries"] == 2


@responses.activate
def test_reads_retry_connection_errors_and_timeouts(hook, sleeps):
    responses.get(f"{BASE}/balance", body=reset())
    responses.get(f"{BASE}/balance", body=read_timeout())
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 7}})
    assert hook.get_balance()["credits"] == 7
    assert len(responses.calls) == 3


@responses.activate
def test_reads_give_up_after_max_retries(hook, sleeps):
    responses.get(f"{BASE}/balance", body=read_timeout())
    with pytest.raises(SMSNexusServerError, match="after 4 attempt"):
        hook.get_balance()
    assert len(responses.calls) == 4


@responses.activate
def test_delete_retries_5xx(hook, sleeps):
    responses.delete(f"{BASE}/webhooks/5", status=500, json={"success": False})
    responses.delete(f"{BASE}/webhooks/5", json={"success": True, "message": "Webhook deleted successfully"})
    hook.delete_webhook(5)
    assert len(responses.calls) == 2


@responses.activate
def test_send_is_not_retried_after_a_5xx(hook, sleeps):
    responses.post(SEND_URL, status=500, json={"success": False, "message": "oops"})
    with pytest.raises(SMSNexusSendOutcomeUnknownError) as info:
        hook.send_sms("+12125550100", "+12125550150", "Hi")
    assert len(responses.calls) == 1
    assert info.value.status_code == 500
    assert (info.value.from_number, info.value.to) == ("+12125550100", "+12125550150")


@responses.activate
def test_send_is_not_retried_after_read_timeout(hook, sleeps):
    responses.post(SEND_URL, body=read_timeout())
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="may or may not"):
        hook.send_sms("+12125550100", "+12125550150", "Hi")
    assert len(responses.calls) == 1


@responses.activate
def test_send_is_not_retried_after_connection_dropped_mid_request(hook, sleeps):
    responses.post(SEND_URL, body=reset())
    with pytest.raises(SMSNexusSendOutcomeUnknownError):
        hook.send_sms("+12125550100", "+12125550150", "Hi")
    assert len(responses.calls) == 1


@responses.activate
def test_send_is_retried_when_the_connection_could_not_be_opened(hook, sleeps):
    responses.post(SEND_URL, body=refused())
    responses.post(SEND_URL, body=connect_timeout())
    responses.post(SEND_URL, json={"success": True, "data": SENT_MESSAGE})
    assert hook.send_sms("+12125550100", "+12125550150", "Hi")["id"] == 1
    assert len(responses.calls) == 3


@responses.activate
def test_send_is_retried_after_429_because_a_refused_request_was_not_processed(hook, sleeps):
    responses.post(SEND_URL, status=429, json={"success": False}, headers={"Retry-After": "2"})
    responses.post(SEND_URL, json={"success": True, "data": SENT_MESSAGE})
    assert hook.send_sms("+12125550100", "+12125550150", "Hi")["id"] == 1
    assert len(responses.calls) == 2
    assert sleeps[0] == pytest.approx(2.0)
    assert hook.stats["rate_limited"] == 1


@responses.activate
def test_429_waits_until_an_epoch_reset(hook, sleeps):
    reset = int(time.time()) + 5
    responses.get(f"{BASE}/balance", status=429, json={}, headers={"X-RateLimit-Reset": str(reset)})
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}})
    hook.get_balance()
    assert 3.9 < sleeps[0] <= 5.1
    assert sum(sleeps) == pytest.approx(sleeps[0])  # the limiter did not wait a second time


@responses.activate
def test_429_waits_for_a_relative_reset_in_seconds(hook, sleeps):
    responses.get(f"{BASE}/balance", status=429, json={}, headers={"X-RateLimit-Reset": "3"})
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}})
    hook.get_balance()
    assert 2.9 < sleeps[0] <= 3.1


@responses.activate
def test_retry_after_http_date_wins_over_reset(hook, sleeps):
    when = datetime.now(timezone.utc) + timedelta(seconds=10)
    headers = {"Retry-After": format_datetime(when, usegmt=True), "X-RateLimit-Reset": "1"}
    responses.get(f"{BASE}/balance", status=429, json={}, headers=headers)
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}})
    hook.get_balance()
    assert 8.0 < sleeps[0] <= 10.1


@responses.activate
def test_429s_are_retried_until_max_rate_limit_wait_is_spent_not_max_retries(monkeypatch, sleeps):
    hook = make_hook(monkeypatch, max_rate_limit_wait=3, retry_backoff=0.2, retry_backoff_max=0.4)
    reset = int(time.time()) + 1
    responses.get(
        f"{BASE}/balance",
        status=429,
        json={"success": False, "message": "Too Many Attempts."},
        headers={"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"},
    )
    with pytest.raises(SMSNexusRateLimitError) as info:
        hook.get_balance()
    assert info.value.reset_at == reset
    assert len(responses.calls) > hook.config.max_retries + 1  # a count of 429s did not end it
    assert 2 < sum(sleeps) <= 3  # the time did


@responses.activate
def test_429_with_a_wait_beyond_the_cap_fails_instead_of_sleeping_for_hours(monkeypatch, sleeps):
    hook = make_hook(monkeypatch, max_rate_limit_wait=60)
    responses.get(f"{BASE}/balance", status=429, json={}, headers={"Retry-After": "3600"})
    with pytest.raises(SMSNexusRateLimitError):
        hook.get_balance()
    assert sleeps == []


@responses.activate
def test_no_request_is_sent_after_the_server_announced_remaining_zero(hook, sleeps):
    reset = int(time.time()) + 30
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    responses.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}}, headers=headers)
    hook.get_balance()
    assert sleeps == []
    hook.get_balance()
    # The second request waited for the announced reset before it left.
    assert len(sleeps) == 1
    assert 28 < sleeps[0] <= 30.1
    assert len(responses.calls) == 2


# -- pagination ------------------------------------------------------------------------------------


@responses.activate
def test_pagination_follows_last_page_reread_on_every_page(hook):
    responses.get(MESSAGES_URL, json=page([message(3, "2026-03-08T12:00:03Z")], 1, 2))
    responses.get(MESSAGES_URL, json=page([message(2, "2026-03-08T12:00:02Z")], 2, 3))
    responses.get(MESSAGES_URL, json=page([message(1, "2026-03-08T12:00:01Z")], 3, 3))
    ids = [m["id"] for m in hook.iter_messages()]
    assert ids == [3, 2, 1]
    assert [c.request.params["page"] for c in responses.calls] == ["1", "2", "3"]
    assert all(c.request.params["per_page"] == "100" for c in responses.calls)


@responses.activate
def test_pagination_stops_on_an_empty_page_when_meta_is_missing(hook):
    responses.get(MESSAGES_URL, json={"success": True, "data": [message(2, "2026-03-08T12:00:02Z")]})
    responses.get(MESSAGES_URL, json={"success": True, "data": []})
    assert [m["id"] for m in hook.iter_messages()] == [2]
    assert len(responses.calls) == 2


@responses.activate
def test_pagination_with_drift_never_yields_an_id_twice(hook):
    # A new message arrived between page 1 and page 2: message 3 moved down onto page 2.
    responses.get(
        MESSAGES_URL,
        json=page([message(4, "2026-03-08T12:00:04Z"), message(3, "2026-03-08T12:00:03Z")], 1, 2, 2),
    )
    responses.get(
        MESSAGES_URL,
        json=page([message(3, "2026-03-08T12:00:03Z"), message(2, "2026-03-08T12:00:02Z")], 2, 3, 2),
    )
    responses.get(MESSAGES_URL, json=page([message(1, "2026-03-08T12:00:01Z")], 3, 3, 2))
    ids = [m["id"] for m in hook.iter_messages(per_page=2)]
    assert ids == [4, 3, 2, 1]


@responses.activate
def test_window_is_sent_and_applied_on_the_client_when_the_server_ignores_it(hook):
    rows = [message(i, f"2026-03-0{i}T00:00:00Z") for i in range(9, 0, -1)]
    responses.get(MESSAGES_URL, json=page(rows[:5], 1, 2, 5))
    responses.get(MESSAGES_URL, json=page(rows[5:], 2, 2, 5))
    got = list(
        hook.iter_messages(
            start_date="2026-03-03T00:00:00Z", end_date=datetime(2026, 3, 6, tzinfo=timezone.utc), per_page=5
        )
    )
    assert [m["id"] for m in got] == [5, 4, 3]
    params = responses.calls[0].request.params
    assert params["start_date"] == "2026-03-03T00:00:00Z"
    assert params["end_date"] == "2026-03-06T00:00:00Z"


@responses.activate
def test_newest_first_walk_stops_once_past_the_window_start(hook):
    rows = [message(i, f"2026-03-{i:02d}T00:00:00Z") for i in range(20, 0, -1)]
    for n in range(4):
        responses.get(MESSAGES_URL, json=page(rows[n * 5 : n * 5 + 5], n + 1, 4, 5))
    got = list(hook.iter_messages(start_date="2026-03-14T00:00:00Z", per_page=5))
    assert [m["id"] for m in got] == [20, 19, 18, 17, 16, 15, 14]
    assert len(responses.calls) == 2  # page 2 reached 13 < start; pages 3-4 not read


@responses.activate
def test_date_parameter_names_come_from_the_connection(monkeypatch):
    hook = make_hook(monkeypatch, date_from_param="from", date_to_param="to")
    responses.get(MESSAGES_URL, json=page([], 1, 1))
    hook.get_messages(
        start_date="2026-03-01", end_date="2026-03-02", status="delivered", direction="outbound"
    )
    params = responses.calls[0].request.params
    assert params == {
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
        "status": "delivered",
        "direction": "outbound",
        "page": "1",
        "per_page": "25",
    }


def test_per_page_above_100_is_refused_before_any_request(hook):
    with pytest.raises(SMSNexusError, match="per_page"):
        hook.get_messages(per_page=101)


def test_bad_date_is_a_clear_error(hook):
    with pytest.raises(SMSNexusError, match="start_date='yesterday'"):
        hook.get_messages(start_date="yesterday")


@responses.activate
def test_row_without_created_at_in_a_windowed_walk_is_a_clear_error(hook):
    responses.get(MESSAGES_URL, json=page([{"id": 1}], 1, 1))
    with pytest.raises(SMSNexusResponseError, match="created_at"):
        list(hook.iter_messages(start_date="2026-03-01"))


@pytest.mark.parametrize("bad_id", [[1], {"id": 1}, None, True, 1.5])
@responses.activate
def test_row_with_an_id_that_is_not_a_number_is_a_clear_error(hook, bad_id):
    responses.get(MESSAGES_URL, json=page([{"id": bad_id, "created_at": "2026-03-08T12:00:00Z"}], 1, 1))
    with pytest.raises(SMSNexusResponseError, match="not a number"):
        list(hook.iter_messages())


def test_id_set_handles_dense_sparse_and_odd_ids():
    ids = IdSet()
    assert all(ids.add(i) for i in range(1000, 3000))
    assert not ids.add(1500)
    assert ids.add(10**15)
    assert not ids.add(10**15)
    assert ids.add("abc")
    assert not ids.add("abc")
    assert ids.size == 2002


# -- other endpoints -------------------------------------------------------------------------------


@responses.activate
def test_webhook_endpoints(hook):
    webhook = {"id": 5, "url": "https://example.test/h", "events": ["message.received"], "active": True}
    responses.post(f"{BASE}/webhooks", json={"success": True, "data": webhook})
    responses.get(f"{BASE}/webhooks", json={"success": True, "data": [webhook]})
    responses.delete(f"{BASE}/webhooks/5", json={"success": True, "message": "Webhook deleted successfully"})
    assert hook.create_webhook("https://example.test/h", ["message.received"]) == webhook
    assert json.loads(responses.calls[0].request.body) == {
        "url": "https://example.test/h",
        "events": ["message.received"],
    }
    assert hook.list_webhooks() == [webhook]
    assert hook.delete_webhook(5) is None


@responses.activate
def test_test_connection_reports_failure_without_raising(hook):
    responses.get(f"{BASE}/balance", status=401, json={"success": False, "message": "Unauthenticated."})
    ok, text = hook.test_connection()
    assert ok is False
    assert "Unauthenticated" in text
    assert TOKEN not in text


@responses.activate
def test_test_connection_reports_the_balance(hook):
    responses.get(
        f"{BASE}/balance", json={"success": True, "data": {"credits": 5000, "plan": "Professional"}}
    )
    assert hook.test_connection() == (True, "Connected: 5000 credits on plan Professional")


# -- secrets ---------------------------------------------------------------------------------------


@responses.activate
def test_token_never_appears_in_repr_errors_or_logs(hook, caplog, capfd, sleeps):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{BASE}/balance", body=NewConnectionError(None, f"{BASE} unreachable"))
    with pytest.raises(SMSNexusServerError) as info:
        hook.get_balance()
    assert TOKEN not in repr(hook)
    assert TOKEN not in repr(hook.config)
    assert TOKEN not in str(info.value)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert TOKEN not in logs
    assert "retry 1 of 3" in logs  # the retries were logged, so the check above looked at real lines


def test_config_repr_hides_token():
    token = "SMSNEXUS-TEST-TOKEN-repr"
    assert token not in repr(SMSNexusConnectionConfig(token=token))


# -- provider metadata -----------------------------------------------------------------------------


def test_provider_info_registers_the_connection_type_and_modules():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-smsnexus"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "smsnexus"
    assert conn_type["hook-class-name"] == "airflow_provider_smsnexus.hooks.smsnexus.SMSNexusHook"
    behaviour = conn_type[
        "ui-field-behaviour"
    ]  # the provider info's keys are kebab-case, the hook's snake_case
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API token"}
    assert behaviour["placeholders"]["host"] == "https://www.smsnexus.net/api"
    assert set(behaviour["hidden-fields"]) == {"login", "schema", "port"}
    hook_behaviour = SMSNexusHook.get_ui_field_behaviour()
    assert set(hook_behaviour["hidden_fields"]) == set(behaviour["hidden-fields"])
    assert (hook_behaviour["relabeling"], hook_behaviour["placeholders"]) == (
        behaviour["relabeling"],
        behaviour["placeholders"],
    )
