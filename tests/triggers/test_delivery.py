"""Tests of SMSNexusDeliveryTrigger: counts, the window, and runs against the emulator."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers.delivery import (
    SMSNexusDeliveryTrigger,
    delivery_counts,
    read_statuses,
    window_from,
)


def _first_event(trigger: SMSNexusDeliveryTrigger) -> dict:
    async def run() -> dict:
        return (await asyncio.wait_for(anext(trigger.run()), 30)).payload

    return asyncio.run(run())


def _mark(admin, message_id: int, status: str) -> None:
    response = admin.session.post(
        f"{admin.root_url}/_emulator/accounts/1/messages/{message_id}/status", json={"status": status}
    )
    assert response.status_code == 200, response.text


def _send(conn_id: str, count: int) -> list[int]:
    hook = SMSNexusHook(smsnexus_conn_id=conn_id)
    return [int(hook.send_sms("+12125550100", f"+1212555015{i}", f"m{i}")["id"]) for i in range(count)]


def test_delivery_counts_of_a_mix() -> None:
    counts = delivery_counts({1: "delivered", 2: "failed", 3: "queued", 4: None}, "c")
    assert counts == {
        "campaign_id": "c", "total": 4, "delivered": 1, "failed": 1, "pending": 2, "not_listed": 1,
        "delivery_rate": 0.25, "complete": False,
    }  # fmt: skip
    assert delivery_counts({})["delivery_rate"] is None


def test_window_from_opens_an_hour_before_the_oldest_send() -> None:
    assert window_from("2026-03-08T12:00:00Z") == datetime(2026, 3, 8, 11, tzinfo=timezone.utc)
    assert window_from(None) is None


def test_read_statuses_reads_each_ids_listed_status(smsnexus_emulator, smsnexus_conn) -> None:
    ids = _send(smsnexus_conn, 2)
    _mark(smsnexus_emulator.admin, ids[0], "delivered")
    statuses = read_statuses(SMSNexusHook(smsnexus_conn_id=smsnexus_conn), [*ids, 999999], None)
    record = {m["id"]: m["status"] for m in smsnexus_emulator.admin.sent_messages()}
    assert statuses == {ids[0]: "delivered", ids[1]: record[ids[1]], 999999: None}
    assert record[ids[0]] == "delivered"


def test_trigger_fires_when_every_message_is_final(smsnexus_emulator, smsnexus_conn) -> None:
    ids = _send(smsnexus_conn, 2)
    _mark(smsnexus_emulator.admin, ids[0], "delivered")
    _mark(smsnexus_emulator.admin, ids[1], "failed")
    payload = _first_event(SMSNexusDeliveryTrigger(message_ids=ids, campaign_id="c", poke_interval=0.01))
    assert payload["status"] == "success"
    assert payload["statuses"] == {str(ids[0]): "delivered", str(ids[1]): "failed"}
    assert (payload["counts"]["delivered"], payload["counts"]["failed"], payload["counts"]["complete"]) == (
        1,
        1,
        True,
    )


def test_trigger_reports_pending_messages_at_its_deadline(smsnexus_emulator, smsnexus_conn) -> None:
    ids = _send(smsnexus_conn, 1)
    trigger = SMSNexusDeliveryTrigger(message_ids=ids, poke_interval=0.01, deadline=time.time() - 1)
    payload = _first_event(trigger)
    assert payload["status"] == "timeout"
    assert payload["counts"]["pending"] == 1
    assert payload["statuses"][str(ids[0])] not in ("delivered", "failed")
