"""SMSNexusDeliverySensor against the emulator: a campaign sent by the bulk operator, its messages moved
to delivered / failed (or left queued) through the emulator's inspection API; counts, rate, the minimum,
the report's final statuses, poke and deferrable."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_smsnexus.campaign import ledger as ledger_module
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from airflow_provider_smsnexus.sensors.delivery import SMSNexusDeliverySensor
from airflow_provider_smsnexus.triggers.delivery import SMSNexusDeliveryTrigger

SENDER = "+12125550100"


@pytest.fixture(autouse=True)
def private_ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_module, "default_ledger_path", lambda: tmp_path / "send_ledger.db")


@pytest.fixture
def campaign(smsnexus_conn, tmp_path):
    """Six messages sent by the bulk operator: its XCom summary and report path."""
    report = tmp_path / "report.parquet"
    recipients = pd.DataFrame({"to": [f"+1212555{n:04d}" for n in range(110, 116)]})
    ti = SimpleNamespace(dag_id="campaigns", task_id="send", run_id="manual__1", map_index=-1)
    operator = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=recipients,
        message_template="Hello",
        from_number=SENDER,
        campaign_id="spring",
        report_path=str(report),
    )
    summary = operator.execute({"ti": ti, "run_id": "manual__1", "params": {}})
    assert summary["sent"] == 6
    return summary, str(report)


def mark(admin, message_id: int, status: str) -> None:
    """Move one message to a final status through the emulator's inspection API."""
    response = admin.session.post(
        f"{admin.root_url}/_emulator/accounts/1/messages/{message_id}/status", json={"status": status}
    )
    assert response.status_code == 200, response.text


def sensor(summary, **kwargs) -> SMSNexusDeliverySensor:
    return SMSNexusDeliverySensor(
        **{"task_id": "delivered", "campaign": summary, "poke_interval": 0.05, "timeout": 30, **kwargs}
    )


def outcome(admin, statuses: list[str]) -> dict[int, str]:
    """Give the campaign's messages these statuses (None: leave it queued); return the record's view."""
    sent = admin.sent_messages()
    for message, status in zip(sent, statuses, strict=True):
        if status is not None:
            mark(admin, message["id"], status)
    return {m["id"]: m["status"] for m in admin.sent_messages()}


def test_a_mix_of_outcomes_gives_counts_and_the_delivery_rate(smsnexus_emulator, campaign):
    summary, _ = campaign
    record = outcome(smsnexus_emulator.admin, ["delivered"] * 4 + ["failed"] * 2)

    counts = sensor(summary).execute({})

    assert counts["delivered"] == sum(s == "delivered" for s in record.values()) == 4
    assert counts["failed"] == 2
    assert (counts["total"], counts["pending"], counts["complete"]) == (6, 0, True)
    assert counts["delivery_rate"] == pytest.approx(4 / 6)


def test_messages_that_stay_queued_end_the_wait_at_the_timeout_as_pending(smsnexus_emulator, campaign):
    summary, _ = campaign
    outcome(smsnexus_emulator.admin, ["delivered", "failed", None, None, None, None])

    counts = sensor(summary, timeout=0.3).execute({})

    assert (counts["delivered"], counts["failed"], counts["pending"]) == (1, 1, 4)
    assert counts["complete"] is False
    assert counts["delivery_rate"] == pytest.approx(1 / 6)


def test_below_min_delivery_rate_fails_with_the_counts(smsnexus_emulator, campaign):
    summary, _ = campaign
    outcome(smsnexus_emulator.admin, ["delivered"] * 3 + ["failed"] * 3)

    with pytest.raises(AirflowFailException, match=r"delivery rate 50\.0% is below min_delivery_rate=80\.0%"):
        sensor(summary, min_delivery_rate=0.8).execute({})


def test_the_report_gets_each_rows_final_status(smsnexus_emulator, campaign):
    summary, report = campaign
    record = outcome(smsnexus_emulator.admin, ["delivered", "failed"] * 3)

    sensor(summary, report_path=report, campaign="spring").execute({})

    table = pq.read_table(report).to_pylist()
    assert {row["message_id"]: row["delivery_status"] for row in table} == {
        str(k): v for k, v in record.items()
    }


def test_deferral_fires_the_final_statuses_and_resumes_with_the_same_counts(smsnexus_emulator, campaign):
    summary, _ = campaign
    admin = smsnexus_emulator.admin
    deferred_sensor = sensor(summary, deferrable=True, timeout=600)

    with pytest.raises(TaskDeferred) as deferred:
        deferred_sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, SMSNexusDeliveryTrigger)
    _, kwargs = trigger.serialize()
    assert sorted(kwargs["message_ids"]) == sorted(m["id"] for m in admin.sent_messages())
    outcome(admin, ["delivered"] * 5 + ["failed"])
    event = asyncio.run(asyncio.wait_for(anext(SMSNexusDeliveryTrigger(**kwargs).run()), 30))

    assert event.payload["status"] == "success"
    counts = deferred_sensor.execute_complete({}, event.payload)
    assert (counts["delivered"], counts["failed"], counts["complete"]) == (5, 1, True)


def test_the_trigger_reports_queued_messages_at_its_deadline(smsnexus_emulator, campaign):
    ids = [m["id"] for m in smsnexus_emulator.admin.sent_messages()]
    trigger = SMSNexusDeliveryTrigger(message_ids=ids, campaign_id="spring", poke_interval=0.05, deadline=0)

    event = asyncio.run(asyncio.wait_for(anext(trigger.run()), 30))

    assert event.payload["status"] == "timeout"
    assert event.payload["counts"]["pending"] == 6
    assert set(event.payload["statuses"].values()) == {"queued"}
