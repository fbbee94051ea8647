"""dags/low_credit_alert.py: it imports cleanly, and it runs under ``dag.test()`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "low_credit_alert.py"
ON_CALL = ["+12125550150", "+12125550151"]


@pytest.fixture
def dags_folder(dags_folder_of) -> Path:
    """A DAGs folder holding only this DAG."""
    return dags_folder_of(DAG_FILE)


@pytest.fixture
def load_dag(dags_folder, parse_dag):
    """The DAG, parsed from its folder."""
    return lambda: parse_dag(dags_folder, "low_credit_alert")


def quick(dag, *, deferrable: bool = False):
    """Shorten the sensor's waits for the test (the DAG pokes every minute for five minutes)."""
    sensor = dag.get_task("check_balance")
    sensor.poke_interval = 0.1
    sensor.timeout = 1
    sensor.deferrable = deferrable
    return dag


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_dag_imports_cleanly_with_an_hourly_schedule_and_a_soft_failing_below_sensor(
    load_dag, airflow_db, dags_folder
):
    dag = load_dag()

    sensor = dag.get_task("check_balance")
    assert dag.schedule == "@hourly"
    assert sensor.when == "below"
    assert sensor.soft_fail is True
    assert sensor.timeout <= 600
    assert dag.get_task("page_on_call").upstream_task_ids == {"check_balance"}
    assert dag.params["on_call_numbers"] == ON_CALL


def test_the_hourly_check_defers_and_a_manual_run_need_not_wait_behind_it(load_dag, airflow_db, dags_folder):
    dag = load_dag()

    sensor = dag.get_task("check_balance")
    assert sensor.deferrable is True
    # A manual run beside the running hourly one; two hourly runs cannot overlap (each ends within the
    # run timeout, well inside the hour).
    assert dag.max_active_runs == 2
    assert dag.dagrun_timeout.total_seconds() < 3600
    assert sensor.timeout < dag.dagrun_timeout.total_seconds()


def test_a_run_without_a_logical_date_pages_the_on_call(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    smsnexus_emulator.admin.set_balance(300)
    dag = quick(load_dag(), deferrable=True)

    dag_run = dag.test(logical_date=None)

    assert dag_run.logical_date is None
    assert states(dag_run) == {"check_balance": "success", "page_on_call": "success"}
    assert sorted(m["to"] for m in smsnexus_emulator.admin.sent_messages()) == ON_CALL


def test_low_balance_texts_the_on_call_with_balance_and_hours_left(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    for _ in range(4):  # some usage today, so that there is a burn rate
        hook.send_sms(from_number="+12125550100", to="+12125550160", message="campaign")
    admin.set_balance(420)
    dag = quick(load_dag())

    dag_run = dag.test()

    assert dag_run.state == "success"
    assert states(dag_run) == {"check_balance": "success", "page_on_call": "success"}
    alerts = [m for m in admin.sent_messages() if m["to"] in ON_CALL]
    assert [m["to"] for m in alerts] == ON_CALL
    for alert in alerts:
        assert alert["from"] == "+12125550100"
        assert alert["body"].startswith(
            "[low_credit_alert] SMS Nexus credits low: 420 left (threshold 1000)."
        )
        assert "hours left at today's pace of" in alert["body"]


def test_healthy_balance_ends_the_run_quietly(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    smsnexus_emulator.admin.set_balance(8000)
    dag = quick(load_dag())

    dag_run = dag.test()

    assert dag_run.state == "success"
    assert states(dag_run) == {"check_balance": "skipped", "page_on_call": "skipped"}
    assert smsnexus_emulator.admin.sent_messages() == []


def test_threshold_and_numbers_come_from_the_params(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    smsnexus_emulator.admin.set_balance(8000)
    dag = quick(load_dag(), deferrable=True)

    dag_run = dag.test(run_conf={"threshold": 9000, "on_call_numbers": ["+12125550170"]})

    assert states(dag_run) == {"check_balance": "success", "page_on_call": "success"}
    (alert,) = smsnexus_emulator.admin.sent_messages()
    assert alert["to"] == "+12125550170"
    assert "8000 left (threshold 9000). No credits used yet today" in alert["body"]


def test_healthy_balance_in_deferrable_mode_times_out_quietly(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    dag = quick(load_dag(), deferrable=True)

    dag_run = dag.test()

    assert dag_run.state == "success"
    assert states(dag_run) == {"check_balance": "skipped", "page_on_call": "skipped"}
    assert smsnexus_emulator.admin.sent_messages() == []


def test_revoked_token_fails_the_run_instead_of_skipping(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, monkeypatch: pytest.MonkeyPatch
):
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = "SMSNEXUS-TEST-TOKEN-revoked-3333"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", json.dumps(connection))
    dag = quick(load_dag())

    dag_run = dag.test()

    assert dag_run.state == "failed"
    assert states(dag_run)["check_balance"] == "failed"
