"""The balance sensor and its trigger on a 200 HTML maintenance page: logged and checked again, like a 5xx,
never a failed task (the emulator's ``maintenance_page`` switch, over real HTTP)."""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor
from airflow_provider_smsnexus.triggers.balance import SMSNexusBalanceTrigger


def maintenance_pages(admin) -> int:
    """Maintenance pages the emulator answered (its own count)."""
    return admin.stats()["drift"]["maintenance"]


def test_a_maintenance_page_is_logged_and_poked_again_until_it_ends(smsnexus_emulator, smsnexus_conn, capsys):
    admin = smsnexus_emulator.admin
    admin.set_balance(100)
    admin.configure(maintenance_page=True)
    sensor = SMSNexusBalanceSensor(task_id="balance", threshold=500, poke_interval=0.01, timeout=60)
    original = sensor.poke

    def poke(context):  # the page ends after the sensor met it twice (an event, not a delay)
        result = original(context)
        if maintenance_pages(admin) >= 2:
            admin.configure(maintenance_page=False)
        return result

    sensor.poke = poke
    report = sensor.execute({})
    assert report["credits"] == 100
    assert maintenance_pages(admin) >= 2
    logged = capsys.readouterr().out  # Airflow's task logger writes to the captured output
    assert "Balance check failed for now (SMSNexusResponseError" in logged
    assert "Down for maintenance" in logged


def test_a_maintenance_page_that_lasts_ends_in_the_sensors_timeout_not_an_error(
    smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    admin.configure(maintenance_page=True)
    sensor = SMSNexusBalanceSensor(task_id="balance", threshold=500, poke_interval=0.01, timeout=0.3)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert maintenance_pages(admin) >= 2


def test_the_trigger_polls_through_a_maintenance_page(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    admin.set_balance(100)
    admin.configure(maintenance_page=True)

    async def scenario():
        trigger = SMSNexusBalanceTrigger(threshold=500, poke_interval=0.01)
        pending = asyncio.ensure_future(anext(trigger.run()))
        while await asyncio.to_thread(maintenance_pages, admin) < 3:
            assert not pending.done(), pending.result()
            await asyncio.sleep(0.02)
        await asyncio.to_thread(admin.configure, maintenance_page=False)
        return await asyncio.wait_for(pending, 10)

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert event.payload["report"]["credits"] == 100
