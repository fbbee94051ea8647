"""Whatever a server (or a proxy in front of it) answers, the hook ends in its own typed error or a value of
the documented type: random JSON shapes, missing fields, wrong types, non-JSON bodies, random status codes
and rate-limit headers, served with ``responses`` (a real server cannot be made to answer garbage on demand).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from tests.hostile.hostile_strategies import envelopes, json_values
from tests.hostile.hostile_support import attempt, no_token

if TYPE_CHECKING:
    from collections.abc import Callable

BASE = "https://smsnexus.invalid/api"
TOKEN = "SMSNEXUS-MOCK-SECRET-hostile-hook"
CONN_ID = "smsnexus_garbage"

# -- what a hostile server answers ------------------------------------------------------------------------

header_values = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "nan",
            "inf",
            "-inf",
            "1e999",
            "abc",
            "",
            "1709892000",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
)
headers = st.dictionaries(
    st.sampled_from(
        ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Content-Type"]
    ),
    header_values,
    max_size=4,
)
bodies = st.one_of(
    envelopes.map(json.dumps),
    json_values.map(json.dumps),
    envelopes.map(lambda e: json.dumps(e)[: max(1, len(json.dumps(e)) // 2)]),  # truncated JSON
    st.text(max_size=60),
    st.binary(max_size=60),
    st.sampled_from(
        [
            "",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "null",
            "NaN",
            '{"success": true, "data": NaN}',
            '{"success": true, "data": {"credits": Infinity}}',
            "\ufeff{}",
            "[" * 5000 + "]" * 5000,
        ]
    ),
)
statuses = st.one_of(
    st.sampled_from(
        [200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 409, 418, 422, 429, 500, 502, 503, 504]
    ),
    st.integers(min_value=200, max_value=599),
)

# -- what the hook is asked to do ---------------------------------------------------------------------------

CALLS: dict[str, tuple[str, str, Callable[[SMSNexusHook], Any], type | None]] = {
    "send_sms": ("POST", "/sms/send", lambda h: h.send_sms("+12125550100", "+12125550111", "hi"), dict),
    "get_balance": ("GET", "/balance", lambda h: h.get_balance(), dict),
    "get_messages": ("GET", "/messages", lambda h: h.get_messages(per_page=100), dict),
    "iter_messages": ("GET", "/messages", lambda h: list(h.iter_messages()), list),
    "iter_messages_window": (
        "GET",
        "/messages",
        lambda h: list(h.iter_messages(start_date="2026-03-01", end_date="2026-04-01")),
        list,
    ),
    "get_phone_numbers": ("GET", "/phone-numbers", lambda h: h.get_phone_numbers(), list),
    "iter_conversations": ("GET", "/conversations", lambda h: list(h.iter_conversations()), list),
    "create_webhook": (
        "POST",
        "/webhooks",
        lambda h: h.create_webhook("https://x.example/h", ["message.received"]),
        dict,
    ),
    "list_webhooks": ("GET", "/webhooks", lambda h: h.list_webhooks(), list),
    "delete_webhook": ("DELETE", "/webhooks/5", lambda h: h.delete_webhook(5), type(None)),
}

#: The error class each refused answer must map to (sends answered 5xx: outcome unknown).
EXPECTED_ERRORS = {
    401: SMSNexusAuthError,
    403: SMSNexusForbiddenError,
    404: SMSNexusNotFoundError,
    422: SMSNexusValidationError,
    429: SMSNexusRateLimitError,
}


@pytest.fixture
def garbage_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    extras = {
        "max_retries": 1,
        "retry_backoff": 0.001,
        "retry_backoff_max": 0.002,
        "max_rate_limit_wait": 0.01,
        "read_rate_limit": 100_000,
        "send_rate_limit": 100_000,
        "rate_limit_period": 1,
    }
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "smsnexus", "host": BASE, "password": TOKEN, "extra": extras}),
    )
    return CONN_ID


def serve(mock: responses.RequestsMock, method: str, path: str, status: int, body: Any, hdrs: dict) -> None:
    """Serve the answer to every request, except pages after the first of a walk: those are empty (so that
    a walk ends; the walk's own page logic is tested below)."""

    def answer(request: Any) -> tuple[int, dict, Any]:
        page = parse_qs(urlsplit(request.url).query).get("page", ["1"])[0]
        if page != "1":
            return 200, {}, json.dumps({"success": True, "data": [], "meta": {"last_page": 1}})
        return status, hdrs, "" if status in (204, 304) else body  # HTTP forbids a body there

    mock.add_callback(method, f"{BASE}{path}", callback=answer)


def check_outcome(name: str, status: int, call: Callable[[SMSNexusHook], Any], expect: type | None, figures):
    hook = SMSNexusHook(CONN_ID)
    # Anything else than an SMSNexusError propagates: a bare traceback fails the test with its example.
    result, error = attempt(lambda: call(hook))
    if error is not None:
        assert no_token(figures, str(error), repr(error), error.server_message, repr(hook))
        if 200 <= status < 300:
            expected: type = SMSNexusResponseError
        elif name == "send_sms" and status >= 500:
            expected = SMSNexusSendOutcomeUnknownError
        elif status >= 500:
            expected = SMSNexusServerError
        else:
            expected = EXPECTED_ERRORS.get(status, SMSNexusError)
        assert isinstance(error, expected), (name, status, error)
        figures.add("hook_garbage_typed_errors")
        return
    assert 200 <= status < 300, (name, status)
    assert isinstance(result, expect), (name, type(result))
    if isinstance(result, list):
        assert all(isinstance(row, dict) for row in result)
    if name == "get_messages":
        assert isinstance(result["data"], list)
    figures.add("hook_garbage_accepted")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CALLS)), status=statuses, body=bodies, hdrs=headers)
def test_any_answer_ends_in_a_typed_error_or_a_documented_value(
    garbage_conn, figures, name, status, body, hdrs
):
    figures.add("hypothesis_examples")
    figures.add("hypothesis_examples_hook")
    method, path, call, expect = CALLS[name]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        serve(mock, method, path, status, body, hdrs)
        check_outcome(name, status, call, expect, figures)


# -- cases found by the properties above, kept as examples (each crashed with a bare exception) -----------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-RateLimit-Remaining", "inf"),
        ("X-RateLimit-Limit", "inf"),
        ("X-RateLimit-Reset", "-inf"),
        ("X-RateLimit-Reset", "1e999"),
    ],
)
def test_an_infinite_rate_limit_header_is_not_a_crash(garbage_conn, figures, header, value):
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/balance", json={"success": True, "data": {"credits": 1}}, headers={header: value})
        check_outcome("get_balance", 200, CALLS["get_balance"][2], dict, figures)


@pytest.mark.parametrize("row_id", [[1], {"a": 1}, [[]]])
def test_a_row_whose_id_is_a_list_or_object_is_a_response_error(garbage_conn, figures, row_id):
    with responses.RequestsMock() as mock:
        mock.get(
            f"{BASE}/messages", json={"success": True, "data": [{"id": row_id}], "meta": {"last_page": 1}}
        )
        with pytest.raises(SMSNexusResponseError):
            list(SMSNexusHook(CONN_ID).iter_messages())


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_a_deeply_nested_body_is_a_response_error(garbage_conn, depth):
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/balance", body="[" * depth + "]" * depth)
        with pytest.raises(SMSNexusResponseError):
            SMSNexusHook(CONN_ID).get_balance()


@pytest.mark.parametrize("meta", [None, {"last_page": 10**9}], ids=["no-meta", "huge-last-page"])
def test_a_server_that_ignores_the_page_parameter_does_not_trap_the_walk(garbage_conn, meta):
    # The same page for every page number: a walk must notice it is going nowhere, not read forever.
    served = itertools.count()

    def same_page(request: Any) -> tuple[int, dict, str]:
        if next(served) >= 60:  # the test's own safety net: a real server would go on forever
            return 200, {}, json.dumps({"success": True, "data": []})
        body: dict[str, Any] = {"success": True, "data": [{"id": n, "body": "x"} for n in range(1, 26)]}
        if meta:
            body["meta"] = meta
        return 200, {}, json.dumps(body)

    with responses.RequestsMock() as mock:
        mock.add_callback("GET", f"{BASE}/messages", callback=same_page)
        try:
            rows = list(SMSNexusHook(CONN_ID).iter_messages(per_page=25))
        except SMSNexusResponseError:
            rows = None
        requests_made = next(served)
    assert requests_made < 20, f"the walk read {requests_made} pages of nothing new"
    assert rows is None or [r["id"] for r in rows] == list(range(1, 26))


def test_a_server_that_echoes_the_token_in_its_error_does_not_leak_it(garbage_conn, figures):
    # Some gateways answer "Invalid API key <key>": the hook's error text must not carry it on.
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/balance", status=401, json={"success": False, "message": f"Invalid token {TOKEN}"})
        mock.get(f"{BASE}/webhooks", status=502, body=f"upstream refused Authorization: Bearer {TOKEN}")
        hook = SMSNexusHook(CONN_ID)
        with pytest.raises(SMSNexusAuthError) as auth:
            hook.get_balance()
        with pytest.raises(SMSNexusServerError) as server:
            hook.list_webhooks()
        ok, text = hook.test_connection()
    assert not ok
    leaked = sum(TOKEN in shown for shown in (str(auth.value), str(server.value), text))
    figures.add("texts_checked_for_tokens", 3)
    figures.add("tokens_leaked", leaked)
    assert leaked == 0, "the token reached an exception text"


@pytest.mark.parametrize(
    "reset",
    [
        pytest.param(lambda now: str(int(now * 1000)), id="epoch-in-milliseconds"),
        pytest.param(lambda now: str(10 * 365 * 86400), id="ten-years-from-now"),
    ],
)
@pytest.mark.parametrize("status", [200, 429])
def test_an_absurd_rate_limit_reset_never_puts_the_hook_to_sleep_for_ever(
    garbage_conn, monkeypatch, reset, status
):
    import time

    from airflow_provider_smsnexus.utils import rate_limit

    extras = {"max_retries": 1, "max_rate_limit_wait": 0.3}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "smsnexus", "host": BASE, "password": TOKEN, "extra": extras}),
    )
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if seconds > 3600:
            raise TimeoutError(f"asked to sleep {seconds:.0f} s")
        real_sleep(min(seconds, 1.0))

    monkeypatch.setattr(rate_limit.time, "sleep", sleep)
    headers = {
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset(time.time()),
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{BASE}/balance", status=status, json={"success": status == 200, "data": {}}, headers=headers
        )
        hook = SMSNexusHook(CONN_ID)
        for _ in range(2):
            with contextlib.suppress(SMSNexusRateLimitError):
                hook.get_balance()
    assert max(slept, default=0) <= hook.config.max_rate_limit_wait


@pytest.mark.parametrize("method", ["get_phone_numbers", "list_webhooks"])
@pytest.mark.parametrize("data", [[None], [1, 2], ["+12125550100"], [[]], [{"id": 1}, None]])
def test_a_list_whose_items_are_not_objects_is_a_response_error(garbage_conn, method, data):
    # list[dict] is the documented value: a caller that reads item["number"] must not meet a None.
    path = {"get_phone_numbers": "/phone-numbers", "list_webhooks": "/webhooks"}[method]
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}{path}", json={"success": True, "data": data})
        with pytest.raises(SMSNexusResponseError):
            getattr(SMSNexusHook(CONN_ID), method)()
