"""SMSNexusBalanceTrigger: serialisation, and runs against the emulator on a real event loop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_smsnexus.triggers.balance import SMSNexusBalanceTrigger

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent


def make_trigger(**kwargs: Any) -> SMSNexusBalanceTrigger:
    return SMSNexusBalanceTrigger(**{"threshold": 500, "poke_interval": 0.05, **kwargs})


def first_event(trigger: SMSNexusBalanceTrigger, limit: float = 30) -> TriggerEvent:
    """Run the trigger on a fresh event loop until its first event."""

    async def run() -> TriggerEvent:
        return await asyncio.wait_for(anext(trigger.run()), limit)

    return asyncio.run(run())


@pytest.fixture
def no_retry_conn(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``smsnexus_default`` without hook retries: every 429 and 500 reaches the trigger (no time to wait
    out a 429 either, so the hook's limiter does not hold requests back for a reset)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            max_retries=0, max_rate_limit_wait=0, retry_backoff=0.01, timeout=10
        ),
    )
    return "smsnexus_default"


# -- serialisation ---------------------------------------------------------------------------------


def test_serialize_round_trip_rebuilds_an_equal_trigger():
    trigger = SMSNexusBalanceTrigger(
        threshold=750, when="at_least", smsnexus_conn_id="sms_ops", poke_interval=120, deadline=1.8e9
    )

    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))

    assert classpath == "airflow_provider_smsnexus.triggers.balance.SMSNexusBalanceTrigger"
    assert kwargs == {
        "threshold": 750,
        "when": "at_least",
        "smsnexus_conn_id": "sms_ops",
        "poke_interval": 120.0,
        "deadline": 1.8e9,
    }
    assert rebuilt.serialize() == (classpath, kwargs)


def test_serialize_survives_airflows_own_serde():
    from airflow.sdk.serde import deserialize, serialize

    _, kwargs = make_trigger(deadline=None).serialize()

    assert deserialize(serialize(kwargs)) == kwargs


def test_rendered_string_threshold_is_stored_as_an_int():
    assert make_trigger(threshold="600").serialize()[1]["threshold"] == 600


def test_unknown_condition_is_rejected():
    with pytest.raises(ValueError, match="when must be one of"):
        make_trigger(when="over")


# -- runs against the emulator ---------------------------------------------------------------------


def test_below_yields_success_with_the_report(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(120)

    event = first_event(make_trigger(threshold=500, when="below"))

    assert event.payload["status"] == "success"
    assert event.payload["report"]["credits"] == 120
    assert json.loads(json.dumps(event.payload)) == event.payload


def test_at_least_at_the_threshold_yields_success(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(500)

    event = first_event(make_trigger(threshold=500, when="at_least"))

    assert event.payload["status"] == "success"
    assert event.payload["report"]["credits"] == 500


def test_below_at_the_threshold_waits_until_the_deadline(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(500)

    event = first_event(make_trigger(threshold=500, when="below", deadline=time.time() + 0.3))

    assert event.payload["status"] == "timeout"


def test_keeps_polling_until_the_balance_drops(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin

    def answered() -> int:  # balance reads the emulator answered (its record, not the trigger's)
        return admin.stats()["accepted"]["other"]

    async def scenario() -> TriggerEvent:
        before = await asyncio.to_thread(answered)
        pending = asyncio.ensure_future(anext(make_trigger(threshold=500).run()))
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(answered) < before + 3:  # three polls above the threshold...
            assert time.monotonic() < deadline, "the trigger did not poll three times"
            await asyncio.sleep(0.02)
        assert not pending.done(), pending.result()  # ... and no event
        await asyncio.to_thread(admin.set_balance, 50)
        return await asyncio.wait_for(pending, 10)

    event = asyncio.run(scenario())

    assert event.payload["report"]["credits"] == 50


def test_500s_then_a_good_answer_yield_success(smsnexus_emulator, no_retry_conn):
    admin = smsnexus_emulator.admin
    admin.set_balance(100)
    admin.set_faults(fail_before_share=1.0)

    async def scenario() -> TriggerEvent:
        pending = asyncio.ensure_future(anext(make_trigger(threshold=500).run()))
        while server_errors(await asyncio.to_thread(admin.stats)) < 3:
            assert not pending.done(), pending.result()
            await asyncio.sleep(0.02)
        await asyncio.to_thread(admin.set_faults)
        return await asyncio.wait_for(pending, 10)

    event = asyncio.run(scenario())

    assert event.payload["status"] == "success"
    assert event.payload["report"]["credits"] == 100


def test_429s_then_a_good_answer_yield_success(smsnexus_emulator, no_retry_conn):
    admin = smsnexus_emulator.admin
    admin.set_limits(read_limit=1, window_seconds=1)

    async def scenario() -> TriggerEvent:
        pending = asyncio.ensure_future(anext(make_trigger(threshold=1000).run()))
        while rate_limited(await asyncio.to_thread(admin.stats)) < 2:
            assert not pending.done(), pending.result()
            await asyncio.sleep(0.02)
        await asyncio.to_thread(admin.set_balance, 400)
        return await asyncio.wait_for(pending, 10)

    event = asyncio.run(scenario())

    assert event.payload["status"] == "success"
    assert event.payload["report"]["credits"] == 400


def test_wrong_token_yields_an_error_event_with_401(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch):
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = "SMSNEXUS-TEST-TOKEN-revoked-1111"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_REVOKED", json.dumps(connection))

    event = first_event(make_trigger(smsnexus_conn_id="smsnexus_revoked"))

    assert event.payload["status"] == "error"
    assert event.payload["status_code"] == 401
    assert "revoked-1111" not in json.dumps(event.payload)


def test_suspended_account_yields_an_error_event_with_403(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch):
    token = "SMSNEXUS-TEST-TOKEN-suspended-5555"
    smsnexus_emulator.admin.add_account(token, suspended=True)
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = token
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_SUSPENDED", json.dumps(connection))

    event = first_event(make_trigger(smsnexus_conn_id="smsnexus_suspended"))

    assert event.payload["status"] == "error"
    assert event.payload["status_code"] == 403
    assert "suspended-5555" not in json.dumps(event.payload)


def test_unreachable_server_is_retried_until_the_deadline(unreachable_conn_id):
    event = first_event(make_trigger(smsnexus_conn_id=unreachable_conn_id, deadline=time.time() + 0.3))

    assert event.payload["status"] == "timeout"


def test_does_not_block_the_event_loop_while_waiting_for_the_server(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_balance(100)
    smsnexus_emulator.admin.set_faults(latency_ms=300)

    async def scenario() -> tuple[TriggerEvent, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        event = await asyncio.wait_for(anext(make_trigger(threshold=500).run()), 10)
        ticking.cancel()
        return event, ticks

    event, ticks = asyncio.run(scenario())

    assert event.payload["status"] == "success"
    assert ticks >= 5  # a blocking request would have frozen the ticker for the whole 300 ms


# -- helpers over the emulator's statistics ------------------------------------------------------------


def server_errors(stats: dict) -> int:
    return int(stats.get("faults", {}).get("fail_before", 0))


def rate_limited(stats: dict) -> int:
    return int(sum(stats.get("rate_limited", {}).values()))
