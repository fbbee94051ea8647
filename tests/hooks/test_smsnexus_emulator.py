"""SMSNexusHook and SMSNexusAsyncHook over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusForbiddenError,
    SMSNexusNotFoundError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook
from tests.hooks.held_send import held_send_connection, run_with_held_answer

SENDER = "+12125550100"
SMS_ONLY_SENDER = "+12125550101"


@pytest.fixture
def hook(smsnexus_conn) -> SMSNexusHook:
    return SMSNexusHook(smsnexus_conn_id=smsnexus_conn)


def use_connection(monkeypatch, emulator, conn_id: str = "smsnexus_other", **extras) -> SMSNexusHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", emulator.connection_json(**extras))
    return SMSNexusHook(smsnexus_conn_id=conn_id)


def test_send_sms_returns_the_queued_message_and_charges_credits(hook, smsnexus_emulator):
    before = hook.get_balance()["credits"]
    sent = hook.send_sms(SENDER, "+12125550150", "Hello from the test suite")
    assert sent["status"] == "queued"
    assert (sent["from"], sent["to"], sent["body"]) == (SENDER, "+12125550150", "Hello from the test suite")
    assert sent["credits_used"] == 1
    assert hook.get_balance()["credits"] == before - 1
    assert [m["id"] for m in smsnexus_emulator.admin.sent_messages()] == [sent["id"]]


def test_validation_errors_name_the_field(hook, smsnexus_emulator):
    with pytest.raises(SMSNexusValidationError) as info:
        hook.send_sms(SENDER, "not-a-number", "Hi")
    assert "to" in info.value.errors
    assert smsnexus_emulator.admin.sent_messages() == []


def test_mms_from_a_number_without_mms_is_refused(hook):
    with pytest.raises(SMSNexusValidationError) as info:
        hook.send_sms(SMS_ONLY_SENDER, "+12125550150", "Look", media_url="https://example.test/cat.png")
    assert info.value.errors


def test_too_little_credit_is_a_validation_error_on_credits(hook, smsnexus_emulator):
    smsnexus_emulator.admin.set_balance(0)
    with pytest.raises(SMSNexusValidationError) as info:
        hook.send_sms(SENDER, "+12125550150", "Hi")
    assert "credits" in info.value.errors


def test_wrong_token_is_an_auth_error(monkeypatch, smsnexus_emulator):
    conn = json.loads(smsnexus_emulator.connection_json())
    conn["password"] = "SMSNEXUS-TEST-TOKEN-not-the-token"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_BAD", json.dumps(conn))
    with pytest.raises(SMSNexusAuthError):
        SMSNexusHook(smsnexus_conn_id="smsnexus_bad").get_balance()
    assert SMSNexusHook(smsnexus_conn_id="smsnexus_bad").test_connection()[0] is False


def test_phone_numbers_balance_and_connection_check(hook):
    numbers = {n["number"]: n for n in hook.get_phone_numbers()}
    assert set(numbers[SENDER]["capabilities"]) == {"sms", "mms"}
    assert numbers["+12125550102"]["status"] != "active"
    balance = hook.get_balance()
    assert set(balance) >= {"credits", "currency", "plan", "credits_used_today"}
    ok, text = hook.test_connection()
    assert ok
    assert str(balance["credits"]) in text


def test_message_walk_yields_every_message_once(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(1234, random_seed=7)
    expected = {m["id"] for m in smsnexus_emulator.admin.messages()}
    got = [m["id"] for m in hook.iter_messages()]
    assert len(got) == len(set(got)) == 1234
    assert set(got) == expected
    assert hook.stats["requests"] == 13  # ceil(1234 / 100): no empty trailing page


def test_message_walk_under_live_traffic_misses_nothing_and_repeats_nothing(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(700, random_seed=3)
    before = {m["id"] for m in smsnexus_emulator.admin.messages()}
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    smsnexus_emulator.admin.set_faults(live_traffic_per_list=17)
    got = [m["id"] for m in hook.iter_messages(end_date=end - timedelta(seconds=1))]
    assert len(got) == len(set(got))
    assert before <= set(got)  # every message that existed before the walk


def test_window_is_exact_even_when_the_server_ignores_the_date_parameters(monkeypatch, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(900, random_seed=11)
    rows = smsnexus_emulator.admin.messages()
    stamps = sorted(m["created_at"] for m in rows)
    start, end = stamps[200], stamps[600]
    expected = {m["id"] for m in rows if start <= m["created_at"] < end}
    renamed = use_connection(
        monkeypatch, smsnexus_emulator, date_from_param="since", date_to_param="until", retry_backoff=0.01
    )
    got = [m["id"] for m in renamed.iter_messages(start_date=start, end_date=end)]
    assert sorted(got) == sorted(expected)
    honoured = use_connection(monkeypatch, smsnexus_emulator, conn_id="smsnexus_plain")
    assert sorted(m["id"] for m in honoured.iter_messages(start_date=start, end_date=end)) == sorted(expected)
    # With the documented names the server filters, so the walk reads fewer pages.
    assert honoured.stats["requests"] < renamed.stats["requests"]


def test_filters_by_status_and_direction(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(300, random_seed=5)
    rows = smsnexus_emulator.admin.messages()
    delivered_out = {m["id"] for m in rows if m["status"] == "delivered" and m["direction"] == "outbound"}
    got = {m["id"] for m in hook.iter_messages(status="delivered", direction="outbound")}
    assert got == delivered_out


def test_get_messages_meta_matches_the_reference(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(60, random_seed=1)
    page = hook.get_messages(page=2, per_page=25)
    assert page["meta"] == {"current_page": 2, "last_page": 3, "per_page": 25, "total": 60}
    assert len(page["data"]) == 25


def test_conversations_are_walked_once_each(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(500, random_seed=2)
    conversations = list(hook.iter_conversations(per_page=10))
    ids = [c["id"] for c in conversations]
    assert len(ids) == len(set(ids)) > 0
    assert {"phone_number", "contact_number", "last_message", "message_count"} <= set(conversations[0])


def test_webhooks_round_trip_and_errors(hook, monkeypatch, smsnexus_emulator):
    webhook = hook.create_webhook("https://example.test/hook", ["message.delivered"])
    assert webhook["active"] is True
    assert [w["id"] for w in hook.list_webhooks()] == [webhook["id"]]
    with pytest.raises(SMSNexusValidationError):
        hook.create_webhook("http://example.test/hook", ["message.delivered"])
    with pytest.raises(SMSNexusValidationError):
        hook.create_webhook("https://example.test/hook", ["message.exploded"])
    other_token = "SMSNEXUS-TEST-TOKEN-other-account"
    smsnexus_emulator.admin.add_account(other_token)
    conn = json.loads(smsnexus_emulator.connection_json())
    conn["password"] = other_token
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_OTHER", json.dumps(conn))
    with pytest.raises(SMSNexusForbiddenError):
        SMSNexusHook(smsnexus_conn_id="smsnexus_other").delete_webhook(webhook["id"])
    hook.delete_webhook(webhook["id"])
    with pytest.raises(SMSNexusNotFoundError):
        hook.delete_webhook(webhook["id"])
    assert hook.list_webhooks() == []


def test_reads_stay_inside_the_server_limit_without_429s(monkeypatch, smsnexus_emulator):
    smsnexus_emulator.admin.set_limits(send_limit=5, read_limit=5, window_seconds=1)
    hook = use_connection(monkeypatch, smsnexus_emulator, read_rate_limit=5, rate_limit_period=1)
    for _ in range(16):
        hook.get_balance()
    # Zero refusals whatever the arrival times: one request at a time, and the answer before the
    # request that fills a window says Remaining 0 with its Reset; a request the client sends after
    # that reset (one clock with the emulator) is counted, on arrival, in a later window.
    stats = smsnexus_emulator.admin.stats()
    assert (stats["requests"]["other"], stats["accepted"]["other"]) == (16, 16)
    assert stats["rate_limited"]["other"] == 0
    assert hook.stats["rate_limited"] == 0
    assert stats["max_in_window"]["other"] <= 5


def test_header_driven_waits_keep_a_client_inside_a_smaller_server_limit(monkeypatch, smsnexus_emulator):
    # The client is configured for far more than the server allows; the headers alone keep it inside.
    smsnexus_emulator.admin.set_limits(send_limit=3, read_limit=3, window_seconds=1)
    hook = use_connection(monkeypatch, smsnexus_emulator, read_rate_limit=1000, rate_limit_period=1)
    for _ in range(10):
        hook.get_balance()
    assert hook.stats["rate_limited"] <= 1  # only the very first window can be unknown to the client
    assert smsnexus_emulator.admin.stats()["max_in_window"]["other"] <= 3


def test_sends_are_paced_at_the_send_limit(monkeypatch, smsnexus_emulator):
    smsnexus_emulator.admin.set_limits(send_limit=4, read_limit=100, window_seconds=1)
    hook = use_connection(monkeypatch, smsnexus_emulator, send_rate_limit=4, rate_limit_period=1)
    for i in range(10):
        hook.send_sms(SENDER, f"+121255501{i:02d}", f"Hi {i}")
    # As for reads: one send at a time, each waiting on the server's own Remaining/Reset, cannot be
    # refused however late it arrives; the emulator's record is the judge.
    stats = smsnexus_emulator.admin.stats()
    assert (stats["requests"]["send"], stats["rate_limited"]["send"]) == (10, 0)
    assert hook.stats["rate_limited"] == 0
    assert sorted(m["to"] for m in smsnexus_emulator.admin.sent_messages()) == [
        f"+121255501{i:02d}" for i in range(10)
    ]
    assert stats["max_in_window"]["send"] <= 4


def test_send_answered_500_after_processing_is_reported_unknown_and_not_repeated(hook, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(fail_after_share=1.0)
    with pytest.raises(SMSNexusSendOutcomeUnknownError):
        hook.send_sms(SENDER, "+12125550150", "Once only")
    assert len(smsnexus_emulator.admin.sent_messages()) == 1


def test_send_with_connection_dropped_after_processing_is_unknown_and_not_repeated(hook, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(drop_after_share=1.0)
    with pytest.raises(SMSNexusSendOutcomeUnknownError):
        hook.send_sms(SENDER, "+12125550150", "Once only")
    assert len(smsnexus_emulator.admin.sent_messages()) == 1


def test_reads_recover_from_500s_before_processing(hook, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(250, random_seed=9)
    smsnexus_emulator.admin.set_faults(fail_before_share=0.3, random_seed=4)
    got = [m["id"] for m in hook.iter_messages()]
    assert sorted(got) == sorted(m["id"] for m in smsnexus_emulator.admin.messages())
    assert hook.stats["retries"] > 0


def test_async_hook_reads_balance_and_messages(smsnexus_conn, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(30, random_seed=1)
    smsnexus_emulator.admin.set_balance(4321)
    hook = SMSNexusAsyncHook(smsnexus_conn_id=smsnexus_conn)

    async def read():
        return await hook.get_balance(), await hook.get_messages(per_page=10, direction="outbound")

    balance, page = asyncio.run(read())
    assert balance["credits"] == 4321
    assert len(page["data"]) <= 10
    assert all(m["direction"] == "outbound" for m in page["data"])
    assert page["meta"]["per_page"] == 10


def test_async_hook_maps_errors_like_the_sync_hook(monkeypatch, smsnexus_emulator):
    conn = json.loads(smsnexus_emulator.connection_json())
    conn["password"] = "SMSNEXUS-TEST-TOKEN-wrong"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_BAD", json.dumps(conn))
    with pytest.raises(SMSNexusAuthError):
        asyncio.run(SMSNexusAsyncHook(smsnexus_conn_id="smsnexus_bad").get_balance())


def test_async_hook_retries_500s(smsnexus_conn, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(fail_before_share=0.5, random_seed=1)
    hook = SMSNexusAsyncHook(smsnexus_conn_id=smsnexus_conn)
    for _ in range(5):
        assert asyncio.run(hook.get_balance())["credits"] == 10000


def test_a_send_whose_answer_outlasts_the_read_timeout_is_unknown_and_made_once(
    smsnexus_emulator, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_HELD", held_send_connection(smsnexus_emulator))
    hook = SMSNexusHook(smsnexus_conn_id="smsnexus_held")
    admin = smsnexus_emulator.admin

    outcome = run_with_held_answer(admin, lambda: hook.send_sms(SENDER, "+12125550150", "Once only"))

    assert isinstance(outcome.get("error"), SMSNexusSendOutcomeUnknownError), outcome
    assert (outcome["error"].from_number, outcome["error"].to) == (SENDER, "+12125550150")
    assert admin.stats()["requests"]["send"] == 1
    assert [(m["to"], m["body"]) for m in admin.sent_messages()] == [("+12125550150", "Once only")]
